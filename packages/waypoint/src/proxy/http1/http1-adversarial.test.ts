/**
 * Adversarial inputs on the direct HTTP/1.1 path, each compared with the Node path where both
 * serve it: request targets in absolute-form, bodies of refused requests, parser fuzzing and
 * random bytes on a live connection.
 */
import http from 'node:http';
import net from 'node:net';
import { dialTcp, HboneClient, HboneMetrics, SpiffeId } from '@ambient/shared';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  FilterChain,
  HttpChain,
  RbacRules,
  Route,
  UpstreamCluster,
  WaypointConfig,
} from '../../config/waypoint-config.js';
import { UNLIMITED } from '../../config/waypoint-config.js';
import { RequestMetrics } from '../../telemetry/request-metrics.js';
import { duplexPair } from '../duplex-pair.js';
import type { ConnectionContext } from '../exchange.js';
import { HttpProxy } from '../http-proxy.js';
import { UpstreamPool } from '../upstream-pool.js';

const logger = pino({ level: 'silent' });
const NO_HEADERS = { add: [], remove: [] };
const ALL = { source: '.*', test: () => true };

function route(name: string, match: Route['match']['path'], to: Route['action']): Route {
  return {
    name,
    match: { path: match, headers: [], query: [] },
    action: to,
    requestHeaders: NO_HEADERS,
    responseHeaders: NO_HEADERS,
  };
}

function cluster(name: string): UpstreamCluster {
  return {
    name,
    connectTimeoutMs: 1000,
    lbPolicy: 'ROUND_ROBIN',
    circuitBreakers: {
      maxConnections: UNLIMITED,
      maxPendingRequests: UNLIMITED,
      maxRequests: UNLIMITED,
      maxRetries: UNLIMITED,
    },
    protocol: 'http1',
    service: { host: 'reviews.demo.svc.cluster.local', namespace: 'demo', name: 'reviews' },
  };
}

/** A backend that records what reached it: method, target, Host, body length. */
async function recordingBackend() {
  const seen: Array<{ method: string; url: string; host: string; body: number }> = [];
  const server = http.createServer((req, res) => {
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
    });
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', host: req.headers.host ?? '', body: n });
      res.end(`${req.method} ${req.url} host=${req.headers.host}`);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as net.AddressInfo).port, seen };
}

interface Front {
  proxy: HttpProxy;
  port: number;
  server: net.Server;
  registry: Registry;
}

async function front(config: WaypointConfig, rbac: RbacRules[], direct: boolean): Promise<Front> {
  const registry = new Registry();
  const upstreams = new UpstreamPool({
    hbone: new HboneClient({
      certificates: { fetch: () => Promise.reject(new Error('no certificates in this test')) },
      metrics: new HboneMetrics(new Registry()),
      logger,
    }),
    identity: SpiffeId.of('cluster.local', 'demo', 'reviews-waypoint'),
    dialTcp: (host, p, timeoutMs) => dialTcp({ host, port: p }, timeoutMs),
  });
  const proxy = new HttpProxy({
    config: () => config,
    upstreams,
    metrics: new RequestMetrics(registry),
    logger,
    accessLog: () => {},
    headersTimeoutMs: 1000,
    http1Direct: direct,
  });
  const chain: FilterChain & { handler: HttpChain } = {
    name: 'inbound-vip|80|http|reviews.demo.svc.cluster.local',
    prefixes: [],
    port: 80,
    handler: { kind: 'http', codec: 'auto', routeConfigName: 'r', rbac, statPrefix: 'x' },
  };
  const server = net.createServer((socket) => {
    const ctx: ConnectionContext = {
      peer: SpiffeId.of('cluster.local', 'demo', 'sleep'),
      sourceIp: '198.18.16.10',
      target: { host: '198.19.0.1', port: 80 },
      chain,
      baggage: new Map(),
    };
    socket.on('error', () => {});
    if (direct) {
      const conn = proxy.connection(ctx);
      socket.pipe(conn).pipe(socket);
      socket.on('close', () => conn.destroy());
      conn.on('close', () => socket.destroy());
      return;
    }
    const [tunnel, inner] = duplexPair();
    socket.pipe(tunnel).pipe(socket);
    tunnel.on('close', () => socket.destroy());
    proxy.serve(inner, ctx);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { proxy, port: (server.address() as net.AddressInfo).port, server, registry };
}

/** Writes bytes on one connection and resolves with everything read until it closes (or 2 s). */
function rawExchange(port: number, bytes: string | Buffer): Promise<string> {
  return new Promise<string>((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    let out = '';
    s.on('data', (d) => {
      out += d.toString('latin1');
    });
    s.on('close', () => resolve(out));
    s.on('error', () => resolve(out));
    setTimeout(() => s.destroy(), 2000);
  });
}

const statuses = (out: string) => [...out.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));

describe('direct HTTP/1.1 path under adversarial input', () => {
  let be: Awaited<ReturnType<typeof recordingBackend>>;
  let direct: Front;
  let node: Front;

  beforeAll(async () => {
    be = await recordingBackend();
    const config: WaypointConfig = {
      routes: new Map([
        [
          'r',
          {
            name: 'r',
            routes: [
              route('local', { prefix: '/local' }, { kind: 'direct', status: 200, body: 'local' }),
              route(
                'all',
                { regex: ALL },
                {
                  kind: 'route',
                  timeoutMs: 0,
                  mirrors: [],
                  hashPolicies: [],
                  clusters: [{ cluster: 'b', weight: 1 }],
                },
              ),
            ],
          },
        ],
      ]),
      clusters: new Map([['b', cluster('b')]]),
      endpoints: new Map([
        [
          'b',
          [
            {
              address: '127.0.0.1',
              port: be.port,
              workload: 'b',
              namespace: 'demo',
              serviceAccount: 'reviews',
              identity: SpiffeId.of('cluster.local', 'demo', 'reviews'),
              tunnel: 'none',
            },
          ],
        ],
      ]),
    };
    // An AuthorizationPolicy denying /admin, and one denying the authority `secret.local`.
    const rbac: RbacRules[] = [
      {
        action: 'DENY',
        policies: [
          { name: 'no-admin', permissions: [{ urlPath: { prefix: '/admin' } }], principals: [{ any: true }] },
          {
            name: 'no-secret',
            permissions: [
              { header: { name: ':authority', match: { exact: 'secret.local' }, invert: false } },
            ],
            principals: [{ any: true }],
          },
        ],
      },
    ];
    direct = await front(config, rbac, true);
    node = await front(config, rbac, false);
  });

  afterAll(() => {
    for (const f of [direct, node]) {
      f.proxy.close();
      f.server.close();
    }
    be.server.close();
  });

  it('authorizes, routes and forwards an absolute-form target by the same path and authority, on both paths', async () => {
    for (const f of [direct, node]) {
      be.seen.length = 0;
      // The upstream would act on the target's path and authority (RFC 9112 3.2.2), so policy must.
      const admin = await rawExchange(
        f.port,
        'GET http://svc/admin/users HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n',
      );
      const secret = await rawExchange(
        f.port,
        'GET http://secret.local/x HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n',
      );
      const other = await rawExchange(
        f.port,
        'GET HTTP://other.example:8080?q=1 HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n',
      );
      console.log(
        `absolute-form (${f === direct ? 'direct' : 'node'}): /admin ${statuses(admin)}, secret.local ${statuses(secret)}, other ${statuses(other)}, upstream saw ${JSON.stringify(be.seen)}`,
      );
      expect(statuses(admin)).toEqual([403]);
      expect(statuses(secret)).toEqual([403]);
      expect(statuses(other)).toEqual([200]);
      expect(be.seen).toEqual([{ method: 'GET', url: '/?q=1', host: 'other.example:8080', body: 0 }]);
    }
  });

  it('refuses a request target that is neither a path nor absolute-form with 400, on both paths', async () => {
    for (const f of [direct, node]) {
      be.seen.length = 0;
      for (const target of ['admin', '*', 'http://user@svc/', 'ftp://svc/x', 'http:///x']) {
        const out = await rawExchange(f.port, `GET ${target} HTTP/1.1\r\nhost: svc\r\n\r\n`);
        expect(statuses(out), target).toEqual([400]);
      }
      expect(be.seen).toEqual([]);
    }
  });
});

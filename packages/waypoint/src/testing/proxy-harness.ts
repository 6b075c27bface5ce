/**
 * Shared setup for the proxy's socket tests: config builders (routes, clusters, endpoints), a
 * proxy listening on a real socket in front of real backends, and raw-byte request helpers.
 */
import http2 from 'node:http2';
import net from 'node:net';
import { dialTcp, HboneClient, HboneMetrics, SpiffeId } from '@ambient/shared';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type {
  FilterChain,
  HttpChain,
  RbacRules,
  RetryPolicy,
  Route,
  RouteAction,
  UpstreamCluster,
  UpstreamEndpoint,
  WaypointConfig,
} from '../config/waypoint-config.js';
import { UNLIMITED } from '../config/waypoint-config.js';
import { duplexPair } from '../proxy/duplex-pair.js';
import type { ConnectionContext } from '../proxy/exchange.js';
import { HttpProxy } from '../proxy/http-proxy.js';
import { UpstreamPool } from '../proxy/upstream-pool.js';
import { RequestMetrics } from '../telemetry/request-metrics.js';

export const logger = pino({ level: 'silent' });
export const NO_HEADERS = { add: [], remove: [] };

/** A route to clusters on a path prefix; `extra` overrides any field (faults, header edits). */
export function route(
  name: string,
  prefix: string,
  action: Partial<RouteAction> & Pick<RouteAction, 'clusters'>,
  extra: Partial<Route> = {},
): Route {
  return {
    ...routeOn(name, { prefix }, { kind: 'route', timeoutMs: 0, mirrors: [], hashPolicies: [], ...action }),
    ...extra,
  };
}

/** A route with any path match and any action (direct answers, redirects, regex matches). */
export function routeOn(name: string, path: Route['match']['path'], action: Route['action']): Route {
  return {
    name,
    match: { path, headers: [], query: [] },
    action,
    requestHeaders: NO_HEADERS,
    responseHeaders: NO_HEADERS,
  };
}

/** The route tables of a config: one, named `r` (the name `httpChain` routes with). */
export function routeTable(routes: Route[]): WaypointConfig['routes'] {
  return new Map([['r', { name: 'r', routes }]]);
}

export function cluster(name: string, extra: Partial<UpstreamCluster> = {}): UpstreamCluster {
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
    ...extra,
  };
}

/** Retries on 5xx, twice, with a short backoff: what the `/fail-once` backends need. */
export function retryOn5xx(): RetryPolicy {
  return {
    retryOn: new Set(['5xx'] as const),
    numRetries: 2,
    perTryTimeoutMs: 0,
    retriableStatusCodes: new Set(),
    backoffBaseMs: 5,
    backoffMaxMs: 20,
  };
}

/** A plain-TCP endpoint on loopback. */
export function endpoint(name: string, port: number): UpstreamEndpoint {
  return {
    address: '127.0.0.1',
    port,
    workload: name,
    namespace: 'demo',
    serviceAccount: 'reviews',
    identity: SpiffeId.of('cluster.local', 'demo', 'reviews'),
    tunnel: 'none',
  };
}

/** An upstream pool that dials plain TCP; HBONE is never used (no certificates). */
export function testUpstreams(): UpstreamPool {
  return new UpstreamPool({
    hbone: new HboneClient({
      certificates: { fetch: () => Promise.reject(new Error('no certificates in this test')) },
      metrics: new HboneMetrics(new Registry()),
      logger,
    }),
    identity: SpiffeId.of('cluster.local', 'demo', 'reviews-waypoint'),
    dialTcp: (host, p, timeoutMs) => dialTcp({ host, port: p }, timeoutMs),
  });
}

/** The inbound HTTP filter chain of the reviews VIP, routing with route config `r`. */
export function httpChain(rbac: RbacRules[]): FilterChain & { handler: HttpChain } {
  return {
    name: 'inbound-vip|80|http|reviews.demo.svc.cluster.local',
    prefixes: [],
    port: 80,
    handler: { kind: 'http', codec: 'auto', routeConfigName: 'r', rbac, statPrefix: 'x' },
  };
}

/** Listens on an ephemeral loopback port and resolves with it. */
export async function listen(server: net.Server | http2.Http2Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
}

/** An HTTP/2 backend answering like a gRPC server: a body, then grpc-status in trailers. */
export async function grpcLikeBackend(
  statusOf: (path: string | undefined) => string = () => '0',
): Promise<{ server: http2.Http2Server; port: number }> {
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': statusOf(headers[':path']) }));
    stream.end(Buffer.from([0, 0, 0, 0, 2, 0x0a, 0x00]));
  });
  return { server, port: await listen(server) };
}

export interface ProxyFront {
  proxy: HttpProxy;
  port: number;
  server: net.Server;
  /** Access log entries, in order. */
  logs: Array<Record<string, unknown>>;
  registry: Registry;
  /** The client address the next tunnels carry. */
  sourceIp: { value: string };
}

export interface FrontOptions {
  /** The direct HTTP/1.1 path (true) or Node's HTTP server over an in-memory pair (false). */
  direct: boolean;
  rbac?: RbacRules[];
  /** Called with each access log entry, besides recording it in `logs`. */
  accessLog?: (e: Record<string, unknown>) => void;
}

/** A proxy on a loopback port, each accepted socket spliced in as the waypoint splices a tunnel. */
export async function startFront(config: WaypointConfig, opts: FrontOptions): Promise<ProxyFront> {
  const { direct, rbac = [], accessLog } = opts;
  const registry = new Registry();
  const logs: Array<Record<string, unknown>> = [];
  const proxy = new HttpProxy({
    config: () => config,
    upstreams: testUpstreams(),
    metrics: new RequestMetrics(registry),
    logger,
    accessLog: (e) => {
      logs.push(e);
      accessLog?.(e);
    },
    headersTimeoutMs: 1000,
    http1Direct: direct,
  });
  const sourceIp = { value: '198.18.16.10' };
  const chain = httpChain(rbac);
  const server = net.createServer((socket) => {
    const ctx: ConnectionContext = {
      peer: SpiffeId.of('cluster.local', 'demo', 'sleep'),
      sourceIp: sourceIp.value,
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
  const port = await listen(server);
  return { proxy, port, server, logs, registry, sourceIp };
}

/** Stops proxies started with `startFront`. */
export function closeFronts(fronts: ProxyFront[]): void {
  for (const f of fronts) {
    f.proxy.close();
    f.server.close();
  }
}

export interface RawExchangeOptions {
  /** Pause between the parts written. */
  gapMs?: number;
  /** How the bytes read are decoded. */
  encoding?: BufferEncoding;
}

/**
 * Writes bytes (or parts of them in turn) on a fresh connection and resolves with everything
 * read until it closes (or 2 s).
 */
export function rawExchange(
  port: number,
  data: string | Buffer | string[],
  opts: RawExchangeOptions = {},
): Promise<string> {
  const { gapMs = 0, encoding = 'latin1' } = opts;
  const parts = Array.isArray(data) ? data : [data];
  return new Promise<string>((resolve) => {
    const s = net.connect(port, '127.0.0.1', async () => {
      for (const p of parts) {
        s.write(p);
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
      }
    });
    let out = '';
    s.on('data', (d: Buffer) => {
      out += d.toString(encoding);
    });
    s.on('close', () => resolve(out));
    s.on('error', () => resolve(out));
    setTimeout(() => s.destroy(), 2000);
  });
}

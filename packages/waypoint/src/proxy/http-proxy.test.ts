import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { SpiffeId } from '@ambient/shared';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RbacRules, WaypointConfig } from '../config/waypoint-config.js';
import { UNLIMITED } from '../config/waypoint-config.js';
import { RequestMetrics } from '../telemetry/request-metrics.js';
import {
  cluster,
  endpoint,
  grpcLikeBackend,
  httpChain,
  listen,
  logger,
  NO_HEADERS,
  rawExchange,
  retryOn5xx,
  route,
  routeTable,
  testUpstreams,
} from '../testing/proxy-harness.js';
import { duplexPair } from './duplex-pair.js';
import type { ConnectionContext } from './exchange.js';
import { HttpProxy } from './http-proxy.js';

/** A backend: answers by path, like the lab's test app. */
async function backend(
  name: string,
): Promise<{ server: http.Server; port: number; hits: string[]; hosts: string[] }> {
  const seen = new Set<string>();
  const hits: string[] = [];
  const hosts: string[] = [];
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    hits.push(url);
    hosts.push(req.headers.host ?? '');
    let m = /^\/fail-once\/(\w+)/.exec(url);
    if (m) {
      const first = !seen.has(m[1] as string);
      seen.add(m[1] as string);
      // Answered once the whole body is in, so the proxy has streamed all of it before it learns
      // of the failure (and a body over the replay buffer can no longer be retried).
      req.resume();
      req.once('end', () => {
        res.writeHead(first ? 503 : 200);
        res.end(`${name} ${first ? 'failed' : 'ok'}`);
      });
      return;
    }
    m = /^\/fail-on\/([\w-]+)/.exec(url);
    if (m) {
      res.writeHead(m[1] === name ? 500 : 200);
      return void res.end(name);
    }
    if (url.startsWith('/hold')) {
      // Long enough that staggered requests overlap even on a slow, cold start.
      setTimeout(() => res.end(`${name} held`), 1000);
      return;
    }
    if (url.startsWith('/slow')) {
      const t = setTimeout(() => res.end(`${name} late`), 2000);
      res.on('close', () => clearTimeout(t));
      return;
    }
    if (url.startsWith('/headers')) return void res.end(JSON.stringify(req.headers));
    let body = 0;
    req.on('data', (c: Buffer) => {
      body += c.length;
    });
    req.on('end', () => res.end(`${name} ${req.method} ${url} ${body}`));
  });
  return { server, port: await listen(server), hits, hosts };
}

/**
 * Each suite runs on both paths: `direct` (the tunnel stream is the direct HTTP/1.1 connection,
 * requests go upstream through the direct client) and `node` (Node's HTTP server over an
 * in-memory pair and Node's client), so every feature is proven on each.
 */
const PATHS = [{ path: 'direct' }, { path: 'node' }] as const;

/** Splices a client socket with the proxy as the waypoint splices an HBONE tunnel. */
function splice(socket: net.Socket, proxy: HttpProxy, direct: boolean, ctx: ConnectionContext): void {
  if (direct) {
    const conn = proxy.connection(ctx);
    socket.pipe(conn).pipe(socket);
    socket.on('error', () => conn.destroy());
    socket.on('close', () => conn.destroy());
    conn.on('error', () => socket.destroy());
    conn.on('close', () => socket.destroy());
    return;
  }
  // As before the direct path: the HTTP side of an in-memory pair whose other side carries the tunnel.
  const [tunnel, inner] = duplexPair();
  socket.pipe(tunnel).pipe(socket);
  socket.on('error', () => tunnel.destroy());
  tunnel.on('error', () => socket.destroy());
  tunnel.on('close', () => socket.destroy());
  proxy.serve(inner, ctx);
}

describe.each(PATHS)(
  'HttpProxy over real sockets ($path): routing, retries, timeouts, faults, RBAC, load balancing',
  ({ path: which }) => {
    let a: Awaited<ReturnType<typeof backend>>;
    let b: Awaited<ReturnType<typeof backend>>;
    let grpcLike: http2.Http2Server;
    let grpcPort: number;
    let front: net.Server;
    let port: number;
    let proxy: HttpProxy;
    let config: WaypointConfig;
    const registry = new Registry();
    const metrics = new RequestMetrics(registry);
    const logs: Array<Record<string, unknown>> = [];
    const rbac: RbacRules[] = [];

    beforeAll(async () => {
      a = await backend('a');
      b = await backend('b');
      ({ server: grpcLike, port: grpcPort } = await grpcLikeBackend((path) =>
        path === '/test.Echo/Fail' ? '9' : '0',
      ));
      const eps = [endpoint('a', a.port), endpoint('b', b.port)];
      config = {
        routes: routeTable([
          route('retry', '/fail-once', {
            clusters: [{ cluster: 'ab', weight: 1 }],
            retry: retryOn5xx(),
          }),
          route('slow', '/slow', { clusters: [{ cluster: 'ab', weight: 1 }], timeoutMs: 200 }),
          route(
            'abort',
            '/abort',
            { clusters: [{ cluster: 'ab', weight: 1 }] },
            { fault: { abort: { httpStatus: 418, percent: 100 } } },
          ),
          route(
            'delayed',
            '/delayed',
            { clusters: [{ cluster: 'ab', weight: 1 }] },
            { fault: { delay: { ms: 20, percent: 100 } } },
          ),
          {
            name: 'redirect',
            match: { path: { prefix: '/old' }, headers: [], query: [] },
            action: { kind: 'redirect', prefixRewrite: '/new', status: 301 },
            requestHeaders: NO_HEADERS,
            responseHeaders: NO_HEADERS,
          },
          route('outlier', '/fail-on', { clusters: [{ cluster: 'ejecting', weight: 1 }] }),
          route(
            'only-a',
            '/a',
            { clusters: [{ cluster: 'a', weight: 1 }], prefixRewrite: '/rewritten' },
            {
              requestHeaders: { add: [{ name: 'x-added', value: 'yes', append: false }], remove: [] },
              responseHeaders: {
                add: [{ name: 'x-from', value: 'waypoint', append: false }],
                remove: [],
              },
            },
          ),
          route('grpc', '/test.Echo', { clusters: [{ cluster: 'grpc', weight: 1 }] }),
          route('hold', '/hold', { clusters: [{ cluster: 'tiny', weight: 1 }] }),
          route('mirrored', '/mirrored', {
            clusters: [{ cluster: 'b-only', weight: 1 }],
            mirrors: [{ cluster: 'a', percent: 100 }],
          }),
          route('missing', '/nowhere', { clusters: [{ cluster: 'no-such-cluster', weight: 1 }] }),
          route('default', '/', { clusters: [{ cluster: 'ab', weight: 1 }] }),
        ]),
        clusters: new Map([
          ['ab', cluster('ab')],
          ['a', cluster('a')],
          ['b-only', cluster('b-only')],
          ['grpc', cluster('grpc', { protocol: 'http2' })],
          [
            'tiny',
            cluster('tiny', {
              circuitBreakers: {
                maxConnections: 1,
                maxPendingRequests: 1,
                maxRequests: UNLIMITED,
                maxRetries: 3,
              },
            }),
          ],
          [
            'ejecting',
            cluster('ejecting', {
              outlierDetection: {
                consecutive5xx: 1,
                intervalMs: 1000,
                baseEjectionTimeMs: 30_000,
                maxEjectionPercent: 50,
              },
            }),
          ],
        ]),
        endpoints: new Map([
          ['ab', eps],
          ['a', [endpoint('a', a.port)]],
          ['b-only', [endpoint('b', b.port)]],
          ['ejecting', eps],
          ['grpc', [endpoint('grpc', grpcPort)]],
          ['tiny', [endpoint('a', a.port)]],
        ]),
      };
      const upstreams = testUpstreams();
      proxy = new HttpProxy({
        config: () => config,
        upstreams,
        metrics,
        logger,
        accessLog: (e) => logs.push(e),
        maxHeaderBytes: 8 * 1024,
        headersTimeoutMs: 300,
        http1Direct: which === 'direct',
      });
      front = net.createServer((socket) => {
        const chain = httpChain(rbac);
        splice(socket, proxy, which === 'direct', {
          peer: SpiffeId.of('cluster.local', 'demo', 'sleep'),
          sourceIp: '198.18.16.10',
          target: { host: '198.19.0.1', port: 80 },
          chain,
          baggage: new Map([['k8s.pod.name', 'sleep']]),
        });
      });
      port = await listen(front);
    });

    afterAll(() => {
      proxy.close();
      front.close();
      a.server.close();
      b.server.close();
      grpcLike.close();
    });

    const get = (path: string, init: RequestInit = {}) => fetch(`http://127.0.0.1:${port}${path}`, init);

    it('routes to the cluster, round robin, rewriting the path and changing headers both ways', async () => {
      const bodies = await Promise.all([1, 2, 3, 4].map(async () => (await get('/')).text()));
      expect(bodies.filter((t) => t.startsWith('a ')).length).toBe(2);
      expect(bodies.filter((t) => t.startsWith('b ')).length).toBe(2);
      const r = await get('/a/x?q=1');
      expect(await r.text()).toBe('a GET /rewritten/x?q=1 0');
      expect(r.headers.get('x-from')).toBe('waypoint');
      expect(r.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    });

    it('sends mesh headers upstream: request id, traceparent, x-forwarded-for, route headers', async () => {
      const r = await get('/headers', { headers: { 'x-request-id': 'given-id' } });
      const h = (await r.json()) as Record<string, string>;
      expect(h['x-request-id']).toBe('given-id');
      expect(h.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      expect(h['x-forwarded-for']).toBe('198.18.16.10');
    });

    it('retries a 503 on another endpoint and returns the success', async () => {
      const r = await get('/fail-once/k1');
      expect(r.status).toBe(200);
      expect(await r.text()).toMatch(/ok$/);
      const entry = logs.find((e) => e.path === '/fail-once/k1');
      expect(entry?.attempts).toBeGreaterThanOrEqual(2);
    });

    it('answers 504 UT when the route timeout fires, 418 FI for an injected abort, and flags an injected delay DI', async () => {
      const slow = await get('/slow');
      expect(slow.status).toBe(504);
      expect(await slow.text()).toBe('upstream request timeout');
      const ab = await get('/abort');
      expect(ab.status).toBe(418);
      expect(await ab.text()).toBe('fault filter abort');
      const delayed = await get('/delayed');
      expect(delayed.status).toBe(200);
      expect(logs.find((e) => e.path === '/delayed')?.response_flags).toBe('DI');
      const text = await registry.metrics();
      expect(text).toMatch(/istio_requests_total\{[^}]*response_code="504"[^}]*response_flags="UT"[^}]*\} 1/);
      expect(text).toMatch(/istio_requests_total\{[^}]*response_code="418"[^}]*response_flags="FI"[^}]*\} 1/);
    });

    it('redirects with the prefix rewritten, and answers 404 NR and 503 NC for no route or cluster', async () => {
      const r = await get('/old/page?x=1', { redirect: 'manual' });
      expect(r.status).toBe(301);
      expect(r.headers.get('location')).toBe(`http://127.0.0.1:${port}/new/page?x=1`);
      expect((await get('/nowhere')).status).toBe(503);
      const nr = logs.find((e) => e.path === '/nowhere');
      expect(nr?.response_flags).toBe('NC');
    });

    it('ejects an endpoint after consecutive 5xx and sends the rest to the healthy one', async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 10; i++) statuses.push((await get('/fail-on/b')).status);
      expect(statuses.filter((s) => s === 500).length).toBeLessThanOrEqual(1);
      expect(statuses.slice(2).every((s) => s === 200)).toBe(true);
      expect(await registry.metrics()).toMatch(/waypoint_outlier_ejections_total\{cluster="ejecting"\} 1/);
    });

    it('denies with 403 "RBAC: access denied" when an ALLOW policy matches nobody', async () => {
      rbac.push({
        action: 'ALLOW',
        policies: [
          {
            name: 'ns[demo]-policy[p]-rule[0]',
            permissions: [{ any: true }],
            principals: [{ principalName: { exact: 'spiffe://cluster.local/ns/demo/sa/someone-else' } }],
          },
        ],
      });
      try {
        const r = await get('/');
        expect(r.status).toBe(403);
        expect(await r.text()).toBe('RBAC: access denied');
        rbac[0] = {
          action: 'ALLOW',
          policies: [
            {
              name: 'ns[demo]-policy[p]-rule[0]',
              permissions: [{ any: true }],
              principals: [{ principalName: { exact: 'spiffe://cluster.local/ns/demo/sa/sleep' } }],
            },
          ],
        };
        expect((await get('/')).status).toBe(200);
      } finally {
        rbac.length = 0;
      }
    });

    it('streams a chunked request body upstream, and does not retry a body too large to replay', async () => {
      const chunks = (n: number, size: number) =>
        new ReadableStream<Uint8Array>({
          start(c) {
            for (let i = 0; i < n; i++) c.enqueue(new Uint8Array(size).fill(97));
            c.close();
          },
        });
      const init = (body: ReadableStream<Uint8Array>) =>
        ({ method: 'POST', body, duplex: 'half' }) as RequestInit & { duplex: 'half' };
      const small = await get('/a/upload', init(chunks(8, 1000)));
      expect(await small.text()).toBe('a POST /rewritten/upload 8000');
      // 2 MiB is over the 1 MiB replay buffer: the failed first attempt is answered, not retried.
      const big = await get('/fail-once/big', init(chunks(32, 64 * 1024)));
      expect(big.status).toBe(503);
      expect(logs.find((e) => e.path === '/fail-once/big')).toMatchObject({
        attempts: 1,
        bytes_received: 2097152,
      });
    });

    it('mirrors a request to another cluster with a -shadow host, answering from the primary', async () => {
      const r = await get('/mirrored/x', { method: 'POST', body: 'payload' });
      expect(await r.text()).toBe('b POST /mirrored/x 7');
      for (let i = 0; i < 50 && !a.hits.includes('/mirrored/x'); i++)
        await new Promise((x) => setTimeout(x, 10));
      expect(a.hits).toContain('/mirrored/x');
      expect(a.hosts.at(-1)).toBe(`127.0.0.1-shadow:${port}`);
    });

    it('answers 503 UO when the connection pool and its pending queue are full', async () => {
      const statuses = await Promise.all(
        [1, 2, 3].map(async (i) => {
          // Staggered, so that the first holds the one connection and the second waits.
          await new Promise((resolve) => setTimeout(resolve, i * 30));
          const r = await get(`/hold/${i}`);
          return `${r.status} ${await r.text()}`;
        }),
      );
      expect(statuses.filter((x) => x.startsWith('200 a held'))).toHaveLength(2);
      expect(statuses).toContain(
        '503 upstream connect error or disconnect/reset before headers. reset reason: overflow',
      );
      expect(await registry.metrics()).toMatch(
        /waypoint_upstream_overflow_total\{cluster="tiny",limit="pending_requests"\} 1/,
      );
    });

    it('logs a client that goes away mid-request as DC with code 0, and cancels the upstream request', async () => {
      const ac = new AbortController();
      const pending = get('/hold/gone', { signal: ac.signal }).catch((e: Error) => e.name);
      setTimeout(() => ac.abort(), 50);
      expect(await pending).toBe('AbortError');
      await new Promise((resolve) => setTimeout(resolve, 100));
      const entry = logs.find((e) => e.path === '/hold/gone');
      expect(entry).toMatchObject({ response_code: 0, response_flags: 'DC' });
    });

    it('passes HTTP/2 prior knowledge and gRPC trailers through', async () => {
      const session = http2.connect(`http://127.0.0.1:${port}`);
      const call = (path: string) =>
        new Promise<{ status: number; grpc: string | undefined }>((resolve, reject) => {
          const s = session.request({
            ':method': 'POST',
            ':path': path,
            'content-type': 'application/grpc',
            te: 'trailers',
          });
          let status = 0;
          s.on('response', (h) => {
            status = Number(h[':status']);
          });
          s.on('trailers', (t) => resolve({ status, grpc: t['grpc-status'] as string | undefined }));
          s.on('error', reject);
          s.resume();
          s.end(Buffer.from([0, 0, 0, 0, 0]));
        });
      expect(await call('/test.Echo/Say')).toEqual({ status: 200, grpc: '0' });
      expect(await call('/test.Echo/Fail')).toEqual({ status: 200, grpc: '9' });
      session.close();
      expect(await registry.metrics()).toMatch(
        /istio_requests_total\{[^}]*request_protocol="grpc"[^}]*grpc_response_status="9"/,
      );
    });

    it('refuses malformed requests, oversized headers and upgrades with a status, counted, and keeps serving', async () => {
      const raw = (text: string) => rawExchange(port, text, { encoding: 'utf8' });
      expect(await raw('GARBAGE\r\n\r\n')).toMatch(/^HTTP\/1.1 400/);
      expect(await raw(`GET / HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(10_000)}\r\n\r\n`)).toMatch(
        /^HTTP\/1.1 431/,
      );
      expect(
        await raw('GET / HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n'),
      ).toMatch(/^HTTP\/1.1 403/);
      // A client that never finishes its headers is answered 408 once the headers timeout passes.
      expect(await raw('GET / HTTP/1.1\r\nhost: x\r\nx-slow: ')).toMatch(/^HTTP\/1.1 408/);
      const text = await registry.metrics();
      expect(text).toMatch(/waypoint_downstream_errors_total\{reason="malformed_request"\} 1/);
      expect(text).toMatch(/waypoint_downstream_errors_total\{reason="headers_too_large"\} 1/);
      expect(text).toMatch(/waypoint_downstream_errors_total\{reason="upgrade_refused"\} 1/);
      expect(text).toMatch(/waypoint_downstream_errors_total\{reason="request_headers_timeout"\} 1/);
      expect((await get('/')).status).toBe(200);
    });

    it("records telemetry with Istio's labels and an access log line per request", async () => {
      await get('/');
      const text = await registry.metrics();
      expect(text).toMatch(
        /istio_requests_total\{reporter="waypoint",source_workload="sleep",source_workload_namespace="demo",source_principal="spiffe:\/\/cluster.local\/ns\/demo\/sa\/sleep"[^}]*destination_service="reviews.demo.svc.cluster.local"[^}]*response_code="200"/,
      );
      expect(text).toContain('istio_request_duration_milliseconds_bucket');
      expect(text).toContain('istio_request_bytes_bucket');
      expect(text).toContain('istio_response_bytes_bucket');
      const last = logs.at(-1);
      expect(last).toMatchObject({
        method: 'GET',
        path: '/',
        response_code: 200,
        response_flags: '-',
        upstream_cluster: 'ab',
      });
    });
  },
);

describe.each(PATHS)(
  'HttpProxy header count limit ($path): refused whole with 431, never truncated',
  ({ path: which }) => {
    let a: Awaited<ReturnType<typeof backend>>;
    let front: net.Server;
    let port: number;
    let proxy: HttpProxy;
    const registry = new Registry();
    const metrics = new RequestMetrics(registry);
    const rbac: RbacRules[] = [
      {
        action: 'DENY',
        policies: [
          {
            name: 'ns[demo]-policy[deny-evil]-rule[0]',
            permissions: [{ header: { name: 'x-evil', match: { exact: '1' }, invert: false } }],
            principals: [{ any: true }],
          },
        ],
      },
    ];

    beforeAll(async () => {
      a = await backend('a');
      const config: WaypointConfig = {
        routes: routeTable([route('all', '/', { clusters: [{ cluster: 'a', weight: 1 }] })]),
        clusters: new Map([['a', cluster('a')]]),
        endpoints: new Map([['a', [endpoint('a', a.port)]]]),
      };
      const upstreams = testUpstreams();
      // The default header byte limit (60 KiB): 3,000 small headers fit under it.
      proxy = new HttpProxy({
        config: () => config,
        upstreams,
        metrics,
        logger,
        http1Direct: which === 'direct',
      });
      front = net.createServer((socket) => {
        splice(socket, proxy, which === 'direct', {
          peer: SpiffeId.of('cluster.local', 'demo', 'sleep'),
          sourceIp: '198.18.16.10',
          target: { host: '198.19.0.1', port: 80 },
          chain: httpChain(rbac),
          baggage: new Map(),
        });
      });
      port = await listen(front);
    });

    afterAll(() => {
      proxy.close();
      front.close();
      a.server.close();
    });

    const get = (path: string, init: RequestInit = {}) => fetch(`http://127.0.0.1:${port}${path}`, init);

    it('refuses 3,000 small headers before a denied one with 431 (counted), and the upstream never sees the request', async () => {
      const padding = Array.from({ length: 3000 }, (_, i) => `x-p${i}: v\r\n`).join('');
      const hitsBefore = a.hits.length;
      const reply = await rawExchange(
        port,
        `GET /padded HTTP/1.1\r\nhost: x\r\n${padding}x-evil: 1\r\nconnection: close\r\n\r\n`,
        { encoding: 'utf8' },
      );
      expect(reply).toMatch(/^HTTP\/1.1 431/);
      // Without padding the policy denies it: the header is what decides, not the count.
      expect((await get('/padded', { headers: { 'x-evil': '1' } })).status).toBe(403);
      expect(a.hits.length).toBe(hitsBefore);
      expect(a.hits).not.toContain('/padded');
      expect(await registry.metrics()).toMatch(
        /waypoint_downstream_errors_total\{reason="too_many_headers"\} 1/,
      );
    });

    it('passes a request with exactly 100 header fields and refuses one with 101 (HTTP/1.1)', async () => {
      // host + 99 more = 100 header fields.
      const fields = (n: number) => Array.from({ length: n }, (_, i) => `x-f${i}: v\r\n`).join('');
      const ok = await rawExchange(
        port,
        `GET /headers HTTP/1.1\r\nhost: x\r\n${fields(98)}connection: close\r\n\r\n`,
        { encoding: 'utf8' },
      );
      expect(ok).toMatch(/^HTTP\/1.1 200/);
      expect(ok).toContain('"x-f97":"v"');
      const over = await rawExchange(
        port,
        `GET /headers HTTP/1.1\r\nhost: x\r\n${fields(99)}connection: close\r\n\r\n`,
        { encoding: 'utf8' },
      );
      expect(over).toMatch(/^HTTP\/1.1 431/);
    });

    it('refuses an HTTP/2 request over the header count with 431, and passes 100 headers whole', async () => {
      const session = http2.connect(`http://127.0.0.1:${port}`);
      const send = (headers: Record<string, string>) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const s = session.request({ ':method': 'GET', ':path': '/headers', ...headers });
          let status = 0;
          let body = '';
          s.on('response', (h) => {
            status = Number(h[':status']);
          });
          s.on('data', (d: Buffer) => {
            body += d.toString();
          });
          s.on('end', () => resolve({ status, body }));
          s.on('error', reject);
          s.end();
        });
      const many = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`x-h${i}`, 'v']));
      const hitsBefore = a.hits.length;
      const refused = await send({ ...many(1200), 'x-evil': '1' });
      expect(refused.status).toBe(431);
      expect(a.hits.length).toBe(hitsBefore);
      const passed = await send(many(100));
      expect(passed.status).toBe(200);
      expect(Object.keys(JSON.parse(passed.body) as object).filter((k) => k.startsWith('x-h'))).toHaveLength(
        100,
      );
      session.close();
    });
  },
);

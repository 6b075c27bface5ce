/**
 * CPU per request of the waypoint's own request steps, in one process with no sockets and no TLS.
 * Each path gets 1 KB GETs on in-memory connections, closed loop, and its upstream is an in-memory
 * stream that answers every request with a fixed 1 KB response:
 *   waypoint direct   HttpProxy.connection() with the direct HTTP/1.1 path (the default), a route
 *                     with Istio's default retry policy and no timeout, no policy: what the lab's
 *                     waypoint runs per request, minus TLS, HTTP/2 and the kernel;
 *   waypoint node     the same with WP_HTTP1_DIRECT=false: Node's HTTP server over an in-memory
 *                     pair, Node's client through an Agent;
 *   bare relay        bare-relay.ts (min-waypoint.ts's relay): the head found by its blank line and
 *                     passed on, the response by its Content-Length; the floor a Node.js HTTP/1.1
 *                     relay costs.
 * Rounds are interleaved; a round's figure is its process CPU time over its requests. On a shared
 * machine take the minimum of the rounds to compare builds: what other processes do moves the
 * median, and can only add. After the rounds, one more round per path runs under V8's sampling
 * heap profiler: the heap bytes it allocates per request (what the young-generation collections
 * have to sweep), steady from run to run where CPU time is not.
 *   BENCH_ROUNDS (default 7), BENCH_REQUESTS per round and path (40000), BENCH_CONNS (32)
 */
import { Session } from 'node:inspector/promises';
import { Duplex } from 'node:stream';
import { HboneClient, HboneMetrics, SpiffeId } from '@ambient/shared';
import {
  type ConnectionContext,
  type FilterChain,
  type HttpChain,
  HttpProxy,
  RequestMetrics,
  UNLIMITED,
  type UpstreamCluster,
  UpstreamPool,
  type WaypointConfig,
} from '@ambient/waypoint';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { BareRelay } from './bare-relay.js';
import { HEAD_END } from './http1-head.js';

const BODY = Buffer.alloc(1024, 'x');
const RESPONSE = Buffer.concat([
  Buffer.from(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${BODY.length}\r\n\r\n`),
  BODY,
]);
const REQUEST = Buffer.from(
  'GET /api/item HTTP/1.1\r\nHost: reviews.demo.svc.cluster.local\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n',
);

/** An upstream in memory: every request head written to it is answered with RESPONSE. */
export class EchoUpstream extends Duplex {
  private pending = '';
  requests = 0;

  constructor() {
    super({ allowHalfOpen: true });
  }

  override _read(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.pending += chunk.toString('latin1');
    let at = this.pending.indexOf('\r\n\r\n');
    while (at >= 0) {
      this.pending = this.pending.slice(at + 4);
      this.requests += 1;
      // Answered after the writer's turn, as a peer's bytes arrive.
      queueMicrotask(() => this.push(RESPONSE));
      at = this.pending.indexOf('\r\n\r\n');
    }
    cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.push(null);
    cb();
  }
}

export type PathName = 'waypoint direct' | 'waypoint node' | 'bare relay';
export const PATHS: readonly PathName[] = ['waypoint direct', 'waypoint node', 'bare relay'];

/** A path under test: a new in-memory downstream connection per call. */
export interface PathUnderTest {
  connection(): Duplex;
  close(): void;
}

const NO_HEADERS = { add: [], remove: [] };

function waypointConfig(): WaypointConfig {
  const cluster: UpstreamCluster = {
    name: 'outbound|8080||reviews.demo.svc.cluster.local',
    connectTimeoutMs: 1000,
    lbPolicy: 'LEAST_REQUEST',
    circuitBreakers: {
      maxConnections: UNLIMITED,
      maxPendingRequests: UNLIMITED,
      maxRequests: UNLIMITED,
      maxRetries: UNLIMITED,
    },
    protocol: 'http1',
    service: { host: 'reviews.demo.svc.cluster.local', namespace: 'demo', name: 'reviews' },
  };
  return {
    routes: new Map([
      [
        'r',
        {
          name: 'r',
          routes: [
            {
              name: 'default',
              match: { path: { prefix: '/' }, headers: [], query: [] },
              action: {
                kind: 'route',
                clusters: [{ cluster: cluster.name, weight: 100 }],
                timeoutMs: 0,
                mirrors: [],
                hashPolicies: [],
                // Istio's default retry policy (route-builder.ts defaultRetryPolicy).
                retry: {
                  retryOn: new Set([
                    'connect-failure',
                    'refused-stream',
                    'unavailable',
                    'cancelled',
                    'retriable-status-codes',
                  ]),
                  numRetries: 2,
                  perTryTimeoutMs: 0,
                  retriableStatusCodes: new Set([503]),
                  backoffBaseMs: 25,
                  backoffMaxMs: 250,
                },
              },
              requestHeaders: NO_HEADERS,
              responseHeaders: NO_HEADERS,
            },
          ],
        },
      ],
    ]),
    clusters: new Map([[cluster.name, cluster]]),
    endpoints: new Map([
      [
        cluster.name,
        [
          {
            address: '10.0.1.9',
            port: 8080,
            workload: 'reviews-v1',
            namespace: 'demo',
            serviceAccount: 'reviews',
            identity: SpiffeId.of('cluster.local', 'demo', 'reviews'),
            tunnel: 'none',
          },
        ],
      ],
    ]),
  };
}

/** The waypoint's HttpProxy over in-memory streams, with the direct path on or off. */
export function waypointPath(direct: boolean): PathUnderTest {
  const logger = pino({ level: 'silent' });
  const config = waypointConfig();
  const proxy = new HttpProxy({
    config: () => config,
    upstreams: new UpstreamPool({
      // Never used: the endpoint is plain TCP, which dialTcp serves in memory.
      hbone: new HboneClient({
        certificates: { fetch: () => Promise.reject(new Error('no certificates in memory')) },
        metrics: new HboneMetrics(new Registry()),
        logger,
      }),
      identity: SpiffeId.of('cluster.local', 'demo', 'reviews-waypoint'),
      dialTcp: async () => new EchoUpstream(),
    }),
    metrics: new RequestMetrics(new Registry()),
    logger,
    http1Direct: direct,
  });
  const chain: FilterChain & { handler: HttpChain } = {
    name: 'inbound-vip|80|http|reviews.demo.svc.cluster.local',
    prefixes: [],
    port: 80,
    handler: { kind: 'http', codec: 'auto', routeConfigName: 'r', rbac: [], statPrefix: 'x' },
  };
  return {
    connection: () => {
      const ctx: ConnectionContext = {
        peer: SpiffeId.of('cluster.local', 'demo', 'productpage'),
        sourceIp: '10.0.0.7',
        target: { host: '10.96.0.20', port: 80 },
        chain,
        baggage: new Map(),
      };
      return proxy.connection(ctx);
    },
    close: () => proxy.close(),
  };
}

/** bare-relay.ts with one in-memory upstream per idle slot, as min-waypoint pools its streams. */
export function barePath(): PathUnderTest {
  const idle: Duplex[] = [];
  const upstreams = {
    take: async (): Promise<Duplex> => idle.pop() ?? new EchoUpstream(),
    give: (up: Duplex) => {
      idle.push(up);
    },
  };
  return { connection: () => new BareRelay(upstreams), close: () => {} };
}

/**
 * `total` GETs over `conns` connections, each sending its next request once the previous response
 * has arrived whole. Resolves with the number of responses that were not 200 OK.
 */
export function load(path: PathUnderTest, conns: number, total: number): Promise<number> {
  return new Promise((resolve) => {
    let sent = 0;
    let done = 0;
    let bad = 0;
    const conns_: Duplex[] = [];
    for (let c = 0; c < conns; c++) {
      const conn = path.connection();
      conns_.push(conn);
      let buf: Buffer = Buffer.alloc(0);
      const send = () => {
        if (sent < total) {
          sent += 1;
          conn.write(REQUEST);
        }
      };
      conn.on('data', (d: Buffer) => {
        buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
        for (;;) {
          const end = buf.indexOf(HEAD_END);
          if (end < 0) return;
          const head = buf.toString('latin1', 0, end);
          const m = /\r\ncontent-length: *(\d+)/i.exec(head);
          const size = end + 4 + (m ? Number(m[1]) : 0);
          if (buf.length < size) return;
          if (!head.startsWith('HTTP/1.1 200 ')) bad += 1;
          buf = buf.subarray(size);
          done += 1;
          if (done === total) {
            for (const x of conns_) x.destroy();
            resolve(bad);
            return;
          }
          send();
        }
      });
      conn.on('error', () => {});
      send();
    }
  });
}

interface SampledNode {
  readonly selfSize: number;
  readonly children: readonly SampledNode[];
}

/**
 * V8 heap bytes allocated per request on `path`, by the sampling heap profiler (a sample every 256
 * bytes, objects already collected included). Buffer contents outside the heap are not counted;
 * the load and the in-memory upstream are, alike for every path.
 */
export async function allocatedPerRequest(
  path: PathUnderTest,
  conns: number,
  total: number,
): Promise<number> {
  const session = new Session();
  session.connect();
  try {
    await session.post('HeapProfiler.startSampling', {
      samplingInterval: 256,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    } as object);
    const bad = await load(path, conns, total);
    const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as {
      profile: { head: SampledNode };
    };
    if (bad > 0) throw new Error(`${bad} responses were not 200 OK`);
    let bytes = 0;
    const todo: SampledNode[] = [profile.head];
    for (let n = todo.pop(); n !== undefined; n = todo.pop()) {
      bytes += n.selfSize;
      todo.push(...n.children);
    }
    return bytes / total;
  } finally {
    session.disconnect();
  }
}

function spread(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const f = (x: number | undefined) => (x ?? Number.NaN).toFixed(2);
  return `${f(s[0])}/${f(s[Math.floor(s.length / 2)])}/${f(s[s.length - 1])}`;
}

function positiveInt(key: string, fallback: number): number {
  const raw = process.env[key];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${key} must be a positive integer, got ${raw}`);
  return n;
}

async function main(): Promise<void> {
  const rounds = positiveInt('BENCH_ROUNDS', 7);
  const requests = positiveInt('BENCH_REQUESTS', 40_000);
  const conns = positiveInt('BENCH_CONNS', 32);
  const paths = new Map<PathName, PathUnderTest>([
    ['waypoint direct', waypointPath(true)],
    ['waypoint node', waypointPath(false)],
    ['bare relay', barePath()],
  ]);
  // Warm-up: the JIT settles before anything is counted.
  for (const p of paths.values()) await load(p, conns, Math.min(requests, 5_000));
  const perRound = new Map<PathName, number[]>(PATHS.map((p) => [p, []]));
  for (let r = 0; r < rounds; r++) {
    for (const [name, p] of paths) {
      const before = process.cpuUsage();
      const bad = await load(p, conns, requests);
      const used = process.cpuUsage(before);
      if (bad > 0) throw new Error(`${name}: ${bad} responses were not 200 OK`);
      perRound.get(name)?.push((used.user + used.system) / requests);
    }
  }
  const allocated = new Map<PathName, number>();
  for (const [name, p] of paths)
    allocated.set(name, await allocatedPerRequest(p, conns, Math.min(requests, 10_000)));
  for (const p of paths.values()) p.close();
  const of = (p: PathName) => perRound.get(p) ?? [];
  const ratio = (a: PathName, b: PathName) => of(a).map((x, i) => x / (of(b)[i] ?? Number.NaN));
  console.log(
    `waypoint request steps in one process (no sockets, no TLS, no HTTP/2): 1 KB GETs on ${conns} in-memory connections, ${rounds} interleaved rounds of ${requests} requests per path`,
  );
  console.log('CPU microseconds per request, min/median/max over the rounds');
  const rows: Array<[string, string]> = [
    ...PATHS.map((p): [string, string] => [p, spread(of(p))]),
    ['waypoint direct / bare relay', `${spread(ratio('waypoint direct', 'bare relay'))}x`],
    ['waypoint node / waypoint direct', `${spread(ratio('waypoint node', 'waypoint direct'))}x`],
  ];
  for (const [k, v] of rows) console.log(`${k.padEnd(34)}${v.padStart(22)}`);
  console.log('V8 heap KB allocated per request (sampled, one round; the load and upstream included)');
  for (const p of PATHS)
    console.log(`${p.padEnd(34)}${((allocated.get(p) ?? Number.NaN) / 1024).toFixed(1).padStart(22)}`);
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, ''))) {
  main().then(
    () => process.exit(0),
    (err: Error) => {
      console.error(err.message);
      process.exit(1);
    },
  );
}

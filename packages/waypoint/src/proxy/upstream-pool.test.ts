import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { CertManager, dialTcp, HboneClient, HboneMetrics, LocalCa, SpiffeId } from '@ambient/shared';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { UNLIMITED, type UpstreamCluster, type UpstreamEndpoint } from '../config/waypoint-config.js';
import { cluster as testCluster } from '../testing/proxy-harness.js';
import { longTimer, UpstreamConnectError, UpstreamPool } from './upstream-pool.js';

/** A pool whose endpoints are reached over plain TCP (the HBONE client has no certificates). */
function tcpPool(): UpstreamPool {
  return new UpstreamPool({
    hbone: new HboneClient({
      certificates: { fetch: () => Promise.reject(new Error('no certificates in this test')) },
      metrics: new HboneMetrics(new Registry()),
      logger: pino({ level: 'silent' }),
    }),
    identity: SpiffeId.of('cluster.local', 'demo', 'wp'),
    dialTcp: (host, port, timeoutMs) => dialTcp({ host, port }, timeoutMs),
  });
}

describe('UpstreamPool: HTTP/1.1 keep-alive pooling', () => {
  let server: http.Server;
  let ep: UpstreamEndpoint;
  const pool = tcpPool();
  const cluster: UpstreamCluster = {
    name: 'c',
    connectTimeoutMs: 1000,
    lbPolicy: 'ROUND_ROBIN',
    circuitBreakers: {
      maxConnections: UNLIMITED,
      maxPendingRequests: UNLIMITED,
      maxRequests: UNLIMITED,
      maxRetries: 3,
    },
    protocol: 'http1',
  };

  beforeAll(async () => {
    server = http.createServer((_q, r) => r.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    ep = {
      address: '127.0.0.1',
      port,
      workload: 'w',
      namespace: 'demo',
      serviceAccount: 'w',
      identity: SpiffeId.of('cluster.local', 'demo', 'w'),
      tunnel: 'none',
    };
  });
  afterAll(() => {
    pool.close();
    server.close();
  });

  it('reuses one connection for sequential requests without piling up listeners on it', async () => {
    const sockets = new Set<unknown>();
    let last: net.Socket | undefined;
    for (let i = 0; i < 20; i++) {
      await new Promise<void>((resolve, reject) => {
        const req = pool.http1Request(cluster, ep, 'GET', '/', { host: 'x' }, '198.18.16.10');
        req.on('socket', (s) => {
          sockets.add(s);
          last = s as net.Socket;
        });
        req.on('response', (r) => {
          r.resume();
          r.on('end', () => resolve());
        });
        req.on('error', reject);
        req.end();
      });
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(sockets.size).toBe(1);
    // One listener of the agent's own while the socket is free; a leak would add one per request.
    expect(last?.listenerCount('error')).toBeLessThanOrEqual(2);
    expect(pool.stats()).toMatchObject({ http1Free: 1 });
  });

  it('keeps a separate connection per client address (each carries its own Forwarded address)', async () => {
    const get = (client: string) =>
      new Promise<unknown>((resolve, reject) => {
        const req = pool.http1Request(cluster, ep, 'GET', '/', { host: 'x' }, client);
        req.on('socket', resolve);
        req.on('response', (r) => r.resume());
        req.on('error', reject);
        req.end();
      });
    const a = await get('198.18.16.20');
    await new Promise((resolve) => setTimeout(resolve, 20));
    const b = await get('198.18.16.21');
    expect(a).not.toBe(b);
  });

  it('keeps every connection of a burst of 100 concurrent requests free for the next burst', async () => {
    // Answers once all 100 are open, so that the burst really holds 100 connections at once.
    let held: http.ServerResponse[] = [];
    let accepted = 0;
    const burst = http.createServer((_q, r) => {
      held.push(r);
      if (held.length < 100) return;
      for (const h of held.splice(0)) h.end('ok');
    });
    burst.keepAliveTimeout = 60_000;
    burst.on('connection', () => {
      accepted += 1;
    });
    await new Promise<void>((resolve) => burst.listen(0, '127.0.0.1', resolve));
    const to = { ...ep, port: (burst.address() as net.AddressInfo).port, workload: 'burst' };
    const one = () =>
      new Promise<void>((resolve, reject) => {
        const req = pool.http1Request(cluster, to, 'GET', '/', { host: 'x' }, '198.18.16.30');
        req.on('response', (r) => {
          r.resume();
          r.on('end', () => resolve());
        });
        req.on('error', reject);
        req.end();
      });
    try {
      for (let round = 0; round < 2; round++) {
        await Promise.all(Array.from({ length: 100 }, one));
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(accepted).toBe(100);
    } finally {
      held = [];
      burst.closeAllConnections();
      burst.close();
    }
  });
});

describe('longTimer', () => {
  it('fires after a duration longer than a Node timer holds (30 days), not after 1 ms, and can be cleared', () => {
    vi.useFakeTimers();
    try {
      const day = 24 * 60 * 60 * 1000;
      let fired = 0;
      longTimer(30 * day, () => fired++);
      const cleared = longTimer(30 * day, () => fired++);
      vi.advanceTimersByTime(1000);
      expect(fired).toBe(0);
      vi.advanceTimersByTime(30 * day - 1001);
      expect(fired).toBe(0);
      cleared.clear();
      vi.advanceTimersByTime(1);
      expect(fired).toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('UpstreamPool: HTTP/2 sessions and the cluster connection limits', () => {
  let server: http2.Http2Server;
  let ep: UpstreamEndpoint;
  /** Sessions the server accepted, and how many of them have closed. */
  const seen = { sessions: 0, closed: 0 };
  const pool = tcpPool();
  const h2cluster = (name: string, extra: Partial<UpstreamCluster>) =>
    testCluster(name, { protocol: 'http2', ...extra });

  beforeAll(async () => {
    server = http2.createServer();
    server.on('session', (session) => {
      seen.sessions += 1;
      session.once('close', () => {
        seen.closed += 1;
      });
    });
    server.on('stream', (stream, headers) => {
      const answer = () => {
        if (stream.destroyed) return;
        stream.respond({ ':status': 200 });
        stream.end('ok');
      };
      if (headers[':path'] === '/slow') setTimeout(answer, 600);
      else answer();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    ep = {
      address: '127.0.0.1',
      port: (server.address() as net.AddressInfo).port,
      workload: 'w',
      namespace: 'demo',
      serviceAccount: 'w',
      tunnel: 'none',
    };
  });
  afterAll(() => {
    pool.close();
    server.close();
  });

  /** One GET through the pool: resolves once the response has ended. */
  async function get(cluster: UpstreamCluster, clientIp: string, path = '/'): Promise<number> {
    const stream = await pool.http2Stream(ep, cluster, clientIp, { ':path': path }, () => true);
    if (!stream) throw new Error('no stream');
    let status = 0;
    stream.once('response', (h) => {
      status = Number(h[':status']);
    });
    stream.resume();
    await new Promise((resolve) => stream.once('close', resolve));
    return status;
  }

  async function until(done: () => boolean, what: string): Promise<void> {
    for (let i = 0; i < 300 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
    if (!done()) throw new Error(`not within 3 s: ${what}`);
  }

  it('opens a new session after max_requests_per_connection streams and closes the spent one', async () => {
    const before = { ...seen };
    const limited = h2cluster('h2-max', { maxRequestsPerConnection: 2 });
    for (let i = 0; i < 5; i++) await get(limited, '198.18.16.20');
    // Streams 1-2, 3-4 and 5 on three sessions; the two spent ones close gracefully.
    expect(seen.sessions - before.sessions).toBe(3);
    await until(() => seen.closed - before.closed === 2, 'the spent sessions closed');
    // Concurrent requests beyond the limit are not failed by the session they waited for closing:
    // six requests, two per session, on three sessions that all close once spent.
    await Promise.all(Array.from({ length: 6 }, () => get(limited, '198.18.16.21')));
    expect(seen.sessions - before.sessions).toBe(6);
    await until(() => seen.closed - before.closed === 5, 'the spent sessions of the burst closed');
  });

  it('opens the sessions of a burst side by side: 100 requests at one request per session all succeed', async () => {
    const before = { ...seen };
    const single = h2cluster('h2-single', { maxRequestsPerConnection: 1 });
    const statuses = await Promise.all(Array.from({ length: 100 }, () => get(single, '198.18.16.24')));
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(seen.sessions - before.sessions).toBe(100);
    await until(() => seen.closed - before.closed === 100, 'every spent session closed');
  });

  it('keeps sessions per cluster: one cluster spending its sessions does not retire another one’s', async () => {
    const before = { ...seen };
    const open = h2cluster('h2-open', {});
    const single = h2cluster('h2-one', { maxRequestsPerConnection: 1 });
    for (const c of [open, open, single, open]) expect(await get(c, '198.18.16.25')).toBe(200);
    // One session for h2-open, reused by its three requests; one for h2-one's request, which closes.
    expect(seen.sessions - before.sessions).toBe(2);
    await until(() => seen.closed - before.closed === 1, 'the spent session of h2-one closed');
  });

  it('closes a session idle for the idle timeout, and one older than max_connection_duration', async () => {
    let before = { ...seen };
    const idle = h2cluster('h2-idle', { idleTimeoutMs: 250 });
    // A stream open longer than the idle timeout keeps its session: idle means no open stream.
    expect(await get(idle, '198.18.16.22', '/slow')).toBe(200);
    expect(seen.closed - before.closed).toBe(0);
    expect(await get(idle, '198.18.16.22')).toBe(200);
    expect(seen.sessions - before.sessions).toBe(1);
    await until(() => seen.closed - before.closed === 1, 'the idle session closed');
    before = { ...seen };
    const aging = h2cluster('h2-age', { maxConnectionDurationMs: 150, idleTimeoutMs: 0 });
    await get(aging, '198.18.16.23');
    await until(() => seen.closed - before.closed === 1, 'the aged session closed');
    // The next request opens a new session.
    await get(aging, '198.18.16.23');
    expect(seen.sessions - before.sessions).toBe(2);
  });
});

describe('UpstreamPool: endpoint identity', () => {
  it('refuses an HBONE endpoint without an identity, before any connection is tried (fail closed)', async () => {
    let dials = 0;
    const pool = new UpstreamPool({
      hbone: {
        connect: () => {
          dials++;
          return Promise.reject(new Error('not reached'));
        },
      } as unknown as HboneClient,
      identity: SpiffeId.of('cluster.local', 'demo', 'wp'),
      dialTcp: () => {
        dials++;
        return Promise.reject(new Error('not reached'));
      },
    });
    const ep: UpstreamEndpoint = {
      address: '198.18.16.30',
      port: 8080,
      workload: 'w',
      namespace: 'demo',
      serviceAccount: 'w',
      tunnel: 'hbone',
    };
    const err = await pool.connect(ep, 1000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamConnectError);
    expect((err as UpstreamConnectError).code).toBe('WP_ERR_UPSTREAM_CONNECT');
    expect(dials).toBe(0);
  });

  it('hands the decoded SpiffeId to the HBONE client as the expected peer', async () => {
    const seen: unknown[] = [];
    const pool = new UpstreamPool({
      hbone: {
        connect: (o: { destination: unknown }) => {
          seen.push(o.destination);
          return Promise.reject(new Error('stop here'));
        },
      } as unknown as HboneClient,
      identity: SpiffeId.of('cluster.local', 'demo', 'wp'),
      dialTcp: () => Promise.reject(new Error('not reached')),
    });
    const identity = SpiffeId.of('cluster.local', 'demo', 'reviews');
    const ep: UpstreamEndpoint = {
      address: '198.18.16.31',
      port: 8080,
      workload: 'w',
      namespace: 'demo',
      serviceAccount: 'reviews',
      identity,
      tunnel: 'hbone',
    };
    await pool.connect(ep, 1000).catch(() => {});
    expect(seen).toEqual([identity]);
    expect(seen[0]).toBe(identity);
  });

  it("passes each cluster's connect_timeout to the HBONE client as the deadline of the tunnel", async () => {
    const seen: unknown[] = [];
    const pool = new UpstreamPool({
      hbone: {
        connect: (o: { connectTimeoutMs?: number }) => {
          seen.push(o.connectTimeoutMs);
          return Promise.reject(new Error('stop here'));
        },
      } as unknown as HboneClient,
      identity: SpiffeId.of('cluster.local', 'demo', 'wp'),
      dialTcp: () => Promise.reject(new Error('not reached')),
    });
    const ep: UpstreamEndpoint = {
      address: '198.18.16.32',
      port: 8080,
      workload: 'w',
      namespace: 'demo',
      serviceAccount: 'reviews',
      identity: SpiffeId.of('cluster.local', 'demo', 'reviews'),
      tunnel: 'hbone',
    };
    await pool.connect(ep, 1234).catch(() => {});
    const cluster: UpstreamCluster = {
      name: 'c',
      connectTimeoutMs: 4321,
      lbPolicy: 'ROUND_ROBIN',
      circuitBreakers: {
        maxConnections: UNLIMITED,
        maxPendingRequests: UNLIMITED,
        maxRequests: UNLIMITED,
        maxRetries: 3,
      },
      protocol: 'http1',
    };
    await new Promise<void>((resolve) => {
      const req = pool.http1Request(cluster, ep, 'GET', '/', { host: 'x' });
      req.on('error', () => resolve());
      req.end();
    });
    pool.close();
    expect(seen).toEqual([1234, 4321]);
  });

  it('an HBONE endpoint whose node agent never completes TLS fails at the connect_timeout', async () => {
    // Accepts TCP and then says nothing: the TLS handshake never completes.
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => {
      sockets.push(s);
      s.on('error', () => {});
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const silentPort = (silent.address() as net.AddressInfo).port;
    const logger = pino({ level: 'silent' });
    const certs = new CertManager({ ca: await LocalCa.create({ trustDomain: 'cluster.local' }), logger });
    const hbone = new HboneClient({
      certificates: certs,
      metrics: new HboneMetrics(new Registry()),
      logger,
      // Every endpoint address leads to the silent listener.
      dialSocket: () => dialTcp({ host: '127.0.0.1', port: silentPort }),
    });
    const pool = new UpstreamPool({
      hbone,
      identity: SpiffeId.of('cluster.local', 'demo', 'wp'),
      dialTcp: () => Promise.reject(new Error('not reached')),
    });
    const ep: UpstreamEndpoint = {
      address: '198.18.16.33',
      port: 8080,
      workload: 'w',
      namespace: 'demo',
      serviceAccount: 'reviews',
      identity: SpiffeId.of('cluster.local', 'demo', 'reviews'),
      tunnel: 'hbone',
    };
    try {
      const started = Date.now();
      const err = await pool.connect(ep, 250).catch((e: unknown) => e);
      console.log(`HBONE endpoint with connect_timeout 250 ms: failed after ${Date.now() - started} ms`);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(/not ready/);
      expect(sockets).toHaveLength(1);
    } finally {
      hbone.destroy();
      certs.close();
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });
});

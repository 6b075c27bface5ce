import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { UpstreamCluster } from '../../config/waypoint-config.js';
import { cluster, endpoint, listen } from '../../testing/proxy-harness.js';
import { ReplayableBody } from '../replayable-body.js';
import { Http1Client } from './http1-client.js';

/**
 * A backend that holds its answers until `burst` requests are open at once, so that a burst
 * really has that many upstream streams, and counts the connections it accepted and saw close.
 */
async function burstBackend() {
  const state = { burst: 1, accepted: 0, closed: 0, slowMs: 0 };
  let held: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    if (req.url === '/slow') {
      setTimeout(() => res.end('slow'), state.slowMs);
      return;
    }
    held.push(res);
    if (held.length < state.burst) return;
    const answer = held;
    held = [];
    for (const r of answer) r.end('ok');
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s) => {
    state.accepted += 1;
    s.on('close', () => {
      state.closed += 1;
    });
  });
  const port = await listen(server);
  return { server, port, state };
}

function tcpClient(): Http1Client {
  return new Http1Client({
    connect: (ep) =>
      new Promise((resolve, reject) => {
        const s = net.connect(ep.port, ep.address, () => resolve(s));
        s.once('error', reject);
      }),
  });
}

/** One GET through the client: its status once the whole body has been read. */
function get(
  client: Http1Client,
  port: number,
  path: string,
  limits: Partial<UpstreamCluster> = {},
): Promise<number> {
  return new Promise((resolve, reject) => {
    client.request(
      cluster('b', limits),
      endpoint('b', port),
      'GET',
      path,
      'svc',
      {},
      new ReplayableBody(undefined),
      undefined,
      (a) => {
        if (!a.ok) {
          reject(new Error(String(a.error)));
          return;
        }
        a.response.body.on('data', () => {});
        a.response.onEnd(() => resolve(a.response.status));
      },
    );
  });
}

async function until(done: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 300 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!done()) throw new Error(`not within 3 s: ${what}`);
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A burst backend and a client to it, both closed after the test. */
async function backendAndClient() {
  const b = await burstBackend();
  const client = tcpClient();
  cleanups.push(
    () => client.close(),
    () => b.server.close(),
  );
  return { b, client };
}

describe('direct client pool', () => {
  it('keeps every stream of a burst idle for the next burst, with no cap below max_connections', async () => {
    const { b, client } = await backendAndClient();
    b.state.burst = 100;
    for (let round = 0; round < 3; round++) {
      const statuses = await Promise.all(Array.from({ length: 100 }, () => get(client, b.port, '/')));
      expect(statuses.every((s) => s === 200)).toBe(true);
      // Every stream went back to the pool: none was closed for being one too many.
      expect(client.stats()).toEqual({ open: 100, idle: 100 });
    }
    expect(b.state.accepted).toBe(100);
    expect(b.state.closed).toBe(0);
  });

  it('closes streams idle longer than the idle timeout, and not a stream that is busy that long', async () => {
    const { b, client } = await backendAndClient();
    // The cluster's common_http_protocol_options.idle_timeout.
    const limits = { idleTimeoutMs: 100 };
    b.state.burst = 10;
    await Promise.all(Array.from({ length: 10 }, () => get(client, b.port, '/', limits)));
    expect(client.stats()).toEqual({ open: 10, idle: 10 });
    await until(() => b.state.closed === 10, 'the idle streams closed');
    expect(client.stats()).toEqual({ open: 0, idle: 0 });
    // A request that takes several idle timeouts keeps its stream, which goes back to the pool.
    b.state.slowMs = 400;
    expect(await get(client, b.port, '/slow', limits)).toBe(200);
    expect(b.state.accepted).toBe(11);
    expect(client.stats()).toEqual({ open: 1, idle: 1 });
    await until(() => b.state.closed === 11, 'the last stream closed once idle');
  });

  it('closes a stream after max_requests_per_connection requests of its cluster', async () => {
    const { b, client } = await backendAndClient();
    for (let i = 0; i < 7; i++)
      expect(await get(client, b.port, '/', { maxRequestsPerConnection: 3 })).toBe(200);
    // Requests 1-3 on the first stream, 4-6 on the second, 7 on a third that stays pooled.
    expect(b.state.accepted).toBe(3);
    await until(() => b.state.closed === 2, 'the two spent streams closed');
    expect(client.stats()).toEqual({ open: 1, idle: 1 });
  });

  it('gives a stream older than max_connection_duration no new request, and closes it once idle', async () => {
    const b = await burstBackend();
    const young = tcpClient();
    const aging = tcpClient();
    cleanups.push(
      () => young.close(),
      () => aging.close(),
      () => b.server.close(),
    );
    // Within the duration a stream is reused.
    for (let i = 0; i < 3; i++)
      expect(await get(young, b.port, '/', { maxConnectionDurationMs: 10_000 })).toBe(200);
    expect(b.state.accepted).toBe(1);
    young.close();
    await until(() => b.state.closed === 1, 'the first client closed');
    // Idle past its duration: the sweep closes it, with no request to prompt it.
    const limits = { maxConnectionDurationMs: 100 };
    expect(await get(aging, b.port, '/', limits)).toBe(200);
    expect(b.state.accepted).toBe(2);
    await until(() => b.state.closed === 2, 'the aged idle stream closed');
    expect(aging.stats()).toEqual({ open: 0, idle: 0 });
    // A request busy past the duration is answered whole on its stream, which then closes.
    b.state.slowMs = 300;
    expect(await get(aging, b.port, '/slow', limits)).toBe(200);
    expect(b.state.accepted).toBe(3);
    await until(() => b.state.closed === 3, 'the aged busy stream closed after its response');
    expect(aging.stats()).toEqual({ open: 0, idle: 0 });
  });

  it('keeps idle streams for good when the idle timeout is 0', async () => {
    const { b, client } = await backendAndClient();
    expect(await get(client, b.port, '/', { idleTimeoutMs: 0 })).toBe(200);
    // A timeout of 0 disables it: no sweep is even scheduled (a 1 ms one would close it at once).
    await new Promise((r) => setTimeout(r, 200));
    expect(client.stats()).toEqual({ open: 1, idle: 1 });
    expect(b.state.closed).toBe(0);
  });
});

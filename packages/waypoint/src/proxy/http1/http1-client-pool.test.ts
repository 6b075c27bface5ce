import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
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

function tcpClient(idleTimeoutMs?: number): Http1Client {
  return new Http1Client({
    connect: (ep) =>
      new Promise((resolve, reject) => {
        const s = net.connect(ep.port, ep.address, () => resolve(s));
        s.once('error', reject);
      }),
    ...(idleTimeoutMs !== undefined && { idleTimeoutMs }),
  });
}

/** One GET through the client: its status once the whole body has been read. */
function get(client: Http1Client, port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    client.request(
      cluster('b'),
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

describe('direct client pool', () => {
  it('keeps every stream of a burst idle for the next burst, with no cap below max_connections', async () => {
    const b = await burstBackend();
    const client = tcpClient();
    cleanups.push(
      () => client.close(),
      () => b.server.close(),
    );
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
    const b = await burstBackend();
    const client = tcpClient(100);
    cleanups.push(
      () => client.close(),
      () => b.server.close(),
    );
    b.state.burst = 10;
    await Promise.all(Array.from({ length: 10 }, () => get(client, b.port, '/')));
    expect(client.stats()).toEqual({ open: 10, idle: 10 });
    await until(() => b.state.closed === 10, 'the idle streams closed');
    expect(client.stats()).toEqual({ open: 0, idle: 0 });
    // A request that takes several idle timeouts keeps its stream, which goes back to the pool.
    b.state.slowMs = 400;
    expect(await get(client, b.port, '/slow')).toBe(200);
    expect(b.state.accepted).toBe(11);
    expect(client.stats()).toEqual({ open: 1, idle: 1 });
    await until(() => b.state.closed === 11, 'the last stream closed once idle');
  });
});

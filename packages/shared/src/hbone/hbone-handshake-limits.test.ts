import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CLIENT_ID,
  echoServer,
  eventually,
  type MeshPair,
  meshPair,
  metricValue,
  SERVER_ID,
} from '../testing/mesh-fixture.js';
import type { HandshakeLimits } from '../tls/handshake-limits.js';
import { HboneClient } from './hbone-client.js';

let pair: MeshPair;
let echoPort: number;
const closers: Array<() => unknown> = [];

afterEach(async () => {
  for (const c of closers.splice(0)) await c();
  await pair?.close();
});

async function setup(handshake: Partial<HandshakeLimits>): Promise<void> {
  const echo = await echoServer();
  closers.push(() => echo.server.close());
  echoPort = echo.port;
  pair = await meshPair({ server: { handshake } });
}

/** A real TLS 1.3 ClientHello (ALPN h2), written by Node's client into a capturing stream. */
function clientHello(): Promise<Buffer> {
  return new Promise((resolve) => {
    const wire = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        resolve(Buffer.from(chunk));
        cb();
      },
    });
    const s = tls.connect({ socket: wire, ALPNProtocols: ['h2'], minVersion: 'TLSv1.3' });
    s.on('error', () => {});
    setTimeout(() => s.destroy(), 50);
  });
}

interface HalfOpen {
  readonly socket: net.Socket;
  /** Resolves when the server closed the connection (or it was destroyed here). */
  readonly closed: Promise<void>;
}

/** Connects from `localAddress`, sends a ClientHello, then nothing. */
async function halfOpen(hello: Buffer, localAddress = '127.0.0.1'): Promise<HalfOpen> {
  const socket = net.connect({ host: '127.0.0.1', port: pair.serverPort, localAddress });
  socket.on('error', () => {});
  socket.on('data', () => {});
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  await new Promise<void>((r) => socket.once('connect', () => r()));
  socket.write(hello);
  return { socket, closed };
}

/** A full tunnel through the server, dialled from `localAddress`. */
async function tunnelFrom(localAddress: string): Promise<string> {
  const client = new HboneClient({
    certificates: pair.certs,
    metrics: pair.metrics,
    logger: pino({ level: 'silent' }),
    dialSocket: (address) =>
      new Promise((resolve, reject) => {
        const s = net.connect({ host: address.host, port: address.port, localAddress });
        s.once('connect', () => resolve(s));
        s.once('error', reject);
      }),
  });
  closers.push(() => client.destroy());
  const s = await client.connect({
    source: CLIENT_ID,
    destination: SERVER_ID,
    address: { host: '127.0.0.1', port: pair.serverPort },
    authority: `127.0.0.1:${echoPort}`,
  });
  s.write('through');
  const reply = await new Promise<string>((r) => s.once('data', (d: Buffer) => r(d.toString())));
  s.end();
  return reply;
}

const refused = (reason: string) =>
  metricValue(pair.registry, 'hbone_connections_refused_total', { side: 'server', reason });
const pendingGauge = () => metricValue(pair.registry, 'hbone_server_handshakes_pending');

describe('HBONE server handshake limits', () => {
  it('closes handshakes beyond the per-source cap at once, counts them, and still serves other sources', async () => {
    await setup({ maxPendingPerSource: 3, maxPending: 100, timeoutMs: 60_000 });
    const hello = await clientHello();
    const held: HalfOpen[] = [];
    for (let i = 0; i < 3; i++) held.push(await halfOpen(hello));
    await eventually(() => pair.server.pendingHandshakes === 3);
    const over = [await halfOpen(hello), await halfOpen(hello)];
    // Closed by the server with the hold at 60 s: only the cap can have closed them.
    await Promise.all(over.map((h) => h.closed));
    expect(await refused('handshake_source_limit')).toBe(2);
    expect(pair.server.pendingHandshakes).toBe(3);
    expect(await pendingGauge()).toBe(3);
    for (const h of held) expect(h.socket.destroyed).toBe(false);
    // Another source address is not held back by this one's cap.
    expect(await tunnelFrom('127.0.0.2')).toBe('through');
    for (const h of held) h.socket.destroy();
    await eventually(() => pair.server.pendingHandshakes === 0);
    expect(await pendingGauge()).toBe(0);
  });

  it('closes handshakes beyond the listener cap, and admits again once slots are free', async () => {
    await setup({ maxPending: 2, maxPendingPerSource: 100, timeoutMs: 60_000 });
    const hello = await clientHello();
    const held = [await halfOpen(hello, '127.0.0.3'), await halfOpen(hello, '127.0.0.4')];
    await eventually(() => pair.server.pendingHandshakes === 2);
    const over = await halfOpen(hello, '127.0.0.5');
    await over.closed;
    expect(await refused('handshake_limit')).toBe(1);
    for (const h of held) h.socket.destroy();
    await eventually(() => pair.server.pendingHandshakes === 0);
    expect(await tunnelFrom('127.0.0.5')).toBe('through');
    expect(await refused('handshake_limit')).toBe(1);
  });

  it('drops a handshake that does not complete within the timeout, counted once, its slot freed', async () => {
    await setup({ timeoutMs: 300 });
    const hello = await clientHello();
    const started = Date.now();
    const stalled = await Promise.all([halfOpen(hello), halfOpen(hello), halfOpen(hello)]);
    await Promise.all(stalled.map((h) => h.closed));
    console.log(
      `handshake timeout 300 ms: server closed 3 stalled handshakes after ${Date.now() - started} ms`,
    );
    await eventually(() => pair.server.pendingHandshakes === 0);
    // Node's own handshake timer is a backstop with the same value: no second count.
    await new Promise((r) => setTimeout(r, 500));
    expect(await refused('handshake_timeout')).toBe(3);
    expect(await refused('tls_handshake')).toBe(0);
    expect(await pendingGauge()).toBe(0);
    // A TCP connection that never sends a byte is dropped the same way.
    const silent = net.connect({ host: '127.0.0.1', port: pair.serverPort });
    silent.on('error', () => {});
    silent.on('data', () => {});
    await new Promise<void>((r) => silent.once('close', () => r()));
    expect(await refused('handshake_timeout')).toBe(4);
    expect(await tunnelFrom('127.0.0.1')).toBe('through');
  });

  it('destroy() closes handshakes still in progress', async () => {
    await setup({ timeoutMs: 60_000 });
    const hello = await clientHello();
    const held = [await halfOpen(hello), await halfOpen(hello)];
    await eventually(() => pair.server.pendingHandshakes === 2);
    pair.server.destroy();
    await Promise.all(held.map((h) => h.closed));
    expect(pair.server.pendingHandshakes).toBe(0);
    expect(await pendingGauge()).toBe(0);
  });

  it('counts a completed handshake out of the limits', async () => {
    await setup({ maxPending: 1, maxPendingPerSource: 1, timeoutMs: 60_000 });
    // Sequential tunnels through fresh clients: each handshake frees its slot when it completes.
    for (let i = 0; i < 3; i++) expect(await tunnelFrom('127.0.0.1')).toBe('through');
    expect(pair.server.pendingHandshakes).toBe(0);
    expect(await refused('handshake_limit')).toBe(0);
    expect(await refused('handshake_source_limit')).toBe(0);
  });
});

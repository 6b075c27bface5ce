/**
 * Write coalescing: the frames every stream writes during one event-loop turn leave in one socket
 * write (one TLS record set and one syscall on a TLS socket), in the order they were written, and
 * a batch of the socket's high-water mark leaves at once. Ending, closing and destroying a
 * connection with frames still corked hands them to the socket first, and never throws.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../testing/mesh-fixture.js';
import { H2Connection } from './h2-connection.js';
import { FRAME } from './h2-frames.js';
import type { H2Stream } from './h2-stream.js';

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

const WINDOW = 4 * 1024 * 1024;
const turn = () => new Promise<void>((r) => setImmediate(r));

interface Pair {
  client: H2Connection;
  /** Server streams by id, with the bytes each received and whether it ended. */
  received: Map<number, { data: Buffer[]; ended: boolean }>;
}

async function connectedPair(window = WINDOW, sockets: net.Socket[] = []): Promise<Pair> {
  const received = new Map<number, { data: Buffer[]; ended: boolean }>();
  const server = net.createServer((socket) => {
    sockets.push(socket);
    const conn = new H2Connection(socket, {
      role: 'server',
      streamWindow: window,
      connectionWindow: window,
      maxConcurrentStreams: 100,
    });
    conn.on('error', () => {});
    conn.on('stream', (s: H2Stream) => {
      const entry = { data: [] as Buffer[], ended: false };
      received.set(s.id, entry);
      s.on('error', () => {});
      s.on('data', (d: Buffer) => entry.data.push(d));
      s.on('end', () => {
        entry.ended = true;
      });
      s.respond({ ':status': 200 });
    });
    closers.push(() => conn.destroy());
  });
  const client = await clientOf(server);
  client.on('error', () => {});
  await new Promise((r) => client.once('remoteSettings', r));
  return { client, received };
}

/** Listens with `server` on loopback and returns an HTTP/2 client connected to it; both closed after each test. */
async function clientOf(server: net.Server): Promise<H2Connection> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise((r) => server.close(r)));
  const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  const client = new H2Connection(socket, {
    role: 'client',
    streamWindow: WINDOW,
    connectionWindow: WINDOW,
    maxConcurrentStreams: 100,
  });
  closers.push(() => client.destroy());
  return client;
}

async function openStreams(pair: Pair, n: number): Promise<H2Stream[]> {
  const streams: H2Stream[] = [];
  for (let i = 0; i < n; i += 1) {
    const s = pair.client.request({ ':method': 'CONNECT', ':authority': `10.0.0.${i}:80` });
    s.on('error', () => {});
    streams.push(s);
  }
  await eventually(() => pair.received.size === n && streams.every((s) => s.responded));
  // Let every frame of the setup (HEADERS, SETTINGS ACK, WINDOW_UPDATE) leave first.
  await turn();
  await turn();
  return streams;
}

/** Records every write the socket makes to its handle: one entry per write, its buffers. */
function recordWrites(socket: net.Socket): Buffer[][] {
  const writes: Buffer[][] = [];
  type Chunk = { chunk: Buffer; encoding: BufferEncoding };
  type Cb = (err?: Error | null) => void;
  const s = socket as net.Socket & {
    _write(chunk: Buffer, encoding: BufferEncoding, cb: Cb): void;
    _writev(chunks: Chunk[], cb: Cb): void;
  };
  const write = s._write.bind(s);
  const writev = s._writev.bind(s);
  s._write = (chunk, encoding, cb) => {
    writes.push([chunk]);
    write(chunk, encoding, cb);
  };
  s._writev = (chunks, cb) => {
    writes.push(chunks.map((c) => c.chunk));
    writev(chunks, cb);
  };
  return writes;
}

/** The frames in a byte sequence: type, stream id, payload. */
function frames(bytes: Buffer): Array<{ type: number; streamId: number; payload: Buffer }> {
  const out: Array<{ type: number; streamId: number; payload: Buffer }> = [];
  for (let off = 0; off + 9 <= bytes.length; ) {
    const length = bytes.readUIntBE(off, 3);
    out.push({
      type: bytes[off + 3] as number,
      streamId: bytes.readUInt32BE(off + 5) & 0x7fffffff,
      payload: bytes.subarray(off + 9, off + 9 + length),
    });
    off += 9 + length;
  }
  return out;
}

const text = (pair: Pair, id: number) => Buffer.concat(pair.received.get(id)?.data ?? []).toString();

describe('H2Connection write coalescing', () => {
  it('sends the frames of eight streams written in one turn in one socket write', async () => {
    const pair = await connectedPair();
    const streams = await openStreams(pair, 8);
    const writes = recordWrites(pair.client.socket as net.Socket);
    const done: Array<Error | null | undefined> = [];
    for (const [i, s] of streams.entries()) s.write(`ping ${i}`, (err) => done.push(err));
    await new Promise((r) => process.nextTick(r));
    // Every write callback ran: the bytes are in the socket (corked), not yet written out.
    expect(done).toEqual(Array(8).fill(null));
    expect(writes.length).toBe(0);
    await turn();
    console.log(`8 stream writes in one turn: ${writes.length} socket write(s)`);
    expect(writes.length).toBe(1);
    await eventually(() => streams.every((s) => text(pair, s.id) === `ping ${streams.indexOf(s)}`));
  });

  it('sends writes made in separate turns in separate socket writes, a lone write at the end of its turn', async () => {
    const pair = await connectedPair();
    const [a, b] = await openStreams(pair, 2);
    const writes = recordWrites(pair.client.socket as net.Socket);
    (a as H2Stream).write('one');
    await turn();
    expect(writes.length).toBe(1);
    (b as H2Stream).write('two');
    await turn();
    expect(writes.length).toBe(2);
    await eventually(
      () => text(pair, (a as H2Stream).id) === 'one' && text(pair, (b as H2Stream).id) === 'two',
    );
  });

  it('keeps the order of frames across streams within a turn', async () => {
    const pair = await connectedPair();
    const [a, b, c] = (await openStreams(pair, 3)) as [H2Stream, H2Stream, H2Stream];
    const writes = recordWrites(pair.client.socket as net.Socket);
    const order: Array<[H2Stream, string]> = [
      [c, 'c1'],
      [a, 'a1'],
      [b, 'b1'],
      [a, 'a2'],
      [c, 'c2'],
    ];
    for (const [s, data] of order) {
      s.write(data);
      // Separate _write calls, not one _writev per stream.
      await Promise.resolve();
    }
    await turn();
    expect(writes.length).toBe(1);
    const sent = frames(Buffer.concat(writes[0] as Buffer[])).filter((f) => f.type === FRAME.DATA);
    expect(sent.map((f) => [f.streamId, f.payload.toString()])).toEqual(order.map(([s, d]) => [s.id, d]));
    await eventually(
      () => text(pair, a.id) === 'a1a2' && text(pair, b.id) === 'b1' && text(pair, c.id) === 'c1c2',
    );
  });

  it('sends a batch of the socket high-water mark at once, without holding writers back', async () => {
    const pair = await connectedPair();
    const streams = await openStreams(pair, 8);
    const socket = pair.client.socket as net.Socket;
    const writes = recordWrites(socket);
    let callbacks = 0;
    // 64 writes of 1 KiB: about four high-water marks of 16 KiB.
    for (let i = 0; i < 64; i += 1)
      (streams[i % 8] as H2Stream).write(Buffer.alloc(1024, i), () => {
        callbacks += 1;
      });
    const during = writes.length;
    await turn();
    console.log(
      `64 writes of 1 KiB in one turn: ${during} socket writes during the turn, ${writes.length} in all (high-water mark ${socket.writableHighWaterMark} B)`,
    );
    expect(during).toBeGreaterThanOrEqual(2);
    expect(writes.length).toBeLessThanOrEqual(8);
    expect(callbacks).toBe(64);
    await eventually(() =>
      streams.every((s) => Buffer.concat(pair.received.get(s.id)?.data ?? []).length === 8 * 1024),
    );
  });

  it('sends data written before end() ahead of END_STREAM in the same turn', async () => {
    const pair = await connectedPair();
    const [s] = (await openStreams(pair, 1)) as [H2Stream];
    s.write('last ');
    s.end('words');
    await eventually(() => pair.received.get(s.id)?.ended === true);
    expect(text(pair, s.id)).toBe('last words');
  });

  it('flushes corked frames before the FIN when the connection closes in the same turn', async () => {
    const bytes: Buffer[] = [];
    let ended = false;
    const server = net.createServer((socket) => {
      socket.on('data', (d: Buffer) => bytes.push(d));
      socket.on('end', () => {
        ended = true;
        socket.end();
      });
    });
    const client = await clientOf(server);
    // Preface, SETTINGS, WINDOW_UPDATE, PING and GOAWAY are all corked when close() ends the socket.
    client.ping(() => {});
    client.close();
    await eventually(() => ended);
    const all = Buffer.concat(bytes);
    const types = frames(all.subarray(24)).map((f) => f.type);
    expect(all.subarray(0, 24).toString('latin1')).toBe('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
    expect(types).toEqual([FRAME.SETTINGS, FRAME.WINDOW_UPDATE, FRAME.PING, FRAME.GOAWAY]);
  });

  it('hands frames written before destroy() to the socket, and a pending flush on a destroyed socket does not throw', async () => {
    const pair = await connectedPair();
    const [a, b] = (await openStreams(pair, 2)) as [H2Stream, H2Stream];
    a.write('before destroy');
    pair.client.destroy();
    await eventually(() => text(pair, a.id) === 'before destroy');

    // The socket itself goes away with a flush pending: the end of the turn finds it destroyed.
    const other = await connectedPair();
    const [c] = (await openStreams(other, 1)) as [H2Stream];
    const errors: unknown[] = [];
    const onUncaught = (err: unknown) => errors.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      c.write('never sent');
      (other.client.socket as net.Socket).destroy();
      await turn();
      await turn();
    } finally {
      process.off('uncaughtException', onUncaught);
    }
    expect(errors).toEqual([]);
    expect(other.client.destroyed).toBe(true);
    expect(b.destroyed).toBe(true);
  });

  it('still holds write callbacks while the socket stays full: a peer that stops reading pushes back', async () => {
    const serverSockets: net.Socket[] = [];
    // Windows far above what the kernel buffers, so that the socket fills before flow control stops.
    const pair = await connectedPair(1024 * 1024 * 1024, serverSockets);
    const [s] = (await openStreams(pair, 1)) as [H2Stream];
    (serverSockets[0] as net.Socket).pause();
    const chunk = Buffer.alloc(1024 * 1024, 0x62);
    let written = 0;
    let completed = 0;
    // Bounded: at most 256 MiB, or until the connection reports a full socket.
    while (!pair.client.writeBlocked && written < 256) {
      s.write(chunk, () => {
        completed += 1;
      });
      written += 1;
      await turn();
    }
    const socket = pair.client.socket as net.Socket;
    console.log(
      `peer not reading: socket full after ${written} MiB, ${completed} write callbacks run, ${socket.writableLength} B held by the socket`,
    );
    expect(pair.client.writeBlocked).toBe(true);
    expect(socket.writableLength).toBeGreaterThanOrEqual(socket.writableHighWaterMark);
    expect(completed).toBeLessThan(written);
    (serverSockets[0] as net.Socket).resume();
    await eventually(() => completed === written && !pair.client.writeBlocked);
    await eventually(
      () => Buffer.concat(pair.received.get(s.id)?.data ?? []).length === written * chunk.length,
    );
  });
});

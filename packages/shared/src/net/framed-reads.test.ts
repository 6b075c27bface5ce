/**
 * Socket reads with frame-header headroom (FramedReads) relayed into an HTTP/2 stream: a read that
 * fits one DATA frame and the send windows leaves as one buffer with its header written in the
 * headroom; otherwise it takes the ordinary write path. Either way the bytes arrive intact and in
 * order, which a random pattern across reads of many sizes checks end to end.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { H2Connection } from '../h2/h2-connection.js';
import type { H2Stream } from '../h2/h2-stream.js';
import { dialTcp } from './dial-tcp.js';
import { FRAMED_READ_SIZE, FramedReads } from './framed-reads.js';
import { type SpliceStats, splice } from './splice.js';

const closers: Array<() => unknown> = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of closers.splice(0).reverse()) await c();
});

/** Deterministic chunk sizes from 1 byte to 200 KB, so that socket reads vary in size. */
function chunkSizes(total: number, seed: number): number[] {
  const sizes: number[] = [];
  let x = seed;
  let left = total;
  while (left > 0) {
    x = (x * 1_103_515_245 + 12_345) % 2 ** 31;
    const pick = x % 4 === 0 ? 1 + (x % 97) : x % 4 === 1 ? 1 + (x % 9_000) : 1 + (x % 200_000);
    const n = Math.min(left, pick);
    sizes.push(n);
    left -= n;
  }
  return sizes;
}

/** A TCP server that writes `pattern` in chunks of `sizes`, one chunk per turn, then ends. */
async function source(pattern: Buffer, sizes: number[]): Promise<number> {
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    socket.on('error', () => {});
    let at = 0;
    let i = 0;
    const next = () => {
      if (socket.destroyed) return;
      if (at >= pattern.length) {
        socket.end();
        return;
      }
      const n = sizes[i++] as number;
      const ok = socket.write(pattern.subarray(at, at + n));
      at += n;
      if (ok) setImmediate(next);
      else socket.once('drain', next);
    };
    next();
    socket.resume();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => server.close());
  return (server.address() as net.AddressInfo).port;
}

function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    stream.on('data', (d: Buffer) => parts.push(d));
    stream.once('end', () => resolve(Buffer.concat(parts)));
    stream.once('error', reject);
  });
}

interface RelayRun {
  received: Buffer;
  stats: SpliceStats;
  framed: number;
  unframed: number;
  /** The largest payload sent from the headroom. */
  largestFramed: number;
}

/**
 * An HTTP/2 server relays a TCP source, read with headroom, into a CONNECT stream; the client
 * announces `clientWindow` per stream. Counts sendFramed calls that sent (framed) and that fell
 * back to the ordinary write path (unframed).
 */
async function relay(pattern: Buffer, sizes: number[], clientWindow: number): Promise<RelayRun> {
  const sendFramed = vi.spyOn(H2Connection.prototype, 'sendFramed');
  const sourcePort = await source(pattern, sizes);
  let resolveStats: (s: SpliceStats) => void = () => {};
  const statsDone = new Promise<SpliceStats>((r) => {
    resolveStats = r;
  });
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    const conn = new H2Connection(socket, {
      role: 'server',
      streamWindow: 1024 * 1024,
      connectionWindow: 4 * 1024 * 1024,
      maxConcurrentStreams: 10,
    });
    conn.on('error', () => {});
    closers.push(() => conn.destroy());
    conn.on('stream', async (s: H2Stream) => {
      s.on('error', () => {});
      s.respond({ ':status': 200 });
      const up = await dialTcp({ host: '127.0.0.1', port: sourcePort }, 10_000, { framedReads: true });
      resolveStats(await splice(s, up));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => server.close());
  const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  const conn = new H2Connection(socket, {
    role: 'client',
    streamWindow: clientWindow,
    connectionWindow: Math.max(clientWindow, 65_535),
    maxConcurrentStreams: 10,
  });
  conn.on('error', () => {});
  closers.push(() => conn.destroy());
  const stream = conn.request({ ':method': 'CONNECT', ':authority': `127.0.0.1:${sourcePort}` });
  stream.end();
  const received = await readAll(stream);
  const stats = await statsDone;
  const results = sendFramed.mock.results.map((r) => r.value as boolean);
  const framedLengths = sendFramed.mock.calls.filter((_, i) => results[i]).map((c) => c[2]);
  return {
    received,
    stats,
    framed: results.filter((v) => v).length,
    unframed: results.filter((v) => !v).length,
    largestFramed: Math.max(0, ...framedLengths),
  };
}

describe('framed reads into HTTP/2 streams', () => {
  it('delivers every byte in order across reads of many sizes, header and payload in one buffer', async () => {
    const pattern = randomBytes(4 * 1024 * 1024);
    const run = await relay(pattern, chunkSizes(pattern.length, 7), 4 * 1024 * 1024);
    console.log(
      `framed reads, large windows: ${run.framed} frames sent from the headroom, ${run.unframed} fell back`,
    );
    expect(run.received.length).toBe(pattern.length);
    expect(run.received.equals(pattern)).toBe(true);
    expect(run.stats.bToA).toBe(pattern.length);
    expect(run.stats.error).toBeUndefined();
    expect(run.framed).toBeGreaterThan(0);
  });

  it('sends a full read as one frame of the largest DATA payload', async () => {
    const pattern = randomBytes(2 * 1024 * 1024);
    // One write of everything: the relay's reads fill their buffers.
    const run = await relay(pattern, [pattern.length], 4 * 1024 * 1024);
    console.log(
      `framed reads, one 2 MiB write: ${run.framed} frames sent from the headroom, largest ${run.largestFramed} bytes, ${run.unframed} fell back`,
    );
    expect(run.received.equals(pattern)).toBe(true);
    expect(run.largestFramed).toBe(FRAMED_READ_SIZE);
  });

  it('falls back to split frames when the windows are smaller than the reads, bytes still intact', async () => {
    const pattern = randomBytes(2 * 1024 * 1024);
    const run = await relay(pattern, chunkSizes(pattern.length, 11), 10_000);
    console.log(
      `framed reads, 10,000-byte stream window: ${run.framed} frames sent from the headroom, ${run.unframed} fell back`,
    );
    expect(run.received.equals(pattern)).toBe(true);
    expect(run.stats.bToA).toBe(pattern.length);
    expect(run.stats.error).toBeUndefined();
    expect(run.unframed).toBeGreaterThan(0);
  });

  it('holds what the socket read before a destination is attached, and relays into a plain socket', async () => {
    const pattern = randomBytes(300_000);
    const sourcePort = await source(pattern, [pattern.length]);
    const up = await dialTcp({ host: '127.0.0.1', port: sourcePort }, 10_000, { framedReads: true });
    closers.push(() => up.destroy());
    // Give the source time to send before anything reads: the first read is held and reading stops.
    await new Promise((r) => setTimeout(r, 50));
    const sink = net.createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => {});
      void splice(s, up).then((stats) => sinkStats.push(stats));
    });
    const sinkStats: SpliceStats[] = [];
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
    closers.push(() => sink.close());
    const reader = net.connect({
      port: (sink.address() as net.AddressInfo).port,
      host: '127.0.0.1',
      allowHalfOpen: true,
    });
    closers.push(() => reader.destroy());
    reader.on('connect', () => reader.end());
    const received = await readAll(reader);
    expect(received.equals(pattern)).toBe(true);
  });

  it('idle sockets share one staging buffer; only a socket in bulk reads holds one of its own', () => {
    const got: Buffer[] = [];
    const sink = {
      write: (b: Buffer, cb: () => void) => {
        got.push(Buffer.from(b));
        cb();
        return true;
      },
    } as unknown as Duplex;
    const a = new FramedReads();
    const b = new FramedReads();
    a.attach(sink);
    const next = (r: FramedReads) => r.onread.buffer();
    // Node asks for the buffer of a socket's next read as soon as it starts reading, then after each read.
    expect(next(a).buffer).toBe(next(b).buffer);
    const short = next(a);
    short.write('hello', 0);
    a.onread.callback(5, short);
    expect(next(a).buffer).toBe(next(b).buffer);
    // A long read into the shared buffer is copied out: the next read of another socket reuses it.
    const long = next(a);
    long.fill(7, 0, 12_000);
    a.onread.callback(12_000, long);
    long.fill(9);
    const own = next(a);
    expect(own.buffer).not.toBe(next(b).buffer);
    own.fill(3, 0, FRAMED_READ_SIZE);
    a.onread.callback(FRAMED_READ_SIZE, own);
    expect(next(a).buffer).not.toBe(own.buffer);
    const last = next(a);
    last.write('bye', 0);
    a.onread.callback(3, last);
    expect(next(a).buffer).toBe(next(b).buffer);
    expect(got.map((x) => x.length)).toEqual([5, 12_000, FRAMED_READ_SIZE, 3]);
    expect(got[0]?.toString()).toBe('hello');
    expect(got[1]?.every((v) => v === 7)).toBe(true);
    expect(got[2]?.every((v) => v === 3)).toBe(true);
    expect(got[3]?.toString()).toBe('bye');
  });
});

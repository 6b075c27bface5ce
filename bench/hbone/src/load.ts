import net from 'node:net';

const PAYLOAD = 64;

/** A TCP echo server for the latency and connection-rate workloads. */
export async function startEcho(port = 0, host = '127.0.0.1'): Promise<{ port: number; close(): void }> {
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(port, host, r));
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}

function connect(port: number, host: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host, noDelay: true, allowHalfOpen: true });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Reads exactly `n` bytes. */
function readExactly(s: net.Socket, n: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = 0;
    const onData = (c: Buffer) => {
      got += c.length;
      if (got >= n) {
        s.off('data', onData);
        s.off('error', reject);
        resolve();
      }
    };
    s.on('data', onData);
    s.once('error', reject);
  });
}

export interface LatencyResult {
  p50Us: number;
  p99Us: number;
  samples: number;
}

/**
 * 64-byte request/response round trips on one connection, one at a time. Bounded by `count`
 * and by `maxMs`, whichever comes first.
 */
export async function measureLatency(
  port: number,
  count: number,
  maxMs: number,
  host = '127.0.0.1',
): Promise<LatencyResult> {
  const s = await connect(port, host);
  const msg = Buffer.alloc(PAYLOAD, 0x61);
  const samples: number[] = [];
  const deadline = Date.now() + maxMs;
  const warmup = Math.min(500, Math.floor(count / 10));
  for (let i = 0; i < count + warmup && Date.now() < deadline; i++) {
    const t0 = process.hrtime.bigint();
    const done = readExactly(s, PAYLOAD);
    s.write(msg);
    await done;
    if (i >= warmup) samples.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  s.destroy();
  samples.sort((a, b) => a - b);
  const pick = (q: number) =>
    samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? Number.NaN;
  return { p50Us: pick(0.5), p99Us: pick(0.99), samples: samples.length };
}

/**
 * New connections per second: each connects, exchanges 64 bytes and closes; `concurrency` loops
 * run until `count` connections completed or `maxMs` passed.
 */
export async function measureConnectionRate(
  port: number,
  count: number,
  maxMs: number,
  concurrency: number,
  host = '127.0.0.1',
): Promise<{ perSecond: number; completed: number; failed: number }> {
  const msg = Buffer.alloc(PAYLOAD, 0x62);
  let started = 0;
  let completed = 0;
  let failed = 0;
  const t0 = Date.now();
  const deadline = t0 + maxMs;
  const loop = async () => {
    while (started < count && Date.now() < deadline) {
      started++;
      try {
        const s = await connect(port, host);
        const done = readExactly(s, PAYLOAD);
        s.end(msg);
        await done;
        s.destroy();
        completed++;
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  const seconds = (Date.now() - t0) / 1000;
  return { perSecond: completed / seconds, completed, failed };
}

import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { Http1ResponseReader } from './http1-response-reader.js';
import { PreciseTicker, preciseNow } from './precise-ticker.js';

export interface OpenLoopOptions {
  readonly url: string;
  /** Requests per second, on a fixed schedule whatever the responses do. */
  readonly rate: number;
  /** Measured requests, after `warmup` unmeasured ones on the same schedule. */
  readonly count: number;
  readonly warmup: number;
  /** Keep-alive connections; requests beyond them queue, and the wait is counted. */
  readonly pool: number;
  readonly requestTimeoutMs: number;
  /** The body length every answer must have to count as a success. */
  readonly expectBytes: number;
}

export interface OpenLoopResult {
  readonly sent: number;
  readonly ok: number;
  readonly failed: number;
  /** Failures by status code or error code, bounded by the few kinds there are. */
  readonly failures: Readonly<Record<string, number>>;
  /** Latency from each request's scheduled start to the end of its response. */
  readonly p50Us: number;
  readonly p90Us: number;
  readonly p99Us: number;
  readonly maxUs: number;
  /** How late the generator itself sent requests (its own pauses), p99. */
  readonly lagP99Us: number;
  readonly achievedRps: number;
}

/**
 * An open-loop HTTP/1.1 load generator: request i is due at start + i / rate, and its latency is
 * measured from that due time, so time spent queued behind slow responses is counted (no
 * coordinated omission). Requests go over a small pool of keep-alive connections, one at a time
 * on each, and wait in a queue when all are busy. Bounded by its request count and by a deadline
 * of the schedule's length plus the request timeout; whatever is outstanding then counts as failed.
 * Plain sockets, not node:http: a third of the CPU per request, so the generator's own pauses
 * stay out of the numbers as far as can be.
 */
export async function openLoop(o: OpenLoopOptions): Promise<OpenLoopResult> {
  const target = new URL(o.url);
  const port = Number(target.port || 80);
  const { address } = await lookup(target.hostname, { family: 4 });
  const request = Buffer.from(
    `GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nUser-Agent: bench-waypoint\r\n\r\n`,
  );
  interface Pending {
    readonly i: number;
    readonly dueMs: number;
  }
  interface Conn {
    socket?: net.Socket;
    reader: Http1ResponseReader;
    current?: Pending;
    timer?: NodeJS.Timeout;
  }
  const conns: Conn[] = Array.from({ length: o.pool }, () => ({ reader: new Http1ResponseReader() }));
  const idle: Conn[] = [...conns];
  const queue: Pending[] = [];
  const total = o.warmup + o.count;
  const intervalMs = 1000 / o.rate;
  const samples: number[] = [];
  const lags: number[] = [];
  const failures: Record<string, number> = {};
  let issued = 0;
  let settled = 0;
  let ok = 0;
  let failed = 0;
  // The schedule starts a little later, so that the ticker's thread is up by then.
  const t0 = preciseNow() + 50;
  const sinceStartMs = () => preciseNow() - t0;

  return new Promise((resolve) => {
    let finished = false;
    let ticker: PreciseTicker | undefined;
    const finish = () => {
      if (finished) return;
      finished = true;
      ticker?.stop();
      clearTimeout(deadline);
      for (const c of conns) {
        clearTimeout(c.timer);
        c.socket?.destroy();
      }
      const outstanding = issued - settled;
      if (outstanding > 0) failures['unfinished at deadline'] = outstanding;
      const elapsedS = sinceStartMs() / 1000;
      samples.sort((a, b) => a - b);
      lags.sort((a, b) => a - b);
      resolve({
        sent: issued,
        ok,
        failed: failed + outstanding + (total - issued),
        failures,
        p50Us: pick(samples, 0.5),
        p90Us: pick(samples, 0.9),
        p99Us: pick(samples, 0.99),
        maxUs: samples[samples.length - 1] ?? Number.NaN,
        lagP99Us: pick(lags, 0.99),
        achievedRps: issued / elapsedS,
      });
    };
    const deadline = setTimeout(finish, 50 + (total / o.rate) * 1000 + o.requestTimeoutMs + 1000);

    const settle = (p: Pending, error?: string) => {
      if (finished) return;
      settled++;
      if (p.i >= o.warmup) {
        if (error === undefined) {
          ok++;
          samples.push((sinceStartMs() - p.dueMs) * 1000);
        } else {
          failed++;
          failures[error] = (failures[error] ?? 0) + 1;
        }
      }
      if (settled === total) finish();
    };
    /** A connection is free again: it takes the oldest queued request, or waits. */
    const release = (c: Conn) => {
      if (finished) return;
      const next = queue.shift();
      if (next) send(c, next);
      else idle.push(c);
    };
    /** The socket is gone (error, close, timeout, bad framing): its request fails. */
    const drop = (c: Conn, s: net.Socket, why: string) => {
      if (c.socket !== s) return;
      c.socket = undefined;
      s.destroy();
      const p = c.current;
      if (!p) return;
      clearTimeout(c.timer);
      c.current = undefined;
      settle(p, why);
      release(c);
    };
    const open = (c: Conn): net.Socket => {
      const s = net.connect({ host: address, port, noDelay: true });
      c.socket = s;
      c.reader = new Http1ResponseReader();
      s.on('data', (chunk: Buffer) => {
        let responses: ReturnType<Http1ResponseReader['push']>;
        try {
          responses = c.reader.push(chunk);
        } catch (err) {
          return drop(c, s, `bad response: ${(err as Error).message}`);
        }
        const [r, extra] = responses;
        if (!r) return;
        const p = c.current;
        if (!p || extra) return drop(c, s, 'response to no request');
        clearTimeout(c.timer);
        c.current = undefined;
        if (r.status !== 200) settle(p, `status ${r.status}`);
        else if (r.bodyBytes !== o.expectBytes) settle(p, `body of ${r.bodyBytes} bytes`);
        else settle(p);
        if (r.close) {
          c.socket = undefined;
          s.destroy();
        }
        release(c);
      });
      s.on('error', (e: NodeJS.ErrnoException) => drop(c, s, e.code ?? e.message));
      s.on('close', () => drop(c, s, 'connection closed'));
      return s;
    };
    const send = (c: Conn, p: Pending) => {
      c.current = p;
      const s = c.socket ?? open(c);
      c.timer = setTimeout(() => drop(c, s, 'timeout'), o.requestTimeoutMs);
      s.write(request);
    };
    // Each tick sends every request that has come due, with its own due time, so the schedule
    // holds even when a tick is late.
    const fireDue = () => {
      if (finished) return;
      const due = Math.min(total, Math.floor(sinceStartMs() / intervalMs) + 1);
      while (issued < due) {
        const i = issued++;
        const p = { i, dueMs: i * intervalMs };
        if (i >= o.warmup) lags.push((sinceStartMs() - p.dueMs) * 1000);
        const c = idle.shift();
        if (c) send(c, p);
        else queue.push(p);
      }
    };
    ticker = new PreciseTicker(t0, intervalMs, total, fireDue);
  });
}

function pick(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

/**
 * The cheapest HTTP/1.1 relay this benchmark builds: the reference path of min-waypoint.ts and of
 * the in-process request-steps benchmark (direct-path-cpu.ts).
 */
import { Duplex } from 'node:stream';
import { contentLength, HEAD_END, responseReader } from './http1-head.js';

/** Where a relay takes its upstream streams from, and gives back a stream its response ended on. */
export interface UpstreamStreams {
  take(): Promise<Duplex>;
  give(up: Duplex): void;
}

/**
 * One downstream connection: what the client writes is parsed here; responses are pushed back.
 * A request head is found by its blank line and written unchanged on a keep-alive upstream
 * stream; the response is relayed by its Content-Length. Nothing else: no policy, routing,
 * telemetry or body framing, so it measures what transport and parsing cost.
 */
export class BareRelay extends Duplex {
  private buf: Buffer = Buffer.alloc(0);
  private busy = false;

  constructor(private readonly upstreams: UpstreamStreams) {
    super({ allowHalfOpen: true });
  }

  override _read(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    this.next();
    cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.push(null);
    cb();
  }

  private next(): void {
    if (this.busy) return;
    const end = this.buf.indexOf(HEAD_END);
    if (end < 0) return;
    const headLen = end + 4;
    if (contentLength(this.buf.toString('latin1', 0, headLen), false) !== 0) {
      this.destroy();
      return;
    }
    const head = this.buf.subarray(0, headLen);
    this.buf = this.buf.subarray(headLen);
    this.busy = true;
    this.upstreams.take().then(
      (up) => this.exchange(up, head),
      () => this.destroy(),
    );
  }

  private exchange(up: Duplex, head: Buffer): void {
    const onData = responseReader(
      (chunk) => this.push(chunk),
      () => {
        up.off('data', onData);
        up.off('close', onGone);
        this.upstreams.give(up);
        this.busy = false;
        this.next();
      },
      () => {
        up.destroy();
        this.destroy();
      },
    );
    const onGone = (): void => {
      this.destroy();
    };
    up.on('data', onData);
    up.once('close', onGone);
    up.write(head);
  }
}

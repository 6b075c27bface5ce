/**
 * Two connected in-memory duplex streams: what one side writes, the other reads, with
 * backpressure and half-close. The HBONE server splices one side to the tunnel's stream while
 * Node's HTTP servers read the other as if it were a socket (which they accept from any duplex).
 * Node 20 has no stream.duplexPair.
 */
import { Duplex } from 'node:stream';

class PairSide extends Duplex {
  peer?: PairSide;
  private waiting?: (err?: Error | null) => void;
  private idleTimer?: NodeJS.Timeout;
  private idleMs = 0;

  constructor() {
    super({ allowHalfOpen: true });
  }

  override _read(): void {
    const writer = this.peer;
    const w = writer?.waiting;
    if (writer && w) {
      writer.waiting = undefined;
      w();
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.touch();
    const peer = this.peer;
    if (!peer || peer.destroyed) {
      cb(new Error('peer closed'));
      return;
    }
    peer.touch();
    if (peer.push(chunk)) cb();
    else this.waiting = cb;
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.peer?.push(null);
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    clearTimeout(this.idleTimer);
    const w = this.waiting;
    this.waiting = undefined;
    w?.(new Error('closed'));
    if (this.peer && !this.peer.destroyed) this.peer.destroy();
    cb(err);
  }

  /** As net.Socket#setTimeout: 'timeout' after `ms` without traffic either way (0 disables). */
  setTimeout(ms: number, cb?: () => void): this {
    this.idleMs = ms;
    if (cb) this.once('timeout', cb);
    this.touch();
    return this;
  }

  setNoDelay(): this {
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }

  private touch(): void {
    clearTimeout(this.idleTimer);
    if (this.idleMs > 0 && !this.destroyed) {
      this.idleTimer = setTimeout(() => this.emit('timeout'), this.idleMs);
      this.idleTimer.unref();
    }
  }
}

export function duplexPair(): [Duplex, Duplex] {
  const a = new PairSide();
  const b = new PairSide();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

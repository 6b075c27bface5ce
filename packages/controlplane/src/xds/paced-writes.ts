/**
 * Writes responses to streams in order, with at most a few large ones being written out at once
 * across all streams. gRPC frames every message into a fresh buffer of its size; when 50 proxies
 * connect together, 50 first responses of several MB each would all be copied at once, and on
 * Linux the cost of those copies is faulting in that much fresh memory, not the copying. A few at
 * a time keeps the memory reused and the sync as fast (the transport is the limit either way).
 * Per stream the order of responses is kept: a small response waits behind a large one queued
 * before it. A stream that ends drops what it still has queued.
 */

/** What this needs of a gRPC server stream. */
export interface ResponseStream {
  write(bytes: Buffer, done: (err?: unknown) => void): unknown;
  readonly writableEnded: boolean;
  readonly destroyed: boolean;
  once(event: 'close' | 'cancelled' | 'error', listener: () => void): unknown;
}

interface Outbox {
  readonly stream: ResponseStream;
  readonly queue: Buffer[];
  /** A large write of this stream is being written out, or waits for a turn. */
  blocked: boolean;
  /** The stream closed, was cancelled or failed: nothing more is written to it. */
  ended: boolean;
  /** Gives back the turn of the large write being written out, if any. */
  release?: () => void;
}

export interface PacedWritesOptions {
  /** From this size a response is large (default 1 MiB). */
  readonly largeBytes?: number;
  /** Large responses written out at once (default 4). */
  readonly maxLarge?: number;
}

export class PacedWrites {
  private readonly largeBytes: number;
  private readonly maxLarge: number;
  private readonly outboxes = new WeakMap<ResponseStream, Outbox>();
  private readonly waiting: Outbox[] = [];
  private active = 0;

  constructor(opts: PacedWritesOptions = {}) {
    this.largeBytes = opts.largeBytes ?? 1 << 20;
    this.maxLarge = opts.maxLarge ?? 4;
  }

  /** Large responses being written out now. */
  get writing(): number {
    return this.active;
  }

  write(stream: ResponseStream, bytes: Buffer): void {
    let box = this.outboxes.get(stream);
    if (!box) {
      const created: Outbox = { stream, queue: [], blocked: false, ended: false };
      // A cancelled gRPC call never calls back a write, and may never be marked ended: its
      // events end the outbox and give back its turn.
      const end = () => {
        if (created.ended) return;
        created.ended = true;
        created.queue.length = 0;
        created.release?.();
      };
      stream.once('close', end);
      stream.once('cancelled', end);
      stream.once('error', end);
      box = created;
      this.outboxes.set(stream, box);
    }
    if (this.gone(box)) return;
    box.queue.push(bytes);
    this.drain(box);
  }

  private gone(box: Outbox): boolean {
    if (box.ended || box.stream.writableEnded || box.stream.destroyed) {
      box.ended = true;
      box.queue.length = 0;
      return true;
    }
    return false;
  }

  private drain(box: Outbox): void {
    const { stream, queue } = box;
    while (queue.length > 0 && !box.blocked) {
      if (this.gone(box)) return;
      const bytes = queue[0] as Buffer;
      if (bytes.length < this.largeBytes) {
        queue.shift();
        stream.write(bytes, () => {});
        continue;
      }
      box.blocked = true;
      if (this.active >= this.maxLarge) {
        this.waiting.push(box);
        return;
      }
      queue.shift();
      this.writeLarge(box, bytes);
    }
  }

  private writeLarge(box: Outbox, bytes: Buffer): void {
    this.active += 1;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      box.release = undefined;
      this.active -= 1;
      box.blocked = false;
      this.next();
      this.drain(box);
    };
    box.release = finish;
    box.stream.write(bytes, finish);
  }

  /** Gives a freed turn to the stream that has waited longest and can still be written. */
  private next(): void {
    while (this.active < this.maxLarge) {
      const box = this.waiting.shift();
      if (!box) return;
      if (this.gone(box)) {
        box.blocked = false;
        continue;
      }
      const bytes = box.queue.shift() as Buffer;
      this.writeLarge(box, bytes);
    }
  }
}

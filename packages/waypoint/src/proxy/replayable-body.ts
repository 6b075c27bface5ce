/**
 * A request body that can be sent more than once: every chunk goes to the attached upstream
 * writers as it arrives and is kept, up to a limit, for a retry or a mirror attached later. Past
 * the limit the copy is dropped and later attachments are refused, so a large upload streams
 * through once and is not retried (as Envoy does past its buffer limit).
 */
import type { Readable, Writable } from 'node:stream';

export const DEFAULT_BODY_BUFFER_LIMIT = 1024 * 1024;

export class ReplayableBody {
  private chunks: Buffer[] = [];
  private kept = 0;
  private overflowed = false;
  private ended = false;
  private readonly writers = new Set<Writable>();
  private readonly waiting = new Set<Writable>();
  /** Bytes received from downstream so far. */
  bytes = 0;

  constructor(
    private readonly source: Readable,
    private readonly limit = DEFAULT_BODY_BUFFER_LIMIT,
  ) {
    source.on('data', (chunk: Buffer) => this.onData(chunk));
    source.on('end', () => {
      this.ended = true;
      for (const w of this.writers) w.end();
      this.writers.clear();
    });
  }

  get complete(): boolean {
    return this.ended;
  }

  /** Whether a new attachment gets the whole body. */
  get replayable(): boolean {
    return !this.overflowed;
  }

  /** Sends everything so far, then each chunk as it comes, then the end. False if it cannot. */
  attach(w: Writable): boolean {
    if (this.overflowed) return false;
    for (const c of this.chunks) w.write(c);
    if (this.ended) w.end();
    else this.writers.add(w);
    return true;
  }

  detach(w: Writable): void {
    this.writers.delete(w);
    this.release(w);
  }

  private onData(chunk: Buffer): void {
    this.bytes += chunk.length;
    if (!this.overflowed) {
      this.chunks.push(chunk);
      this.kept += chunk.length;
      if (this.kept > this.limit) {
        this.overflowed = true;
        this.chunks = [];
      }
    }
    for (const w of this.writers) {
      if (!w.write(chunk) && !this.waiting.has(w)) {
        // Backpressure from the slowest upstream holds the downstream.
        this.waiting.add(w);
        this.source.pause();
        w.once('drain', () => this.release(w));
      }
    }
  }

  private release(w: Writable): void {
    if (this.waiting.delete(w) && this.waiting.size === 0) this.source.resume();
  }
}

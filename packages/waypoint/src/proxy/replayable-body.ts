/**
 * A request body that can be sent more than once: every chunk goes to the attached upstream
 * writers as it arrives and is kept, up to a limit, for a retry or a mirror attached later. Past
 * the limit the copy is dropped and later attachments are refused, so a large upload streams
 * through once and is not retried (as Envoy does past its buffer limit).
 */
export const DEFAULT_BODY_BUFFER_LIMIT = 1024 * 1024;

/** Where the body comes from: Node's request stream, or the direct path's decoder. */
export interface BodySource {
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  pause(): unknown;
  resume(): unknown;
}

/** Where a copy goes: Node's client request stream, or the direct client's request writer. */
export interface BodySink {
  write(chunk: Buffer): boolean;
  end(): unknown;
  once(event: 'drain', listener: () => void): unknown;
}

const SMALL_CHUNK = 4096;
const BLOCK_BYTES = 16 * 1024;
const EMPTY = Buffer.alloc(0);

export class ReplayableBody {
  private chunks: Buffer[] = [];
  /** Where small chunks are copied together (`keep`). */
  private block: Buffer | undefined;
  private blockUsed = 0;
  private kept = 0;
  private overflowed = false;
  private ended = false;
  private readonly writers = new Set<BodySink>();
  private readonly waiting = new Set<BodySink>();
  /** Bytes received from downstream so far. */
  bytes = 0;

  constructor(
    /** None: a request without a body (complete from the start). */
    private readonly source: BodySource | undefined,
    private readonly limit = DEFAULT_BODY_BUFFER_LIMIT,
  ) {
    if (!source) {
      this.ended = true;
      return;
    }
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
  attach(w: BodySink): boolean {
    if (this.overflowed) return false;
    for (const c of this.chunks) w.write(c);
    if (this.ended) w.end();
    else this.writers.add(w);
    return true;
  }

  detach(w: BodySink): void {
    this.writers.delete(w);
    this.release(w);
  }

  private onData(chunk: Buffer): void {
    this.bytes += chunk.length;
    if (!this.overflowed) {
      this.keep(chunk);
      this.kept += chunk.length;
      if (this.kept > this.limit) {
        this.overflowed = true;
        this.chunks = [];
        this.block = undefined;
      }
    }
    for (const w of this.writers) {
      if (!w.write(chunk) && !this.waiting.has(w)) {
        // Backpressure from the slowest upstream holds the downstream.
        this.waiting.add(w);
        this.source?.pause();
        w.once('drain', () => this.release(w));
      }
    }
  }

  /**
   * Keeps a copy for replay. Small chunks (a chunked body of one-byte chunks) are copied into
   * shared blocks: kept as they come, each would be an object of its own and a view holding its
   * whole input buffer, far more memory than the limit counts.
   */
  private keep(chunk: Buffer): void {
    // The first chunk as it is: a small body in one piece costs no copy.
    if (chunk.length >= SMALL_CHUNK || this.chunks.length === 0) {
      this.block = undefined;
      this.chunks.push(chunk);
      return;
    }
    if (!this.block || this.blockUsed + chunk.length > this.block.length) {
      this.block = Buffer.allocUnsafe(BLOCK_BYTES);
      this.blockUsed = 0;
      this.chunks.push(EMPTY);
    }
    chunk.copy(this.block, this.blockUsed);
    this.blockUsed += chunk.length;
    this.chunks[this.chunks.length - 1] = this.block.subarray(0, this.blockUsed);
  }

  private release(w: BodySink): void {
    if (this.waiting.delete(w) && this.waiting.size === 0) this.source?.resume();
  }
}

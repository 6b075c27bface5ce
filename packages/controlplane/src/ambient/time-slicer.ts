/**
 * Cooperative time slicing for the control plane's long computations (reading, parsing and
 * decoding manifests, building the model, encoding resources): they run as generators or loops
 * that check `due()` between small steps, and past the budget hand the event loop back, so
 * readiness probes, xDS streams and the CA keep answering during a heavy write.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';

export class TimeSlicer {
  private sliceStart = 0;
  /** Set while a slice runs in the current turn of the event loop; cleared at the next turn. */
  private armed = false;
  private readonly disarm = () => {
    this.armed = false;
  };
  /** Times the work handed the event loop back, and the longest slice run (ms), for figures. */
  pauses = 0;
  longestSliceMs = 0;

  constructor(private readonly budgetMs = 8) {}

  /**
   * Whether the current slice has used its budget. A slice starts at the first check in a turn
   * of the event loop, so time spent idle, or in another turn, never counts against it.
   */
  due(): boolean {
    const now = performance.now();
    if (!this.armed) {
      this.armed = true;
      this.sliceStart = now;
      setImmediate(this.disarm);
      return false;
    }
    return now - this.sliceStart >= this.budgetMs;
  }

  /** Lets timers and I/O run, then starts a new slice. */
  async pause(): Promise<void> {
    this.longestSliceMs = Math.max(this.longestSliceMs, performance.now() - this.sliceStart);
    this.pauses += 1;
    await nextTurn();
    this.sliceStart = performance.now();
  }

  /** Pauses when the slice is used up. */
  async tick(): Promise<void> {
    if (this.due()) await this.pause();
  }

  /** Runs a generator of steps to completion, pausing between steps when a slice is used up. */
  async run<T>(steps: Generator<unknown, T>): Promise<T> {
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
      if (this.due()) await this.pause();
    }
  }
}

/** Runs a generator of steps to completion at once (tests, callers that must stay synchronous). */
export function runToEnd<T>(steps: Generator<unknown, T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

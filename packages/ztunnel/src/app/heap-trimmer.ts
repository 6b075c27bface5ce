/**
 * Returns the C heap's free pages to the kernel every `intervalMs`. A busy tunnel mallocs and frees
 * buffers by the thousand (socket reads, TLS records); glibc keeps the freed pages, so without this
 * an agent's RSS after a burst stays near its peak (some 30 MB above idle after one iperf3 run)
 * instead of returning to idle. One trim of that much takes about a millisecond.
 */
export interface HeapTrimmerInputs {
  /** glibc's malloc_trim(0) (the netns-sockets addon's mallocTrim); true when pages were released. */
  readonly trim: () => boolean;
  readonly intervalMs: number;
}

export const HEAP_TRIM_INTERVAL_MS = 5_000;

export class HeapTrimmer {
  private timer: NodeJS.Timeout | undefined;
  /** Trims that released memory, for the tests and the debug log. */
  released = 0;

  constructor(private readonly inputs: HeapTrimmerInputs) {}

  /** A trimmer over the addon's mallocTrim, or undefined for an addon built before it existed. */
  static fromAddon(addon: unknown, intervalMs = HEAP_TRIM_INTERVAL_MS): HeapTrimmer | undefined {
    const trim = (addon as { mallocTrim?: () => boolean } | undefined)?.mallocTrim;
    return typeof trim === 'function' ? new HeapTrimmer({ trim, intervalMs }) : undefined;
  }

  start(): void {
    this.timer ??= setInterval(() => {
      if (this.inputs.trim()) this.released += 1;
    }, this.inputs.intervalMs).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

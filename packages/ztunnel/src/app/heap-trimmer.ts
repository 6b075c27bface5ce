/**
 * Returns the C heap's free pages to the kernel, when the agent is quiet. A busy tunnel mallocs and
 * frees buffers by the thousand (socket reads, TLS records); glibc keeps the freed pages, so without
 * this an agent's RSS after a burst stays near its peak (some 30 MB above idle after one iperf3 run)
 * instead of returning to idle. One trim of that much takes about a millisecond, and the loop waits
 * for it: a trim in the middle of traffic is a stall every tunnel sees. So the trimmer looks every
 * `checkMs` and trims once `intervalMs` have passed since the last trim and the event loop was
 * quiet since the previous look; a loop that is never quiet is trimmed after `maxDeferMs` anyway.
 */
export interface HeapTrimmerInputs {
  /** glibc's malloc_trim(0) (the netns-sockets addon's mallocTrim); true when pages were released. */
  readonly trim: () => boolean;
  readonly intervalMs: number;
  /** How often to look (default: the interval, at most 1 s). */
  readonly checkMs?: number;
  /** Longest wait for a quiet moment after the interval (default 60 s). */
  readonly maxDeferMs?: number;
  /** Busy fraction of the event loop since the previous call, 0..1 (default: always quiet). */
  readonly utilization?: () => number;
  /** Milliseconds (default Date.now: a clock step only moves one trim). */
  readonly now?: () => number;
}

export const HEAP_TRIM_INTERVAL_MS = 5_000;
export const HEAP_TRIM_CHECK_MS = 1_000;
export const HEAP_TRIM_MAX_DEFER_MS = 60_000;
/**
 * Busy fraction below which the loop counts as quiet. An agent holding 1,000 idle tunnels and
 * its xDS stream is far below it; one carrying back-to-back 64 B round trips is above it.
 */
export const QUIET_UTILIZATION = 0.05;

export type TrimDecision = 'wait' | 'trim' | 'defer';

/** Whether to trim now: pure, so that the policy is tested without timers. */
export function decideTrim(input: {
  readonly sinceTrimMs: number;
  readonly utilization: number;
  readonly intervalMs: number;
  readonly maxDeferMs: number;
}): TrimDecision {
  if (input.sinceTrimMs < input.intervalMs) return 'wait';
  if (input.utilization < QUIET_UTILIZATION) return 'trim';
  // Bounded: an agent that is never quiet still returns its pages, at a stall per maxDeferMs.
  return input.sinceTrimMs >= input.intervalMs + input.maxDeferMs ? 'trim' : 'defer';
}

export class HeapTrimmer {
  private timer: NodeJS.Timeout | undefined;
  private lastTrimAt: number;
  private readonly now: () => number;
  /** Trims that released memory, for the tests and the debug log. */
  released = 0;
  /** Looks that found the interval passed but the loop busy. */
  deferred = 0;

  constructor(private readonly inputs: HeapTrimmerInputs) {
    this.now = inputs.now ?? Date.now;
    this.lastTrimAt = this.now();
  }

  /** A trimmer over the addon's mallocTrim, or undefined for an addon built before it existed. */
  static fromAddon(
    addon: unknown,
    options: Omit<HeapTrimmerInputs, 'trim' | 'intervalMs'> & { intervalMs?: number } = {},
    wrap: (trim: () => boolean) => () => boolean = (t) => t,
  ): HeapTrimmer | undefined {
    const trim = (addon as { mallocTrim?: () => boolean } | undefined)?.mallocTrim;
    return typeof trim === 'function'
      ? new HeapTrimmer({ intervalMs: HEAP_TRIM_INTERVAL_MS, ...options, trim: wrap(trim) })
      : undefined;
  }

  start(): void {
    const { intervalMs, checkMs } = this.inputs;
    this.inputs.utilization?.(); // the first look measures from now
    this.timer ??= setInterval(
      () => this.tick(),
      checkMs ?? Math.min(intervalMs, HEAP_TRIM_CHECK_MS),
    ).unref();
  }

  /** One look: trims when the policy says so. Returns what it decided. */
  tick(): TrimDecision {
    const now = this.now();
    const decision = decideTrim({
      sinceTrimMs: now - this.lastTrimAt,
      utilization: this.inputs.utilization?.() ?? 0,
      intervalMs: this.inputs.intervalMs,
      maxDeferMs: this.inputs.maxDeferMs ?? HEAP_TRIM_MAX_DEFER_MS,
    });
    if (decision === 'trim') {
      this.lastTrimAt = now;
      if (this.inputs.trim()) this.released += 1;
    } else if (decision === 'defer') {
      this.deferred += 1;
    }
    return decision;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** The event loop's busy fraction since the previous call (perf_hooks' eventLoopUtilization). */
export function loopUtilization(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const next = performance.eventLoopUtilization();
    const u = performance.eventLoopUtilization(next, last).utilization;
    last = next;
    return u;
  };
}

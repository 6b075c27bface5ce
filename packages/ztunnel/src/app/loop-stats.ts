/**
 * Opt-in (`ZT_LOOP_STATS=true`) diagnostics of what stalls the node agent's event loop: the loop's
 * delay histogram, GC pauses by kind, and each malloc_trim call. Read (and reset) through the
 * admin endpoint's `/debug/loop_stats`, so a benchmark can bracket one phase of its load. Off by
 * default: the GC observer and the delay timer cost a little on every pause and every 10 ms.
 */
import {
  constants,
  type EventLoopUtilization,
  type IntervalHistogram,
  monitorEventLoopDelay,
  PerformanceObserver,
  performance,
} from 'node:perf_hooks';

/** A tally of pauses of one kind, in milliseconds. */
export interface PauseTally {
  count: number;
  totalMs: number;
  maxMs: number;
  /** Pauses of at least 1 ms: those that can reach a sub-millisecond round trip's p99. */
  over1Ms: number;
}

export interface LoopStatsSnapshot {
  /** Since the last reset. */
  readonly seconds: number;
  /** Event-loop delay beyond the monitor's 10 ms timer, in microseconds. */
  readonly loopDelayUs: { p50: number; p99: number; max: number; mean: number; samples: number };
  /** GC pauses by kind (`scavenge`, `mark-sweep-compact`, `incremental`, `weak-callbacks`). */
  readonly gc: Record<string, PauseTally>;
  /** malloc_trim calls: duration, and how many returned memory. */
  readonly trim: PauseTally & { released: number };
  /** The fraction of the time the loop was busy (perf_hooks.eventLoopUtilization). */
  readonly utilization: number;
}

/** The name of a V8 GC kind as reported by the 'gc' performance entry. */
export function gcKindName(kind: number): string {
  switch (kind) {
    case constants.NODE_PERFORMANCE_GC_MINOR:
      return 'scavenge';
    case constants.NODE_PERFORMANCE_GC_MAJOR:
      return 'mark-sweep-compact';
    case constants.NODE_PERFORMANCE_GC_INCREMENTAL:
      return 'incremental';
    case constants.NODE_PERFORMANCE_GC_WEAKCB:
      return 'weak-callbacks';
    default:
      return `kind-${kind}`;
  }
}

/**
 * The kind, marked ` (external memory)` when V8 collected because ArrayBuffer memory outside its
 * heap grew (Node's socket and TLS buffers), not because the heap filled.
 */
export function gcName(kind: number, flags: number): string {
  const external = (flags & constants.NODE_PERFORMANCE_GC_FLAGS_ALL_EXTERNAL_MEMORY) !== 0;
  return `${gcKindName(kind)}${external ? ' (external memory)' : ''}`;
}

export function emptyTally(): PauseTally {
  return { count: 0, totalMs: 0, maxMs: 0, over1Ms: 0 };
}

/** Adds one pause to a tally. */
export function addPause(t: PauseTally, ms: number): void {
  t.count += 1;
  t.totalMs += ms;
  if (ms > t.maxMs) t.maxMs = ms;
  if (ms >= 1) t.over1Ms += 1;
}

export interface LoopStatsInputs {
  /** Milliseconds, monotonic (performance.now in the agent, a fake in tests). */
  readonly now: () => number;
}

export class LoopStats {
  private delay: IntervalHistogram | undefined;
  private observer: PerformanceObserver | undefined;
  private gc: Record<string, PauseTally> = {};
  private trims = { ...emptyTally(), released: 0 };
  private since: number;
  private elu = performanceElu();

  constructor(private readonly inputs: LoopStatsInputs) {
    this.since = inputs.now();
  }

  start(): void {
    if (this.delay) return;
    this.delay = monitorEventLoopDelay({ resolution: 10 });
    this.delay.enable();
    this.observer = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const detail = (e as unknown as { detail?: { kind?: number; flags?: number } }).detail;
        const name = gcName(detail?.kind ?? -1, detail?.flags ?? 0);
        this.gc[name] ??= emptyTally();
        addPause(this.gc[name], e.duration);
      }
    });
    this.observer.observe({ entryTypes: ['gc'] });
    this.reset();
  }

  stop(): void {
    this.delay?.disable();
    this.delay = undefined;
    this.observer?.disconnect();
    this.observer = undefined;
  }

  /** Wraps a trim function so that each call's duration is tallied. */
  timeTrim(trim: () => boolean): () => boolean {
    return () => {
      const t0 = this.inputs.now();
      const released = trim();
      addPause(this.trims, this.inputs.now() - t0);
      if (released) this.trims.released += 1;
      return released;
    };
  }

  reset(): void {
    this.delay?.reset();
    this.gc = {};
    this.trims = { ...emptyTally(), released: 0 };
    this.since = this.inputs.now();
    this.elu = performanceElu();
  }

  snapshot(): LoopStatsSnapshot {
    const h = this.delay;
    const us = (ns: number) => Math.round(ns / 1000);
    const samples = h?.count ?? 0;
    return {
      seconds: (this.inputs.now() - this.since) / 1000,
      loopDelayUs:
        h && samples > 0
          ? {
              p50: us(h.percentile(50)),
              p99: us(h.percentile(99)),
              max: us(h.max),
              mean: us(h.mean),
              samples,
            }
          : { p50: 0, p99: 0, max: 0, mean: 0, samples: 0 },
      gc: structuredClone(this.gc),
      trim: { ...this.trims },
      utilization: performanceElu(this.elu).utilization,
    };
  }
}

function performanceElu(since?: EventLoopUtilization): EventLoopUtilization {
  return since ? performance.eventLoopUtilization(since) : performance.eventLoopUtilization();
}

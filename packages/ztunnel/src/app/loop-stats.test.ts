import { constants } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { addPause, emptyTally, gcKindName, gcName, LoopStats } from './loop-stats.js';

describe('loop stats', () => {
  it('tallies pauses: count, total, the longest, and those of a millisecond or more', () => {
    const t = emptyTally();
    for (const ms of [0.2, 1.5, 0.9, 3]) addPause(t, ms);
    expect(t).toEqual({ count: 4, totalMs: 5.6, maxMs: 3, over1Ms: 2 });
  });

  it('names the GC kinds', () => {
    expect(gcKindName(constants.NODE_PERFORMANCE_GC_MINOR)).toBe('scavenge');
    expect(gcKindName(constants.NODE_PERFORMANCE_GC_MAJOR)).toBe('mark-sweep-compact');
    expect(gcKindName(constants.NODE_PERFORMANCE_GC_INCREMENTAL)).toBe('incremental');
    expect(gcKindName(constants.NODE_PERFORMANCE_GC_WEAKCB)).toBe('weak-callbacks');
    expect(gcKindName(99)).toBe('kind-99');
    expect(
      gcName(constants.NODE_PERFORMANCE_GC_MAJOR, constants.NODE_PERFORMANCE_GC_FLAGS_ALL_EXTERNAL_MEMORY),
    ).toBe('mark-sweep-compact (external memory)');
    expect(gcName(constants.NODE_PERFORMANCE_GC_MINOR, constants.NODE_PERFORMANCE_GC_FLAGS_FORCED)).toBe(
      'scavenge',
    );
  });

  it('times each trim on the injected clock, counts those that released memory, and resets', () => {
    let now = 100;
    const stats = new LoopStats({ now: () => now });
    let n = 0;
    const trim = stats.timeTrim(() => {
      now += n === 0 ? 2 : 0.5;
      n += 1;
      return n === 1;
    });
    expect(trim()).toBe(true);
    expect(trim()).toBe(false);
    const snap = stats.snapshot();
    expect(snap.trim).toEqual({ count: 2, totalMs: 2.5, maxMs: 2, over1Ms: 1, released: 1 });
    expect(snap.seconds).toBeCloseTo(0.0025);
    expect(snap.loopDelayUs.samples).toBe(0); // not started: no delay monitor
    stats.reset();
    expect(stats.snapshot().trim.count).toBe(0);
  });
});

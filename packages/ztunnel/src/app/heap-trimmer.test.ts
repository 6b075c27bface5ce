import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadAddon } from '../capture/netns-sockets.js';
import { decideTrim, HeapTrimmer, QUIET_UTILIZATION } from './heap-trimmer.js';

describe('HeapTrimmer', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('trims once per interval while started, and never after stop()', () => {
    vi.useFakeTimers();
    const trim = vi.fn(() => true);
    const trimmer = new HeapTrimmer({ trim, intervalMs: 1_000 });
    trimmer.start();
    trimmer.start(); // a second start does not add a second timer
    vi.advanceTimersByTime(3_500);
    expect(trim).toHaveBeenCalledTimes(3);
    expect(trimmer.released).toBe(3);
    trimmer.stop();
    vi.advanceTimersByTime(5_000);
    expect(trim).toHaveBeenCalledTimes(3);
  });

  it('counts only the trims that released memory', () => {
    vi.useFakeTimers();
    let calls = 0;
    const trimmer = new HeapTrimmer({ trim: () => ++calls % 2 === 0, intervalMs: 10 });
    trimmer.start();
    vi.advanceTimersByTime(40);
    trimmer.stop();
    expect(calls).toBe(4);
    expect(trimmer.released).toBe(2);
  });

  it('is built over the addon when it has mallocTrim, and absent for an addon without it', () => {
    expect(HeapTrimmer.fromAddon({})).toBeUndefined();
    expect(HeapTrimmer.fromAddon(undefined)).toBeUndefined();
    const addon = loadAddon() as { mallocTrim: () => boolean };
    expect(typeof addon.mallocTrim()).toBe('boolean');
    expect(HeapTrimmer.fromAddon(addon)).toBeInstanceOf(HeapTrimmer);
  });
});

describe('decideTrim', () => {
  const base = { intervalMs: 5_000, maxDeferMs: 60_000 };

  it('waits until the interval has passed, busy or quiet', () => {
    expect(decideTrim({ ...base, sinceTrimMs: 4_999, utilization: 0 })).toBe('wait');
    expect(decideTrim({ ...base, sinceTrimMs: 4_999, utilization: 0.9 })).toBe('wait');
  });

  it('trims after the interval when the loop was quiet', () => {
    expect(decideTrim({ ...base, sinceTrimMs: 5_000, utilization: 0 })).toBe('trim');
    expect(decideTrim({ ...base, sinceTrimMs: 5_000, utilization: QUIET_UTILIZATION - 0.001 })).toBe('trim');
  });

  it('defers while the loop carries traffic, and trims anyway once the deferral bound is reached', () => {
    expect(decideTrim({ ...base, sinceTrimMs: 5_000, utilization: QUIET_UTILIZATION })).toBe('defer');
    expect(decideTrim({ ...base, sinceTrimMs: 64_999, utilization: 0.5 })).toBe('defer');
    expect(decideTrim({ ...base, sinceTrimMs: 65_000, utilization: 0.5 })).toBe('trim');
  });
});

describe('HeapTrimmer with a busy loop', () => {
  it('does not trim while traffic flows, then trims at the first quiet look', () => {
    let now = 0;
    let busy = 0.3;
    const trim = vi.fn(() => true);
    const trimmer = new HeapTrimmer({
      trim,
      intervalMs: 5_000,
      maxDeferMs: 60_000,
      now: () => now,
      utilization: () => busy,
    });
    const decisions: string[] = [];
    for (let s = 1; s <= 10; s++) {
      now = s * 1_000;
      decisions.push(trimmer.tick());
    }
    expect(trim).not.toHaveBeenCalled();
    expect(decisions).toEqual(['wait', 'wait', 'wait', 'wait', ...Array(6).fill('defer')]);
    expect(trimmer.deferred).toBe(6);
    busy = 0.01;
    now = 11_000;
    expect(trimmer.tick()).toBe('trim');
    expect(trim).toHaveBeenCalledTimes(1);
    // The interval starts again from that trim.
    now = 15_000;
    expect(trimmer.tick()).toBe('wait');
    now = 16_000;
    expect(trimmer.tick()).toBe('trim');
  });

  it('trims a never-quiet loop once per interval plus the deferral bound', () => {
    let now = 0;
    const trim = vi.fn(() => false);
    const trimmer = new HeapTrimmer({
      trim,
      intervalMs: 5_000,
      maxDeferMs: 20_000,
      now: () => now,
      utilization: () => 1,
    });
    for (let s = 1; s <= 60; s++) {
      now = s * 1_000;
      trimmer.tick();
    }
    expect(trim).toHaveBeenCalledTimes(2); // at 25 s and 50 s
    expect(trimmer.released).toBe(0);
  });
});

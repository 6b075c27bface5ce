import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadAddon } from '../capture/netns-sockets.js';
import { HeapTrimmer } from './heap-trimmer.js';

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

import { describe, expect, it } from 'vitest';
import { runToEnd, TimeSlicer } from './time-slicer.js';

function* steps(n: number, log: string[]): Generator<void, number> {
  for (let i = 0; i < n; i++) {
    log.push(`step ${i}`);
    yield;
  }
  return n;
}

describe('TimeSlicer', () => {
  it('runs every step and returns the result, pausing only once a slice is used up', async () => {
    const log: string[] = [];
    const slicer = new TimeSlicer(Number.POSITIVE_INFINITY);
    expect(await slicer.run(steps(5, log))).toBe(5);
    expect(log).toHaveLength(5);
    expect(slicer.pauses).toBe(0);
  });

  it('with a used-up budget, lets timers run between steps', async () => {
    const log: string[] = [];
    const slicer = new TimeSlicer(0);
    setImmediate(() => log.push('timer'));
    await slicer.run(steps(4, log));
    expect(log.indexOf('timer')).toBeGreaterThan(0);
    expect(log.indexOf('timer')).toBeLessThan(log.length - 1);
    expect(slicer.pauses).toBeGreaterThan(0);
  });

  it('runToEnd drives the same steps synchronously', () => {
    const log: string[] = [];
    expect(runToEnd(steps(4, log))).toBe(4);
    expect(log).toEqual(['step 0', 'step 1', 'step 2', 'step 3']);
  });
});

import { describe, expect, it } from 'vitest';
import { CERT_BACKOFF } from '../backoff.js';
import { planRotation } from './rotation-schedule.js';

const T = 1_700_000_000_000;
const plan = (lifeLeftMs: number, early = 0, random = () => 1) =>
  planRotation({ receivedAt: T, notAfter: T + lifeLeftMs, early, backoff: CERT_BACKOFF, random });

describe('planRotation', () => {
  it('rotates at half of the lifetime left on arrival, whatever notBefore says', () => {
    expect(plan(24 * 3600_000)).toEqual({ delayMs: 12 * 3600_000, early: 0 });
    expect(plan(20_000)).toEqual({ delayMs: 10_000, early: 0 });
    expect(plan(80_000)).toEqual({ delayMs: 40_000, early: 0 });
  });

  it('a normal rotation after paced ones resets the pacing', () => {
    expect(plan(20_000, 5)).toEqual({ delayMs: 10_000, early: 0 });
    expect(plan(20_000, 30)).toEqual({ delayMs: 10_000, early: 0 });
  });

  it('paces lifetimes shorter than the backoff step by the backoff, doubling to 150 s', () => {
    expect(plan(400)).toEqual({ delayMs: 500, early: 1 });
    expect(plan(400, 1)).toEqual({ delayMs: 1_000, early: 2 });
    expect(plan(999, 2)).toEqual({ delayMs: 2_000, early: 3 });
    expect(plan(1_000, 2)).toEqual({ delayMs: 500, early: 0 });
    expect(plan(400, 30)).toEqual({ delayMs: 150_000, early: 31 });
    // Already expired on arrival: still paced, never zero.
    expect(plan(-5_000)).toEqual({ delayMs: 500, early: 1 });
  });

  it('jitters a paced rotation into the upper half of the step', () => {
    expect(plan(400, 3, () => 0).delayMs).toBe(2_000);
    for (let i = 0; i < 50; i++) {
      const d = planRotation({ receivedAt: T, notAfter: T + 10, early: 4, backoff: CERT_BACKOFF }).delayMs;
      expect(d).toBeGreaterThanOrEqual(4_000);
      expect(d).toBeLessThanOrEqual(8_000);
    }
  });

  it('never plans a delay below the first backoff step, whatever the lifetime', () => {
    for (const left of [-1e9, -1, 0, 1, 10, 499, 500, 999, 1_000, 1_001, 60_000]) {
      for (let early = 0; early < 12; early++) {
        expect(plan(left, early, () => 0).delayMs).toBeGreaterThanOrEqual(CERT_BACKOFF.initialMs / 2);
      }
    }
  });
});

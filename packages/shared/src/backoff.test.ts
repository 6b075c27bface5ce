import { describe, expect, it } from 'vitest';
import { backoffDelay, CERT_BACKOFF } from './backoff.js';

describe('backoffDelay', () => {
  it('doubles from 0.5 s and caps at 150 s', () => {
    const top = (n: number) => backoffDelay(CERT_BACKOFF, n, () => 1);
    expect([0, 1, 2, 3].map(top)).toEqual([500, 1000, 2000, 4000]);
    expect(top(8)).toBe(128_000);
    expect(top(9)).toBe(150_000);
    expect(top(1000)).toBe(150_000);
  });

  it('jitters into the upper half of the ceiling', () => {
    expect(backoffDelay(CERT_BACKOFF, 0, () => 0)).toBe(250);
    for (let n = 0; n < 20; n++) {
      const d = backoffDelay(CERT_BACKOFF, n);
      const ceiling = Math.min(150_000, 500 * 2 ** n);
      expect(d).toBeGreaterThanOrEqual(ceiling / 2);
      expect(d).toBeLessThanOrEqual(ceiling);
    }
  });
});

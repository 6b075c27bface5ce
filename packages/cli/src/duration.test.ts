import { describe, expect, it } from 'vitest';
import { parseDuration } from './duration.js';

describe('--waypoint-timeout durations, as Go writes them', () => {
  it('reads units and sums compound forms', () => {
    expect(parseDuration('--t', '90s')).toBe(90_000);
    expect(parseDuration('--t', '1m30s')).toBe(90_000);
    expect(parseDuration('--t', '1500ms')).toBe(1500);
    expect(parseDuration('--t', '1.5h')).toBe(5_400_000);
  });

  it('refuses a number without a unit, an unknown unit, or trailing text', () => {
    for (const bad of ['90', '', '5d', '10s!', 's', '-1s'])
      expect(() => parseDuration('--waypoint-timeout', bad)).toThrow(
        `invalid --waypoint-timeout ${JSON.stringify(bad)}`,
      );
  });
});

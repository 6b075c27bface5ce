import { describe, expect, it } from 'vitest';
import type { OutlierDetection } from '../config/waypoint-config.js';
import { OutlierDetector } from './outlier-detector.js';

const CONFIG: OutlierDetection = {
  consecutive5xx: 3,
  intervalMs: 1000,
  baseEjectionTimeMs: 10_000,
  maxEjectionPercent: 100,
};

function setup(config: Partial<OutlierDetection> = {}, endpoints = ['a', 'b', 'c', 'd']) {
  const clock = { now: 0 };
  const detector = new OutlierDetector({ ...CONFIG, ...config }, () => clock.now);
  detector.setEndpoints(endpoints);
  const fail = (key: string, times = 1) => {
    for (let i = 0; i < times; i++) detector.recordResult(key, { status: 503 });
  };
  return { clock, detector, fail };
}

describe('OutlierDetector', () => {
  it('ejects an endpoint after consecutive 5xx', () => {
    const { detector, fail } = setup();
    fail('a', 2);
    expect(detector.isEjected('a')).toBe(false);
    fail('a');
    expect(detector.isEjected('a')).toBe(true);
    expect(detector.ejected()).toEqual(['a']);
  });

  it('counts local failures as 5xx, and a success ends the streak', () => {
    const { detector, fail } = setup();
    fail('a', 2);
    detector.recordResult('a', { status: 404 });
    fail('a', 2);
    expect(detector.isEjected('a')).toBe(false);
    detector.recordResult('a', { localFailure: true });
    expect(detector.isEjected('a')).toBe(true);
  });

  it('returns an endpoint only in the interval sweep, after base x times ejected', () => {
    const { clock, detector, fail } = setup();
    fail('a', 3);
    clock.now = 10_000;
    expect(detector.isEjected('a')).toBe(true);
    detector.runInterval();
    expect(detector.isEjected('a')).toBe(false);

    // Ejected again right away: twice the base this time.
    fail('a', 3);
    clock.now = 25_000;
    detector.runInterval();
    expect(detector.isEjected('a')).toBe(true);
    clock.now = 30_000;
    detector.runInterval();
    expect(detector.isEjected('a')).toBe(false);
  });

  it('lowers the multiplier for each healthy interval after coming back', () => {
    const { clock, detector, fail } = setup();
    fail('a', 3);
    clock.now = 10_000;
    detector.runInterval();
    fail('a', 3); // multiplier 2
    clock.now = 30_000;
    detector.runInterval(); // back at 30 s
    for (const t of [31_000, 32_000]) {
      clock.now = t;
      detector.runInterval(); // two healthy intervals: multiplier 2 -> 0
    }
    fail('a', 3); // multiplier 1 again
    clock.now = 42_000;
    detector.runInterval();
    expect(detector.isEjected('a')).toBe(false);
  });

  it('caps the ejection time at maxEjectionTime', () => {
    const { clock, detector, fail } = setup({ maxEjectionTimeMs: 15_000 });
    let t = 0;
    for (let i = 0; i < 5; i++) {
      fail('a', 3);
      t += 15_000;
      clock.now = t;
      detector.runInterval();
      expect(detector.isEjected('a')).toBe(false);
    }
  });

  it('never ejects more than maxEjectionPercent of the endpoints', () => {
    const { detector, fail } = setup({ maxEjectionPercent: 50 });
    for (const k of ['a', 'b', 'c']) fail(k, 3);
    expect(detector.ejected()).toEqual(['a', 'b']);
  });

  it('ejects none when one endpoint is already over the percentage, as Envoy', () => {
    const { detector, fail } = setup({ maxEjectionPercent: 10 });
    fail('a', 3);
    expect(detector.ejected()).toEqual([]);
    const ten = setup(
      { maxEjectionPercent: 10 },
      Array.from({ length: 10 }, (_, i) => `e${i}`),
    );
    ten.fail('e0', 3);
    ten.fail('e1', 3);
    expect(ten.detector.ejected()).toEqual(['e0']);
  });

  it('ejects one regardless of the percentage with alwaysEjectOneHost', () => {
    const { detector, fail } = setup({ maxEjectionPercent: 10, alwaysEjectOneHost: true });
    fail('a', 3);
    fail('b', 3);
    expect(detector.ejected()).toEqual(['a']);
  });

  it('starts the streak over after a refused ejection', () => {
    const { clock, detector, fail } = setup({ maxEjectionPercent: 25 });
    fail('a', 3);
    fail('b', 3); // refused: 50% > 25%
    clock.now = 10_000;
    detector.runInterval(); // a returns
    fail('b', 2);
    expect(detector.isEjected('b')).toBe(false);
    fail('b');
    expect(detector.isEjected('b')).toBe(true);
  });

  it('never ejects with consecutive5xx 0', () => {
    const { detector, fail } = setup({ consecutive5xx: 0 });
    fail('a', 100);
    expect(detector.ejected()).toEqual([]);
  });

  it('follows membership: departed endpoints are forgotten, unknown results ignored', () => {
    const { detector, fail } = setup({ maxEjectionPercent: 50 });
    fail('a', 3);
    fail('b', 3);
    detector.setEndpoints(['b', 'c', 'd', 'e']);
    expect(detector.size).toBe(4);
    expect(detector.ejected()).toEqual(['b']);
    fail('c', 3);
    expect(detector.ejected()).toEqual(['b', 'c']);
    fail('zzz', 10);
    expect(detector.isEjected('zzz')).toBe(false);
  });

  it('polls: sweeps once an interval has passed', () => {
    const { clock, detector, fail } = setup();
    fail('a', 3);
    clock.now = 10_000;
    detector.poll();
    expect(detector.isEjected('a')).toBe(false);
    fail('a', 3); // ejected at 10 s for 20 s
    clock.now = 30_500;
    detector.poll();
    expect(detector.isEjected('a')).toBe(false);
    fail('a', 3);
    clock.now = 30_900; // less than an interval since the last sweep
    detector.poll();
    expect(detector.isEjected('a')).toBe(true);
  });
});

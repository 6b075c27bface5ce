import { describe, expect, it } from 'vitest';
import { pickWeightedCluster } from './weighted-cluster.js';

const split = [
  { cluster: 'v1', weight: 90 },
  { cluster: 'v2', weight: 10 },
];

describe('pickWeightedCluster', () => {
  it('lays weights out as bands in order', () => {
    expect(pickWeightedCluster(split, 0)).toBe('v1');
    expect(pickWeightedCluster(split, 0.8999)).toBe('v1');
    expect(pickWeightedCluster(split, 0.9)).toBe('v2');
    expect(pickWeightedCluster(split, 0.9999999)).toBe('v2');
  });

  it('never picks a zero-weight cluster', () => {
    const c = [
      { cluster: 'a', weight: 0 },
      { cluster: 'b', weight: 1 },
      { cluster: 'c', weight: 0 },
    ];
    for (const r of [0, 0.3, 0.99]) expect(pickWeightedCluster(c, r)).toBe('b');
  });

  it('returns the single cluster of a plain route', () => {
    expect(pickWeightedCluster([{ cluster: 'only', weight: 1 }], 0.5)).toBe('only');
  });

  it('returns undefined when no weight is positive', () => {
    expect(pickWeightedCluster([], 0.5)).toBeUndefined();
    expect(pickWeightedCluster([{ cluster: 'a', weight: 0 }], 0.5)).toBeUndefined();
  });

  it('distributes by weight over uniform randoms', () => {
    const counts = { v1: 0, v2: 0 };
    for (let i = 0; i < 1000; i++) counts[pickWeightedCluster(split, i / 1000) as 'v1' | 'v2']++;
    expect(counts).toEqual({ v1: 900, v2: 100 });
  });

  it('keeps an out-of-range random inside the last band', () => {
    expect(pickWeightedCluster(split, 1)).toBe('v2');
  });
});

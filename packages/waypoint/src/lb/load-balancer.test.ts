import { SpiffeId } from '@ambient/shared';
import { describe, expect, it } from 'vitest';
import type { UpstreamEndpoint } from '../config/waypoint-config.js';
import { createLoadBalancer } from './create-load-balancer.js';
import { LeastRequestBalancer } from './least-request.js';
import { endpointKey, usableEndpoints } from './load-balancer.js';
import { RandomBalancer } from './random-balancer.js';
import { RingHashBalancer } from './ring-hash.js';
import { RoundRobinBalancer } from './round-robin.js';

function ep(n: number): UpstreamEndpoint {
  return {
    address: `10.1.0.${n}`,
    port: 8080,
    workload: `pod-${n}`,
    namespace: 'ns',
    serviceAccount: 'sa',
    identity: SpiffeId.of('cluster.local', 'ns', 'sa'),
    tunnel: 'hbone',
  };
}

const four = [ep(1), ep(2), ep(3), ep(4)];
const names = (list: Array<UpstreamEndpoint | undefined>) => list.map((e) => e?.workload);

function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length] ?? 0;
}

describe('endpointKey', () => {
  it('is address:port, bracketing IPv6', () => {
    expect(endpointKey(ep(1))).toBe('10.1.0.1:8080');
    expect(endpointKey({ address: 'fd00::1', port: 80 })).toBe('[fd00::1]:80');
  });
});

describe('usableEndpoints', () => {
  const ejected = (keys: string[]) => ({ isEjected: (e: UpstreamEndpoint) => keys.includes(e.workload) });

  it('skips ejected endpoints', () => {
    expect(names([...usableEndpoints(four, ejected(['pod-2']), 0)])).toEqual(['pod-1', 'pod-3', 'pod-4']);
    expect(usableEndpoints(four, undefined, 0)).toBe(four);
    expect(usableEndpoints(four, ejected(['pod-1', 'pod-2', 'pod-3', 'pod-4']), 0)).toEqual([]);
  });

  it('uses every endpoint in panic, below the threshold share of usable ones', () => {
    expect(usableEndpoints(four, ejected(['pod-1', 'pod-2']), 50)).toHaveLength(2);
    expect(usableEndpoints(four, ejected(['pod-1', 'pod-2', 'pod-3']), 50)).toBe(four);
  });
});

describe('RoundRobinBalancer', () => {
  it('takes endpoints in turn', () => {
    const lb = new RoundRobinBalancer();
    expect(names([1, 2, 3, 4, 5].map(() => lb.pick(four)))).toEqual([
      'pod-1',
      'pod-2',
      'pod-3',
      'pod-4',
      'pod-1',
    ]);
  });

  it('skips ejected endpoints', () => {
    const lb = new RoundRobinBalancer();
    const ctx = { isEjected: (e: UpstreamEndpoint) => e.workload === 'pod-2' };
    expect(names([1, 2, 3, 4].map(() => lb.pick(four, ctx)))).toEqual(['pod-1', 'pod-3', 'pod-4', 'pod-1']);
  });

  it('returns undefined without usable endpoints', () => {
    expect(new RoundRobinBalancer().pick([])).toBeUndefined();
    expect(new RoundRobinBalancer().pick(four, { isEjected: () => true })).toBeUndefined();
  });

  it('ignores ejections in panic when configured', () => {
    expect(
      new RoundRobinBalancer({ panicThresholdPercent: 50 }).pick(four, { isEjected: () => true })?.workload,
    ).toBe('pod-1');
  });
});

describe('RandomBalancer', () => {
  it('picks by the random value among usable endpoints', () => {
    const lb = new RandomBalancer({ random: sequence(0, 0.5, 0.99) });
    expect(names([lb.pick(four), lb.pick(four), lb.pick(four)])).toEqual(['pod-1', 'pod-3', 'pod-4']);
    const lb2 = new RandomBalancer({ random: () => 0.99 });
    expect(lb2.pick(four, { isEjected: (e) => e.workload === 'pod-4' })?.workload).toBe('pod-3');
    expect(new RandomBalancer({ random: () => 1 }).pick(four)?.workload).toBe('pod-4');
    expect(new RandomBalancer().pick([])).toBeUndefined();
  });
});

describe('LeastRequestBalancer', () => {
  const active: Record<string, number> = { 'pod-1': 5, 'pod-2': 0, 'pod-3': 2, 'pod-4': 2 };
  const ctx = { activeRequests: (e: UpstreamEndpoint) => active[e.workload] ?? 0 };

  it('takes the less loaded of two random choices', () => {
    expect(new LeastRequestBalancer({ random: sequence(0, 0.3) }).pick(four, ctx)?.workload).toBe('pod-2');
    expect(new LeastRequestBalancer({ random: sequence(0.3, 0) }).pick(four, ctx)?.workload).toBe('pod-2');
    expect(new LeastRequestBalancer({ random: sequence(0, 0.6) }).pick(four, ctx)?.workload).toBe('pod-3');
  });

  it('keeps the first choice on a tie', () => {
    expect(new LeastRequestBalancer({ random: sequence(0.6, 0.9) }).pick(four, ctx)?.workload).toBe('pod-3');
    expect(new LeastRequestBalancer({ random: sequence(0.9, 0.6) }).pick(four, ctx)?.workload).toBe('pod-4');
  });

  it('treats endpoints as idle without counts, and skips ejected ones', () => {
    expect(new LeastRequestBalancer({ random: sequence(0.6, 0) }).pick(four)?.workload).toBe('pod-3');
    const lb = new LeastRequestBalancer({ random: sequence(0, 0) });
    expect(lb.pick(four, { ...ctx, isEjected: (e) => e.workload === 'pod-1' })?.workload).toBe('pod-2');
    expect(lb.pick([])).toBeUndefined();
  });

  it('spreads load towards idle endpoints', () => {
    const lb = new LeastRequestBalancer();
    const counts = new Map<string, number>([
      ['pod-1', 0],
      ['pod-2', 0],
      ['pod-3', 0],
      ['pod-4', 0],
    ]);
    for (let i = 0; i < 400; i++) {
      const e = lb.pick(four, { activeRequests: (x) => counts.get(x.workload) ?? 0 }) as UpstreamEndpoint;
      counts.set(e.workload, (counts.get(e.workload) ?? 0) + 1);
    }
    for (const n of counts.values()) expect(n).toBeGreaterThan(70);
  });
});

describe('RingHashBalancer', () => {
  const many = Array.from({ length: 10 }, (_, i) => ep(i + 1));

  it('sends the same key to the same endpoint', () => {
    const lb = new RingHashBalancer();
    for (const key of ['alice', 'bob', '10.0.0.7']) {
      const first = lb.pick(many, { hashKey: key });
      for (let i = 0; i < 5; i++) expect(lb.pick(many, { hashKey: key })).toBe(first);
    }
  });

  it('does not depend on endpoint order or on object identity', () => {
    const a = new RingHashBalancer();
    const b = new RingHashBalancer();
    const reversed = [...many].reverse();
    const copies = many.map((e) => ({ ...e }));
    for (let i = 0; i < 50; i++) {
      const key = `user-${i}`;
      const picked = a.pick(many, { hashKey: key })?.workload;
      expect(b.pick(reversed, { hashKey: key })?.workload).toBe(picked);
      expect(a.pick(copies, { hashKey: key })?.workload).toBe(picked);
    }
    expect(a.pick(copies, { hashKey: 'x' })).toBe(
      copies.find((e) => e.workload === a.pick(copies, { hashKey: 'x' })?.workload),
    );
  });

  it('spreads keys over every endpoint', () => {
    const lb = new RingHashBalancer();
    const counts = new Map<string, number>();
    for (let i = 0; i < 5000; i++) {
      const w = lb.pick(many, { hashKey: `key-${i}` })?.workload as string;
      counts.set(w, (counts.get(w) ?? 0) + 1);
    }
    expect(counts.size).toBe(10);
    for (const n of counts.values()) expect(n).toBeGreaterThan(250);
  });

  it('moves only the keys of an ejected endpoint, and back when it returns', () => {
    const lb = new RingHashBalancer();
    const keys = Array.from({ length: 300 }, (_, i) => `k${i}`);
    const before = keys.map((k) => lb.pick(many, { hashKey: k })?.workload);
    const ctx = (k: string) => ({ hashKey: k, isEjected: (e: UpstreamEndpoint) => e.workload === 'pod-3' });
    const during = keys.map((k) => lb.pick(many, ctx(k))?.workload);
    keys.forEach((_, i) => {
      if (before[i] === 'pod-3') expect(during[i]).not.toBe('pod-3');
      else expect(during[i]).toBe(before[i]);
    });
    expect(keys.map((k) => lb.pick(many, { hashKey: k })?.workload)).toEqual(before);
  });

  it('moves few keys when membership changes', () => {
    const lb = new RingHashBalancer();
    const keys = Array.from({ length: 1000 }, (_, i) => `k${i}`);
    const before = keys.map((k) => lb.pick(many, { hashKey: k })?.workload);
    const after = keys.map((k) => lb.pick([...many, ep(11)], { hashKey: k })?.workload);
    const moved = before.filter((w, i) => w !== after[i]).length;
    expect(moved).toBeGreaterThan(0);
    expect(moved).toBeLessThan(250);
  });

  it('picks at random without a key, and nothing without endpoints', () => {
    const lb = new RingHashBalancer({ random: () => 0.5 });
    expect(lb.pick(many)).toBeDefined();
    expect(lb.pick([])).toBeUndefined();
    expect(lb.pick(many, { isEjected: () => true })).toBeUndefined();
  });

  it('ignores duplicate endpoints', () => {
    const lb = new RingHashBalancer();
    expect(lb.pick([ep(1), ep(1)], { hashKey: 'a' })?.workload).toBe('pod-1');
  });

  it('uses every endpoint in panic', () => {
    const lb = new RingHashBalancer({ panicThresholdPercent: 50 });
    expect(lb.pick(many, { hashKey: 'a', isEjected: () => true })).toBeDefined();
  });
});

describe('createLoadBalancer', () => {
  it('creates the balancer of each policy', () => {
    expect(createLoadBalancer('ROUND_ROBIN')).toBeInstanceOf(RoundRobinBalancer);
    expect(createLoadBalancer('LEAST_REQUEST')).toBeInstanceOf(LeastRequestBalancer);
    expect(createLoadBalancer('RANDOM')).toBeInstanceOf(RandomBalancer);
    expect(createLoadBalancer('RING_HASH')).toBeInstanceOf(RingHashBalancer);
    expect(createLoadBalancer('RING_HASH').policy).toBe('RING_HASH');
  });
});

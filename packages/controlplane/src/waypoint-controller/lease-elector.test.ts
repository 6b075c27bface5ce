import { describe, expect, it } from 'vitest';
import { decideLease, type Lease, type LeaseApi, LeaseElector, microTime } from './lease-elector.js';

const lease = (holder: string | undefined, renewTime = 't0', rv = '1', seconds = 10): Lease => ({
  metadata: { name: 'l', namespace: 'ns', resourceVersion: rv },
  spec: { ...(holder !== undefined && { holderIdentity: holder }), renewTime, leaseDurationSeconds: seconds },
});

describe('decideLease', () => {
  it('creates a missing Lease, renews its own, takes over a released one', () => {
    expect(decideLease(undefined, 'a', 0, 0, 10_000).action).toBe('create');
    expect(decideLease(lease('a'), 'a', 0, 0, 10_000).action).toBe('renew');
    expect(decideLease(lease(''), 'a', 0, 0, 10_000).action).toBe('takeover');
    expect(decideLease(lease(undefined), 'a', 0, 0, 10_000).action).toBe('takeover');
  });

  it('waits while another holder’s record is younger than the lease duration on its own clock', () => {
    expect(decideLease(lease('b'), 'a', 1000, 10_999, 10_000)).toEqual({ action: 'wait', holder: 'b' });
    expect(decideLease(lease('b'), 'a', 1000, 11_000, 10_000).action).toBe('takeover');
  });

  it('honours a longer duration the holder wrote', () => {
    expect(decideLease(lease('b', 't0', '1', 60), 'a', 0, 30_000, 10_000).action).toBe('wait');
    expect(decideLease(lease('b', 't0', '1', 60), 'a', 0, 60_000, 10_000).action).toBe('takeover');
  });
});

/** A Lease store with resourceVersion checks, as the API server has. */
class FakeLeases implements LeaseApi {
  stored?: Lease;
  rv = 0;
  failing = false;
  writes: string[] = [];
  async get() {
    if (this.failing) throw new Error('unreachable');
    return this.stored && structuredClone(this.stored);
  }
  async create(l: Lease) {
    if (this.failing) throw new Error('unreachable');
    if (this.stored) throw new Error('409 exists');
    return this.put(l);
  }
  async update(l: Lease) {
    if (this.failing) throw new Error('unreachable');
    if (l.metadata.resourceVersion !== this.stored?.metadata.resourceVersion) throw new Error('409 conflict');
    return this.put(l);
  }
  private put(l: Lease) {
    this.rv += 1;
    this.writes.push(l.spec.holderIdentity ?? '');
    this.stored = { metadata: { ...l.metadata, resourceVersion: String(this.rv) }, spec: { ...l.spec } };
    return structuredClone(this.stored);
  }
}

const timings = { leaseDurationMs: 10_000, renewDeadlineMs: 5_000, retryPeriodMs: 2_000 };

function pair() {
  const api = new FakeLeases();
  let now = 1_000_000;
  const clock = { now: () => now };
  const events: string[] = [];
  const mk = (identity: string) =>
    new LeaseElector({
      name: 'l',
      namespace: 'ns',
      identity,
      api,
      timings,
      clock,
      onChange: (l) => events.push(`${identity}:${l}`),
    });
  return { api, a: mk('a'), b: mk('b'), events, advance: (ms: number) => (now += ms) };
}

describe('LeaseElector', () => {
  it('one of two candidates leads; the other waits while the leader renews', async () => {
    const { api, a, b, advance } = pair();
    expect(await a.tick()).toBe(true);
    expect(await b.tick()).toBe(false);
    for (let i = 0; i < 10; i++) {
      advance(2_000);
      expect(await a.tick()).toBe(true);
      expect(await b.tick()).toBe(false);
    }
    expect(api.stored?.spec.holderIdentity).toBe('a');
    expect(new Set(api.writes)).toEqual(new Set(['a']));
  });

  it('a leader that stops renewing is replaced only after a full lease duration seen by the other', async () => {
    const { api, a, b, advance } = pair();
    await a.tick();
    await b.tick(); // b observes a's record now
    advance(9_999);
    expect(await b.tick()).toBe(false);
    advance(1);
    expect(await b.tick()).toBe(true);
    expect(api.stored?.spec.holderIdentity).toBe('b');
    expect(api.stored?.spec.leaseTransitions).toBe(1);
    // a comes back: it sees b's fresh record and does not lead.
    expect(await a.tick()).toBe(false);
  });

  it('a leader that cannot renew gives up at the renew deadline, before the lease duration', async () => {
    const { api, a, events, advance } = pair();
    await a.tick();
    api.failing = true;
    advance(2_000);
    expect(await a.tick()).toBe(true);
    advance(2_999);
    expect(await a.tick()).toBe(true);
    advance(1);
    expect(await a.tick()).toBe(false);
    expect(events).toEqual(['a:true', 'a:false']);
  });

  it('a round whose request hangs ends at the renew deadline, and a leader stops leading then', async () => {
    const api: LeaseApi = {
      get: () => new Promise(() => undefined),
      create: () => new Promise(() => undefined),
      update: () => new Promise(() => undefined),
    };
    const fake = new FakeLeases();
    let now = 0;
    const elector = new LeaseElector({
      name: 'l',
      namespace: 'ns',
      identity: 'a',
      api: { get: () => fake.get(), create: (l) => fake.create(l), update: (l) => fake.update(l) },
      timings: { leaseDurationMs: 200, renewDeadlineMs: 50, retryPeriodMs: 10 },
      clock: { now: () => now },
    });
    expect(await elector.tick()).toBe(true);
    // Now every call hangs; the round still returns, and once the deadline has passed it gives up.
    Object.assign(fake, { get: api.get, update: api.update });
    now = 50;
    expect(await elector.tick()).toBe(false);
  });

  it('two candidates racing for a free Lease: the resourceVersion lets only one win', async () => {
    const { api, a, b } = pair();
    await a.tick();
    await a.close(); // released: holder empty
    expect(api.stored?.spec.holderIdentity).toBe('');
    const results = await Promise.all([a.tick(), b.tick()]);
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('close() releases the Lease so the other takes over at once; destroy() leaves it held', async () => {
    const { api, a, b } = pair();
    await a.tick();
    await b.tick();
    await a.close();
    expect(await b.tick()).toBe(true);
    b.destroy();
    expect(api.stored?.spec.holderIdentity).toBe('b');
    expect(b.isLeader).toBe(false);
  });

  it('writes MicroTime with six fractional digits', () => {
    expect(microTime(Date.UTC(2026, 0, 2, 3, 4, 5, 678))).toBe('2026-01-02T03:04:05.678000Z');
  });
});

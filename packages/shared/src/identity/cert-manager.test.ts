import { describe, expect, it } from 'vitest';
import { isMeshError } from '../errors.js';
import { eventually } from '../testing/mesh-fixture.js';
import type { CaClient, CertificateRequest } from './ca-client.js';
import { type CertClock, CertManager } from './cert-manager.js';
import { LocalCa } from './local-ca.js';
import { SpiffeId } from './spiffe-id.js';
import { parseCsr } from './x509.js';

const TD = 'cluster.local';
const A = SpiffeId.of(TD, 'demo', 'a');
const B = SpiffeId.of(TD, 'demo', 'b');

/** A CA that counts calls (started, finished, per identity) and fails while `failing` is set. */
function flakyCa(ca: CaClient) {
  const state = { calls: 0, finished: 0, failing: false, identities: [] as string[] };
  const client: CaClient = {
    async createCertificate(req: CertificateRequest) {
      state.calls += 1;
      state.identities.push(String(req.identity));
      try {
        if (state.failing) throw new Error('CA unreachable');
        return await ca.createCertificate(req);
      } finally {
        state.finished += 1;
      }
    },
  };
  return { state, client };
}

/**
 * Time that moves only when told. Timers fire in order; `advance` waits for the CA call each
 * fired rotation makes, so a schedule of several seconds runs in a few milliseconds and nothing
 * depends on how busy the machine is.
 */
class ManualClock implements CertClock {
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  private seq = 0;

  constructor(public t: number) {}

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    this.seq += 1;
    this.timers.set(this.seq, { at: this.t + ms, fn });
    return this.seq;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  get scheduled(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, firing due timers in order and letting each one's CA call finish. */
  async advance(ms: number, ca: { finished: number }): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      const due = [...this.timers].filter(([, t]) => t.at <= end).sort((x, y) => x[1].at - y[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.t = Math.max(this.t, due[1].at);
      const before = ca.finished;
      due[1].fn();
      await eventually(() => ca.finished > before, 2);
      // Let the manager handle the answer (and schedule the next rotation) before going on.
      await new Promise((r) => setImmediate(r));
    }
    // A CA stand-in may have moved time itself.
    this.t = Math.max(this.t, end);
  }
}

/** Time from now until the next rotation the dump shows (it rounds down to the millisecond). */
function untilRotation(certs: CertManager, clock: ManualClock): number {
  return Date.parse(certs.dump()[0]?.nextRotation as string) - clock.t + 1;
}

/** A clock at a whole second, so that X.509's one-second resolution does not blur lifetimes. */
const wholeSecond = () => new ManualClock(Math.ceil(Date.now() / 1000) * 1000);

describe('CertManager', () => {
  it('issues one certificate per identity on demand and caches it', async () => {
    const { state, client } = flakyCa(await LocalCa.create({ trustDomain: TD }));
    const certs = new CertManager({ ca: client });
    const [a1, a2] = await Promise.all([certs.fetch(A), certs.fetch(A)]);
    const a3 = await certs.fetch(A);
    expect(a1).toBe(a2);
    expect(a1).toBe(a3);
    expect(state.calls).toBe(1);
    const b = await certs.fetch(B);
    expect(b.identity.equals(B)).toBe(true);
    expect(b.serialNumber).not.toBe(a1.serialNumber);
    expect(state.calls).toBe(2);
    expect(certs.current(A)).toBe(a1);
    certs.close();
  });

  it('uses the default 24 h TTL and dumps identity, expiry, receipt and next rotation as JSON', async () => {
    const clock = new ManualClock(Date.now());
    const certs = new CertManager({
      ca: await LocalCa.create({ trustDomain: TD, now: () => clock.t }),
      clock,
    });
    const cert = await certs.fetch(A);
    const lifetime = cert.notAfter.getTime() - cert.notBefore.getTime();
    expect(lifetime).toBeGreaterThanOrEqual(24 * 3600_000);
    const dump = JSON.parse(JSON.stringify(certs.dump()));
    expect(dump).toEqual([
      {
        identity: A.toString(),
        state: 'available',
        serialNumber: cert.serialNumber,
        notBefore: cert.notBefore.toISOString(),
        notAfter: cert.notAfter.toISOString(),
        receivedAt: new Date(clock.t).toISOString(),
        nextRotation: new Date(clock.t + (cert.notAfter.getTime() - clock.t) / 2).toISOString(),
        failures: 0,
      },
    ]);
    certs.close();
  });

  it('rotates a 20 s certificate 10 s after it arrived, not at once from its backdated notBefore', async () => {
    const clock = new ManualClock(Date.now());
    const { state, client } = flakyCa(await LocalCa.create({ trustDomain: TD, now: () => clock.t }));
    const certs = new CertManager({ ca: client, ttlSeconds: 20, clock });
    const first = await certs.fetch(A);
    const firstSerial = first.serialNumber;
    // The CA backdates notBefore by 60 s: half of notAfter - notBefore lies 20 s in the past.
    expect(first.notBefore.getTime()).toBeLessThan(clock.t - 50_000);
    const due = Date.parse(certs.dump()[0]?.nextRotation as string) - clock.t;
    console.log(`20 s certificate: next rotation ${due} ms after it arrived`);
    expect(due).toBeGreaterThanOrEqual(9_500);
    expect(due).toBeLessThanOrEqual(10_500);
    await clock.advance(9_000, state);
    await new Promise((r) => setTimeout(r, 20));
    expect(state.calls).toBe(1);
    expect(certs.current(A)).toBe(first);
    await clock.advance(1_500, state);
    expect(state.calls).toBe(2);
    const second = certs.current(A);
    expect(second?.serialNumber).not.toBe(firstSerial);
    expect(first.serialNumber).toBe(firstSerial);
    expect(second!.notAfter.getTime()).toBeGreaterThan(first.notAfter.getTime());
    certs.close();
  });

  it('asks about once per 10 s for a 20 s certificate over 25 s of simulated time', async () => {
    const clock = new ManualClock(Date.now());
    const { state, client } = flakyCa(await LocalCa.create({ trustDomain: TD, now: () => clock.t }));
    const certs = new CertManager({ ca: client, ttlSeconds: 20, clock });
    await certs.fetch(A);
    for (let s = 0; s < 25; s++) {
      await clock.advance(1_000, state);
      // Certificates are served throughout: never a gap between expiry and rotation.
      expect(certs.current(A)).toBeDefined();
    }
    console.log(`20 s certificates over 25 s: ${state.calls} CSRs (the first included)`);
    expect(state.calls).toBeGreaterThanOrEqual(3);
    expect(state.calls).toBeLessThanOrEqual(4);
    certs.close();
  });

  it('paces a CA that issues lifetimes shorter than the backoff step: 0.5 s, 1 s, 2 s, 4 s between CSRs', async () => {
    const clock = wholeSecond();
    const ca = await LocalCa.create({ trustDomain: TD, now: () => clock.t });
    // Every certificate arrives with 400 ms left: half of that is below even the first step.
    const short: CaClient = {
      async createCertificate(req) {
        const parsed = await parseCsr(req.csrPem);
        if (!parsed.ok) throw new Error('bad CSR');
        const notAfter = Math.ceil((clock.t + 1) / 1000) * 1000 + 1000;
        const chain = await ca.issue(
          parsed.value.identity,
          parsed.value.publicKey,
          new Date(clock.t - 60_000),
          new Date(notAfter),
        );
        clock.t = notAfter - 400;
        return chain;
      },
    };
    const { state, client } = flakyCa(short);
    const certs = new CertManager({ ca: client, clock, random: () => 1 });
    await certs.fetch(A);
    const gaps: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [e] = certs.dump();
      const gap = Date.parse(e?.nextRotation as string) - Date.parse(e?.receivedAt as string);
      gaps.push(gap);
      await clock.advance(gap, state);
    }
    console.log(`short-lived certificates: gaps between CSRs ${gaps.join(', ')} ms`);
    expect(gaps).toEqual([500, 1000, 2000, 4000]);
    expect(state.calls).toBe(5);
    certs.close();
  });

  it('keeps the valid certificate when the CA fails and retries with backoff until it recovers', async () => {
    const clock = new ManualClock(Date.now());
    const { state, client } = flakyCa(await LocalCa.create({ trustDomain: TD, now: () => clock.t }));
    const certs = new CertManager({
      ca: client,
      ttlSeconds: 20,
      backoff: { initialMs: 20, maxMs: 80 },
      clock,
      random: () => 1,
    });
    const first = await certs.fetch(A);
    state.failing = true;
    // Rotation comes due at ~10 s, fails, and is retried after 20, 40, 80 ms.
    await clock.advance(untilRotation(certs, clock), state);
    expect(state.calls).toBe(2);
    await clock.advance(20 + 40 + 80, state);
    expect(state.calls).toBe(5);
    expect(certs.current(A)).toBe(first);
    expect(await certs.fetch(A)).toBe(first);
    const [entry] = certs.dump();
    expect(entry?.state).toBe('available');
    expect(entry?.failures).toBe(4);
    expect(entry?.lastError).toContain('CA unreachable');
    state.failing = false;
    await clock.advance(80, state);
    expect(certs.current(A)).not.toBe(first);
    expect(certs.dump()[0]?.failures).toBe(0);
    certs.close();
  });

  it('reports MESH_ERR_CA_UNAVAILABLE when there is no valid certificate, then recovers', async () => {
    const clock = new ManualClock(Date.now());
    const { state, client } = flakyCa(await LocalCa.create({ trustDomain: TD, now: () => clock.t }));
    state.failing = true;
    const certs = new CertManager({ ca: client, backoff: { initialMs: 20, maxMs: 40 }, clock });
    await expect(certs.fetch(A)).rejects.toSatisfy((e) => isMeshError(e, 'MESH_ERR_CA_UNAVAILABLE'));
    expect(certs.dump()[0]?.state).toBe('unavailable');
    // In backoff: a caller is told at once instead of triggering another CSR.
    await expect(certs.fetch(A)).rejects.toSatisfy((e) => isMeshError(e, 'MESH_ERR_CA_UNAVAILABLE'));
    expect(state.calls).toBe(1);
    state.failing = false;
    await clock.advance(20, state);
    expect(certs.current(A)).toBeDefined();
    expect((await certs.fetch(A)).identity.equals(A)).toBe(true);
    certs.close();
  });

  it('refuses a chain whose leaf is for another identity', async () => {
    const ca = await LocalCa.create({ trustDomain: TD });
    const wrong: CaClient = {
      async createCertificate(req) {
        const other = await (await import('./x509.js')).createCsr(B);
        return ca.createCertificate({ ...req, csrPem: other.csrPem, identity: B });
      },
    };
    const certs = new CertManager({ ca: wrong });
    await expect(certs.fetch(A)).rejects.toSatisfy((e) => isMeshError(e, 'MESH_ERR_INVALID_CERTIFICATE'));
    certs.close();
  });

  it('refuses a certificate that has already expired, and retries it with backoff', async () => {
    const clock = wholeSecond();
    const ca = await LocalCa.create({ trustDomain: TD, now: () => clock.t });
    const dead: CaClient = {
      async createCertificate(req) {
        const parsed = await parseCsr(req.csrPem);
        if (!parsed.ok) throw new Error('bad CSR');
        return ca.issue(A, parsed.value.publicKey, new Date(clock.t - 60_000), new Date(clock.t - 1_000));
      },
    };
    const { state, client } = flakyCa(dead);
    const certs = new CertManager({ ca: client, clock, random: () => 1 });
    await expect(certs.fetch(A)).rejects.toSatisfy((e) => isMeshError(e, 'MESH_ERR_INVALID_CERTIFICATE'));
    const [entry] = certs.dump();
    expect(entry?.state).toBe('unavailable');
    expect(Date.parse(entry?.nextRotation as string) - clock.t).toBe(500);
    await clock.advance(500, state);
    expect(state.calls).toBe(2);
    expect(certs.dump()[0]?.failures).toBe(2);
    certs.close();
  });

  it('retain() drops identities no longer live and stops rotating them; live ones keep rotating', async () => {
    const clock = new ManualClock(Date.now());
    const { state, client } = flakyCa(await LocalCa.create({ trustDomain: TD, now: () => clock.t }));
    const certs = new CertManager({ ca: client, ttlSeconds: 20, clock });
    await certs.fetch(A);
    await certs.fetch(B);
    expect(certs.retain([A])).toEqual([B.toString()]);
    expect(certs.dump().map((e) => e.identity)).toEqual([A.toString()]);
    expect(certs.current(B)).toBeUndefined();
    expect(clock.scheduled).toBe(1);
    state.identities.length = 0;
    await clock.advance(25_000, state);
    console.log(`after retain([a]) over 25 s: CSRs for ${JSON.stringify(state.identities)}`);
    expect(state.identities.length).toBeGreaterThanOrEqual(2);
    expect(state.identities.every((id) => id === A.toString())).toBe(true);
    // Retaining what is already live and certified changes nothing.
    const calls = state.calls;
    expect(certs.retain([A])).toEqual([]);
    expect(certs.dump().map((e) => e.identity)).toEqual([A.toString()]);
    expect(state.calls).toBe(calls);
    certs.close();
  });

  it('retain() fetches a certificate for a live identity that has none, once', async () => {
    const clock = new ManualClock(Date.now());
    const { state, client } = flakyCa(await LocalCa.create({ trustDomain: TD, now: () => clock.t }));
    const certs = new CertManager({ ca: client, ttlSeconds: 20, clock });
    expect(certs.retain([A, B])).toEqual([]);
    expect(certs.retain([A, B])).toEqual([]);
    await eventually(() => certs.current(A) !== undefined && certs.current(B) !== undefined);
    expect(state.calls).toBe(2);
    expect(certs.dump().map((e) => e.state)).toEqual(['available', 'available']);
    certs.close();
  });

  it('an identity dropped while its issuance is in flight stays dropped; one that comes back is issued anew', async () => {
    const clock = new ManualClock(Date.now());
    const { state, client } = flakyCa(await LocalCa.create({ trustDomain: TD, now: () => clock.t }));
    const certs = new CertManager({ ca: client, ttlSeconds: 20, clock });
    const inFlight = certs.fetch(B);
    expect(certs.retain([])).toEqual([B.toString()]);
    const orphan = await inFlight;
    expect(orphan.identity.equals(B)).toBe(true);
    expect(certs.dump()).toEqual([]);
    expect(clock.scheduled).toBe(0);
    const again = await certs.fetch(B);
    expect(again.serialNumber).not.toBe(orphan.serialNumber);
    expect(state.calls).toBe(2);
    expect(certs.dump().map((e) => e.identity)).toEqual([B.toString()]);
    certs.close();
  });
});

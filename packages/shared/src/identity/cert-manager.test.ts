import { describe, expect, it } from 'vitest';
import { isMeshError } from '../errors.js';
import { eventually } from '../testing/mesh-fixture.js';
import type { CaClient, CertificateRequest } from './ca-client.js';
import { CertManager } from './cert-manager.js';
import { LocalCa } from './local-ca.js';
import { SpiffeId } from './spiffe-id.js';

const TD = 'cluster.local';
const A = SpiffeId.of(TD, 'demo', 'a');
const B = SpiffeId.of(TD, 'demo', 'b');

/** A CA that counts calls and fails while `failing` is set. */
function flakyCa(ca: LocalCa) {
  const state = { calls: 0, failing: false };
  const client: CaClient = {
    async createCertificate(req: CertificateRequest) {
      state.calls += 1;
      if (state.failing) throw new Error('CA unreachable');
      return ca.createCertificate(req);
    },
  };
  return { state, client };
}

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

  it('uses the default 24 h TTL and dumps identity, expiry and next rotation as JSON', async () => {
    const certs = new CertManager({ ca: await LocalCa.create({ trustDomain: TD }) });
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
        nextRotation: new Date(cert.notBefore.getTime() + lifetime / 2).toISOString(),
        failures: 0,
      },
    ]);
    certs.close();
  });

  it('rotates at half the lifetime; the old certificate object is untouched', async () => {
    // 62 s TTL with the CA's 60 s backdating gives a 122 s lifetime whose midpoint is 1 s from now.
    const certs = new CertManager({ ca: await LocalCa.create({ trustDomain: TD }), ttlSeconds: 62 });
    const first = await certs.fetch(A);
    const firstSerial = first.serialNumber;
    await eventually(() => certs.current(A) !== first, 50);
    const second = certs.current(A);
    expect(second?.serialNumber).not.toBe(firstSerial);
    expect(first.serialNumber).toBe(firstSerial);
    expect(second!.notAfter.getTime()).toBeGreaterThan(first.notAfter.getTime());
    certs.close();
  });

  it('keeps the valid certificate when the CA fails and retries with backoff until it recovers', async () => {
    const { state, client } = flakyCa(await LocalCa.create({ trustDomain: TD }));
    const certs = new CertManager({ ca: client, ttlSeconds: 62, backoff: { initialMs: 20, maxMs: 80 } });
    const first = await certs.fetch(A);
    state.failing = true;
    // Rotation comes due in ~1 s, fails, and is retried with backoff.
    await eventually(() => state.calls >= 4, 20);
    expect(certs.current(A)).toBe(first);
    expect(await certs.fetch(A)).toBe(first);
    const [entry] = certs.dump();
    expect(entry?.state).toBe('available');
    expect(entry?.failures).toBeGreaterThanOrEqual(3);
    expect(entry?.lastError).toContain('CA unreachable');
    state.failing = false;
    await eventually(() => certs.current(A) !== first, 20);
    expect(certs.dump()[0]?.failures).toBe(0);
    certs.close();
  });

  it('reports MESH_ERR_CA_UNAVAILABLE when there is no valid certificate, then recovers', async () => {
    const { state, client } = flakyCa(await LocalCa.create({ trustDomain: TD }));
    state.failing = true;
    const certs = new CertManager({ ca: client, backoff: { initialMs: 20, maxMs: 40 } });
    await expect(certs.fetch(A)).rejects.toSatisfy((e) => isMeshError(e, 'MESH_ERR_CA_UNAVAILABLE'));
    expect(certs.dump()[0]?.state).toBe('unavailable');
    state.failing = false;
    await eventually(() => certs.current(A) !== undefined, 10);
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
});

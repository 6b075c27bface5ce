import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isMeshError } from '../errors.js';
import { LocalCa } from './local-ca.js';
import { SpiffeId } from './spiffe-id.js';
import { certificateFacts, createCsr, generateKeyPair, x509 } from './x509.js';

const TD = 'cluster.local';
const ID = SpiffeId.of(TD, 'demo', 'reviews');

async function expectCode(p: Promise<unknown>, code: string, text?: string): Promise<void> {
  try {
    await p;
    expect.unreachable('expected a rejection');
  } catch (err) {
    expect(isMeshError(err)).toBe(true);
    expect((err as { code: string }).code).toBe(code);
    if (text) expect((err as Error).message).toContain(text);
  }
}

describe('LocalCa', () => {
  it('signs a CSR into a chain leaf first, root last, with the SPIFFE URI SAN and the TTL', async () => {
    const ca = await LocalCa.create({ trustDomain: TD });
    const { csrPem } = await createCsr(ID);
    const chain = await ca.sign(csrPem, { ttlSeconds: 3600 });
    expect(chain).toHaveLength(2);
    expect(chain[1]).toBe(ca.rootPem);
    const leaf = new X509Certificate(chain[0] as string);
    const root = new X509Certificate(chain[1] as string);
    expect(leaf.verify(root.publicKey)).toBe(true);
    expect(leaf.checkIssued(root)).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(root.ca).toBe(true);
    expect(leaf.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const facts = certificateFacts(leaf);
    expect(facts.uriSans).toEqual([ID.toString()]);
    const lifetimeS = (facts.notAfter.getTime() - Date.now()) / 1000;
    expect(lifetimeS).toBeGreaterThan(3500);
    expect(lifetimeS).toBeLessThanOrEqual(3600);
  });

  it('persists its root and loads the same root on the next start', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ca-'));
    const first = await LocalCa.loadOrCreate(dir, { trustDomain: TD });
    const second = await LocalCa.loadOrCreate(dir, { trustDomain: TD });
    expect(second.rootPem).toBe(first.rootPem);
    expect(await readFile(join(dir, 'root-cert.pem'), 'utf8')).toBe(first.rootPem);
    const chain = await second.sign((await createCsr(ID)).csrPem);
    expect(new X509Certificate(chain[0] as string).verify(first.rootCertificate().publicKey)).toBe(true);
  });

  it('refuses a root key that does not match the root certificate', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ca-'));
    await LocalCa.loadOrCreate(dir, { trustDomain: TD });
    const other = await mkdtemp(join(tmpdir(), 'ca-'));
    await LocalCa.loadOrCreate(other, { trustDomain: TD });
    await writeFile(join(dir, 'root-key.pem'), await readFile(join(other, 'root-key.pem')));
    await expectCode(LocalCa.loadOrCreate(dir, { trustDomain: TD }), 'MESH_ERR_CA_FILES', 'does not match');
  });

  it.each([
    ['not PEM at all', 'not a PEM'],
    ['-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', 'cannot decode'],
  ])('refuses a malformed CSR (%s)', async (csr, reason) => {
    const ca = await LocalCa.create({ trustDomain: TD });
    await expectCode(ca.sign(csr), 'MESH_ERR_INVALID_CSR', reason);
  });

  it('refuses a CSR without exactly one URI SAN, or with a non-SPIFFE one', async () => {
    const ca = await LocalCa.create({ trustDomain: TD });
    const keys = await generateKeyPair();
    const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    const none = await x509.Pkcs10CertificateRequestGenerator.create({
      keys,
      signingAlgorithm: alg,
      name: 'CN=x',
    });
    await expectCode(ca.sign(none.toString('pem')), 'MESH_ERR_INVALID_CSR', 'exactly one URI SAN');
    const bad = await x509.Pkcs10CertificateRequestGenerator.create({
      keys,
      signingAlgorithm: alg,
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'https://evil' }])],
    });
    await expectCode(ca.sign(bad.toString('pem')), 'MESH_ERR_INVALID_CSR', 'scheme must be spiffe://');
  });

  it('refuses identities the caller may not have, and other trust domains', async () => {
    const ca = await LocalCa.create({ trustDomain: TD });
    const { csrPem } = await createCsr(ID);
    await expectCode(
      ca.sign(csrPem, { allowed: (id) => id.serviceAccount === 'ratings' }),
      'MESH_ERR_IDENTITY_NOT_ALLOWED',
      ID.toString(),
    );
    await expectCode(
      ca.createCertificate({ csrPem, ttlSeconds: 60, identity: SpiffeId.of(TD, 'demo', 'ratings') }),
      'MESH_ERR_IDENTITY_NOT_ALLOWED',
    );
    const foreign = await createCsr(SpiffeId.of('other.domain', 'demo', 'reviews'));
    await expectCode(ca.sign(foreign.csrPem), 'MESH_ERR_IDENTITY_NOT_ALLOWED', 'outside trust domain');
  });
});

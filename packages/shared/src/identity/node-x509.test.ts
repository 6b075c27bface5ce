import { createPublicKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createCsr } from './node-x509.js';
import { SpiffeId } from './spiffe-id.js';
import { parseCsr } from './x509.js';

describe('createCsr', () => {
  it('writes a CSR the CA verifies, naming the identity as its only URI SAN, for the key it returns', async () => {
    const id = SpiffeId.of('cluster.local', 'default', 'sleep');
    const { keyPem, csrPem } = await createCsr(id);
    const parsed = await parseCsr(csrPem);
    expect(parsed.ok && parsed.value.identity.toString()).toBe(id.toString());
    const spki = Buffer.from(await (parsed.ok ? parsed.value.publicKey.rawData : new ArrayBuffer(0)));
    expect(spki.equals(createPublicKey(keyPem).export({ type: 'spki', format: 'der' }))).toBe(true);
  });

  it('encodes long identities (DER lengths past one byte) so that they still verify', async () => {
    const id = SpiffeId.of('cluster.local', `ns-${'n'.repeat(60)}`, `sa-${'s'.repeat(200)}`);
    const { csrPem } = await createCsr(id);
    const parsed = await parseCsr(csrPem);
    expect(parsed.ok && parsed.value.identity.toString()).toBe(id.toString());
  });

  it('gives every CSR a fresh key', async () => {
    const id = SpiffeId.of('cluster.local', 'default', 'sleep');
    const [a, b] = await Promise.all([createCsr(id), createCsr(id)]);
    expect(a.keyPem).not.toBe(b.keyPem);
  });
});

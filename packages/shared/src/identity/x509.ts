// The certificate authority's X.509 work (building certificates, verifying CSRs). Loaded only where
// a CA runs: node agents use node-x509.ts.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { fail, ok, type Result } from '../result.js';
import { SpiffeId } from './spiffe-id.js';

x509.cryptoProvider.set(webcrypto as never);
const SAN_OID = '2.5.29.17';

export interface ParsedCsr {
  readonly identity: SpiffeId;
  readonly publicKey: x509.PublicKey;
}

/** Parses and verifies a CSR: valid PEM, self-signature checks, P-256 key, exactly one SPIFFE URI SAN. */
export async function parseCsr(pem: string): Promise<Result<ParsedCsr>> {
  const bad = (message: string) => fail<ParsedCsr>({ path: 'csr', message });
  if (typeof pem !== 'string' || !pem.includes('-----BEGIN CERTIFICATE REQUEST-----')) {
    return bad('not a PEM "CERTIFICATE REQUEST"');
  }
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(pem);
  } catch (err) {
    return bad(`cannot decode: ${(err as Error).message}`);
  }
  try {
    if (!(await csr.verify())) return bad('signature does not verify');
  } catch (err) {
    return bad(`signature cannot be checked: ${(err as Error).message}`);
  }
  const alg = csr.publicKey.algorithm as webcrypto.EcKeyAlgorithm;
  if (alg.name !== 'ECDSA' || alg.namedCurve !== 'P-256') return bad('key must be ECDSA P-256');
  const san = csr.getExtension(SAN_OID) as x509.SubjectAlternativeNameExtension | null;
  const uris = san ? san.names.items.filter((n) => n.type === 'url').map((n) => n.value) : [];
  if (uris.length !== 1) return bad(`must carry exactly one URI SAN, has ${uris.length}`);
  const identity = SpiffeId.parse(uris[0] as string);
  if (!identity.ok)
    return fail({ path: 'csr.subjectAltName', message: identity.problems[0]?.message ?? 'invalid' });
  return ok({ identity: identity.value, publicKey: csr.publicKey });
}

export type { CertificateFacts } from './node-x509.js';
export {
  certificateFacts,
  createCsr,
  EC_P256,
  generateKeyPair,
  importPrivateKeyPem,
  type KeyPair,
  privateKeyPem,
  splitPemChain,
  uriSans,
} from './node-x509.js';
export { x509 };

import 'reflect-metadata';
import { createPrivateKey, webcrypto, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { MeshError } from '../errors.js';
import { fail, ok, type Result } from '../result.js';
import { SpiffeId } from './spiffe-id.js';

x509.cryptoProvider.set(webcrypto as never);

/** ECDSA P-256 with SHA-256: workload and root keys alike. */
export const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const SAN_OID = '2.5.29.17';

export type KeyPair = webcrypto.CryptoKeyPair;

export function generateKeyPair(): Promise<KeyPair> {
  return webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify']) as Promise<KeyPair>;
}

export async function privateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({
    format: 'pem',
    type: 'pkcs8',
  }) as string;
}

export async function importPrivateKeyPem(pem: string): Promise<webcrypto.CryptoKey> {
  const der = createPrivateKey(pem).export({ format: 'der', type: 'pkcs8' });
  return webcrypto.subtle.importKey('pkcs8', der, EC_P256, true, ['sign']);
}

/** A fresh P-256 key and a CSR carrying `identity` as its only URI SAN. */
export async function createCsr(identity: SpiffeId): Promise<{ keyPem: string; csrPem: string }> {
  const keys = await generateKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: EC_P256,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: identity.toString() }])],
  });
  return { keyPem: await privateKeyPem(keys.privateKey), csrPem: csr.toString('pem') };
}

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

/** What the mesh needs to know about a certificate. */
export interface CertificateFacts {
  readonly uriSans: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly serialNumber: string;
  readonly fingerprint256: string;
}

export function certificateFacts(pem: string | X509Certificate): CertificateFacts {
  let cert: X509Certificate;
  try {
    cert = typeof pem === 'string' ? new X509Certificate(pem) : pem;
  } catch (err) {
    throw new MeshError('MESH_ERR_INVALID_CERTIFICATE', (err as Error).message, { cause: err });
  }
  return {
    uriSans: uriSans(cert.subjectAltName),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    serialNumber: cert.serialNumber,
    fingerprint256: cert.fingerprint256,
  };
}

/**
 * URI entries of a subjectAltName string as Node renders it ("URI:a, DNS:b"; values holding
 * separators are JSON-quoted).
 */
export function uriSans(subjectAltName: string | undefined): string[] {
  if (!subjectAltName) return [];
  const out: string[] = [];
  let i = 0;
  while (i < subjectAltName.length) {
    const colon = subjectAltName.indexOf(':', i);
    if (colon < 0) break;
    const type = subjectAltName.slice(i, colon);
    let value: string;
    let next: number;
    if (subjectAltName[colon + 1] === '"') {
      let end = colon + 2;
      while (end < subjectAltName.length && subjectAltName[end] !== '"')
        end += subjectAltName[end] === '\\' ? 2 : 1;
      try {
        value = JSON.parse(subjectAltName.slice(colon + 1, end + 1)) as string;
      } catch {
        value = subjectAltName.slice(colon + 2, end);
      }
      next = subjectAltName.indexOf(', ', end);
    } else {
      next = subjectAltName.indexOf(', ', colon);
      value = subjectAltName.slice(colon + 1, next < 0 ? undefined : next);
    }
    if (type === 'URI') out.push(value);
    if (next < 0) break;
    i = next + 2;
  }
  return out;
}

/** Splits a PEM bundle into its certificates, in order. */
export function splitPemChain(bundle: string): string[] {
  return (
    bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((c) => `${c}\n`) ?? []
  );
}

export { x509 };

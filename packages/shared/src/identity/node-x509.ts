/**
 * Certificate work that Node's own crypto does: workload keys, CSRs and reading certificates. A
 * node agent needs no more than this, so it does not load an X.509 library (about 8 MB of RSS);
 * building and verifying certificates (the CA) is in x509.ts.
 */
import {
  createPrivateKey,
  generateKeyPair as generateNodeKeyPair,
  sign,
  webcrypto,
  X509Certificate,
} from 'node:crypto';
import { promisify } from 'node:util';
import { MeshError } from '../errors.js';
import type { SpiffeId } from './spiffe-id.js';

/** ECDSA P-256 with SHA-256: workload and root keys alike. */
export const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

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

/**
 * A fresh P-256 key and a PKCS #10 CSR (RFC 2986) carrying `identity` as its only URI SAN, with an
 * empty subject, signed with ECDSA SHA-256.
 */
export async function createCsr(identity: SpiffeId): Promise<{ keyPem: string; csrPem: string }> {
  const { publicKey, privateKey } = await generateEcKeyPair('ec', { namedCurve: 'P-256' });
  const san = der(0x30, der(0x86, Buffer.from(identity.toString(), 'ascii')));
  const extensions = der(0x30, der(0x30, OID_SUBJECT_ALT_NAME, der(0x04, san)));
  const info = der(
    0x30,
    der(0x02, Buffer.of(0)),
    der(0x30),
    publicKey.export({ type: 'spki', format: 'der' }),
    der(0xa0, der(0x30, OID_EXTENSION_REQUEST, der(0x31, extensions))),
  );
  const signature = sign('sha256', info, privateKey);
  const csr = der(0x30, info, der(0x30, OID_ECDSA_WITH_SHA256), der(0x03, Buffer.of(0), signature));
  const body = csr.toString('base64').replace(/.{64}/g, '$&\n');
  return {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    csrPem: `-----BEGIN CERTIFICATE REQUEST-----\n${body}${body.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE REQUEST-----\n`,
  };
}

const generateEcKeyPair = promisify(generateNodeKeyPair);
/** 1.2.840.113549.1.9.14 (PKCS #9 extensionRequest). */
const OID_EXTENSION_REQUEST = Buffer.from('06092a864886f70d01090e', 'hex');
/** 2.5.29.17 (subjectAltName). */
const OID_SUBJECT_ALT_NAME = Buffer.from('0603551d11', 'hex');
/** 1.2.840.10045.4.3.2 (ecdsa-with-SHA256). */
const OID_ECDSA_WITH_SHA256 = Buffer.from('06082a8648ce3d040302', 'hex');

/** One DER TLV: `tag`, definite length, the contents. */
function der(tag: number, ...contents: Buffer[]): Buffer {
  const body = Buffer.concat(contents);
  const n = body.length;
  const length = n < 0x80 ? Buffer.of(n) : n < 0x100 ? Buffer.of(0x81, n) : Buffer.of(0x82, n >> 8, n & 0xff);
  return Buffer.concat([Buffer.of(tag), length, body]);
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

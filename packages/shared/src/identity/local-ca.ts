import { randomBytes, type webcrypto, X509Certificate } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MeshError } from '../errors.js';
import { formatProblems } from '../result.js';
import type { CaClient, CertificateRequest } from './ca-client.js';
import { EC_P256, generateKeyPair, importPrivateKeyPem, privateKeyPem } from './node-x509.js';
import type { SpiffeId } from './spiffe-id.js';
import type { x509 } from './x509.js';

/** The X.509 library, loaded on first use so that importing this package does not (node agents never sign). */
const caX509 = () => import('./x509.js');

export const DEFAULT_CERT_TTL_SECONDS = 24 * 60 * 60;
const MAX_TTL_SECONDS = 90 * 24 * 60 * 60;
const CLOCK_SKEW_MS = 60_000;

export interface LocalCaOptions {
  readonly trustDomain: string;
  /** Root lifetime when a new root is created. */
  readonly rootTtlSeconds?: number;
  /** The time leaves are signed at (tests drive it with a manual clock). */
  readonly now?: () => number;
}

/** Which identities a caller may obtain certificates for. `undefined` means any in the trust domain. */
export type IdentityGrant = (identity: SpiffeId) => boolean;

export interface SignOptions {
  readonly ttlSeconds?: number;
  readonly allowed?: IdentityGrant;
}

/**
 * A certificate authority for local runs: one self-signed P-256 root, created once and persisted
 * (root-cert.pem, root-key.pem), or loaded from such files. Signs CSRs into chains leaf first,
 * root last.
 */
export class LocalCa implements CaClient {
  readonly rootPem: string;

  private constructor(
    readonly trustDomain: string,
    private readonly root: x509.X509Certificate,
    private readonly rootKey: webcrypto.CryptoKey,
    private readonly now: () => number = Date.now,
  ) {
    this.rootPem = root.toString('pem');
  }

  /** Creates a root in memory. */
  static async create(options: LocalCaOptions): Promise<LocalCa> {
    const { x509 } = await caX509();
    const keys = await generateKeyPair();
    const now = Date.now();
    const root = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: randomSerial(),
      name: `O=${options.trustDomain}, CN=ambient-mesh root`,
      notBefore: new Date(now - CLOCK_SKEW_MS),
      notAfter: new Date(now + (options.rootTtlSeconds ?? 10 * 365 * 24 * 3600) * 1000),
      keys,
      signingAlgorithm: EC_P256,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    return new LocalCa(options.trustDomain, root, keys.privateKey, options.now);
  }

  /** Loads `root-cert.pem` and `root-key.pem` from `dir`, creating and persisting them the first time. */
  static async loadOrCreate(dir: string, options: LocalCaOptions): Promise<LocalCa> {
    const certPath = join(dir, 'root-cert.pem');
    const keyPath = join(dir, 'root-key.pem');
    let certPem: string | undefined;
    try {
      certPem = await readFile(certPath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw caFilesError(certPath, err);
    }
    if (certPem !== undefined)
      return LocalCa.fromPem(
        certPem,
        await readFile(keyPath, 'utf8').catch((err) => {
          throw caFilesError(keyPath, err);
        }),
        options,
      );
    const ca = await LocalCa.create(options);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // Key first, then certificate by rename: a crash never leaves a certificate without its key.
    await writeFile(keyPath, await privateKeyPem(ca.rootKey), { mode: 0o600 });
    await writeFile(`${certPath}.tmp`, ca.rootPem);
    await rename(`${certPath}.tmp`, certPath);
    return ca;
  }

  /** A CA from an existing root certificate and its private key (PEM). */
  static async fromPem(certPem: string, keyPem: string, options: LocalCaOptions): Promise<LocalCa> {
    const { x509 } = await caX509();
    let root: x509.X509Certificate;
    let key: webcrypto.CryptoKey;
    try {
      root = new x509.X509Certificate(certPem);
      key = await importPrivateKeyPem(keyPem);
    } catch (err) {
      throw new MeshError('MESH_ERR_CA_FILES', `cannot parse root: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const probe = new Uint8Array([1, 2, 3]);
    const sig = await crypto.subtle.sign(EC_P256, key, probe);
    if (
      !(await crypto.subtle.verify(EC_P256, await root.publicKey.export(EC_P256, ['verify']), sig, probe))
    ) {
      throw new MeshError('MESH_ERR_CA_FILES', 'root key does not match root certificate');
    }
    return new LocalCa(options.trustDomain, root, key, options.now);
  }

  /** Implements CaClient: sign for whatever identity the CSR names, within the trust domain. */
  createCertificate(request: CertificateRequest): Promise<string[]> {
    return this.sign(request.csrPem, {
      ttlSeconds: request.ttlSeconds,
      allowed: (id) => request.identity === undefined || id.equals(request.identity),
    });
  }

  /** Verifies a CSR, checks its identity against `allowed` and the trust domain, and signs it. */
  async sign(csrPem: string, options: SignOptions = {}): Promise<string[]> {
    const parsed = await (await caX509()).parseCsr(csrPem);
    if (!parsed.ok) throw new MeshError('MESH_ERR_INVALID_CSR', formatProblems(parsed.problems));
    const { identity, publicKey } = parsed.value;
    if (identity.trustDomain !== this.trustDomain) {
      throw new MeshError(
        'MESH_ERR_IDENTITY_NOT_ALLOWED',
        `${identity} is outside trust domain ${this.trustDomain}`,
      );
    }
    if (options.allowed && !options.allowed(identity)) {
      throw new MeshError('MESH_ERR_IDENTITY_NOT_ALLOWED', identity.toString());
    }
    const ttl = Math.min(
      Math.max(1, Math.floor(options.ttlSeconds ?? DEFAULT_CERT_TTL_SECONDS)),
      MAX_TTL_SECONDS,
    );
    const now = this.now();
    return this.issue(identity, publicKey, new Date(now - CLOCK_SKEW_MS), new Date(now + ttl * 1000));
  }

  /**
   * Issues a leaf for `identity` with an explicit validity window. Used by sign(), and directly by
   * tests that need certificates no CSR path would produce (already expired ones).
   */
  async issue(
    identity: SpiffeId,
    publicKey: x509.PublicKey | webcrypto.CryptoKey,
    notBefore: Date,
    notAfter: Date,
    dnsNames: readonly string[] = [],
  ): Promise<string[]> {
    const { x509 } = await caX509();
    const rootNotAfter = this.root.notAfter;
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: `O=${this.trustDomain}`,
      issuer: this.root.subject,
      notBefore,
      notAfter: notAfter > rootNotAfter ? rootNotAfter : notAfter,
      signingKey: this.rootKey,
      publicKey,
      signingAlgorithm: EC_P256,
      extensions: [
        new x509.SubjectAlternativeNameExtension(
          [
            { type: 'url', value: identity.toString() },
            ...dnsNames.map((value) => ({ type: 'dns' as const, value })),
          ],
          true,
        ),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
          true,
        ),
        new x509.ExtendedKeyUsageExtension([
          x509.ExtendedKeyUsage.serverAuth,
          x509.ExtendedKeyUsage.clientAuth,
        ]),
        new x509.BasicConstraintsExtension(false, undefined, true),
        await x509.AuthorityKeyIdentifierExtension.create(this.root, false),
      ],
    });
    return [leaf.toString('pem'), this.rootPem];
  }

  /**
   * A serving certificate for a named service (the control plane itself): its SPIFFE identity and
   * DNS names, with a fresh key.
   */
  async issueServing(
    identity: SpiffeId,
    dnsNames: readonly string[],
    ttlSeconds = DEFAULT_CERT_TTL_SECONDS,
  ): Promise<{ keyPem: string; chainPem: string[] }> {
    const keys = await generateKeyPair();
    const now = Date.now();
    const chainPem = await this.issue(
      identity,
      keys.publicKey,
      new Date(now - CLOCK_SKEW_MS),
      new Date(now + ttlSeconds * 1000),
      dnsNames,
    );
    return { keyPem: await privateKeyPem(keys.privateKey), chainPem };
  }

  /** The root as Node's X509Certificate, for callers that verify chains. */
  rootCertificate(): X509Certificate {
    return new X509Certificate(this.rootPem);
  }
}

function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f; // positive INTEGER
  return bytes.toString('hex');
}

function caFilesError(path: string, err: unknown): MeshError {
  return new MeshError('MESH_ERR_CA_FILES', `${path}: ${(err as Error).message}`, { cause: err });
}

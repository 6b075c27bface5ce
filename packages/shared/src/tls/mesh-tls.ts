import type { PeerCertificate, SecureContext, SecureContextOptions, TLSSocket } from 'node:tls';
import { createSecureContext } from 'node:tls';
import { MeshError } from '../errors.js';
import type { WorkloadCertificate } from '../identity/cert-manager.js';
import { uriSans } from '../identity/node-x509.js';
import { SpiffeId } from '../identity/spiffe-id.js';

/** TLS 1.3 with AES-GCM only, as Istio's ztunnel. */
export const MESH_TLS_CIPHERS = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384';
export const HBONE_ALPN = 'h2';

export function secureContextOptions(cert: WorkloadCertificate): SecureContextOptions {
  return {
    key: cert.keyPem,
    // Leaf and intermediates; the root is the peer's own trust anchor.
    cert: cert.chainPem.length > 1 ? cert.chainPem.slice(0, -1).join('') : cert.chainPem.join(''),
    ca: [...cert.rootsPem],
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    ciphers: MESH_TLS_CIPHERS,
  };
}

const contexts = new WeakMap<WorkloadCertificate, SecureContext>();

/** The secure context of a certificate, built once per issued certificate. */
export function secureContextFor(cert: WorkloadCertificate): SecureContext {
  let ctx = contexts.get(cert);
  if (!ctx) {
    ctx = createSecureContext(secureContextOptions(cert));
    contexts.set(cert, ctx);
  }
  return ctx;
}

/** A checkServerIdentity that accepts only a peer whose single SPIFFE URI SAN is `expected`. */
export function expectIdentity(
  expected: SpiffeId,
): (host: string, cert: PeerCertificate) => Error | undefined {
  const want = expected.toString();
  return (_host, cert) => {
    const sans = uriSans(cert.subjectaltname);
    if (sans.length === 1 && sans[0] === want) return undefined;
    return new MeshError('MESH_ERR_PEER_IDENTITY', `expected ${want}, peer presented [${sans.join(', ')}]`);
  };
}

/** Why a server refused a TLS peer: a bounded metric label. */
export type TlsRefusal =
  | 'tls_handshake'
  | 'handshake_timeout'
  | 'no_client_cert'
  | 'untrusted_cert'
  | 'expired_cert'
  | 'identity'
  | 'alpn';

/**
 * Checks an accepted TLS connection: a client certificate that chains to the trust bundle and is in
 * its validity window, ALPN h2, and exactly one SPIFFE URI SAN in `trustDomain`.
 */
export function verifyClient(
  socket: TLSSocket,
  trustDomain: string,
): { ok: true; identity: SpiffeId } | { ok: false; reason: TlsRefusal; detail: string } {
  const cert = socket.getPeerX509Certificate();
  if (!cert) return { ok: false, reason: 'no_client_cert', detail: 'no client certificate' };
  if (!socket.authorized) {
    const code = String(socket.authorizationError ?? 'unknown');
    const reason =
      code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID' ? 'expired_cert' : 'untrusted_cert';
    return { ok: false, reason, detail: code };
  }
  if (socket.alpnProtocol !== HBONE_ALPN) {
    return { ok: false, reason: 'alpn', detail: `ALPN ${String(socket.alpnProtocol)}` };
  }
  const sans = uriSans(cert.subjectAltName);
  if (sans.length !== 1) return { ok: false, reason: 'identity', detail: `${sans.length} URI SANs` };
  const id = SpiffeId.parse(sans[0] as string);
  if (!id.ok)
    return { ok: false, reason: 'identity', detail: id.problems[0]?.message ?? 'invalid SPIFFE ID' };
  if (id.value.trustDomain !== trustDomain) {
    return { ok: false, reason: 'identity', detail: `${id.value} is outside trust domain ${trustDomain}` };
  }
  return { ok: true, identity: id.value };
}

/** Label for a handshake error raised before any certificate check (plain bytes, HTTP/1.1, no cert). */
export function handshakeRefusal(err: unknown): TlsRefusal {
  const code = (err as { code?: string })?.code ?? '';
  if (code.includes('PEER_DID_NOT_RETURN_A_CERTIFICATE') || code.includes('CERTIFICATE_REQUIRED'))
    return 'no_client_cert';
  if (code.includes('NO_APPLICATION_PROTOCOL')) return 'alpn';
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return 'handshake_timeout';
  return 'tls_handshake';
}

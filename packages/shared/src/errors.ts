/**
 * The one table of error codes shared by every component. A code is never reused for another
 * meaning; HBONE statuses and HBONE metric labels are derived from codes here and nowhere else.
 */
export const MESH_ERRORS = {
  MESH_ERR_INVALID_SPIFFE_ID: 'malformed SPIFFE ID',
  MESH_ERR_INVALID_CSR: 'malformed or unverifiable certificate signing request',
  MESH_ERR_IDENTITY_NOT_ALLOWED: 'caller may not obtain a certificate for this identity',
  MESH_ERR_CA_UNAVAILABLE: 'certificate authority did not issue a certificate',
  MESH_ERR_INVALID_CERTIFICATE: 'certificate cannot be parsed or is unusable',
  MESH_ERR_CA_FILES: 'CA root files are missing, unreadable or mismatched',
  MESH_ERR_PEER_IDENTITY: 'peer presented an unexpected identity',
  MESH_ERR_TLS_HANDSHAKE: 'TLS handshake failed',
  MESH_ERR_HBONE_BAD_REQUEST: 'HBONE request is not a CONNECT to a valid, allowed authority',
  MESH_ERR_HBONE_NOT_CONNECT: 'HBONE request method is not CONNECT',
  MESH_ERR_HBONE_FORBIDDEN_PORT: 'HBONE request targets a port reserved for capture',
  MESH_ERR_HBONE_DENIED: 'HBONE request denied by authorization',
  MESH_ERR_HBONE_UPSTREAM: 'HBONE upstream connection failed',
  MESH_ERR_HBONE_REFUSED: 'HBONE peer refused the CONNECT request',
  MESH_ERR_HBONE_PEER_DENIED: 'HBONE peer denied the CONNECT request by authorization (401)',
  MESH_ERR_HBONE_RESET: 'HBONE stream was reset',
  MESH_ERR_CLOSED: 'component is closed',
} as const;

export type MeshErrorCode = keyof typeof MESH_ERRORS;

export class MeshError extends Error {
  readonly code: MeshErrorCode;

  constructor(code: MeshErrorCode, detail?: string, options?: { cause?: unknown }) {
    super(detail ? `${MESH_ERRORS[code]}: ${detail}` : MESH_ERRORS[code], options);
    this.name = 'MeshError';
    this.code = code;
  }
}

export function isMeshError(err: unknown, code?: MeshErrorCode): err is MeshError {
  return err instanceof MeshError && (code === undefined || err.code === code);
}

/** How an HBONE server answers a CONNECT stream that failed with an error, and how it counts it. */
export interface HboneServerReply {
  readonly status: 400 | 401 | 503;
  /** Label of the stream in metrics and logs. */
  readonly reason: string;
  /** Counted in hbone_stream_errors_total: the client sent a request it should not have. */
  readonly streamError: boolean;
}

/**
 * HBONE statuses by error, as upstream ztunnel answers in src/proxy/inbound.rs: 400 for a method
 * other than CONNECT or a bad authority, 401 when authorization denies, 503 when the upstream
 * connection fails or the target is one of the proxy's own ports (upstream's `Error::SelfCall` from
 * `resolve_inbound_target`, answered SERVICE_UNAVAILABLE). An error not listed (including one that is not a MeshError) answers
 * HBONE_SERVER_DEFAULT_REPLY.
 */
export const HBONE_SERVER_REPLIES: Readonly<Partial<Record<MeshErrorCode, HboneServerReply>>> = Object.freeze(
  {
    MESH_ERR_HBONE_NOT_CONNECT: { status: 400, reason: 'method', streamError: true },
    MESH_ERR_HBONE_BAD_REQUEST: { status: 400, reason: 'authority', streamError: true },
    MESH_ERR_HBONE_FORBIDDEN_PORT: { status: 503, reason: 'forbidden_port', streamError: true },
    MESH_ERR_HBONE_DENIED: { status: 401, reason: 'denied', streamError: false },
    MESH_ERR_HBONE_UPSTREAM: { status: 503, reason: 'upstream', streamError: false },
  },
);

export const HBONE_SERVER_DEFAULT_REPLY: HboneServerReply = Object.freeze({
  status: 503,
  reason: 'upstream',
  streamError: false,
});

/** The reply of an HBONE server for an error raised while serving a CONNECT stream. */
export function hboneServerReplyFor(err: unknown): HboneServerReply {
  return (err instanceof MeshError && HBONE_SERVER_REPLIES[err.code]) || HBONE_SERVER_DEFAULT_REPLY;
}

/** HBONE response status for an error raised while serving a CONNECT stream. */
export function hboneStatusFor(err: unknown): 400 | 401 | 503 {
  return hboneServerReplyFor(err).status;
}

/** The error an HBONE client raises when the peer answers CONNECT with a status other than 200. */
export function hboneRefusalCode(status: number): MeshErrorCode {
  return status === 401 ? 'MESH_ERR_HBONE_PEER_DENIED' : 'MESH_ERR_HBONE_REFUSED';
}

/** Label of an HBONE client connection that failed before any stream, by error. */
export const HBONE_CLIENT_REFUSAL_REASONS: Readonly<Partial<Record<MeshErrorCode, string>>> = Object.freeze({
  MESH_ERR_PEER_IDENTITY: 'identity',
  MESH_ERR_HBONE_UPSTREAM: 'connect',
});

/**
 * hbone_connections_refused_total's reason for a failed HBONE client connection: the error's
 * entry, else what the TLS stack said about the server's certificate, else tls_handshake.
 */
export function hboneClientRefusalReason(err: MeshError): string {
  const listed = HBONE_CLIENT_REFUSAL_REASONS[err.code];
  if (listed) return listed;
  const cause = (err.cause as NodeJS.ErrnoException | undefined)?.code ?? '';
  if (cause === 'CERT_HAS_EXPIRED') return 'expired_cert';
  if (cause.includes('CERT') || cause.includes('SIGNATURE') || cause.includes('ISSUER'))
    return 'untrusted_cert';
  return 'tls_handshake';
}

/**
 * The one table of error codes shared by every component. A code is never reused for another
 * meaning; HBONE statuses and metric labels are derived from codes here and nowhere else.
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
  MESH_ERR_HBONE_DENIED: 'HBONE request denied by authorization',
  MESH_ERR_HBONE_UPSTREAM: 'HBONE upstream connection failed',
  MESH_ERR_HBONE_REFUSED: 'HBONE peer refused the CONNECT request',
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

/** HBONE response status for an error raised while serving a CONNECT stream. */
export function hboneStatusFor(err: unknown): 400 | 401 | 503 {
  if (err instanceof MeshError) {
    if (err.code === 'MESH_ERR_HBONE_BAD_REQUEST') return 400;
    if (err.code === 'MESH_ERR_HBONE_DENIED') return 401;
  }
  return 503;
}

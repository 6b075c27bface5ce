/**
 * What a failed connection reports, by error: the response flag of Istio's TCP metrics and the
 * reason in the access log. Call sites name the error; this table decides.
 *
 * The flags are upstream ztunnel's ResponseFlags (src/proxy/metrics.rs: None "-",
 * AuthorizationPolicyDenied "DENY", ConnectionFailure "CONNECT"); as in its src/proxy/inbound.rs,
 * an authorization denial is DENY and a failed upstream connection CONNECT. Outbound, a peer that
 * denied the CONNECT (401) is DENY too; any other failure, listed or not, is CONNECT.
 */
import { isMeshError, type MeshErrorCode } from '@ambient/shared';
import { type ZtErrorCode, ZtunnelError } from './ztunnel-error.js';

/** The response_flags label of ztunnel's TCP metrics. */
export type ResponseFlags = '-' | 'DENY' | 'CONNECT';

export interface ConnectionFailure {
  readonly flag: Exclude<ResponseFlags, '-'>;
  /** Short, bounded label for logs. */
  readonly reason: string;
}

export const CONNECTION_FAILURES: Readonly<Partial<Record<MeshErrorCode | ZtErrorCode, ConnectionFailure>>> =
  Object.freeze({
    MESH_ERR_HBONE_DENIED: { flag: 'DENY', reason: 'denied' },
    MESH_ERR_HBONE_PEER_DENIED: { flag: 'DENY', reason: 'peer_denied' },
    MESH_ERR_HBONE_REFUSED: { flag: 'CONNECT', reason: 'peer_refused' },
    MESH_ERR_HBONE_UPSTREAM: { flag: 'CONNECT', reason: 'upstream' },
    MESH_ERR_HBONE_RESET: { flag: 'CONNECT', reason: 'reset' },
    MESH_ERR_HBONE_BAD_REQUEST: { flag: 'CONNECT', reason: 'bad_request' },
    MESH_ERR_TLS_HANDSHAKE: { flag: 'CONNECT', reason: 'tls_handshake' },
    MESH_ERR_PEER_IDENTITY: { flag: 'CONNECT', reason: 'peer_identity' },
    MESH_ERR_CA_UNAVAILABLE: { flag: 'CONNECT', reason: 'no_certificate' },
    MESH_ERR_CLOSED: { flag: 'CONNECT', reason: 'closed' },
    ZT_ERR_NO_ENDPOINT: { flag: 'CONNECT', reason: 'no_endpoint' },
    ZT_ERR_WAYPOINT_UNREACHABLE: { flag: 'CONNECT', reason: 'waypoint_unreachable' },
    ZT_ERR_UNKNOWN_HOSTNAME: { flag: 'CONNECT', reason: 'unknown_hostname' },
    ZT_ERR_NO_TARGET_PORT: { flag: 'CONNECT', reason: 'no_target_port' },
  });

/** For an error no entry names (a socket error, say): the connection failed. */
export const DEFAULT_CONNECTION_FAILURE: ConnectionFailure = Object.freeze({
  flag: 'CONNECT',
  reason: 'connect',
});

export function connectionFailureFor(err: unknown): ConnectionFailure {
  const code = isMeshError(err) || err instanceof ZtunnelError ? err.code : undefined;
  return (code && CONNECTION_FAILURES[code]) || DEFAULT_CONNECTION_FAILURE;
}

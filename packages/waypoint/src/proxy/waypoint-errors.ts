/**
 * The waypoint's one table of errors and local replies: for each, the HTTP status, the body, the
 * Envoy response flag (short strings as Envoy's source/common/stream_info/utility.h spells them)
 * and the downstream-error metric reason. Call sites name the error or the reply kind only; the
 * status, body, flag and reason come from here. docs/waypoint-errors.md describes the table.
 */
import http from 'node:http';
import { MeshError } from '@ambient/shared';

/** Envoy's response flags this proxy sets. */
export type ResponseFlag = 'NR' | 'UH' | 'UF' | 'UO' | 'URX' | 'DC' | 'UT' | 'UC' | 'UR' | 'NC' | 'DI' | 'FI';

/** Errors: the request is refused or failed by something other than its route's config. */
export type WaypointErrorCode =
  | 'WP_ERR_NO_CONTEXT'
  | 'WP_ERR_INTERNAL'
  | 'WP_ERR_TOO_MANY_HEADERS'
  | 'WP_ERR_HEADERS_TOO_LARGE'
  | 'WP_ERR_HEADERS_TIMEOUT'
  | 'WP_ERR_MALFORMED_REQUEST'
  | 'WP_ERR_DOWNSTREAM_RESET'
  | 'WP_ERR_UPGRADE_REFUSED'
  | 'WP_ERR_HTTP2_PROTOCOL'
  | 'WP_ERR_NO_FILTER_CHAIN'
  | 'WP_ERR_TCP_NO_ENDPOINT'
  | 'WP_ERR_TCP_UPSTREAM_CONNECT'
  | 'WP_ERR_RBAC_DENIED'
  | 'WP_ERR_NO_ROUTE'
  | 'WP_ERR_NO_CLUSTER'
  | 'WP_ERR_NO_HEALTHY_UPSTREAM'
  | 'WP_ERR_UPSTREAM_CONNECT'
  | 'WP_ERR_UPSTREAM_OVERFLOW'
  | 'WP_ERR_UPSTREAM_TIMEOUT'
  | 'WP_ERR_UPSTREAM_TERMINATED'
  | 'WP_ERR_UPSTREAM_RESET'
  | 'WP_ERR_UPSTREAM_RESET_MID_RESPONSE'
  | 'WP_ERR_DOWNSTREAM_GONE';

/** Replies the route's config asks for, and marks on requests that were otherwise served. */
export type LocalReplyKind =
  | 'fault_abort'
  | 'fault_abort_grpc'
  | 'fault_delay'
  | 'redirect'
  | 'direct_response'
  | 'retry_limit';

export type ReplyKey = WaypointErrorCode | LocalReplyKind;

/**
 * How the answer goes out: an HTTP response on the request; raw HTTP/1.1 bytes on the connection
 * (no request was parsed, the connection closes); a reset or close with no answer; a refused
 * HBONE CONNECT (its status is the HBONE server's for the MeshError code named); or no answer of
 * its own (a mark on a request answered otherwise).
 */
export type ReplyDelivery = 'response' | 'raw' | 'reset' | 'hbone' | 'mark';

export interface ReplySpec {
  /** The status answered (0: none); for a reply the config shapes, the default when it names none. */
  readonly status: number;
  readonly body: string;
  readonly flag?: ResponseFlag;
  /** `waypoint_downstream_errors_total{reason}` counts it when set. */
  readonly metricReason?: string;
  readonly delivery: ReplyDelivery;
  /** For `hbone` delivery: the MeshError code that carries the refusal to the HBONE server. */
  readonly meshCode?: 'MESH_ERR_HBONE_BAD_REQUEST' | 'MESH_ERR_HBONE_UPSTREAM';
}

/** Envoy's local reply bodies for upstream failures (router's "reset reason" wording). */
const RESET_BEFORE_HEADERS = 'upstream connect error or disconnect/reset before headers. reset reason:';

export const REPLIES: { readonly [K in ReplyKey]: ReplySpec } = {
  // Downstream: refused before routing.
  WP_ERR_NO_CONTEXT: { status: 500, body: '', delivery: 'response' },
  WP_ERR_INTERNAL: { status: 500, body: '', delivery: 'response' },
  WP_ERR_TOO_MANY_HEADERS: {
    status: 431,
    body: 'request header fields too many',
    metricReason: 'too_many_headers',
    delivery: 'response',
  },
  WP_ERR_HEADERS_TOO_LARGE: { status: 431, body: '', metricReason: 'headers_too_large', delivery: 'raw' },
  WP_ERR_HEADERS_TIMEOUT: { status: 408, body: '', metricReason: 'request_headers_timeout', delivery: 'raw' },
  WP_ERR_MALFORMED_REQUEST: { status: 400, body: '', metricReason: 'malformed_request', delivery: 'raw' },
  WP_ERR_DOWNSTREAM_RESET: { status: 0, body: '', metricReason: 'downstream_reset', delivery: 'reset' },
  WP_ERR_UPGRADE_REFUSED: { status: 403, body: '', metricReason: 'upgrade_refused', delivery: 'raw' },
  WP_ERR_HTTP2_PROTOCOL: { status: 0, body: '', metricReason: 'http2_protocol', delivery: 'reset' },
  WP_ERR_NO_FILTER_CHAIN: {
    status: 400,
    body: '',
    metricReason: 'no_filter_chain',
    delivery: 'hbone',
    meshCode: 'MESH_ERR_HBONE_BAD_REQUEST',
  },
  WP_ERR_TCP_NO_ENDPOINT: {
    status: 503,
    body: '',
    flag: 'UH',
    delivery: 'hbone',
    meshCode: 'MESH_ERR_HBONE_UPSTREAM',
  },
  WP_ERR_TCP_UPSTREAM_CONNECT: {
    status: 503,
    body: '',
    flag: 'UF',
    delivery: 'hbone',
    meshCode: 'MESH_ERR_HBONE_UPSTREAM',
  },
  // Policy and routing.
  WP_ERR_RBAC_DENIED: { status: 403, body: 'RBAC: access denied', delivery: 'response' },
  WP_ERR_NO_ROUTE: { status: 404, body: '', flag: 'NR', delivery: 'response' },
  WP_ERR_NO_CLUSTER: { status: 503, body: '', flag: 'NC', delivery: 'response' },
  // Upstream.
  WP_ERR_NO_HEALTHY_UPSTREAM: { status: 503, body: 'no healthy upstream', flag: 'UH', delivery: 'response' },
  WP_ERR_UPSTREAM_CONNECT: {
    status: 503,
    body: `${RESET_BEFORE_HEADERS} connection failure`,
    flag: 'UF',
    delivery: 'response',
  },
  WP_ERR_UPSTREAM_OVERFLOW: {
    status: 503,
    body: `${RESET_BEFORE_HEADERS} overflow`,
    flag: 'UO',
    delivery: 'response',
  },
  WP_ERR_UPSTREAM_TIMEOUT: {
    status: 504,
    body: 'upstream request timeout',
    flag: 'UT',
    delivery: 'response',
  },
  WP_ERR_UPSTREAM_TERMINATED: {
    status: 503,
    body: `${RESET_BEFORE_HEADERS} connection termination`,
    flag: 'UC',
    delivery: 'response',
  },
  WP_ERR_UPSTREAM_RESET: {
    status: 503,
    body: `${RESET_BEFORE_HEADERS} remote reset`,
    flag: 'UR',
    delivery: 'response',
  },
  // After the response started the client can only see a reset, as Envoy gives it.
  WP_ERR_UPSTREAM_RESET_MID_RESPONSE: { status: 0, body: '', flag: 'UR', delivery: 'reset' },
  // The client went away: nobody to answer; logged with status 0.
  WP_ERR_DOWNSTREAM_GONE: { status: 0, body: '', flag: 'DC', delivery: 'reset' },
  // Local replies the route config asks for.
  fault_abort: { status: 503, body: 'fault filter abort', flag: 'FI', delivery: 'response' },
  fault_abort_grpc: { status: 200, body: '', flag: 'FI', delivery: 'response' },
  fault_delay: { status: 0, body: '', flag: 'DI', delivery: 'mark' },
  redirect: { status: 301, body: '', delivery: 'response' },
  direct_response: { status: 200, body: '', delivery: 'response' },
  retry_limit: { status: 0, body: '', flag: 'URX', delivery: 'mark' },
};

export function replyFor(key: ReplyKey): ReplySpec {
  return REPLIES[key];
}

/** An error of the waypoint's, with its stable code; its reply comes from the table. */
export class WaypointError extends Error {
  constructor(
    readonly code: WaypointErrorCode,
    message?: string,
    options?: ErrorOptions,
  ) {
    super(message ?? code, options);
    this.name = 'WaypointError';
  }

  get reply(): ReplySpec {
    return REPLIES[this.code];
  }
}

/**
 * The bytes of a `raw` reply: written straight on a connection where no request was parsed (or
 * none may be), so the connection closes after it.
 */
export function rawReply(key: ReplyKey): string {
  const { status, body } = REPLIES[key];
  return `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
}

/**
 * A refused HBONE CONNECT: the HBONE server answers a MeshError by its code, so the table's
 * `meshCode` carries the refusal (and its status) there.
 */
export function hboneRefusal(key: WaypointErrorCode, message: string, options?: ErrorOptions): MeshError {
  const meshCode = REPLIES[key].meshCode;
  if (!meshCode) throw new TypeError(`${key} is not refused over HBONE`);
  return new MeshError(meshCode, message, options);
}

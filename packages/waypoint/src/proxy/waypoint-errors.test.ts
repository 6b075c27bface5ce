import { hboneStatusFor, MeshError } from '@ambient/shared';
import { describe, expect, it } from 'vitest';
import { UpstreamConnectError } from './upstream-pool.js';
import {
  hboneRefusal,
  REPLIES,
  type ReplyKey,
  type ReplySpec,
  rawReply,
  replyFor,
  WaypointError,
  type WaypointErrorCode,
} from './waypoint-errors.js';

const RESET = 'upstream connect error or disconnect/reset before headers. reset reason:';

/**
 * Every entry as Envoy answers it (flags: source/common/stream_info/utility.h; bodies: the router's
 * and the RBAC filter's local replies). A new entry fails here until it is listed.
 */
const EXPECTED: { readonly [K in ReplyKey]: ReplySpec } = {
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
  WP_ERR_RBAC_DENIED: { status: 403, body: 'RBAC: access denied', delivery: 'response' },
  WP_ERR_NO_ROUTE: { status: 404, body: '', flag: 'NR', delivery: 'response' },
  WP_ERR_NO_CLUSTER: { status: 503, body: '', flag: 'NC', delivery: 'response' },
  WP_ERR_NO_HEALTHY_UPSTREAM: { status: 503, body: 'no healthy upstream', flag: 'UH', delivery: 'response' },
  WP_ERR_UPSTREAM_CONNECT: {
    status: 503,
    body: `${RESET} connection failure`,
    flag: 'UF',
    delivery: 'response',
  },
  WP_ERR_UPSTREAM_OVERFLOW: { status: 503, body: `${RESET} overflow`, flag: 'UO', delivery: 'response' },
  WP_ERR_UPSTREAM_TIMEOUT: {
    status: 504,
    body: 'upstream request timeout',
    flag: 'UT',
    delivery: 'response',
  },
  WP_ERR_UPSTREAM_TERMINATED: {
    status: 503,
    body: `${RESET} connection termination`,
    flag: 'UC',
    delivery: 'response',
  },
  WP_ERR_UPSTREAM_RESET: { status: 503, body: `${RESET} remote reset`, flag: 'UR', delivery: 'response' },
  WP_ERR_UPSTREAM_RESET_MID_RESPONSE: { status: 0, body: '', flag: 'UR', delivery: 'reset' },
  WP_ERR_DOWNSTREAM_GONE: { status: 0, body: '', flag: 'DC', delivery: 'reset' },
  fault_abort: { status: 503, body: 'fault filter abort', flag: 'FI', delivery: 'response' },
  fault_abort_grpc: { status: 200, body: '', flag: 'FI', delivery: 'response' },
  fault_delay: { status: 0, body: '', flag: 'DI', delivery: 'mark' },
  redirect: { status: 301, body: '', delivery: 'response' },
  direct_response: { status: 200, body: '', delivery: 'response' },
  retry_limit: { status: 0, body: '', flag: 'URX', delivery: 'mark' },
};

const KEYS = Object.keys(EXPECTED) as ReplyKey[];

describe('the waypoint reply table', () => {
  it('holds exactly the listed entries', () => {
    expect(Object.keys(REPLIES).sort()).toEqual([...KEYS].sort());
  });

  it.each(KEYS)('%s: status, body, flag, metric reason and delivery', (key) => {
    expect(replyFor(key)).toEqual(EXPECTED[key]);
  });

  it('uses only Envoy flag strings, and error codes of the WP_ERR_ form', () => {
    const envoyFlags = new Set(['NR', 'UH', 'UF', 'UO', 'URX', 'DC', 'UT', 'UC', 'UR', 'NC', 'DI', 'FI']);
    for (const key of KEYS) {
      const { flag } = REPLIES[key];
      if (flag) expect(envoyFlags.has(flag)).toBe(true);
      if (key.startsWith('WP_')) expect(key).toMatch(/^WP_ERR_[A-Z0-9_]+$/);
    }
  });

  it.each(KEYS.filter((k) => REPLIES[k].delivery === 'raw'))(
    '%s: raw bytes carry the status line and close the connection',
    (key) => {
      const raw = rawReply(key);
      expect(raw.startsWith(`HTTP/1.1 ${REPLIES[key].status} `)).toBe(true);
      expect(raw).toContain('\r\nconnection: close\r\n');
      expect(raw.endsWith(`content-length: 0\r\nconnection: close\r\n\r\n`)).toBe(true);
    },
  );

  it('writes the raw replies Node answered before, byte for byte', () => {
    expect(rawReply('WP_ERR_HEADERS_TOO_LARGE')).toBe(
      'HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n',
    );
    expect(rawReply('WP_ERR_HEADERS_TIMEOUT')).toBe(
      'HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n',
    );
    expect(rawReply('WP_ERR_MALFORMED_REQUEST')).toBe(
      'HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n',
    );
    expect(rawReply('WP_ERR_UPGRADE_REFUSED')).toBe(
      'HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n',
    );
  });

  it.each(KEYS.filter((k) => REPLIES[k].delivery === 'hbone'))(
    '%s: refused over HBONE with the status of its table entry',
    (key) => {
      const err = hboneRefusal(key as WaypointErrorCode, 'x');
      expect(err).toBeInstanceOf(MeshError);
      expect(err.code).toBe(REPLIES[key].meshCode);
      expect(hboneStatusFor(err)).toBe(REPLIES[key].status);
    },
  );

  it('refuses to make an HBONE refusal of an error answered otherwise', () => {
    expect(() => hboneRefusal('WP_ERR_NO_ROUTE', 'x')).toThrow(TypeError);
  });

  it('gives errors a stable code and their table entry', () => {
    const err = new WaypointError('WP_ERR_UPSTREAM_TIMEOUT');
    expect(err.code).toBe('WP_ERR_UPSTREAM_TIMEOUT');
    expect(err.reply).toBe(REPLIES.WP_ERR_UPSTREAM_TIMEOUT);
    const connect = new UpstreamConnectError('refused');
    expect(connect).toBeInstanceOf(WaypointError);
    expect(connect.code).toBe('WP_ERR_UPSTREAM_CONNECT');
    expect(connect.reply.flag).toBe('UF');
  });
});

import { HboneRefusedError, MESH_ERRORS, MeshError, type MeshErrorCode } from '@ambient/shared';
import { describe, expect, it } from 'vitest';
import {
  CONNECTION_FAILURES,
  connectionFailureFor,
  DEFAULT_CONNECTION_FAILURE,
} from './connection-failures.js';
import { ZT_ERRORS, type ZtErrorCode, ZtunnelError } from './ztunnel-error.js';

const errorFor = (code: string) =>
  code in ZT_ERRORS ? new ZtunnelError(code as ZtErrorCode, 'x') : new MeshError(code as MeshErrorCode, 'x');

describe('CONNECTION_FAILURES', () => {
  it('gives every listed error its response flag and reason', () => {
    // The whole table, spelled out: a changed entry must change this test.
    expect(CONNECTION_FAILURES).toEqual({
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
    for (const [code, failure] of Object.entries(CONNECTION_FAILURES)) {
      expect(connectionFailureFor(errorFor(code))).toBe(failure);
    }
  });

  it('lists only codes that exist, and every ztunnel code', () => {
    for (const code of Object.keys(CONNECTION_FAILURES))
      expect(code in MESH_ERRORS || code in ZT_ERRORS).toBe(true);
    for (const code of Object.keys(ZT_ERRORS)) expect(CONNECTION_FAILURES).toHaveProperty(code);
  });

  it('reasons are distinct, so a log line names its cause', () => {
    const reasons = Object.values(CONNECTION_FAILURES).map((f) => f.reason);
    expect(new Set(reasons).size).toBe(reasons.length);
    expect(reasons).not.toContain(DEFAULT_CONNECTION_FAILURE.reason);
  });

  it('a peer that answers 401 is a denial; any other refusal is a connect failure', () => {
    expect(connectionFailureFor(new HboneRefusedError(401)).flag).toBe('DENY');
    expect(connectionFailureFor(new HboneRefusedError(503)).flag).toBe('CONNECT');
    expect(connectionFailureFor(new HboneRefusedError(400)).flag).toBe('CONNECT');
  });

  it('an unlisted code, a plain error or a non-error is a connect failure', () => {
    expect(connectionFailureFor(new MeshError('MESH_ERR_INVALID_CSR'))).toBe(DEFAULT_CONNECTION_FAILURE);
    const econnrefused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(connectionFailureFor(econnrefused)).toBe(DEFAULT_CONNECTION_FAILURE);
    expect(connectionFailureFor(undefined)).toBe(DEFAULT_CONNECTION_FAILURE);
    expect(DEFAULT_CONNECTION_FAILURE).toEqual({ flag: 'CONNECT', reason: 'connect' });
  });
});

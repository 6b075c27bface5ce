import { describe, expect, it } from 'vitest';
import {
  HBONE_CLIENT_REFUSAL_REASONS,
  HBONE_SERVER_DEFAULT_REPLY,
  HBONE_SERVER_REPLIES,
  hboneClientRefusalReason,
  hboneRefusalCode,
  hboneServerReplyFor,
  hboneStatusFor,
  MESH_ERRORS,
  MeshError,
  type MeshErrorCode,
} from './errors.js';

const codes = Object.keys(MESH_ERRORS) as MeshErrorCode[];

describe('HBONE server replies', () => {
  it('maps every listed error to its status, reason and stream-error counting', () => {
    // The whole table, spelled out: a changed entry must change this test.
    expect(HBONE_SERVER_REPLIES).toEqual({
      MESH_ERR_HBONE_NOT_CONNECT: { status: 400, reason: 'method', streamError: true },
      MESH_ERR_HBONE_BAD_REQUEST: { status: 400, reason: 'authority', streamError: true },
      MESH_ERR_HBONE_FORBIDDEN_PORT: { status: 503, reason: 'forbidden_port', streamError: true },
      MESH_ERR_HBONE_DENIED: { status: 401, reason: 'denied', streamError: false },
      MESH_ERR_HBONE_UPSTREAM: { status: 503, reason: 'upstream', streamError: false },
    });
    for (const [code, reply] of Object.entries(HBONE_SERVER_REPLIES)) {
      const err = new MeshError(code as MeshErrorCode, 'detail');
      expect(hboneServerReplyFor(err)).toBe(reply);
      expect(hboneStatusFor(err)).toBe(reply.status);
    }
  });

  it('answers 503 for every other code and for errors that are not MeshErrors', () => {
    for (const code of codes.filter((c) => !(c in HBONE_SERVER_REPLIES))) {
      expect(hboneServerReplyFor(new MeshError(code))).toBe(HBONE_SERVER_DEFAULT_REPLY);
    }
    expect(HBONE_SERVER_DEFAULT_REPLY).toEqual({ status: 503, reason: 'upstream', streamError: false });
    expect(hboneStatusFor(new Error('ECONNREFUSED'))).toBe(503);
    expect(hboneStatusFor(undefined)).toBe(503);
  });

  it('counts as stream errors only what the client should not have sent: the 400s and a call to a capture port', () => {
    // A call to a capture port answers 503 as upstream does, but it is the client's fault, not the upstream's.
    const clientFaults = [
      'MESH_ERR_HBONE_NOT_CONNECT',
      'MESH_ERR_HBONE_BAD_REQUEST',
      'MESH_ERR_HBONE_FORBIDDEN_PORT',
    ];
    for (const [code, reply] of Object.entries(HBONE_SERVER_REPLIES)) {
      expect(reply.streamError).toBe(clientFaults.includes(code));
      if (reply.status === 400) expect(reply.streamError).toBe(true);
    }
  });
});

describe('HBONE client refusals', () => {
  it('a 401 from the peer is MESH_ERR_HBONE_PEER_DENIED, any other status MESH_ERR_HBONE_REFUSED', () => {
    expect(hboneRefusalCode(401)).toBe('MESH_ERR_HBONE_PEER_DENIED');
    for (const status of [400, 403, 500, 503])
      expect(hboneRefusalCode(status)).toBe('MESH_ERR_HBONE_REFUSED');
  });

  it('labels every listed connect error with its reason', () => {
    expect(HBONE_CLIENT_REFUSAL_REASONS).toEqual({
      MESH_ERR_PEER_IDENTITY: 'identity',
      MESH_ERR_HBONE_UPSTREAM: 'connect',
    });
    for (const [code, reason] of Object.entries(HBONE_CLIENT_REFUSAL_REASONS)) {
      expect(hboneClientRefusalReason(new MeshError(code as MeshErrorCode))).toBe(reason);
    }
  });

  it('labels other connect errors by what the TLS stack said about the certificate', () => {
    const tlsFailure = (cause?: string) =>
      new MeshError('MESH_ERR_TLS_HANDSHAKE', 'x', {
        cause: cause === undefined ? undefined : Object.assign(new Error(cause), { code: cause }),
      });
    expect(hboneClientRefusalReason(tlsFailure('CERT_HAS_EXPIRED'))).toBe('expired_cert');
    expect(hboneClientRefusalReason(tlsFailure('UNABLE_TO_GET_ISSUER_CERT'))).toBe('untrusted_cert');
    expect(hboneClientRefusalReason(tlsFailure('CERT_SIGNATURE_FAILURE'))).toBe('untrusted_cert');
    expect(hboneClientRefusalReason(tlsFailure('ERR_SSL_WRONG_VERSION_NUMBER'))).toBe('tls_handshake');
    expect(hboneClientRefusalReason(tlsFailure())).toBe('tls_handshake');
    expect(hboneClientRefusalReason(new MeshError('MESH_ERR_CA_UNAVAILABLE'))).toBe('tls_handshake');
  });
});

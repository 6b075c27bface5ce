import { describe, expect, it } from 'vitest';
import {
  decodeZdsAck,
  decodeZdsHello,
  decodeZdsRequest,
  encodeZdsAck,
  encodeZdsHello,
  encodeZdsRequest,
  ZdsVersion,
} from './istio-zds.js';

// Protobuf wire bytes written by hand from the field numbers of istio/ztunnel proto/zds.proto
// (WorkloadRequest{add=1, del=2, snapshot_sent=3, keep=5}, AddWorkload{uid=1, workload_info=2},
// WorkloadInfo{name=1, namespace=2, service_account=3}, DelWorkload{uid=2}, KeepWorkload{uid=1},
// WorkloadResponse{ack=1}, Ack{error=1}, ZdsHello{version=1}), independently of protobufjs.
function str(field: number, s: string): number[] {
  const b = [...Buffer.from(s)];
  return [(field << 3) | 2, b.length, ...b];
}
function msg(field: number, body: number[]): number[] {
  return [(field << 3) | 2, body.length, ...body];
}
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

const ADD = msg(1, [
  ...str(1, 'uid-1'),
  ...msg(2, [...str(1, 'web'), ...str(2, 'shop'), ...str(3, 'web-sa')]),
]);
const DEL = msg(2, str(2, 'uid-1'));
const KEEP = msg(5, str(1, 'uid-2'));
const SNAPSHOT_SENT = [0x1a, 0x00];

describe('ZDS codec', () => {
  it('encodes each WorkloadRequest exactly as upstream field numbers say', () => {
    expect(
      hex(
        encodeZdsRequest({
          kind: 'add',
          uid: 'uid-1',
          workloadInfo: { name: 'web', namespace: 'shop', serviceAccount: 'web-sa' },
        }),
      ),
    ).toBe(hex(Uint8Array.from(ADD)));
    expect(hex(encodeZdsRequest({ kind: 'del', uid: 'uid-1' }))).toBe(hex(Uint8Array.from(DEL)));
    expect(hex(encodeZdsRequest({ kind: 'keep', uid: 'uid-2' }))).toBe(hex(Uint8Array.from(KEEP)));
    expect(hex(encodeZdsRequest({ kind: 'snapshotSent' }))).toBe(hex(Uint8Array.from(SNAPSHOT_SENT)));
  });

  it('decodes upstream bytes back to the same requests', () => {
    expect(decodeZdsRequest(Uint8Array.from(ADD))).toEqual({
      ok: true,
      value: {
        kind: 'add',
        uid: 'uid-1',
        workloadInfo: { name: 'web', namespace: 'shop', serviceAccount: 'web-sa' },
      },
    });
    expect(decodeZdsRequest(Uint8Array.from(DEL))).toEqual({
      ok: true,
      value: { kind: 'del', uid: 'uid-1' },
    });
    expect(decodeZdsRequest(Uint8Array.from(KEEP))).toEqual({
      ok: true,
      value: { kind: 'keep', uid: 'uid-2' },
    });
    expect(decodeZdsRequest(Uint8Array.from(SNAPSHOT_SENT))).toEqual({
      ok: true,
      value: { kind: 'snapshotSent' },
    });
  });

  it('keeps an add without workload_info distinguishable (ztunnel refuses it)', () => {
    const r = decodeZdsRequest(Uint8Array.from(msg(1, str(1, 'u'))));
    expect(r).toEqual({ ok: true, value: { kind: 'add', uid: 'u' } });
  });

  it('round-trips the hello and acks', () => {
    expect(hex(encodeZdsHello({ version: ZdsVersion.V1 }))).toBe('0801');
    expect(decodeZdsHello(Uint8Array.from([0x08, 0x01]))).toEqual({ ok: true, value: { version: 1 } });
    expect(hex(encodeZdsAck({ error: '' }))).toBe('0a00');
    expect(hex(encodeZdsAck({ error: 'no' }))).toBe(hex(Uint8Array.from(msg(1, str(1, 'no')))));
    expect(decodeZdsAck(Uint8Array.from(msg(1, str(1, 'boom'))))).toEqual({
      ok: true,
      value: { error: 'boom' },
    });
    expect(decodeZdsAck(Uint8Array.from([0x0a, 0x00]))).toEqual({ ok: true, value: { error: '' } });
  });

  it('names the problem of garbage, an empty request and a missing uid', () => {
    const garbage = decodeZdsRequest(Uint8Array.from([0xff, 0xff, 0xff]));
    expect(garbage.ok).toBe(false);
    expect(!garbage.ok && garbage.problems[0]?.message).toMatch(/not a WorkloadRequest/);
    expect(decodeZdsRequest(new Uint8Array(0))).toEqual({
      ok: false,
      problems: [{ path: 'payload', message: 'no payload' }],
    });
    expect(decodeZdsRequest(Uint8Array.from(msg(2, [])))).toEqual({
      ok: false,
      problems: [{ path: 'del.uid', message: 'is required' }],
    });
    expect(decodeZdsAck(new Uint8Array(0))).toEqual({
      ok: false,
      problems: [{ path: 'payload', message: 'no ack' }],
    });
  });
});

/**
 * `istio.workload.zds` (proto/istio/zds/zds.proto, vendored from istio/ztunnel proto/zds.proto):
 * what the CNI node agent and ztunnel say to each other over the ZDS socket. One message per
 * SOCK_SEQPACKET packet; an AddWorkload carries the pod's network namespace as a file descriptor
 * beside it (SCM_RIGHTS), which the transport handles, not this codec.
 *
 * Both sides use these types: the CNI side encodes requests and decodes hellos and acks, ztunnel
 * the other way round. Decoders return every problem with its field path.
 */
import type protobuf from 'protobufjs';
import { fail, ok, type Problem, type Result } from '../result.js';
import { loadProtos } from '../xds/xds-protos.js';

export const ZDS_PROTO_FILE = 'istio/zds/zds.proto';

/** zds.proto `Version`. ztunnel announces V1 in its ZdsHello. */
export const ZdsVersion = { NOT_USED: 0, V1: 1 } as const;

/**
 * Upstream's message buffers are 1024 bytes on both sides (ztunnel src/inpod/protocol.rs,
 * istio cni/pkg/nodeagent/ztunnelserver_linux.go): a longer message arrives truncated there.
 */
export const ZDS_MAX_MESSAGE_BYTES = 1024;

export interface ZdsHello {
  readonly version: number; // 1
}

export interface ZdsWorkloadInfo {
  readonly name: string; // 1
  readonly namespace: string; // 2
  readonly serviceAccount: string; // 3
}

/** WorkloadRequest's oneof `payload`, one variant per member. */
export type ZdsRequest =
  /** add = 1; the pod's netns travels beside it. workload_info is required by ztunnel. */
  | { readonly kind: 'add'; readonly uid: string; readonly workloadInfo?: ZdsWorkloadInfo }
  /** keep = 5: only before snapshot-sent, a pod whose netns the agent could not find. */
  | { readonly kind: 'keep'; readonly uid: string }
  /** del = 2 (DelWorkload.uid is field 2). */
  | { readonly kind: 'del'; readonly uid: string }
  /** snapshot_sent = 3. */
  | { readonly kind: 'snapshotSent' };

/** WorkloadResponse: an Ack, whose non-empty `error` refuses the request. */
export interface ZdsAck {
  readonly error: string;
}

let types: { hello: protobuf.Type; request: protobuf.Type; response: protobuf.Type } | undefined;

function zdsTypes() {
  if (!types) {
    const root = loadProtos([ZDS_PROTO_FILE]);
    types = {
      hello: root.lookupType('istio.workload.zds.ZdsHello'),
      request: root.lookupType('istio.workload.zds.WorkloadRequest'),
      response: root.lookupType('istio.workload.zds.WorkloadResponse'),
    };
  }
  return types;
}

function decodeWith<T>(
  type: protobuf.Type,
  bytes: Uint8Array,
  read: (m: Record<string, unknown>) => Result<T>,
) {
  let message: Record<string, unknown>;
  try {
    message = type.decode(bytes) as unknown as Record<string, unknown>;
  } catch (err) {
    return fail<T>({ path: '', message: `not a ${type.name}: ${(err as Error).message}` });
  }
  return read(message);
}

export function encodeZdsHello(hello: ZdsHello): Uint8Array {
  return zdsTypes().hello.encode({ version: hello.version }).finish();
}

export function decodeZdsHello(bytes: Uint8Array): Result<ZdsHello> {
  return decodeWith(zdsTypes().hello, bytes, (m) => ok({ version: m.version as number }));
}

export function encodeZdsRequest(request: ZdsRequest): Uint8Array {
  const t = zdsTypes().request;
  switch (request.kind) {
    case 'add':
      return t
        .encode({
          add: {
            uid: request.uid,
            ...(request.workloadInfo && { workloadInfo: { ...request.workloadInfo } }),
          },
        })
        .finish();
    case 'keep':
      return t.encode({ keep: { uid: request.uid } }).finish();
    case 'del':
      return t.encode({ del: { uid: request.uid } }).finish();
    case 'snapshotSent':
      return t.encode({ snapshotSent: {} }).finish();
  }
}

function uidOf(m: unknown, path: string, problems: Problem[]): string {
  const uid = (m as { uid?: unknown } | null)?.uid;
  if (typeof uid !== 'string' || uid === '') problems.push({ path: `${path}.uid`, message: 'is required' });
  return typeof uid === 'string' ? uid : '';
}

export function decodeZdsRequest(bytes: Uint8Array): Result<ZdsRequest> {
  return decodeWith<ZdsRequest>(zdsTypes().request, bytes, (m) => {
    const problems: Problem[] = [];
    let request: ZdsRequest | undefined;
    switch (m.payload) {
      case 'add': {
        const add = m.add as { workloadInfo?: Record<string, string> | null };
        const uid = uidOf(add, 'add', problems);
        const wi = add.workloadInfo;
        request = {
          kind: 'add',
          uid,
          ...(wi && {
            workloadInfo: {
              name: wi.name ?? '',
              namespace: wi.namespace ?? '',
              serviceAccount: wi.serviceAccount ?? '',
            },
          }),
        };
        break;
      }
      case 'keep':
        request = { kind: 'keep', uid: uidOf(m.keep, 'keep', problems) };
        break;
      case 'del':
        request = { kind: 'del', uid: uidOf(m.del, 'del', problems) };
        break;
      case 'snapshotSent':
        request = { kind: 'snapshotSent' };
        break;
      default:
        problems.push({ path: 'payload', message: 'no payload' });
    }
    return problems.length > 0 || !request ? fail(problems) : ok(request);
  });
}

export function encodeZdsAck(ack: ZdsAck): Uint8Array {
  return zdsTypes()
    .response.encode({ ack: { error: ack.error } })
    .finish();
}

export function decodeZdsAck(bytes: Uint8Array): Result<ZdsAck> {
  return decodeWith<ZdsAck>(zdsTypes().response, bytes, (m) => {
    if (m.payload !== 'ack') return fail({ path: 'payload', message: 'no ack' });
    return ok({ error: ((m.ack as { error?: string }).error ?? '') as string });
  });
}

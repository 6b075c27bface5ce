/**
 * Who may open an xDS stream as what. A node agent's token opens ztunnel streams for its own node
 * only. A workload token (a service account's) opens only a waypoint stream, node id
 * `router~<ip>~<pod>.<namespace>~...`, for a pod that runs as that service account and is a
 * waypoint: labelled gateway.networking.k8s.io/gateway-name with an istio-waypoint Gateway of its
 * namespace. The stream then sees that gateway's resources and nothing else.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type protobuf from 'protobufjs';
import { GATEWAY_NAME_LABEL, WAYPOINT_CLASS } from '../ambient/mesh-model.js';
import type { Authentication, Authenticator, Caller } from '../auth/token-authenticator.js';
import type { GatewayObject, PodObject } from '../manifests/kube-objects.js';
import type { ControlPlaneMetrics } from '../telemetry/controlplane-metrics.js';

/** Where admission looks pods and gateways up (the control plane's current objects). */
export interface ProxyDirectory {
  pod(namespace: string, name: string): PodObject | undefined;
  gateway(namespace: string, name: string): GatewayObject | undefined;
}

export type ProxyAdmission =
  | { readonly ok: true; readonly kind: 'ztunnel'; readonly scope: '' }
  | {
      readonly ok: true;
      readonly kind: 'waypoint';
      /** The snapshot scope of the gateway's resources. */
      readonly scope: string;
      /** The Gateway, `namespace/name`. */
      readonly gateway: string;
    }
  | {
      readonly ok: false;
      readonly code: grpc.status;
      /** Metric label of the refusal. */
      readonly reason: 'node' | 'waypoint';
      readonly details: string;
    };

export interface RouterNodeId {
  readonly ip: string;
  readonly pod: string;
  readonly namespace: string;
}

/** The snapshot scope holding a gateway's resources. */
export function waypointScope(namespace: string, name: string): string {
  return `waypoint:${namespace}/${name}`;
}

/** `router~<ip>~<pod>.<namespace>~<namespace>.svc.<domain>`; pod names may hold dots, namespaces not. */
export function parseRouterNodeId(id: string): RouterNodeId | undefined {
  const parts = id.split('~');
  if (parts.length !== 4 || parts[0] !== 'router') return undefined;
  const podPart = parts[2] ?? '';
  const dot = podPart.lastIndexOf('.');
  if (!parts[1] || dot <= 0 || dot === podPart.length - 1) return undefined;
  return { ip: parts[1], pod: podPart.slice(0, dot), namespace: podPart.slice(dot + 1) };
}

function refuse(code: grpc.status, reason: 'node' | 'waypoint', details: string): ProxyAdmission {
  return { ok: false, code, reason, details };
}

export function admitProxy(
  caller: Caller,
  nodeId: string,
  metadata: Readonly<Record<string, string>>,
  directory: ProxyDirectory | undefined,
): ProxyAdmission {
  if (!nodeId.startsWith('router~')) {
    if (caller.kind === 'workload')
      return refuse(
        grpc.status.PERMISSION_DENIED,
        'waypoint',
        `a workload token (${caller.namespace}/${caller.serviceAccount}) may only open a waypoint stream (node id router~...), not ${nodeId}`,
      );
    // A node agent may only speak for the node its token is bound to.
    if (metadata.NODE_NAME !== caller.node)
      return refuse(
        grpc.status.PERMISSION_DENIED,
        'node',
        `token is bound to node ${caller.node}, not ${metadata.NODE_NAME ?? '(none)'}`,
      );
    return { ok: true, kind: 'ztunnel', scope: '' };
  }
  const id = parseRouterNodeId(nodeId);
  if (!id)
    return refuse(
      grpc.status.INVALID_ARGUMENT,
      'waypoint',
      `node id ${nodeId} is not router~<ip>~<pod>.<namespace>~<namespace>.svc.<domain>`,
    );
  if (caller.kind === 'ztunnel')
    return refuse(
      grpc.status.PERMISSION_DENIED,
      'waypoint',
      `a node agent token (node ${caller.node}) may not open a waypoint stream; use the waypoint's service account token`,
    );
  if (!directory)
    return refuse(grpc.status.UNIMPLEMENTED, 'waypoint', 'this server does not serve waypoints');
  const ref = `${id.namespace}/${id.pod}`;
  const pod = directory.pod(id.namespace, id.pod);
  if (!pod) return refuse(grpc.status.PERMISSION_DENIED, 'waypoint', `no pod ${ref} is known`);
  if (caller.namespace !== id.namespace || caller.serviceAccount !== pod.serviceAccountName)
    return refuse(
      grpc.status.PERMISSION_DENIED,
      'waypoint',
      `token is for ${caller.namespace}/${caller.serviceAccount}, but pod ${ref} runs as ${id.namespace}/${pod.serviceAccountName}`,
    );
  // A pod-bound token (TokenReview) speaks for its own pod only, not for a sibling replica.
  if (caller.pod && (caller.pod.name !== id.pod || (pod.metadata.uid && pod.metadata.uid !== caller.pod.uid)))
    return refuse(
      grpc.status.PERMISSION_DENIED,
      'waypoint',
      `token is bound to pod ${id.namespace}/${caller.pod.name} (${caller.pod.uid}), not ${ref}${pod.metadata.uid ? ` (${pod.metadata.uid})` : ''}`,
    );
  const gatewayName = pod.metadata.labels[GATEWAY_NAME_LABEL];
  if (!gatewayName)
    return refuse(
      grpc.status.PERMISSION_DENIED,
      'waypoint',
      `pod ${ref} is not a waypoint: it has no ${GATEWAY_NAME_LABEL} label`,
    );
  const gw = directory.gateway(id.namespace, gatewayName);
  if (!gw || gw.gatewayClassName !== WAYPOINT_CLASS)
    return refuse(
      grpc.status.PERMISSION_DENIED,
      'waypoint',
      `pod ${ref} is not a waypoint: ${id.namespace}/${gatewayName} is not a Gateway of class ${WAYPOINT_CLASS}`,
    );
  return {
    ok: true,
    kind: 'waypoint',
    scope: waypointScope(id.namespace, gatewayName),
    gateway: `${id.namespace}/${gatewayName}`,
  };
}

/**
 * The caller of a new xDS stream (Delta or state of the world), from its bearer token; a stream
 * without a valid one is ended UNAUTHENTICATED, counted and logged, and undefined returned.
 */
export async function authenticateStream(
  call: grpc.ServerDuplexStream<Buffer, Buffer>,
  authenticator: Authenticator,
  metrics: ControlPlaneMetrics,
  logger: Logger,
): Promise<Caller | undefined> {
  let auth: Authentication;
  try {
    auth = await authenticator.authenticate(call.metadata.get('authorization')[0]?.toString());
  } catch (err) {
    auth = {
      ok: false,
      reason: 'review_error',
      problems: [{ path: 'authorization', message: (err as Error).message }],
    };
  }
  // Requests wait unread in the stream meanwhile; a client gone by now needs nothing more.
  if (call.cancelled) return undefined;
  if (auth.ok) return auth.value;
  metrics.authFailures.inc({ reason: auth.reason ?? 'token' });
  logger.warn({ peer: call.getPeer(), problem: auth.problems[0]?.message }, 'xDS stream refused');
  call.emit('error', {
    code: grpc.status.UNAUTHENTICATED,
    details: `authentication failed: ${auth.problems[0]?.message}`,
  });
  return undefined;
}

/** A request's Node as decoded by protobufjs. */
export interface WireNode {
  id?: string;
  metadata?: { fields?: Record<string, { stringValue?: string }> };
}

/** The node id and the string values of the node metadata. */
export function nodeIdentity(node: WireNode): { id: string; metadata: Record<string, string> } {
  return {
    id: node.id ?? '',
    metadata: Object.fromEntries(
      Object.entries(node.metadata?.fields ?? {}).map(([k, v]) => [k, v.stringValue ?? '']),
    ),
  };
}

/** What both ADS servers keep of a stream for its lifecycle. */
export interface AdsStream {
  readonly id: number;
  readonly call: grpc.ServerDuplexStream<Buffer, Buffer>;
  nodeId: string;
}

/**
 * The lifecycle both ADS servers (Delta and state of the world) give an authenticated stream:
 * counted while open; each message decoded as `requestType` and handed to `onRequest`, an
 * undecodable one refused INVALID_ARGUMENT; forgotten once when it ends, fails or is cancelled.
 * Messages still queued after a refusal are dropped.
 */
export class AdsStreams<C extends AdsStream> {
  readonly connections = new Map<number, C>();

  constructor(
    private readonly requestType: protobuf.Type,
    private readonly metrics: ControlPlaneMetrics,
    private readonly logger: Logger,
  ) {}

  serve<R>(conn: C, onRequest: (conn: C, req: R) => void): void {
    const { call } = conn;
    this.connections.set(conn.id, conn);
    this.metrics.connectedProxies.inc();
    const done = () => {
      if (!this.connections.delete(conn.id)) return;
      this.metrics.connectedProxies.dec();
      this.logger.debug({ id: conn.id, node: conn.nodeId }, 'xDS stream closed');
    };
    call.on('data', (buf: Buffer) => {
      if (!this.connections.has(conn.id)) return;
      let req: R;
      try {
        req = this.requestType.toObject(this.requestType.decode(buf), {
          arrays: true,
          objects: true,
          defaults: true,
        }) as R;
      } catch (err) {
        this.refuse(conn, grpc.status.INVALID_ARGUMENT, `undecodable request: ${(err as Error).message}`);
        return;
      }
      onRequest(conn, req);
    });
    call.on('end', () => {
      done();
      call.end();
    });
    call.on('error', done);
    call.on('close', done);
    call.on('cancelled', done);
  }

  /** Ends a stream with a gRPC status, counted and logged. */
  refuse(conn: C, code: grpc.status, details: string): void {
    this.logger.warn({ id: conn.id, node: conn.nodeId, details }, 'xDS stream refused');
    if (this.connections.delete(conn.id)) this.metrics.connectedProxies.dec();
    conn.call.emit('error', { code, details });
  }
}

/**
 * Istio's standard labels as a waypoint reports them (reporter "waypoint", the Envoy stats filter's
 * ServerGateway reporter): the source from what was verified (the HBONE peer's certificate and
 * address), the destination from the chosen endpoint's metadata, the service from the cluster.
 * Pure: the HTTP proxy and the TCP chains call these with what they know.
 */
import {
  ISTIO_REQUEST_LABELS,
  ISTIO_TCP_LABELS,
  type IstioRequestLabels,
  type IstioTcpLabels,
  type PeerDescription,
  type ServiceDescription,
  type SpiffeId,
  serviceLabels,
  workloadLabels,
} from '@ambient/shared';
import type { UpstreamEndpoint } from '../config/waypoint-config.js';

export const WAYPOINT_REPORTER = 'waypoint';

/** Baggage keys naming the client's workload, by owner kind, as ztunnel and Envoy write them. */
const WORKLOAD_BAGGAGE_KEYS = [
  'k8s.deployment.name',
  'k8s.statefulset.name',
  'k8s.daemonset.name',
  'k8s.job.name',
  'k8s.cronjob.name',
] as const;

/**
 * An endpoint as a peer: its workload, canonical service and cluster from its metadata (an endpoint
 * without a cluster is in the waypoint's own, which the control plane that sent it serves), and the
 * identity the waypoint requires of it.
 */
export function endpointPeer(e: UpstreamEndpoint, ownClusterId: string): PeerDescription {
  return {
    workloadName: e.workload,
    namespace: e.namespace,
    ...(e.canonicalName !== undefined && { canonicalName: e.canonicalName }),
    ...(e.canonicalRevision !== undefined && { canonicalRevision: e.canonicalRevision }),
    clusterId: e.clusterId || ownClusterId,
    ...(e.identity && { principal: e.identity.toString() }),
  };
}

export interface SourceFacts {
  /** The client's identity from its HBONE certificate. */
  readonly peer: SpiffeId;
  /** The workload at the verified source address holding that identity, when the waypoint knows it. */
  readonly known?: UpstreamEndpoint;
  /** Peer metadata from the CONNECT `baggage` header: the client's word, used for labels only. */
  readonly baggage: ReadonlyMap<string, string>;
}

/**
 * The client: principal and namespace always from the certificate (as the stats filter takes the
 * namespace from the SAN); the workload known at the verified address first; else the baggage the
 * client's ztunnel sent, and only if it names the certificate's namespace.
 */
export function sourcePeer(f: SourceFacts, ownClusterId: string): PeerDescription {
  const principal = f.peer.toString();
  const namespace = f.peer.namespace;
  if (f.known) return { ...endpointPeer(f.known, ownClusterId), namespace, principal };
  const b = f.baggage;
  const bagNamespace = b.get('k8s.namespace.name');
  if (bagNamespace !== undefined && bagNamespace !== namespace) return { namespace, principal };
  const workloadName = WORKLOAD_BAGGAGE_KEYS.map((k) => b.get(k)).find((v) => v);
  const fields: Record<keyof PeerDescription, string | undefined> = {
    workloadName,
    name: b.get('k8s.pod.name'),
    namespace,
    canonicalName: b.get('service.name'),
    canonicalRevision: b.get('service.version'),
    app: b.get('app.name'),
    version: b.get('app.version'),
    clusterId: b.get('k8s.cluster.name'),
    principal,
  };
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v)) as PeerDescription;
}

/** `inbound-vip|<port>|<proto>|<name>.<ns>.svc...` names its service last. */
export function serviceOfChain(chain: string): ServiceDescription | undefined {
  const host = chain.split('|').pop() ?? '';
  const [name, namespace] = host.split('.');
  return name && namespace && host.includes('.svc.') ? { host, name, namespace } : undefined;
}

export interface TrafficParties {
  readonly source: PeerDescription;
  /** The endpoint chosen, once there is one. */
  readonly destination?: PeerDescription;
  /** The service the client addressed. */
  readonly service?: ServiceDescription;
  /** The waypoint's cluster: the destination's when no endpoint names another. */
  readonly ownClusterId: string;
}

/** Every label but the protocol-specific ones, by name. */
function common(p: TrafficParties, responseFlags: string): Record<string, string> {
  return {
    reporter: WAYPOINT_REPORTER,
    ...workloadLabels('source', p.source),
    ...workloadLabels('destination', { clusterId: p.ownClusterId, ...p.destination }),
    ...serviceLabels(p.service),
    response_flags: responseFlags,
    // Every client reached the waypoint over HBONE: mutual TLS with a verified certificate.
    connection_security_policy: 'mutual_tls',
  };
}

/** Label values in the order of `names`, which is the order the exposition shows them. */
function ordered<N extends string>(names: readonly N[], values: Record<string, string>): Record<N, string> {
  const out = {} as Record<N, string>;
  for (const n of names) out[n] = values[n] ?? 'unknown';
  return out;
}

export interface RequestOutcome {
  readonly grpc: boolean;
  /** 0 when no response was sent. */
  readonly responseCode: number;
  /** The gRPC status, for gRPC requests that ended with one. */
  readonly grpcStatus?: string;
  /** Envoy's short response flags, or `-`. */
  readonly responseFlags: string;
}

/** istio_requests_* labels for one request. */
export function requestLabels(p: TrafficParties, o: RequestOutcome): IstioRequestLabels {
  return ordered(ISTIO_REQUEST_LABELS, {
    ...common(p, o.responseFlags),
    request_protocol: o.grpc ? 'grpc' : 'http',
    response_code: String(o.responseCode),
    // Empty unless gRPC, as the stats filter leaves it.
    grpc_response_status: o.grpcStatus ?? '',
  });
}

/** istio_tcp_* labels for a connection a TCP chain carries. */
export function tcpLabels(p: TrafficParties, responseFlags = '-'): IstioTcpLabels {
  return ordered(ISTIO_TCP_LABELS, { ...common(p, responseFlags), request_protocol: 'tcp' });
}

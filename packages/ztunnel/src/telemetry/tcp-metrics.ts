/**
 * Istio's standard TCP metrics, as ztunnel reports them: reporter "source" on the client's node
 * and "destination" on the server's, with the labels of upstream ztunnel's CommonTrafficLabels
 * (istio/ztunnel src/proxy/metrics.rs), in its order except that the locality labels, last there,
 * come before request_protocol here, so every series still ends with connection_security_policy
 * (label order carries no meaning in the exposition format).
 */
import type { Baggage, BaggageWorkloadKind } from '@ambient/shared';
import { Counter, type Registry } from 'prom-client';
import type { ResponseFlags } from '../errors/connection-failures.js';
import type { Service } from '../state/service.js';
import type { Workload } from '../state/workload.js';

export const TCP_LABELS = [
  'reporter',
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
  'destination_service',
  'destination_service_namespace',
  'destination_service_name',
  'destination_workload',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_cluster',
  'source_region',
  'source_zone',
  'destination_region',
  'destination_zone',
  'request_protocol',
  'response_flags',
  'connection_security_policy',
] as const;

export type TcpLabelName = (typeof TCP_LABELS)[number];
export type TcpLabels = Record<TcpLabelName, string>;

export class TcpMetrics {
  readonly opened: Counter<TcpLabelName>;
  readonly closed: Counter<TcpLabelName>;
  readonly failed: Counter<TcpLabelName>;
  readonly received: Counter<TcpLabelName>;
  readonly sent: Counter<TcpLabelName>;

  constructor(registry: Registry) {
    const make = (name: string, help: string) =>
      new Counter({ name, help, labelNames: [...TCP_LABELS], registers: [registry] });
    this.opened = make('istio_tcp_connections_opened_total', 'TCP connections opened');
    this.closed = make('istio_tcp_connections_closed_total', 'TCP connections closed');
    this.failed = make(
      'istio_tcp_connections_failed_total',
      'TCP connections that failed (see response_flags)',
    );
    this.received = make(
      'istio_tcp_received_bytes_total',
      'Bytes received from the client of the connection',
    );
    this.sent = make('istio_tcp_sent_bytes_total', 'Bytes sent to the client of the connection');
  }
}

export interface ConnectionParties {
  readonly reporter: 'source' | 'destination';
  readonly source?: Workload;
  /**
   * What the peer's `baggage` says of the source: reported only when the source workload is not
   * known here, as upstream (telemetry only, never authorization).
   */
  readonly derivedSource?: Baggage;
  /** The verified peer identity (inbound) or our own (outbound over mTLS). */
  readonly sourcePrincipal?: string;
  readonly destination?: Workload;
  readonly destinationPrincipal?: string;
  /** The service the client addressed, or (inbound) the best guess of it. */
  readonly service?: ServiceLabel;
  readonly mtls: boolean;
}

export interface ServiceLabel {
  readonly hostname: string;
  readonly namespace: string;
  readonly name: string;
}

export const serviceLabel = (s: Service): ServiceLabel => ({
  hostname: s.hostname,
  namespace: s.namespace,
  name: s.name,
});

const UNKNOWN = 'unknown';
const orUnknown = (v: string | undefined) => (v === undefined || v === '' ? UNKNOWN : v);

interface PartyLabels {
  readonly workload: string;
  readonly canonicalService: string;
  readonly canonicalRevision: string;
  readonly namespace: string;
  readonly app: string;
  readonly version: string;
  readonly cluster: string;
  readonly region: string;
  readonly zone: string;
}

const UNKNOWN_PARTY: PartyLabels = {
  workload: UNKNOWN,
  canonicalService: UNKNOWN,
  canonicalRevision: UNKNOWN,
  namespace: UNKNOWN,
  app: UNKNOWN,
  version: UNKNOWN,
  cluster: UNKNOWN,
  region: UNKNOWN,
  zone: UNKNOWN,
};

/**
 * A known workload's labels, as upstream's with_source/with_destination: app is the canonical
 * name and version the canonical revision. Where the workload's source names no workload name,
 * canonical name, revision or cluster (the local config file), the defaults istiod fills in stand in:
 * the pod's name, the workload name, `latest`, and the node agent's cluster.
 */
export function workloadLabels(w: Workload, nodeCluster: string): PartyLabels {
  const m = w.meta;
  const workload = m?.workloadName ?? w.name;
  const canonicalService = m?.canonicalName ?? workload;
  const canonicalRevision = m?.canonicalRevision ?? 'latest';
  return {
    workload,
    canonicalService,
    canonicalRevision,
    namespace: orUnknown(w.namespace),
    app: canonicalService,
    version: canonicalRevision,
    cluster: orUnknown(m?.clusterId ?? nodeCluster),
    region: orUnknown(m?.locality?.region),
    zone: orUnknown(m?.locality?.zone),
  };
}

/**
 * A peer known only by its baggage, as upstream's with_derived_source: app is the workload name
 * there (not the canonical name), and nothing missing is filled in.
 */
export function baggageLabels(b: Baggage): PartyLabels {
  return {
    workload: orUnknown(b.workloadName),
    canonicalService: orUnknown(b.serviceName),
    canonicalRevision: orUnknown(b.revision),
    namespace: orUnknown(b.namespace),
    app: orUnknown(b.workloadName),
    version: orUnknown(b.revision),
    cluster: orUnknown(b.clusterId),
    region: orUnknown(b.region),
    zone: orUnknown(b.zone),
  };
}

/**
 * Istio's label values for a connection; "unknown" where a party is not known, as Istio does.
 * A source known here wins over what its baggage says (upstream applies with_source after
 * with_derived_source); the principals are always the verified identities.
 */
export function tcpLabels(p: ConnectionParties, flags: ResponseFlags, nodeCluster = 'Kubernetes'): TcpLabels {
  const src = p.source
    ? workloadLabels(p.source, nodeCluster)
    : p.derivedSource
      ? baggageLabels(p.derivedSource)
      : UNKNOWN_PARTY;
  const dst = p.destination ? workloadLabels(p.destination, nodeCluster) : UNKNOWN_PARTY;
  return {
    reporter: p.reporter,
    source_workload: src.workload,
    source_canonical_service: src.canonicalService,
    source_canonical_revision: src.canonicalRevision,
    source_workload_namespace: src.namespace,
    source_principal: orUnknown(p.sourcePrincipal),
    source_app: src.app,
    source_version: src.version,
    source_cluster: src.cluster,
    destination_service: orUnknown(p.service?.hostname),
    destination_service_namespace: orUnknown(p.service?.namespace),
    destination_service_name: orUnknown(p.service?.name),
    destination_workload: dst.workload,
    destination_canonical_service: dst.canonicalService,
    destination_canonical_revision: dst.canonicalRevision,
    destination_workload_namespace: dst.namespace,
    destination_principal: orUnknown(p.destinationPrincipal),
    destination_app: dst.app,
    destination_version: dst.version,
    destination_cluster: dst.cluster,
    source_region: src.region,
    source_zone: src.zone,
    destination_region: dst.region,
    destination_zone: dst.zone,
    request_protocol: 'tcp',
    response_flags: flags,
    connection_security_policy: p.mtls ? 'mutual_tls' : 'unknown',
  };
}

/**
 * The service an inbound connection is reported for, as upstream's guess_inbound_service
 * (istio/ztunnel src/proxy.rs): the one among `services` the client named in `forwarded: host=`,
 * else the first whose target port (the service's, or this workload's endpoint port for it) is
 * the port the connection is delivered to. The named service counts only if it is one of
 * `services`, so a client cannot make the report name any service it likes.
 */
export function guessInboundService(
  services: readonly Service[],
  destination: Workload,
  targetPort: number,
  forwardedHost?: string,
): Service | undefined {
  const named = forwardedHost && services.find((s) => s.hostname === forwardedHost);
  if (named) return named;
  return services.find((s) => {
    const endpointPorts = destination.services.get(`${s.namespace}/${s.hostname}`);
    for (const [servicePort, serviceTarget] of s.ports) {
      if (serviceTarget === targetPort) return true;
      if (endpointPorts?.get(servicePort) === targetPort) return true;
    }
    return false;
  });
}

/**
 * What this node says of a workload in `baggage` (on CONNECT as the source, on the 200 answer as
 * the destination), as upstream's Workload::baggage (istio/ztunnel src/state/workload.rs), with the
 * same stand-ins as workloadLabels so both ends report the same values.
 */
export function workloadBaggage(
  w: Workload,
  nodeCluster: string,
): { baggage: Baggage; kind: BaggageWorkloadKind } {
  const l = workloadLabels(w, nodeCluster);
  const known = (v: string) => (v === UNKNOWN ? undefined : v);
  return {
    baggage: {
      ...(known(l.cluster) && { clusterId: l.cluster }),
      ...(known(l.namespace) && { namespace: l.namespace }),
      workloadName: l.workload,
      serviceName: l.canonicalService,
      revision: l.canonicalRevision,
      ...(known(l.region) && { region: l.region }),
      ...(known(l.zone) && { zone: l.zone }),
    },
    // A workload whose source names no kind is named by its pod (see workloadLabels).
    kind: w.meta?.workloadType ?? 'pod',
  };
}

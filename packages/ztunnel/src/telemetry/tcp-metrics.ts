/**
 * Istio's standard TCP metrics, as ztunnel reports them: reporter "source" on the client's node
 * and "destination" on the server's, with Istio's workload, service and security labels.
 */
import { Counter, type Registry } from 'prom-client';
import type { ResponseFlags } from '../errors/connection-failures.js';
import type { Workload } from '../state/workload.js';

export const TCP_LABELS = [
  'reporter',
  'source_workload',
  'source_canonical_service',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_cluster',
  'destination_service',
  'destination_service_namespace',
  'destination_service_name',
  'destination_workload',
  'destination_canonical_service',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_cluster',
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
  readonly sourcePrincipal?: string;
  readonly destination?: Workload;
  readonly destinationPrincipal?: string;
  /** Service hostname when the client addressed a service VIP. */
  readonly service?: { readonly hostname: string; readonly namespace: string; readonly name: string };
  readonly mtls: boolean;
}

const appOf = (w?: Workload) => w?.name.replace(/-[a-z0-9]{5,10}(-[a-z0-9]{5})?$/, '') ?? 'unknown';

/** Istio's label values for a connection; "unknown" where a party is not known, as Istio does. */
export function tcpLabels(p: ConnectionParties, flags: ResponseFlags): TcpLabels {
  return {
    reporter: p.reporter,
    source_workload: p.source?.name ?? 'unknown',
    source_canonical_service: appOf(p.source),
    source_workload_namespace: p.source?.namespace ?? 'unknown',
    source_principal: p.sourcePrincipal ?? 'unknown',
    source_app: appOf(p.source),
    source_cluster: 'Kubernetes',
    destination_service: p.service?.hostname ?? 'unknown',
    destination_service_namespace: p.service?.namespace ?? 'unknown',
    destination_service_name: p.service?.name ?? 'unknown',
    destination_workload: p.destination?.name ?? 'unknown',
    destination_canonical_service: appOf(p.destination),
    destination_workload_namespace: p.destination?.namespace ?? 'unknown',
    destination_principal: p.destinationPrincipal ?? 'unknown',
    destination_app: appOf(p.destination),
    destination_cluster: 'Kubernetes',
    request_protocol: 'tcp',
    response_flags: flags,
    connection_security_policy: p.mtls ? 'mutual_tls' : 'unknown',
  };
}

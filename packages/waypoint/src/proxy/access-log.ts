/** The end of an exchange: its request metrics and its access log line. */
import type { RequestLabels, RequestMetrics } from '../telemetry/request-metrics.js';
import type { Exchange } from './exchange.js';

export interface ExchangeSinks {
  readonly metrics: RequestMetrics;
  /** Access log sink: one line per request. */
  readonly accessLog?: (entry: Record<string, unknown>) => void;
  readonly clusterName?: string;
}

/** Records a finished exchange in the metrics and the access log, as `status` (0: no response). */
export function recordExchange(sinks: ExchangeSinks, ex: Exchange, status: number): void {
  const durationMs = performance.now() - ex.start;
  const flags = ex.flags.size ? [...ex.flags].join(',') : '-';
  const peer = ex.ctx.peer;
  const bagNamespace = ex.ctx.baggage.get('k8s.namespace.name');
  const dst = ex.endpoint;
  // Before a cluster is chosen (a denial, no route), the chain says which service was called.
  const svc = ex.cluster?.service ?? serviceOfChain(ex.ctx.chain.name);
  const labels: RequestLabels = {
    reporter: 'waypoint',
    // The workload found at the verified address first; else the peer metadata the client's
    // ztunnel sent, if it names the certificate's namespace (a label only, never authorization).
    source_workload:
      ex.ctx.sourceWorkload ??
      (bagNamespace === undefined || bagNamespace === peer.namespace
        ? (ex.ctx.baggage.get('k8s.deployment.name') ?? ex.ctx.baggage.get('k8s.pod.name'))
        : undefined) ??
      'unknown',
    source_workload_namespace: peer.namespace,
    source_principal: peer.toString(),
    source_app: ex.ctx.baggage.get('service.name') ?? 'unknown',
    source_version: ex.ctx.baggage.get('service.version') ?? 'unknown',
    source_cluster: ex.ctx.baggage.get('k8s.cluster.name') ?? sinks.clusterName ?? 'Kubernetes',
    destination_workload: dst?.workload ?? 'unknown',
    destination_workload_namespace: dst?.namespace ?? 'unknown',
    destination_principal: dst?.identity?.toString() ?? 'unknown',
    destination_app: dst?.workload ?? 'unknown',
    destination_version: 'unknown',
    destination_service: svc?.host ?? 'unknown',
    destination_service_name: svc?.name ?? 'unknown',
    destination_service_namespace: svc?.namespace ?? 'unknown',
    destination_cluster: sinks.clusterName ?? 'Kubernetes',
    request_protocol: ex.grpc ? 'grpc' : 'http',
    response_code: String(status),
    grpc_response_status: ex.grpcStatus ?? '',
    response_flags: flags,
    connection_security_policy: 'mutual_tls',
  };
  sinks.metrics.record(labels, durationMs, ex.requestBytes, ex.responseBytes);
  sinks.accessLog?.({
    start_time: new Date(performance.timeOrigin + ex.start).toISOString(),
    method: ex.method,
    path: ex.path,
    protocol: ex.protocol,
    response_code: status,
    response_flags: flags,
    grpc_status: ex.grpcStatus,
    bytes_received: ex.requestBytes,
    bytes_sent: ex.responseBytes,
    duration: Math.round(durationMs),
    upstream_host: dst ? `${dst.address}:${dst.port}` : '-',
    upstream_cluster: ex.cluster?.name ?? '-',
    route_name: ex.route ?? '-',
    attempts: ex.attempts,
    x_request_id: ex.requestId,
    traceparent: ex.traceparent,
    authority: ex.authority,
    downstream_peer: peer.toString(),
    downstream_remote_address: ex.ctx.sourceIp,
  });
}

/** `inbound-vip|<port>|<proto>|<name>.<ns>.svc...` names its service last. */
function serviceOfChain(chain: string): { host: string; name: string; namespace: string } | undefined {
  const host = chain.split('|').pop() ?? '';
  const [name, namespace] = host.split('.');
  return name && namespace && host.includes('.svc.') ? { host, name, namespace } : undefined;
}

/** The end of an exchange: its request metrics and its access log line. */
import type { RequestMetrics } from '../telemetry/request-metrics.js';
import { endpointPeer, requestLabels, serviceOfChain, sourcePeer } from '../telemetry/waypoint-labels.js';
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
  const dst = ex.endpoint;
  const ownClusterId = sinks.clusterName ?? 'Kubernetes';
  // Before a cluster is chosen (a denial, no route), the chain says which service was called.
  const svc = ex.cluster?.service ?? serviceOfChain(ex.ctx.chain.name);
  const labels = requestLabels(
    {
      source: sourcePeer(
        { peer, baggage: ex.ctx.baggage, ...(ex.ctx.knownSource && { known: ex.ctx.knownSource }) },
        ownClusterId,
      ),
      ...(dst && { destination: endpointPeer(dst, ownClusterId) }),
      ...(svc && { service: svc }),
      ownClusterId,
    },
    {
      grpc: ex.grpc,
      responseCode: status,
      ...(ex.grpcStatus !== undefined && { grpcStatus: ex.grpcStatus }),
      responseFlags: flags,
    },
  );
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

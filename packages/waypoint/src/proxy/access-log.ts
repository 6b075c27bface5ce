/** The end of an exchange: its request metrics and its access log line. */
import {
  type BoundRequestMetrics,
  type RequestLabels,
  RequestMetrics,
} from '../telemetry/request-metrics.js';
import { endpointPeer, requestLabels, serviceOfChain, sourcePeer } from '../telemetry/waypoint-labels.js';
import type { ConnectionContext, Exchange } from './exchange.js';

export interface ExchangeSinks {
  readonly metrics: RequestMetrics;
  /** Access log sink: one line per request. */
  readonly accessLog?: (entry: Record<string, unknown>) => void;
  readonly clusterName?: string;
}

/** Label sets a connection's exchanges ended with, past which its cache starts over. */
const MAX_BOUND_PER_CONNECTION = 32;

/** What decides an exchange's labels besides its connection, and the metrics they bound. */
interface Bound {
  readonly metrics: RequestMetrics;
  readonly endpoint: object | undefined;
  readonly service: object | undefined;
  readonly status: number;
  readonly grpc: boolean;
  readonly grpcStatus: string | undefined;
  readonly flags: string;
  readonly ownClusterId: string;
  readonly bound: BoundRequestMetrics;
}

/**
 * Per connection (its peer, source and chain are fixed), the metrics its exchanges ended in, by
 * what else decides the labels: the endpoint and service objects (a new config snapshot makes new
 * ones, so changed metadata never meets a stale label set) and the outcome. The last one is
 * compared field by field first: a connection's exchanges mostly end alike.
 */
interface ConnectionBound {
  last: Bound | undefined;
  readonly byKey: Map<string, BoundRequestMetrics>;
}
const boundByConnection = new WeakMap<ConnectionContext, ConnectionBound>();
const objectIds = new WeakMap<object, number>();
let nextObjectId = 1;
function idOf(o: object | undefined): number {
  if (o === undefined) return 0;
  let id = objectIds.get(o);
  if (id === undefined) {
    id = nextObjectId++;
    objectIds.set(o, id);
  }
  return id;
}

/** Records a finished exchange in the metrics and the access log, as `status` (0: no response). */
export function recordExchange(sinks: ExchangeSinks, ex: Exchange, status: number): void {
  const durationMs = performance.now() - ex.start;
  const flags = ex.flags.length > 0 ? ex.flags.join(',') : '-';
  const peer = ex.ctx.peer;
  const dst = ex.endpoint;
  const ownClusterId = sinks.clusterName ?? 'Kubernetes';
  let cache = boundByConnection.get(ex.ctx);
  if (!cache) {
    cache = { last: undefined, byKey: new Map() };
    boundByConnection.set(ex.ctx, cache);
  }
  const service = ex.cluster?.service;
  const last = cache.last;
  let bound: BoundRequestMetrics | undefined;
  if (
    last !== undefined &&
    last.metrics === sinks.metrics &&
    last.endpoint === dst &&
    last.service === service &&
    last.status === status &&
    last.grpc === ex.grpc &&
    last.grpcStatus === ex.grpcStatus &&
    last.flags === flags &&
    last.ownClusterId === ownClusterId
  )
    bound = last.bound;
  else {
    const key = `${idOf(sinks.metrics)}|${idOf(dst)}|${idOf(service)}|${status}|${ex.grpc}|${ex.grpcStatus ?? ''}|${flags}|${ownClusterId}`;
    bound = cache.byKey.get(key);
    if (!bound) {
      if (cache.byKey.size >= MAX_BOUND_PER_CONNECTION) cache.byKey.clear();
      bound = sinks.metrics.bind(exchangeLabels(ex, status, flags, ownClusterId));
      cache.byKey.set(key, bound);
    }
    cache.last = {
      metrics: sinks.metrics,
      endpoint: dst,
      service,
      status,
      grpc: ex.grpc,
      grpcStatus: ex.grpcStatus,
      flags,
      ownClusterId,
      bound,
    };
  }
  RequestMetrics.observe(bound, durationMs, ex.requestBytes, ex.responseBytes);
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

/** Istio's request labels of an exchange that ended as `status`. */
function exchangeLabels(ex: Exchange, status: number, flags: string, ownClusterId: string): RequestLabels {
  const { peer } = ex.ctx;
  const dst = ex.endpoint;
  // Before a cluster is chosen (a denial, no route), the chain says which service was called.
  const svc = ex.cluster?.service ?? serviceOfChain(ex.ctx.chain.name);
  return requestLabels(
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
}

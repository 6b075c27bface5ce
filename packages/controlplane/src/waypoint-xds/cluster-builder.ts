/**
 * The Clusters of one waypoint: a cluster per reachable service port and one per DestinationRule
 * subset of it, named `inbound-vip|<port>|<proto>|[<subset>|]<host>`, with the rule's traffic
 * policy as circuit breakers, outlier detection, load balancing and connect timeout.
 */
import { type EnvoyInput, HTTP_PROTOCOL_OPTIONS_TYPE, type WireCluster } from '@ambient/shared';
import {
  type BuildContext,
  type ClusterEntry,
  DEFAULT_CONNECT_TIMEOUT_MS,
  duration,
  type SvcPort,
  struct,
  UNLIMITED,
  waypointClusterName,
} from './build-context.js';

/** The clusters one gateway's routes and chains reach, collected while they are built. */
export class ClusterSet {
  readonly entries = new Map<string, ClusterEntry>();

  constructor(private readonly b: BuildContext) {}

  /** Adds a service port's cluster, and one per subset of its DestinationRule. */
  add(sp: SvcPort): void {
    if (this.entries.has(sp.name)) return;
    this.entries.set(sp.name, { sp, policy: this.b.trafficPolicy(sp.svc) });
    // A pod's own cluster has one endpoint: subsets do not apply.
    if (sp.pod) return;
    for (const subset of this.b.destinationRule(sp.svc)?.subsets ?? []) {
      const name = waypointClusterName(sp.port.port, sp.proto, sp.host, subset.name);
      this.entries.set(name, { sp, subset, policy: this.b.trafficPolicy(sp.svc, subset) });
    }
  }

  /** The cluster for a backend service port (and subset), adding it; undefined if unknown. */
  clusterFor(sp: SvcPort, subset: string | undefined, ref: string, path: string): string | undefined {
    this.add(sp);
    if (!subset) return sp.name;
    const name = waypointClusterName(sp.port.port, sp.proto, sp.host, subset);
    if (this.entries.has(name)) return name;
    this.b.notice(ref, path, `subset ${subset} is not defined by a DestinationRule for ${sp.host}`);
    return undefined;
  }
}

/** A Cluster in Envoy's v3 shape: EDS over ADS, with the cluster entry's traffic policy. */
export function buildCluster(b: BuildContext, name: string, e: ClusterEntry): EnvoyInput<WireCluster> {
  const { sp, policy } = e;
  const lb = policy?.loadBalancer;
  const lbPolicy = !lb ? 'ROUND_ROBIN' : 'simple' in lb ? lb.simple : 'RING_HASH';
  const tcp = policy?.connectionPool?.tcp;
  const http = policy?.connectionPool?.http;
  const od = policy?.outlierDetection;
  return {
    name,
    type: 'EDS',
    edsClusterConfig: { serviceName: name, edsConfig: { ads: {}, resourceApiVersion: 'V3' } },
    connectTimeout: duration(tcp?.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS),
    lbPolicy,
    circuitBreakers: {
      thresholds: [
        {
          maxConnections: { value: tcp?.maxConnections ?? UNLIMITED },
          maxPendingRequests: { value: http?.http1MaxPendingRequests ?? UNLIMITED },
          maxRequests: { value: http?.http2MaxRequests ?? UNLIMITED },
          maxRetries: { value: http?.maxRetries ?? UNLIMITED },
          // Envoy ignores max_retries once a budget is set: an explicit maxRetries wins.
          ...(http?.maxRetries === undefined && {
            retryBudget: { budgetPercent: { value: 20 }, minRetryConcurrency: { value: 3 } },
          }),
        },
      ],
    },
    ...(od && {
      outlierDetection: {
        consecutive_5xx: { value: od.consecutive5xxErrors ?? 5 },
        interval: duration(od.intervalMs ?? 10_000),
        baseEjectionTime: duration(od.baseEjectionTimeMs ?? 30_000),
        maxEjectionPercent: { value: od.maxEjectionPercent ?? 10 },
      },
    }),
    ...httpProtocolOptions(b, sp.proto === 'http2' || sp.proto === 'grpc', tcp, http),
    metadata: {
      filterMetadata: {
        istio: struct({
          services: [{ host: sp.host, namespace: sp.svc.metadata.namespace, name: sp.svc.metadata.name }],
        }),
      },
    },
  };
}

type ConnectionPool = NonNullable<NonNullable<ClusterEntry['policy']>['connectionPool']>;

/**
 * The cluster's HttpProtocolOptions: HTTP/2 when the port speaks it, and the connection pool's
 * idle timeout (HTTP's, else TCP's), max requests per connection and max connection duration in
 * `common_http_protocol_options`, as istiod's applyConnectionPool writes them
 * (pilot/pkg/networking/core/cluster_traffic_policy.go). None when neither applies.
 */
function httpProtocolOptions(
  b: BuildContext,
  h2: boolean,
  tcp: ConnectionPool['tcp'],
  http: ConnectionPool['http'],
): Pick<EnvoyInput<WireCluster>, 'typedExtensionProtocolOptions'> {
  const idleTimeoutMs = http?.idleTimeoutMs ?? tcp?.idleTimeoutMs;
  const maxRequests = http?.maxRequestsPerConnection;
  const maxDurationMs = tcp?.maxConnectionDurationMs;
  const common = {
    ...(idleTimeoutMs !== undefined && { idleTimeout: duration(idleTimeoutMs) }),
    ...(maxRequests && { maxRequestsPerConnection: { value: maxRequests } }),
    ...(maxDurationMs !== undefined && { maxConnectionDuration: duration(maxDurationMs) }),
  };
  if (!h2 && Object.keys(common).length === 0) return {};
  return {
    typedExtensionProtocolOptions: {
      [HTTP_PROTOCOL_OPTIONS_TYPE]: b.encoder.any(HTTP_PROTOCOL_OPTIONS_TYPE, {
        explicitHttpConfig: h2 ? { http2ProtocolOptions: {} } : { httpProtocolOptions: {} },
        ...(Object.keys(common).length > 0 && { commonHttpProtocolOptions: common }),
      }),
    },
  };
}

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
    ...((sp.proto === 'http2' || sp.proto === 'grpc') && {
      typedExtensionProtocolOptions: {
        [HTTP_PROTOCOL_OPTIONS_TYPE]: b.encoder.any(HTTP_PROTOCOL_OPTIONS_TYPE, {
          explicitHttpConfig: { http2ProtocolOptions: {} },
        }),
      },
    }),
    metadata: {
      filterMetadata: {
        istio: struct({
          services: [{ host: sp.host, namespace: sp.svc.metadata.namespace, name: sp.svc.metadata.name }],
        }),
      },
    },
  };
}

/**
 * Endpoint selection for a cluster's lb_policy. Balancers keep only selection state (a round-robin
 * cursor, a hash ring); health comes from the caller through LbContext, so one balancer per
 * cluster serves every request and the outlier detector stays the single owner of ejections.
 */
import type { LbPolicy, UpstreamEndpoint } from '../config/waypoint-config.js';

export interface LbContext {
  /** RING_HASH: the key from the route's hash policy (see hashKey); absent picks at random. */
  readonly hashKey?: string;
  /** Endpoints to skip, such as those the outlier detector ejected. */
  readonly isEjected?: (endpoint: UpstreamEndpoint) => boolean;
  /** LEAST_REQUEST: requests in flight on an endpoint; absent counts every endpoint as idle. */
  readonly activeRequests?: (endpoint: UpstreamEndpoint) => number;
}

export interface LoadBalancer {
  readonly policy: LbPolicy;
  /** An endpoint for one request, or undefined when none can serve (503 UH). */
  pick(endpoints: readonly UpstreamEndpoint[], ctx?: LbContext): UpstreamEndpoint | undefined;
}

export interface LoadBalancerOptions {
  /** Values in [0, 1). */
  readonly random?: () => number;
  /**
   * Below this share of usable endpoints (0..100) Envoy ignores ejections and balances over all
   * of them ("panic"). Default 0, never: istiod disables panic for clusters with outlier detection,
   * as few pods per service make it do more harm than good.
   */
  readonly panicThresholdPercent?: number;
}

const endpointKeys = new WeakMap<object, string>();

/** An endpoint's identity for health and ring state: `address:port`. */
export function endpointKey(endpoint: Pick<UpstreamEndpoint, 'address' | 'port'>): string {
  // Asked several times per request of the same (immutable) config object: built once.
  let key = endpointKeys.get(endpoint);
  if (key === undefined) {
    key = endpoint.address.includes(':')
      ? `[${endpoint.address}]:${endpoint.port}`
      : `${endpoint.address}:${endpoint.port}`;
    endpointKeys.set(endpoint, key);
  }
  return key;
}

/** The endpoints to balance over: those not ejected, or all of them in panic. */
export function usableEndpoints(
  endpoints: readonly UpstreamEndpoint[],
  ctx: LbContext | undefined,
  panicThresholdPercent: number,
): readonly UpstreamEndpoint[] {
  const isEjected = ctx?.isEjected;
  if (!isEjected) return endpoints;
  const usable = endpoints.filter((e) => !isEjected(e));
  if (endpoints.length && usable.length * 100 < panicThresholdPercent * endpoints.length) return endpoints;
  return usable;
}

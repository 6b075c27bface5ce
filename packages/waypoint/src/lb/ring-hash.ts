/**
 * RING_HASH (consistent hashing), after Envoy's ring: each endpoint owns ceil(1024 / n) points
 * hashed from `address:port_i`; a request's key hashes to a point and goes to the owner of the
 * next point clockwise. The same key reaches the same endpoint while membership is unchanged; an
 * ejected endpoint's keys move to the next owner on the ring, and only its keys move.
 */
import type { UpstreamEndpoint } from '../config/waypoint-config.js';
import {
  endpointKey,
  type LbContext,
  type LoadBalancer,
  type LoadBalancerOptions,
  usableEndpoints,
} from './load-balancer.js';
import { murmur3 } from './murmur3.js';

/** Envoy's default minimum_ring_size and maximum_ring_size. */
export const MIN_RING_SIZE = 1024;
export const MAX_RING_SIZE = 8 * 1024 * 1024;

interface RingPoint {
  readonly hash: number;
  readonly endpoint: UpstreamEndpoint;
}

export class RingHashBalancer implements LoadBalancer {
  readonly policy = 'RING_HASH';
  private source?: readonly UpstreamEndpoint[];
  private membership = '';
  private ring: readonly RingPoint[] = [];

  constructor(private readonly options: LoadBalancerOptions = {}) {}

  pick(endpoints: readonly UpstreamEndpoint[], ctx?: LbContext): UpstreamEndpoint | undefined {
    if (!endpoints.length) return undefined;
    this.update(endpoints);
    const usable = usableEndpoints(endpoints, ctx, this.options.panicThresholdPercent ?? 0);
    if (!usable.length) return undefined;
    // In panic every endpoint is usable again; otherwise skip the ejected ones.
    const skip = usable.length === endpoints.length ? undefined : ctx?.isEjected;
    const random = this.options.random ?? Math.random;
    const hash = ctx?.hashKey !== undefined ? murmur3(ctx.hashKey) : Math.floor(random() * 2 ** 32);
    const ring = this.ring;
    let lo = 0;
    let hi = ring.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((ring[mid] as RingPoint).hash < hash) lo = mid + 1;
      else hi = mid;
    }
    for (let i = 0; i < ring.length; i++) {
      const point = ring[(lo + i) % ring.length] as RingPoint;
      if (!skip?.(point.endpoint)) return point.endpoint;
    }
    return undefined;
  }

  /** Rebuilds the ring only when membership changes (snapshots keep array identity otherwise). */
  private update(endpoints: readonly UpstreamEndpoint[]): void {
    if (endpoints === this.source) return;
    this.source = endpoints;
    const keys = endpoints.map(endpointKey);
    const membership = [...keys].sort().join(',');
    if (membership === this.membership) {
      // Same members, new objects: keep the ring's shape, point at the new objects.
      const byKey = new Map(endpoints.map((e, i) => [keys[i] as string, e]));
      this.ring = this.ring.map((p) => ({
        hash: p.hash,
        endpoint: byKey.get(endpointKey(p.endpoint)) ?? p.endpoint,
      }));
      return;
    }
    this.membership = membership;
    const perEndpoint = Math.max(
      1,
      Math.min(Math.ceil(MIN_RING_SIZE / endpoints.length), Math.floor(MAX_RING_SIZE / endpoints.length)),
    );
    const ring: RingPoint[] = [];
    const seen = new Set<string>();
    endpoints.forEach((endpoint, i) => {
      const key = keys[i] as string;
      if (seen.has(key)) return;
      seen.add(key);
      for (let j = 0; j < perEndpoint; j++) ring.push({ hash: murmur3(`${key}_${j}`), endpoint });
    });
    // Ties broken by key so the ring does not depend on the order endpoints arrive in.
    ring.sort((a, b) => a.hash - b.hash || (endpointKey(a.endpoint) < endpointKey(b.endpoint) ? -1 : 1));
    this.ring = ring;
  }
}

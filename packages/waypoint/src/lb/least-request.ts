/**
 * LEAST_REQUEST as Envoy does it for equal weights: the power of two choices. Two endpoints are
 * drawn at random (with replacement) and the one with fewer active requests wins, the first on a
 * tie; this avoids the herd a global minimum would send to one idle endpoint.
 */
import type { UpstreamEndpoint } from '../config/waypoint-config.js';
import {
  type LbContext,
  type LoadBalancer,
  type LoadBalancerOptions,
  usableEndpoints,
} from './load-balancer.js';

const CHOICES = 2;

export class LeastRequestBalancer implements LoadBalancer {
  readonly policy = 'LEAST_REQUEST';

  constructor(private readonly options: LoadBalancerOptions = {}) {}

  pick(endpoints: readonly UpstreamEndpoint[], ctx?: LbContext): UpstreamEndpoint | undefined {
    const usable = usableEndpoints(endpoints, ctx, this.options.panicThresholdPercent ?? 0);
    if (!usable.length) return undefined;
    const random = this.options.random ?? Math.random;
    const active = ctx?.activeRequests ?? (() => 0);
    let best: UpstreamEndpoint | undefined;
    let bestActive = 0;
    for (let i = 0; i < CHOICES; i++) {
      const candidate = usable[
        Math.min(Math.floor(random() * usable.length), usable.length - 1)
      ] as UpstreamEndpoint;
      const n = active(candidate);
      if (best === undefined || n < bestActive) {
        best = candidate;
        bestActive = n;
      }
    }
    return best;
  }
}

/** RANDOM: a uniformly random endpoint among those not ejected. */
import type { UpstreamEndpoint } from '../config/waypoint-config.js';
import {
  type LbContext,
  type LoadBalancer,
  type LoadBalancerOptions,
  usableEndpoints,
} from './load-balancer.js';

export class RandomBalancer implements LoadBalancer {
  readonly policy = 'RANDOM';

  constructor(private readonly options: LoadBalancerOptions = {}) {}

  pick(endpoints: readonly UpstreamEndpoint[], ctx?: LbContext): UpstreamEndpoint | undefined {
    const usable = usableEndpoints(endpoints, ctx, this.options.panicThresholdPercent ?? 0);
    if (!usable.length) return undefined;
    const random = this.options.random ?? Math.random;
    return usable[Math.min(Math.floor(random() * usable.length), usable.length - 1)];
  }
}

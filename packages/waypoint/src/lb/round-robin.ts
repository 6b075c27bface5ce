/** ROUND_ROBIN: endpoints in turn, skipping ejected ones (Envoy's unweighted round robin). */
import type { UpstreamEndpoint } from '../config/waypoint-config.js';
import {
  type LbContext,
  type LoadBalancer,
  type LoadBalancerOptions,
  usableEndpoints,
} from './load-balancer.js';

export class RoundRobinBalancer implements LoadBalancer {
  readonly policy = 'ROUND_ROBIN';
  private next = 0;

  constructor(private readonly options: LoadBalancerOptions = {}) {}

  pick(endpoints: readonly UpstreamEndpoint[], ctx?: LbContext): UpstreamEndpoint | undefined {
    const usable = usableEndpoints(endpoints, ctx, this.options.panicThresholdPercent ?? 0);
    if (!usable.length) return undefined;
    const endpoint = usable[this.next % usable.length];
    this.next = (this.next + 1) % Number.MAX_SAFE_INTEGER;
    return endpoint;
  }
}

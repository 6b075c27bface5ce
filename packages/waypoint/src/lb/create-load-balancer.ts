/** The balancer for a cluster's lb_policy: one per cluster, kept while the policy is unchanged. */
import type { LbPolicy } from '../config/waypoint-config.js';
import { LeastRequestBalancer } from './least-request.js';
import type { LoadBalancer, LoadBalancerOptions } from './load-balancer.js';
import { RandomBalancer } from './random-balancer.js';
import { RingHashBalancer } from './ring-hash.js';
import { RoundRobinBalancer } from './round-robin.js';

export function createLoadBalancer(policy: LbPolicy, options: LoadBalancerOptions = {}): LoadBalancer {
  switch (policy) {
    case 'ROUND_ROBIN':
      return new RoundRobinBalancer(options);
    case 'LEAST_REQUEST':
      return new LeastRequestBalancer(options);
    case 'RANDOM':
      return new RandomBalancer(options);
    case 'RING_HASH':
      return new RingHashBalancer(options);
  }
}

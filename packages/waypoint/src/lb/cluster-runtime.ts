/**
 * A cluster's live state across requests: its load balancer, circuit breaker (with the retry
 * budget), outlier detector and per-endpoint active requests. Kept by cluster name across config
 * updates; a part is rebuilt only when its own settings change.
 */
import type { UpstreamCluster, UpstreamEndpoint } from '../config/waypoint-config.js';
import { CircuitBreaker } from './circuit-breaker.js';
import { createLoadBalancer } from './create-load-balancer.js';
import { endpointKey, type LoadBalancer } from './load-balancer.js';
import { OutlierDetector } from './outlier-detector.js';

export type PickResult =
  | { readonly ok: true; readonly endpoint: UpstreamEndpoint }
  | { readonly ok: false; readonly reason: 'no_healthy' | 'overflow' };

export interface ClusterRuntimeOptions {
  readonly random: () => number;
  readonly now?: () => number;
  readonly onEject?: (endpoint: string) => void;
}

export class ClusterRuntime {
  private lb: LoadBalancer;
  private breaker: CircuitBreaker;
  private outliers?: OutlierDetector;
  private readonly active = new Map<string, number>();
  private lastEndpoints?: readonly UpstreamEndpoint[];
  private readonly now: () => number;
  private readonly activeRequests = (e: UpstreamEndpoint): number => this.active.get(endpointKey(e)) ?? 0;

  constructor(
    private cluster: UpstreamCluster,
    private readonly options: ClusterRuntimeOptions,
  ) {
    this.now = options.now ?? (() => performance.now());
    this.lb = createLoadBalancer(cluster.lbPolicy, { random: options.random });
    this.breaker = new CircuitBreaker(cluster.circuitBreakers);
    if (cluster.outlierDetection) this.outliers = new OutlierDetector(cluster.outlierDetection, this.now);
  }

  update(cluster: UpstreamCluster): void {
    const prev = this.cluster;
    this.cluster = cluster;
    if (prev === cluster) return;
    if (prev.lbPolicy !== cluster.lbPolicy)
      this.lb = createLoadBalancer(cluster.lbPolicy, { random: this.options.random });
    if (JSON.stringify(prev.circuitBreakers) !== JSON.stringify(cluster.circuitBreakers))
      this.breaker = new CircuitBreaker(cluster.circuitBreakers);
    if (JSON.stringify(prev.outlierDetection) !== JSON.stringify(cluster.outlierDetection)) {
      this.outliers = cluster.outlierDetection
        ? new OutlierDetector(cluster.outlierDetection, this.now)
        : undefined;
      this.lastEndpoints = undefined;
    }
  }

  /**
   * Chooses an endpoint and takes an active-request slot (release it with requestFinished). A
   * retry avoids the endpoint that just failed when another is usable, as Envoy's
   * previous-hosts retry predicate does.
   */
  pick(
    endpoints: readonly UpstreamEndpoint[],
    hashKey: string | undefined,
    avoid: UpstreamEndpoint | undefined,
  ): PickResult {
    const od = this.outliers;
    if (od) {
      if (endpoints !== this.lastEndpoints) {
        od.setEndpoints(endpoints.map(endpointKey));
        this.lastEndpoints = endpoints;
      }
      od.poll();
    }
    if (!this.breaker.tryAcquire('requests')) return { ok: false, reason: 'overflow' };
    const isEjected = od ? (e: UpstreamEndpoint) => od.isEjected(endpointKey(e)) : undefined;
    let candidates = endpoints;
    if (avoid && endpoints.length > 1) {
      const others = endpoints.filter((e) => endpointKey(e) !== endpointKey(avoid) && !isEjected?.(e));
      if (others.length > 0) candidates = others;
    }
    // One shape of context for every pick (absent parts undefined), no closure per request.
    const ep = this.lb.pick(candidates, { hashKey, isEjected, activeRequests: this.activeRequests });
    if (!ep) {
      this.breaker.release('requests');
      return { ok: false, reason: 'no_healthy' };
    }
    const k = endpointKey(ep);
    this.active.set(k, (this.active.get(k) ?? 0) + 1);
    return { ok: true, endpoint: ep };
  }

  /** Releases the slot and feeds outlier detection: a 5xx or a local failure counts. */
  requestFinished(ep: UpstreamEndpoint, status: number | undefined, failed: boolean): void {
    this.breaker.release('requests');
    const k = endpointKey(ep);
    this.active.set(k, Math.max(0, (this.active.get(k) ?? 1) - 1));
    const od = this.outliers;
    if (!od) return;
    const was = od.isEjected(k);
    od.recordResult(
      k,
      failed ? { localFailure: true } : status !== undefined ? { status } : { localFailure: true },
    );
    if (!was && od.isEjected(k)) this.options.onEject?.(k);
  }

  /** Takes a retry from max_retries or the retry budget; false when retries would overflow. */
  tryStartRetry(): boolean {
    return this.breaker.tryAcquire('retries');
  }

  retryFinished(): void {
    this.breaker.release('retries');
  }
}

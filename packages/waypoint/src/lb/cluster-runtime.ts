/**
 * A cluster's live state across requests: endpoint choice by its load-balancing policy, the
 * circuit breaker's active-request count, the retry budget, and outlier detection. Kept across
 * config updates by cluster name (limits follow the newest config; ejections survive).
 */
import type { UpstreamCluster, UpstreamEndpoint } from '../config/waypoint-config.js';

export type PickResult =
  | { readonly ok: true; readonly endpoint: UpstreamEndpoint }
  | { readonly ok: false; readonly reason: 'no_healthy' | 'overflow' };

export interface ClusterRuntimeOptions {
  readonly random: () => number;
  readonly now?: () => number;
  readonly onEject?: (endpoint: string) => void;
}

const key = (ep: UpstreamEndpoint) => `${ep.address}:${ep.port}`;

/** FNV-1a, 32 bits: stable across processes, good enough to spread a ring. */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

const RING_REPLICAS = 64;

interface EndpointHealth {
  consecutive5xx: number;
  ejections: number;
  ejectedUntil: number;
}

export class ClusterRuntime {
  private cursor = 0;
  private activeRequests = 0;
  private activeRetries = 0;
  private readonly active = new Map<string, number>();
  private readonly health = new Map<string, EndpointHealth>();
  private ring?: { points: Array<[number, string]>; members: string };
  private readonly now: () => number;

  constructor(
    private cluster: UpstreamCluster,
    private readonly options: ClusterRuntimeOptions,
  ) {
    this.now = options.now ?? (() => performance.now());
  }

  update(cluster: UpstreamCluster): void {
    this.cluster = cluster;
  }

  get stats(): { activeRequests: number; activeRetries: number; ejected: string[] } {
    const t = this.now();
    return {
      activeRequests: this.activeRequests,
      activeRetries: this.activeRetries,
      ejected: [...this.health].filter(([, h]) => h.ejectedUntil > t).map(([k]) => k),
    };
  }

  /**
   * Chooses an endpoint and takes an active-request slot (release it with requestFinished). A
   * retry avoids the endpoint that just failed when another is available, as Envoy's default
   * host-selection retry does for the previous host.
   */
  pick(
    endpoints: readonly UpstreamEndpoint[],
    hashKey: string | undefined,
    avoid: UpstreamEndpoint | undefined,
  ): PickResult {
    if (this.activeRequests >= this.cluster.circuitBreakers.maxRequests)
      return { ok: false, reason: 'overflow' };
    const healthy = this.healthy(endpoints);
    if (healthy.length === 0) return { ok: false, reason: 'no_healthy' };
    let candidates = healthy;
    if (avoid && healthy.length > 1) candidates = healthy.filter((e) => key(e) !== key(avoid));
    const ep = this.choose(candidates, hashKey);
    this.activeRequests += 1;
    this.active.set(key(ep), (this.active.get(key(ep)) ?? 0) + 1);
    return { ok: true, endpoint: ep };
  }

  /** Releases the slot and feeds outlier detection: a 5xx or a failed connection counts. */
  requestFinished(ep: UpstreamEndpoint, status: number | undefined, failed: boolean): void {
    this.activeRequests = Math.max(0, this.activeRequests - 1);
    const k = key(ep);
    this.active.set(k, Math.max(0, (this.active.get(k) ?? 1) - 1));
    const od = this.cluster.outlierDetection;
    if (!od) return;
    const h = this.health.get(k) ?? { consecutive5xx: 0, ejections: 0, ejectedUntil: 0 };
    this.health.set(k, h);
    if (failed || (status !== undefined && status >= 500)) h.consecutive5xx += 1;
    else {
      h.consecutive5xx = 0;
      return;
    }
    if (h.consecutive5xx < od.consecutive5xx || h.ejectedUntil > this.now()) return;
    const total = this.health.size;
    const t = this.now();
    const ejected = [...this.health.values()].filter((x) => x.ejectedUntil > t).length;
    // Never more than maxEjectionPercent of the hosts; Envoy allows one when the share rounds down.
    const allowed = Math.max(1, Math.floor((od.maxEjectionPercent / 100) * Math.max(total, 1)));
    if (ejected >= allowed || od.maxEjectionPercent === 0) return;
    h.ejections += 1;
    h.ejectedUntil = t + od.baseEjectionTimeMs * h.ejections;
    h.consecutive5xx = 0;
    this.options.onEject?.(k);
  }

  /** The retry budget: retries in flight stay under a share of active requests, with a floor. */
  retryAllowed(): boolean {
    const cb = this.cluster.circuitBreakers;
    if (this.activeRetries >= cb.maxRetries) return false;
    const budget = cb.retryBudget;
    if (!budget) return true;
    const limit = Math.max(budget.minRetryConcurrency, (budget.percent / 100) * this.activeRequests);
    return this.activeRetries < limit;
  }

  retryStarted(): void {
    this.activeRetries += 1;
  }

  retryFinished(): void {
    this.activeRetries = Math.max(0, this.activeRetries - 1);
  }

  private healthy(endpoints: readonly UpstreamEndpoint[]): readonly UpstreamEndpoint[] {
    if (!this.cluster.outlierDetection || this.health.size === 0) return endpoints;
    const t = this.now();
    return endpoints.filter((e) => (this.health.get(key(e))?.ejectedUntil ?? 0) <= t);
  }

  private choose(eps: readonly UpstreamEndpoint[], hashKey: string | undefined): UpstreamEndpoint {
    const policy = this.cluster.lbPolicy;
    if (eps.length === 1) return eps[0] as UpstreamEndpoint;
    if (policy === 'RANDOM') return eps[Math.floor(this.options.random() * eps.length)] as UpstreamEndpoint;
    if (policy === 'LEAST_REQUEST') {
      // Power of two choices over active requests, as Envoy's default least-request.
      const a = eps[Math.floor(this.options.random() * eps.length)] as UpstreamEndpoint;
      const b = eps[Math.floor(this.options.random() * eps.length)] as UpstreamEndpoint;
      return (this.active.get(key(a)) ?? 0) <= (this.active.get(key(b)) ?? 0) ? a : b;
    }
    if (policy === 'RING_HASH' && hashKey !== undefined) return this.fromRing(eps, hashKey);
    const ep = eps[this.cursor % eps.length] as UpstreamEndpoint;
    this.cursor += 1;
    return ep;
  }

  /** Consistent hashing: the same key maps to the same endpoint while membership is unchanged. */
  private fromRing(eps: readonly UpstreamEndpoint[], hashKey: string): UpstreamEndpoint {
    const members = eps.map(key).sort().join(',');
    if (!this.ring || this.ring.members !== members) {
      const points: Array<[number, string]> = [];
      for (const e of eps)
        for (let r = 0; r < RING_REPLICAS; r++) points.push([hash32(`${key(e)}_${r}`), key(e)]);
      points.sort((x, y) => x[0] - y[0]);
      this.ring = { points, members };
    }
    const h = hash32(hashKey);
    const { points } = this.ring;
    let lo = 0;
    let hi = points.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((points[mid]?.[0] ?? 0) < h) lo = mid + 1;
      else hi = mid;
    }
    const target = (points[lo % points.length] as [number, string])[1];
    return eps.find((e) => key(e) === target) as UpstreamEndpoint;
  }
}

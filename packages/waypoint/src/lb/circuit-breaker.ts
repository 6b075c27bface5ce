/**
 * A cluster's circuit breakers (thresholds at DEFAULT priority): counters of connections, pending
 * requests, active requests and active retries, each refused once at its limit. A refused
 * connection or request is answered 503 with response flag UO (upstream overflow); a refused retry
 * returns the last attempt's response. With a retry budget, max_retries is ignored and retries are
 * limited by the budget instead, as in Envoy.
 */
import type { CircuitBreakers } from '../config/waypoint-config.js';
import { RetryBudget } from '../retry/retry-budget.js';

export type CircuitResource = 'connections' | 'pendingRequests' | 'requests' | 'retries';

export class CircuitBreaker {
  private readonly counts: Record<CircuitResource, number> = {
    connections: 0,
    pendingRequests: 0,
    requests: 0,
    retries: 0,
  };
  private readonly budget?: RetryBudget;

  constructor(private readonly limits: CircuitBreakers) {
    if (limits.retryBudget)
      this.budget = new RetryBudget(limits.retryBudget.percent, limits.retryBudget.minRetryConcurrency);
  }

  /** The current limit for `resource` (the retry budget's moves with active requests). */
  limit(resource: CircuitResource): number {
    switch (resource) {
      case 'connections':
        return this.limits.maxConnections;
      case 'pendingRequests':
        return this.limits.maxPendingRequests;
      case 'requests':
        return this.limits.maxRequests;
      case 'retries':
        return this.budget ? this.budget.limit() : this.limits.maxRetries;
    }
  }

  count(resource: CircuitResource): number {
    return this.counts[resource];
  }

  remaining(resource: CircuitResource): number {
    return Math.max(0, this.limit(resource) - this.counts[resource]);
  }

  /** Takes one unit of `resource`, or refuses (overflow). Pair every `true` with release(). */
  tryAcquire(resource: CircuitResource): boolean {
    if (this.counts[resource] >= this.limit(resource)) return false;
    this.counts[resource]++;
    if (this.budget) {
      // The budget counts pending and active requests alike, as Envoy's.
      if (resource === 'requests' || resource === 'pendingRequests') this.budget.requestStarted();
      else if (resource === 'retries' && !this.budget.tryStartRetry()) {
        this.counts.retries--;
        return false;
      }
    }
    return true;
  }

  release(resource: CircuitResource): void {
    if (this.counts[resource] === 0) return;
    this.counts[resource]--;
    if (!this.budget) return;
    if (resource === 'requests' || resource === 'pendingRequests') this.budget.requestFinished();
    else if (resource === 'retries') this.budget.retryFinished();
  }
}

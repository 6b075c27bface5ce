/**
 * Envoy's retry budget (circuit_breakers.thresholds.retry_budget): concurrent retries may not
 * exceed `percent`% of the active requests (pending ones included), with a floor of
 * `minRetryConcurrency`, so retries cannot multiply the load on a struggling cluster.
 */
export class RetryBudget {
  private requests = 0;
  private retries = 0;

  constructor(
    readonly percent: number,
    readonly minRetryConcurrency: number,
  ) {}

  get activeRequests(): number {
    return this.requests;
  }

  get activeRetries(): number {
    return this.retries;
  }

  /** Retries allowed at once now: max(minRetryConcurrency, floor(percent% of active requests)). */
  limit(): number {
    return Math.max(Math.floor((this.percent / 100) * this.requests), this.minRetryConcurrency);
  }

  canRetry(): boolean {
    return this.retries < this.limit();
  }

  requestStarted(): void {
    this.requests++;
  }

  requestFinished(): void {
    if (this.requests > 0) this.requests--;
  }

  /** Counts a retry in if the budget allows it. Pair every `true` with retryFinished(). */
  tryStartRetry(): boolean {
    if (!this.canRetry()) return false;
    this.retries++;
    return true;
  }

  retryFinished(): void {
    if (this.retries > 0) this.retries--;
  }
}

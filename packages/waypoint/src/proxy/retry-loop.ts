/**
 * The loop over upstream attempts for one request: endpoint picks, per-try and route timeouts,
 * retries by the route's policy (the pure decisions in retry/) within max_retries or the retry
 * budget, and cancelling the attempt in flight when the client goes away.
 */
import type {
  RouteAction,
  UpstreamCluster,
  UpstreamEndpoint,
  WaypointConfig,
} from '../config/waypoint-config.js';
import type { ClusterRuntime } from '../lb/cluster-runtime.js';
import { type AttemptOutcome, isRetriable, retryBackoffMs } from '../retry/retry-policy.js';
import type { DownstreamWatch } from './downstream.js';
import { type Exchange, mark } from './exchange.js';
import type { ReplayableBody } from './replayable-body.js';
import { type Attempt, type AttemptDeps, grpcStatusOf, startAttempt } from './request-attempt.js';

export interface RetryLoopInputs {
  readonly deps: AttemptDeps;
  readonly random: () => number;
  readonly config: WaypointConfig;
  readonly cluster: UpstreamCluster;
  readonly runtime: ClusterRuntime;
  readonly action: RouteAction;
  readonly ex: Exchange;
  /** The upstream request, as the route rewrote it. */
  readonly request: {
    readonly path: string;
    readonly authority: string;
    readonly headers: Record<string, string | string[]>;
    readonly body: ReplayableBody;
  };
  /** The route's hash key for consistent-hash load balancing. */
  readonly key: string | undefined;
  /** Whether the client has gone before its response finished, and what to call when it does. */
  readonly downstream: DownstreamWatch;
}

/** How the loop ended: the attempt to answer from (none: no endpoint), and whether it timed out. */
export type RetryLoopDone = (last: Attempt | undefined, timedOut: boolean) => void;

/**
 * Runs attempts until one is final, then calls `done` once. An error thrown by the loop's own
 * steps goes to `fail` instead. No promise or closure is made per attempt beyond the attempt's.
 */
export function runAttempts(
  inputs: RetryLoopInputs,
  done: RetryLoopDone,
  fail: (err: unknown) => void,
): void {
  new RetryLoop(inputs, done, fail).start();
}

class RetryLoop {
  private current: Attempt | undefined;
  private last: Attempt | undefined;
  private timedOut = false;
  private finished = false;
  private overall: NodeJS.Timeout | undefined;
  /** Cancels the attempt in flight (set while one is). */
  private abortInFlight: (() => void) | undefined;
  /** The attempt in flight, by number (0: none). */
  private inFlight = 0;
  private attempt = 0;
  /** A retry holds a unit of max_retries (or of the retry budget) until its attempt ends. */
  private retrying = false;
  private readonly deadline: number;

  constructor(
    private readonly i: RetryLoopInputs,
    private readonly done: RetryLoopDone,
    private readonly fail: (err: unknown) => void,
  ) {
    const timeoutMs = i.action.timeoutMs;
    this.deadline = timeoutMs > 0 ? i.ex.start + timeoutMs : Number.POSITIVE_INFINITY;
    if (timeoutMs > 0) this.overall = setTimeout(() => this.onTimeout(), timeoutMs);
    // A client that goes away cancels the upstream request, as Envoy resets it (flag DC).
    i.downstream.onGone(() => this.onGone());
  }

  start(): void {
    try {
      this.next();
    } catch (err) {
      this.abandon(err);
    }
  }

  private onTimeout(): void {
    this.timedOut = true;
    if (this.current?.ok) this.current.response.abort();
    this.abortInFlight?.();
  }

  private onGone(): void {
    this.abortInFlight?.();
    if (this.current?.ok) this.current.response.abort();
  }

  private endRetry(): void {
    if (this.retrying) this.i.runtime.retryFinished();
    this.retrying = false;
  }

  /** Starts the next attempt, or ends the loop when no endpoint can take it. */
  private next(): void {
    const { deps, config, cluster, runtime: rt, ex, request, key, action } = this.i;
    const pick = rt.pick(config.endpoints.get(cluster.name) ?? [], key, ex.endpoint);
    if (!pick.ok) {
      const overflow = pick.reason === 'overflow';
      this.current = {
        ok: false,
        outcome: overflow ? { overflow: true } : { connectFailure: true },
        error: overflow ? 'WP_ERR_UPSTREAM_OVERFLOW' : 'WP_ERR_NO_HEALTHY_UPSTREAM',
      };
      if (overflow) deps.metrics.overflows.inc({ cluster: cluster.name, limit: 'max_requests' });
      this.endRetry();
      this.last = this.current;
      this.finish();
      return;
    }
    const endpoint = pick.endpoint;
    ex.endpoint = endpoint;
    ex.attempts = this.attempt + 1;
    const perTry = action.retry?.perTryTimeoutMs ?? 0;
    const attemptDeadline = Math.min(
      this.deadline,
      perTry > 0 ? performance.now() + perTry : Number.POSITIVE_INFINITY,
    );
    const n = this.attempt + 1;
    this.inFlight = n;
    const cancel = startAttempt(
      deps,
      cluster,
      endpoint,
      ex.method,
      request.path,
      request.authority,
      request.headers,
      request.body,
      attemptDeadline,
      ex.ctx.sourceIp,
      (a) => this.onResult(n, a, endpoint),
    );
    // Unless the attempt has already ended (an overflow, a head that could not be sent).
    if (this.inFlight === n) this.abortInFlight = cancel;
  }

  private onResult(n: number, a: Attempt, endpoint: UpstreamEndpoint): void {
    if (this.inFlight !== n) {
      // An attempt the loop gave up on (its setup threw): nobody reads its response.
      if (a.ok) a.response.abort();
      return;
    }
    this.inFlight = 0;
    this.abortInFlight = undefined;
    this.current = a;
    try {
      this.decide(a, endpoint);
    } catch (err) {
      this.abandon(err);
    }
  }

  /** After an attempt: the answer, or a retry after its backoff. */
  private decide(current: Attempt, endpoint: UpstreamEndpoint): void {
    const { deps, random, cluster, runtime: rt, action, downstream } = this.i;
    rt.requestFinished(endpoint, current.ok ? current.response.status : undefined, !current.ok);
    this.endRetry();
    this.last = current;
    if (!this.retries(current)) {
      this.finish();
      return;
    }
    this.retrying = true;
    const wait = retryBackoffMs(action.retry as NonNullable<RouteAction['retry']>, this.attempt, random);
    if (performance.now() + wait >= this.deadline) {
      this.endRetry();
      this.finish();
      return;
    }
    if (current.ok) current.response.abort();
    deps.metrics.retries.inc({ cluster: cluster.name });
    setTimeout(() => {
      if (this.timedOut || downstream.gone) {
        this.endRetry();
        this.finish();
        return;
      }
      this.attempt += 1;
      this.start();
    }, wait);
  }

  /** Whether the attempt is retried: the route's policy, max_retries, the body, the budget. */
  private retries(current: Attempt): boolean {
    const { deps, cluster, runtime: rt, ex, action, request, downstream } = this.i;
    if (this.timedOut || downstream.gone) return false;
    const policy = action.retry;
    const grpcStatus = current.ok ? grpcStatusOf(current.response.headers) : undefined;
    const outcome: AttemptOutcome = current.ok
      ? { status: current.response.status, grpcStatus }
      : current.outcome;
    if (!policy || !isRetriable(policy, outcome)) return false;
    if (this.attempt >= policy.numRetries) {
      mark(ex, 'retry_limit');
      return false;
    }
    if (!request.body.replayable) return false;
    if (!rt.tryStartRetry()) {
      deps.metrics.overflows.inc({ cluster: cluster.name, limit: 'retries' });
      return false;
    }
    return true;
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.overall);
    this.done(this.last, this.timedOut);
  }

  /** The loop's own step threw: no answer from it, the error to the caller. */
  private abandon(err: unknown): void {
    if (this.finished) return;
    this.finished = true;
    // An attempt whose setup threw may still report (its try timer): it no longer counts.
    this.inFlight = 0;
    this.abortInFlight?.();
    this.abortInFlight = undefined;
    clearTimeout(this.overall);
    this.fail(err);
  }
}

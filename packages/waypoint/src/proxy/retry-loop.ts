/**
 * The loop over upstream attempts for one request: endpoint picks, per-try and route timeouts,
 * retries by the route's policy (the pure decisions in retry/) within max_retries or the retry
 * budget, and cancelling the attempt in flight when the client goes away.
 */
import type { RouteAction, UpstreamCluster, WaypointConfig } from '../config/waypoint-config.js';
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

/** Runs attempts until one is final; `last` is the attempt to answer from (none: no endpoint). */
export async function runAttempts({
  deps,
  random,
  config,
  cluster,
  runtime: rt,
  action,
  ex,
  request,
  key,
  downstream,
}: RetryLoopInputs): Promise<{ last: Attempt | undefined; timedOut: boolean }> {
  const policy = action.retry;
  const { path, authority, headers, body } = request;
  const deadline = action.timeoutMs > 0 ? ex.start + action.timeoutMs : Number.POSITIVE_INFINITY;
  let current: Attempt | undefined;
  let last: Attempt | undefined;
  let timedOut = false;
  const overall =
    action.timeoutMs > 0
      ? setTimeout(() => {
          timedOut = true;
          if (current?.ok) current.response.abort();
          abortInFlight?.();
        }, action.timeoutMs)
      : undefined;
  let abortInFlight: (() => void) | undefined;
  // A client that goes away cancels the upstream request, as Envoy resets it (flag DC).
  downstream.onGone(() => {
    abortInFlight?.();
    if (current?.ok) current.response.abort();
  });
  try {
    // A retry holds a unit of max_retries (or of the retry budget) until its attempt ends.
    let retrying = false;
    const endRetry = () => {
      if (retrying) rt.retryFinished();
      retrying = false;
    };
    for (let attempt = 0; ; attempt++) {
      const endpoints = config.endpoints.get(cluster.name) ?? [];
      const pick = rt.pick(endpoints, key, ex.endpoint);
      if (!pick.ok) {
        current = {
          ok: false,
          outcome: pick.reason === 'overflow' ? { overflow: true } : { connectFailure: true },
          error: pick.reason === 'overflow' ? 'WP_ERR_UPSTREAM_OVERFLOW' : 'WP_ERR_NO_HEALTHY_UPSTREAM',
        };
        if (pick.reason === 'overflow')
          deps.metrics.overflows.inc({ cluster: cluster.name, limit: 'max_requests' });
        endRetry();
        last = current;
        break;
      }
      ex.endpoint = pick.endpoint;
      ex.attempts = attempt + 1;
      const perTry = policy?.perTryTimeoutMs ?? 0;
      const attemptDeadline = Math.min(
        deadline,
        perTry > 0 ? performance.now() + perTry : Number.POSITIVE_INFINITY,
      );
      const started = startAttempt(
        deps,
        cluster,
        pick.endpoint,
        ex.method,
        path,
        authority,
        headers,
        body,
        attemptDeadline,
        ex.ctx.sourceIp,
      );
      abortInFlight = started.cancel;
      current = await started.result;
      abortInFlight = undefined;
      rt.requestFinished(pick.endpoint, current.ok ? current.response.status : undefined, !current.ok);
      endRetry();
      last = current;
      if (timedOut || downstream.gone) break;
      const grpcStatus = current.ok ? grpcStatusOf(current.response.headers) : undefined;
      const outcome: AttemptOutcome = current.ok
        ? { status: current.response.status, grpcStatus }
        : current.outcome;
      if (!policy || !isRetriable(policy, outcome)) break;
      if (attempt >= policy.numRetries) {
        mark(ex, 'retry_limit');
        break;
      }
      if (!body.replayable) break;
      if (!rt.tryStartRetry()) {
        deps.metrics.overflows.inc({ cluster: cluster.name, limit: 'retries' });
        break;
      }
      retrying = true;
      const wait = retryBackoffMs(policy, attempt, random);
      if (performance.now() + wait >= deadline) {
        endRetry();
        break;
      }
      if (current.ok) current.response.abort();
      deps.metrics.retries.inc({ cluster: cluster.name });
      await new Promise((resolve) => setTimeout(resolve, wait));
      if (timedOut || downstream.gone) {
        endRetry();
        break;
      }
    }
  } finally {
    clearTimeout(overall);
  }
  return { last, timedOut };
}

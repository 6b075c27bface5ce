/**
 * Retry decisions as Envoy's RetryStateImpl makes them, and its backoff.
 *
 * A reset (including a connect failure or a refused stream) is retriable under `5xx`,
 * `gateway-error` and `reset`; a connect failure also under `connect-failure`, a refused stream also
 * under `refused-stream`. A response is retriable by status under `5xx` (any 5xx),
 * `gateway-error` (502, 503, 504) and `retriable-status-codes` (the policy's list), and by its
 * grpc-status under `cancelled` (1) and `unavailable` (14). A circuit-breaker overflow never is.
 */
import type { RetryPolicy } from '../config/waypoint-config.js';

export interface AttemptOutcome {
  /** The upstream response status, when one arrived. */
  readonly status?: number;
  /** The connection to the endpoint could not be made (or timed out). */
  readonly connectFailure?: boolean;
  /** The stream or connection was reset after it was made. */
  readonly reset?: boolean;
  /** HTTP/2 REFUSED_STREAM: the endpoint did not process the request. */
  readonly refusedStream?: boolean;
  /** grpc-status of a trailers-only response. */
  readonly grpcStatus?: number;
  /** The attempt was refused by a circuit breaker (Envoy's overflow reset). */
  readonly overflow?: boolean;
}

const GRPC_CANCELLED = 1;
const GRPC_UNAVAILABLE = 14;

export function isRetriable(policy: RetryPolicy, outcome: AttemptOutcome): boolean {
  const on = policy.retryOn;
  if (outcome.overflow) return false;
  if (outcome.connectFailure || outcome.reset || outcome.refusedStream) {
    if (on.has('5xx') || on.has('gateway-error') || on.has('reset')) return true;
    if (outcome.connectFailure && on.has('connect-failure')) return true;
    return !!outcome.refusedStream && on.has('refused-stream');
  }
  const status = outcome.status;
  if (status !== undefined) {
    if (on.has('5xx') && status >= 500 && status <= 599) return true;
    if (on.has('gateway-error') && status >= 502 && status <= 504) return true;
    if (on.has('retriable-status-codes') && policy.retriableStatusCodes.has(status)) return true;
  }
  const grpc = outcome.grpcStatus;
  if (grpc === GRPC_CANCELLED && on.has('cancelled')) return true;
  return grpc === GRPC_UNAVAILABLE && on.has('unavailable');
}

/**
 * Delay before retry number `retry` (0 for the first retry): Envoy's JitteredExponentialBackOff,
 * uniform over [0, min(base * 2^retry, max)) ("full jitter"), in whole milliseconds.
 */
export function retryBackoffMs(
  policy: Pick<RetryPolicy, 'backoffBaseMs' | 'backoffMaxMs'>,
  retry: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.backoffMaxMs, policy.backoffBaseMs * 2 ** Math.min(Math.max(retry, 0), 52));
  return Math.min(Math.floor(random() * ceiling), policy.backoffMaxMs);
}

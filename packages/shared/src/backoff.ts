export interface BackoffPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
}

/** Certificate retries: 0.5 s doubling to 150 s. */
export const CERT_BACKOFF: BackoffPolicy = Object.freeze({ initialMs: 500, maxMs: 150_000 });

/**
 * Delay before retry number `attempt` (0-based): the exponential ceiling min(max, initial * 2^attempt),
 * jittered down into [ceiling/2, ceiling] so that many clients failing together spread out.
 */
export function backoffDelay(
  policy: BackoffPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 52));
  return ceiling / 2 + (ceiling / 2) * random();
}

import { type BackoffPolicy, backoffDelay } from '../backoff.js';

export interface RotationInput {
  /** When the certificate arrived (ms since the epoch). */
  readonly receivedAt: number;
  /** Its notAfter (ms since the epoch). */
  readonly notAfter: number;
  /** Rotations in a row that came due sooner than the backoff allowed (0 after a normal one). */
  readonly early: number;
  readonly backoff: BackoffPolicy;
  readonly random?: () => number;
}

export interface RotationPlan {
  /** How long after `receivedAt` to ask for the next certificate. */
  readonly delayMs: number;
  /** The `early` count to pass with the next certificate. */
  readonly early: number;
}

/**
 * When to rotate a certificate: at half of the lifetime it had left when it arrived. Not half of
 * notAfter - notBefore: the CA backdates notBefore for clock skew (60 s here, 2 min in Istio), and
 * with a short TTL that midpoint lies in the past, so every certificate would be due the moment it
 * arrived. A half-life shorter than the backoff's first step (a CA issuing sub-second lifetimes)
 * is treated like a failure: the next rotation waits for the backoff, which doubles with each such
 * certificate in a row up to its cap, so the CA never sees a node agent ask faster than the backoff
 * allows. One normal certificate ends the pacing.
 */
export function planRotation(input: RotationInput): RotationPlan {
  const half = Math.max(0, input.notAfter - input.receivedAt) / 2;
  if (half >= input.backoff.initialMs) return { delayMs: half, early: 0 };
  return { delayMs: backoffDelay(input.backoff, input.early, input.random), early: input.early + 1 };
}

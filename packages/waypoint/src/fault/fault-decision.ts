/**
 * Fault injection as Envoy's fault filter decides it: the delay and the abort are drawn
 * independently, each applying to its percentage of requests; a request may get both (the abort
 * then answers after the delay).
 */
import type { FaultPolicy } from '../config/waypoint-config.js';

export interface FaultDecision {
  /** Hold the request this long before going on (or aborting). */
  readonly delayMs?: number;
  /** Answer with this instead of forwarding: an HTTP status, or a gRPC status (HTTP 200). */
  readonly abort?: { readonly httpStatus?: number; readonly grpcStatus?: number };
}

const NONE: FaultDecision = Object.freeze({});

/** `random` returns values in [0, 1); a percentage p applies when random() * 100 < p. */
export function decideFault(
  policy: FaultPolicy | undefined,
  random: () => number = Math.random,
): FaultDecision {
  if (!policy) return NONE;
  const delay = policy.delay && random() * 100 < policy.delay.percent ? policy.delay.ms : undefined;
  const a = policy.abort;
  const abort =
    a && random() * 100 < a.percent
      ? a.grpcStatus !== undefined
        ? { grpcStatus: a.grpcStatus }
        : { httpStatus: a.httpStatus ?? 503 }
      : undefined;
  if (delay === undefined && !abort) return NONE;
  return { ...(delay !== undefined && { delayMs: delay }), ...(abort && { abort }) };
}

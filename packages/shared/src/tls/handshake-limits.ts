/**
 * Bounds on TLS handshakes in progress at one listener. A handshake holds native memory (the TLS
 * state, key shares, socket buffers) from the first byte until it completes or fails; without a
 * bound, a flood of half-open handshakes (a ClientHello and then silence) grows a proxy's resident
 * memory with the flood's size and glibc does not give it back. Completed connections are not
 * counted here: they are bounded by the peers' pools and by authorization.
 */
import { fail, ok, type Problem, type Result } from '../result.js';

export interface HandshakeLimits {
  /** A handshake not complete after this long is dropped (from accept to the client's Finished). */
  readonly timeoutMs: number;
  /** Handshakes in progress at one listener; more are closed at once. */
  readonly maxPending: number;
  /** Handshakes in progress from one source address at one listener; more are closed at once. */
  readonly maxPendingPerSource: number;
}

export const DEFAULT_HANDSHAKE_LIMITS: HandshakeLimits = Object.freeze({
  timeoutMs: 5_000,
  maxPending: 256,
  maxPendingPerSource: 32,
});

/** Bounded metric labels for a handshake the limits refused or dropped. */
export type HandshakeRefusal = 'handshake_limit' | 'handshake_source_limit' | 'handshake_timeout';

/** Whether one more handshake from a source may start, given those in progress. Pure. */
export function admitHandshake(
  pending: number,
  pendingFromSource: number,
  limits: HandshakeLimits,
): { ok: true } | { ok: false; reason: HandshakeRefusal } {
  if (pending >= limits.maxPending) return { ok: false, reason: 'handshake_limit' };
  if (pendingFromSource >= limits.maxPendingPerSource) return { ok: false, reason: 'handshake_source_limit' };
  return { ok: true };
}

/** Checks limits given in code or settings; every problem is named with its field. */
export function validateHandshakeLimits(
  limits: HandshakeLimits,
  path = 'handshake',
): Result<HandshakeLimits> {
  const problems: Problem[] = [];
  const check = (field: keyof HandshakeLimits, min: number, max: number) => {
    const v = limits[field];
    if (!Number.isInteger(v) || v < min || v > max)
      problems.push({ path: `${path}.${field}`, message: `must be an integer from ${min} to ${max}` });
  };
  check('timeoutMs', 100, 120_000);
  check('maxPending', 1, 1_000_000);
  check('maxPendingPerSource', 1, 1_000_000);
  return problems.length ? fail(problems) : ok(Object.freeze({ ...limits }));
}

/**
 * The handshakes in progress at one listener, by source address. `enter` admits or refuses;
 * the returned token is released exactly once however the handshake ends.
 */
export class HandshakeGate {
  private pending = 0;
  private readonly bySource = new Map<string, number>();

  constructor(readonly limits: HandshakeLimits) {}

  get size(): number {
    return this.pending;
  }

  enter(source: string): { ok: true; release: () => void } | { ok: false; reason: HandshakeRefusal } {
    const verdict = admitHandshake(this.pending, this.bySource.get(source) ?? 0, this.limits);
    if (!verdict.ok) return verdict;
    this.pending += 1;
    this.bySource.set(source, (this.bySource.get(source) ?? 0) + 1);
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.pending -= 1;
        const n = (this.bySource.get(source) ?? 1) - 1;
        if (n <= 0) this.bySource.delete(source);
        else this.bySource.set(source, n);
      },
    };
  }
}

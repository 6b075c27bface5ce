/**
 * Consecutive-5xx outlier detection, as Envoy's detector runs it for one cluster.
 *
 * - Every result is recorded against its endpoint: a 5xx or a local failure (connect failure,
 *   reset, timeout: Envoy counts them as 5xx unless told to split them) adds to the endpoint's
 *   streak, anything else ends it.
 * - When a streak reaches `consecutive5xx` the endpoint is ejected, unless that would put more
 *   than maxEjectionPercent of the endpoints out (`alwaysEjectOneHost` lets the first one go
 *   regardless); either way the streak starts over.
 * - An ejection lasts base x multiplier, capped at maxEjectionTime; each ejection raises the
 *   multiplier and each interval spent healthy after coming back lowers it by one.
 * - Unejection happens only in the interval sweep, as in Envoy. The clock is injected and the
 *   sweep is run by the caller (runInterval) or lazily (poll), so nothing here owns a timer.
 */
import type { OutlierDetection } from '../config/waypoint-config.js';

export interface EndpointResult {
  /** The response status, when one arrived. */
  readonly status?: number;
  /** No response: connect failure, reset or timeout. */
  readonly localFailure?: boolean;
}

interface HostState {
  streak: number;
  multiplier: number;
  ejectedAt?: number;
  unejectedAt?: number;
}

/** Envoy's max_ejection_time default. */
const DEFAULT_MAX_EJECTION_MS = 300_000;

export class OutlierDetector {
  private readonly hosts = new Map<string, HostState>();
  private ejectedCount = 0;
  private lastSweep: number;

  constructor(
    private readonly config: OutlierDetection,
    private readonly now: () => number = Date.now,
  ) {
    this.lastSweep = now();
  }

  /** The cluster's endpoints by key; state of departed endpoints is dropped, new ones start clean. */
  setEndpoints(keys: Iterable<string>): void {
    const next = new Set(keys);
    for (const [key, state] of this.hosts) {
      if (next.has(key)) continue;
      if (state.ejectedAt !== undefined) this.ejectedCount--;
      this.hosts.delete(key);
    }
    for (const key of next) if (!this.hosts.has(key)) this.hosts.set(key, { streak: 0, multiplier: 0 });
  }

  /** Results for endpoints not in the set (already removed) are ignored. */
  recordResult(key: string, result: EndpointResult): void {
    const host = this.hosts.get(key);
    if (!host) return;
    const failed = result.localFailure === true || (result.status !== undefined && result.status >= 500);
    if (!failed) {
      host.streak = 0;
      return;
    }
    host.streak++;
    const threshold = this.config.consecutive5xx;
    if (threshold <= 0 || host.streak < threshold) return;
    host.streak = 0;
    if (host.ejectedAt === undefined) this.tryEject(host);
  }

  isEjected(key: string): boolean {
    return this.hosts.get(key)?.ejectedAt !== undefined;
  }

  /** Keys of the endpoints ejected now. */
  ejected(): string[] {
    return [...this.hosts].filter(([, h]) => h.ejectedAt !== undefined).map(([k]) => k);
  }

  get size(): number {
    return this.hosts.size;
  }

  /** Runs the interval sweep if an interval has passed since the last one. */
  poll(): void {
    const now = this.now();
    if (now - this.lastSweep >= this.config.intervalMs) this.runInterval();
  }

  /** The interval sweep: return endpoints whose ejection has run out; heal multipliers. */
  runInterval(): void {
    const now = this.now();
    this.lastSweep = now;
    const base = this.config.baseEjectionTimeMs;
    const max = Math.max(this.config.maxEjectionTimeMs ?? DEFAULT_MAX_EJECTION_MS, base);
    for (const host of this.hosts.values()) {
      if (host.ejectedAt === undefined) {
        if (
          host.unejectedAt !== undefined &&
          now - host.unejectedAt >= this.config.intervalMs &&
          host.multiplier > 0
        )
          host.multiplier--;
        continue;
      }
      if (now - host.ejectedAt >= Math.min(base * host.multiplier, max)) {
        host.ejectedAt = undefined;
        host.unejectedAt = now;
        host.streak = 0;
        this.ejectedCount--;
      }
    }
  }

  private tryEject(host: HostState): void {
    const total = this.hosts.size;
    const percent = (100 * (this.ejectedCount + 1)) / total;
    const allowed =
      percent <= this.config.maxEjectionPercent ||
      (this.config.alwaysEjectOneHost === true && this.ejectedCount === 0);
    if (!allowed) return;
    const base = this.config.baseEjectionTimeMs;
    const max = Math.max(this.config.maxEjectionTimeMs ?? DEFAULT_MAX_EJECTION_MS, base);
    // Envoy stops raising the multiplier once base x multiplier passes the cap.
    if (host.multiplier * base < max + base) host.multiplier++;
    host.ejectedAt = this.now();
    this.ejectedCount++;
  }
}

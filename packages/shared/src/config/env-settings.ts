// Reading a component's settings from an environment map, collecting every problem by the
// setting's name instead of stopping at the first.
//
// One rule for empty values, everywhere: a setting set to the empty string is read exactly as
// if it were unset. An optional setting takes its default; a required one is refused as
// "is required". (Templated manifests often render an unset value as `KEY=""`; reading that as
// "use the default" is what the template meant, and a required value still cannot be empty.)
import { fail, ok, type Problem, type Result } from '../result.js';

export type EnvMap = Readonly<Record<string, string | undefined>>;

/** pino's levels, plus `silent`. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const HOST_PORT = /^[^\s:]+:\d{1,5}$/;
/** Go's time.ParseDuration units, in milliseconds (what Istio's duration settings accept). */
const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};
const DURATION = /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/;
const DURATION_PART = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g;

/**
 * Typed readers over one environment map. Each reader returns a usable value even when it
 * records a problem, so a parser reads every setting and reports all problems at once; call
 * `result()` at the end.
 */
export class EnvSettings {
  readonly problems: Problem[] = [];
  constructor(private readonly env: EnvMap) {}

  /** Records a problem that no single reader can see (settings that depend on each other). */
  add(path: string, message: string): void {
    this.problems.push({ path, message });
  }

  /** The value, or undefined when unset or empty. */
  optional(key: string): string | undefined {
    const v = this.env[key];
    return v === '' ? undefined : v;
  }

  /** The value, else `fallback`; refused as required when both are missing. */
  required(key: string, fallback?: string): string {
    const v = this.optional(key) ?? fallback;
    if (v === undefined) this.add(key, 'is required');
    return v ?? '';
  }

  /** An integer from `min` to `max` inclusive, else `fallback` when unset. */
  integer(key: string, fallback: number, min: number, max: number): number {
    const raw = this.optional(key);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!/^-?\d+$/.test(raw) || !Number.isInteger(n) || n < min || n > max)
      this.add(key, `must be an integer from ${min} to ${max}`);
    return n;
  }

  /** Exactly `true` or `false`, else `fallback` when unset. Anything else is refused, not guessed. */
  boolean(key: string, fallback: boolean): boolean {
    const v = this.optional(key);
    if (v === undefined) return fallback;
    if (v !== 'true' && v !== 'false') this.add(key, 'must be true or false');
    return v === 'true';
  }

  /** A Go-style duration (`20s`, `90m`, `1h30m`, `250ms`) in milliseconds, else `fallbackMs` when unset. */
  durationMs(key: string, fallbackMs: number): number {
    const v = this.optional(key);
    if (v === undefined) return fallbackMs;
    const ms = parseDurationMs(v);
    if (ms === undefined) {
      this.add(key, `${JSON.stringify(v)} is not a duration such as 10s, 250ms or 1m30s`);
      return fallbackMs;
    }
    return ms;
  }

  /** `host:port`, else `fallback`; undefined when both are missing. */
  optionalHostPort(key: string, fallback?: string): string | undefined {
    const v = this.optional(key);
    if (v !== undefined && !HOST_PORT.test(v)) this.add(key, 'must be host:port');
    return v ?? fallback;
  }

  /** `host:port`, else `fallback`; refused as required when both are missing. */
  hostPort(key: string, fallback?: string): string {
    const v = this.optionalHostPort(key, fallback);
    if (v === undefined) this.add(key, 'is required');
    return v ?? '';
  }

  /** One of `LOG_LEVELS`, `info` when unset. */
  logLevel(key: string): LogLevel {
    const v = this.optional(key) ?? 'info';
    if (!(LOG_LEVELS as readonly string[]).includes(v))
      this.add(key, `must be one of ${LOG_LEVELS.join(', ')}`);
    return v as LogLevel;
  }

  /** The frozen settings, or every problem recorded. */
  result<T extends object>(value: T): Result<T> {
    return this.problems.length ? fail([...this.problems]) : ok(Object.freeze(value));
  }
}

/** A Go time.ParseDuration string without sign, in milliseconds; undefined when it is not one. */
export function parseDurationMs(v: string): number | undefined {
  if (!DURATION.test(v)) return undefined;
  let ms = 0;
  for (const [, n, unit] of v.matchAll(DURATION_PART))
    ms += Number(n) * (DURATION_UNITS[unit as string] ?? 0);
  return ms;
}

/**
 * Reads fields of a parsed manifest, collecting every problem with its field path instead of
 * stopping at the first: the decoders of each kind build on it.
 */
import { isIP } from 'node:net';
import { type Problem, parseDurationMs } from '@ambient/shared';
import { RE2JS } from 're2js';

export type Obj = Record<string, unknown>;

export interface ObjectMeta {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly uid?: string;
}

const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export class ManifestFields {
  readonly problems: Problem[] = [];
  add(path: string, message: string): void {
    this.problems.push({ path, message });
  }
  obj(v: unknown, path: string, optional = true): Obj | undefined {
    if (v === undefined || v === null) {
      if (!optional) this.add(path, 'is required');
      return undefined;
    }
    if (typeof v === 'object' && !Array.isArray(v)) return v as Obj;
    this.add(path, 'must be a map');
    return undefined;
  }
  list(v: unknown, path: string): unknown[] | undefined {
    if (v === undefined || v === null) return undefined;
    if (Array.isArray(v)) return v;
    this.add(path, 'must be a list');
    return undefined;
  }
  str(v: unknown, path: string, fallback?: string): string {
    if (v === undefined || v === null || v === '') {
      if (fallback === undefined) this.add(path, 'is required');
      return fallback ?? '';
    }
    if (typeof v === 'string') return v;
    this.add(path, 'must be a string');
    return fallback ?? '';
  }
  /** An optional string: undefined when absent or empty. */
  optStr(v: unknown, path: string): string | undefined {
    const s = this.str(v, path, '');
    return s === '' ? undefined : s;
  }
  strings(v: unknown, path: string): string[] | undefined {
    const l = this.list(v, path);
    if (!l) return undefined;
    return l.flatMap((s, i) => {
      if (typeof s === 'string') return [s];
      this.add(`${path}[${i}]`, 'must be a string');
      return [];
    });
  }
  labels(v: unknown, path: string): Record<string, string> {
    const o = this.obj(v, path);
    const out: Record<string, string> = {};
    for (const [k, val] of Object.entries(o ?? {})) {
      if (typeof val === 'string') out[k] = val;
      else if (typeof val === 'number' || typeof val === 'boolean') out[k] = String(val);
      else this.add(`${path}.${k}`, 'must be a string');
    }
    return out;
  }
  port(v: unknown, path: string): number | undefined {
    if (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535) return v;
    this.add(path, `${JSON.stringify(v)} is not a port from 1 to 65535`);
    return undefined;
  }
  /** An optional port: undefined when absent. */
  optPort(v: unknown, path: string): number | undefined {
    return v === undefined || v === null ? undefined : this.port(v, path);
  }
  /** An optional integer from min to max. */
  int(v: unknown, path: string, min: number, max: number): number | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) return v;
    this.add(path, `${JSON.stringify(v)} is not an integer from ${min} to ${max}`);
    return undefined;
  }
  /** An optional number from min to max, fractions allowed. */
  num(v: unknown, path: string, min: number, max: number): number | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max) return v;
    this.add(path, `${JSON.stringify(v)} is not a number from ${min} to ${max}`);
    return undefined;
  }
  bool(v: unknown, path: string): boolean | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'boolean') return v;
    this.add(path, 'must be true or false');
    return undefined;
  }
  /** An optional duration such as `10s`, `250ms` or `1m30s`, in milliseconds. */
  duration(v: unknown, path: string): number | undefined {
    if (v === undefined || v === null) return undefined;
    // Go's time.ParseDuration syntax, what Istio accepts (Gateway API durations are a subset).
    const ms = typeof v === 'string' ? parseDurationMs(v) : undefined;
    if (ms === undefined)
      this.add(path, `${JSON.stringify(v)} is not a duration such as 10s, 250ms or 1m30s`);
    return ms;
  }
  /** An optional value that must be one of `values`. */
  oneOf<T extends string>(v: unknown, path: string, values: readonly T[]): T | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string' && (values as readonly string[]).includes(v)) return v as T;
    this.add(path, `${JSON.stringify(v)} must be one of ${values.join(', ')}`);
    return undefined;
  }
  /**
   * A regular expression that must compile as RE2, the engine Envoy and the waypoint match with:
   * what is accepted here is exactly what the proxies accept.
   */
  regex(v: unknown, path: string): string {
    const s = this.str(v, path);
    if (!s) return s;
    try {
      RE2JS.compile(s);
    } catch (err) {
      this.add(path, `${JSON.stringify(s)} is not a valid regular expression: ${(err as Error).message}`);
    }
    return s;
  }
  /**
   * Refuses keys outside `known`: where a misspelt or unsupported key would silently change what
   * matches or what happens to a request, the object is refused rather than half applied.
   */
  only(
    o: Obj | undefined,
    path: string,
    known: readonly string[],
    unsupported: readonly string[] = [],
  ): void {
    for (const k of Object.keys(o ?? {})) {
      if (unsupported.includes(k)) this.add(`${path}.${k}`, 'is not supported');
      else if (!known.includes(k)) this.add(`${path}.${k}`, 'unknown field');
    }
  }
  ip(v: unknown, path: string): string | undefined {
    if (typeof v === 'string' && isIP(v)) return v;
    this.add(path, `${JSON.stringify(v)} is not an IP address`);
    return undefined;
  }
  cidr(c: string, path: string): boolean {
    const [addr = '', len] = c.split('/');
    const family = isIP(addr);
    const valid =
      family !== 0 && (len === undefined || (/^\d+$/.test(len) && Number(len) <= (family === 6 ? 128 : 32)));
    if (!valid) this.add(path, `${JSON.stringify(c)} is not an IP or CIDR`);
    return valid;
  }
  cidrs(v: unknown, path: string): string[] | undefined {
    return this.strings(v, path)?.filter((c, i) => this.cidr(c, `${path}[${i}]`));
  }
  /** A Kubernetes object name (DNS subdomain). */
  name(v: unknown, path: string): string {
    const name = this.str(v, path);
    if (name && !NAME.test(name)) this.add(path, `${JSON.stringify(name)} is not a valid name`);
    return name;
  }
}

export function decodeMeta(f: ManifestFields, v: unknown, namespaced: boolean): ObjectMeta {
  const m = f.obj(v, 'metadata', false) ?? {};
  const name = f.str(m.name, 'metadata.name');
  if (name && !NAME.test(name)) f.add('metadata.name', `${JSON.stringify(name)} is not a valid name`);
  const namespace = namespaced ? f.str(m.namespace, 'metadata.namespace', 'default') : '';
  if (namespace && !NAME.test(namespace))
    f.add('metadata.namespace', `${JSON.stringify(namespace)} is not a valid namespace`);
  return {
    name,
    namespace,
    labels: f.labels(m.labels, 'metadata.labels'),
    annotations: f.labels(m.annotations, 'metadata.annotations'),
    ...(typeof m.uid === 'string' && m.uid !== '' && { uid: m.uid }),
  };
}

/**
 * What every Envoy decoder shares: a problem list keyed by field path (snake_case, as Envoy names
 * fields), and conversions of well-known types (Duration, wrappers, FractionalPercent, Struct,
 * Any). Decoders keep going after a problem so that one NACK names every bad field.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type {
  EnvoyMessageName,
  EnvoyMessages,
  Problem,
  WireAny,
  WireCidrRange,
  WireConfigSource,
  WireDuration,
  WireFractionalPercent,
  WireInt64,
  WireMetadata,
  WireStruct,
  WireValue,
} from '@ambient/shared';
import { allFieldsHandled } from '@ambient/shared';
import type protobuf from 'protobufjs';

export class DecodeContext {
  readonly problems: Problem[] = [];

  constructor(readonly root: protobuf.Root) {}

  problem(path: string, message: string): void {
    this.problems.push({ path, message });
  }

  /** Decodes a typed config's bytes as `typeName`; undefined (with a problem) if they do not parse. */
  decodeAny<N extends EnvoyMessageName>(
    any: WireAny,
    typeName: N,
    path: string,
  ): EnvoyMessages[N] | undefined {
    try {
      return this.root.lookupType(typeName).decode(any.value) as unknown as EnvoyMessages[N];
    } catch (err) {
      this.problem(path, `${typeName} does not decode: ${(err as Error).message}`);
      return undefined;
    }
  }
}

/** `a.b` or `b` when the parent path is empty. */
export function at(parent: string, field: string): string {
  return parent ? `${parent}.${field}` : field;
}

/** The message name of a typed config: what follows the last `/` of its type URL, as Envoy reads it. */
export function anyTypeName(any: WireAny): string {
  // The bytes are read by decodeAny, once the type is known.
  const { type_url, value: _value, ...rest } = any;
  allFieldsHandled(rest);
  return type_url.slice(type_url.lastIndexOf('/') + 1);
}

function int64(v: WireInt64): number {
  return typeof v === 'number' ? v : Number(v.toString());
}

/**
 * Duration to whole milliseconds, truncated as Envoy's PROTOBUF_GET_MS does. Negative or
 * out-of-range durations are problems.
 */
export function durationMs(d: WireDuration, path: string, ctx: DecodeContext): number | undefined {
  const { seconds: wireSeconds, nanos, ...rest } = d;
  allFieldsHandled(rest);
  const seconds = int64(wireSeconds);
  if (!Number.isSafeInteger(seconds) || seconds < 0 || nanos < 0 || nanos > 999_999_999) {
    ctx.problem(path, `${seconds}s ${nanos}ns is not a non-negative duration`);
    return undefined;
  }
  return seconds * 1000 + Math.trunc(nanos / 1_000_000);
}

/** A Duration field: its value in ms, `fallback` when unset. */
export function optionalMs(
  d: WireDuration | null | undefined,
  fallback: number,
  path: string,
  ctx: DecodeContext,
): number {
  return d ? (durationMs(d, path, ctx) ?? fallback) : fallback;
}

/** A Duration that Envoy requires to be greater than zero when set. */
export function positiveMs(
  d: WireDuration | null | undefined,
  fallback: number,
  path: string,
  ctx: DecodeContext,
): number {
  if (!d) return fallback;
  const ms = durationMs(d, path, ctx);
  if (ms === undefined) return fallback;
  if (int64(d.seconds) === 0 && d.nanos === 0) {
    ctx.problem(path, 'must be greater than zero');
    return fallback;
  }
  // Sub-millisecond positive values round up to 1 ms rather than vanish.
  return Math.max(ms, 1);
}

const DENOMINATORS = [100, 10_000, 1_000_000] as const;

/** FractionalPercent to 0..100; Envoy caps a numerator above its denominator at 100%. */
export function fractionalPercent(
  f: WireFractionalPercent | null | undefined,
  fallback: number,
  path: string,
  ctx: DecodeContext,
): number {
  if (!f) return fallback;
  const { numerator, denominator: wireDenominator, ...rest } = f;
  allFieldsHandled(rest);
  const denominator = DENOMINATORS[wireDenominator];
  if (denominator === undefined) {
    ctx.problem(`${path}.denominator`, `${wireDenominator} is not HUNDRED, TEN_THOUSAND or MILLION`);
    return fallback;
  }
  return Math.min(100, (numerator / denominator) * 100);
}

/** metadata.filter_metadata.istio: the one metadata namespace the waypoint reads. */
export function istioMetadata(m: WireMetadata | null): WireStruct | undefined {
  if (!m) return undefined;
  const { filterMetadata, ...rest } = m;
  allFieldsHandled(rest);
  return filterMetadata.istio;
}

/** google.protobuf.Struct to plain JSON values. */
export function structToJson(s: WireStruct): Record<string, unknown> {
  const { fields, ...rest } = s;
  allFieldsHandled(rest);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) out[k] = valueToJson(v);
  return out;
}

function valueToJson(v: WireValue): unknown {
  const {
    kind,
    // null_value has one member: the JSON null every other kind falls back to.
    nullValue: _nullValue,
    numberValue,
    stringValue,
    boolValue,
    structValue,
    listValue,
    ...rest
  } = v;
  allFieldsHandled(rest);
  switch (kind) {
    case 'numberValue':
      return numberValue;
    case 'stringValue':
      return stringValue;
    case 'boolValue':
      return boolValue;
    case 'structValue':
      return structValue ? structToJson(structValue) : {};
    case 'listValue': {
      const { values, ...listRest } = listValue ?? { values: [] };
      allFieldsHandled(listRest);
      return values.map(valueToJson);
    }
    default:
      return null;
  }
}

/** A CidrRange: the address must be an IP and the length fit its family (unset length is 0, as Envoy). */
export function cidr(
  r: WireCidrRange,
  path: string,
  ctx: DecodeContext,
): { address: string; prefixLen: number } | undefined {
  const { addressPrefix, prefixLen: wirePrefixLen, ...rest } = r;
  allFieldsHandled(rest);
  const max = isIPv4(addressPrefix) ? 32 : isIPv6(addressPrefix) ? 128 : 0;
  if (!max) {
    ctx.problem(`${path}.address_prefix`, `${JSON.stringify(addressPrefix)} is not an IP address`);
    return undefined;
  }
  const prefixLen = wirePrefixLen?.value ?? 0;
  if (prefixLen > max) {
    ctx.problem(`${path}.prefix_len`, `${prefixLen} is longer than ${max}`);
    return undefined;
  }
  return { address: addressPrefix, prefixLen };
}

/** The waypoint has one xDS connection: a config source must be ADS (or `self`, the same server). */
export function adsConfigSource(s: WireConfigSource | null, path: string, ctx: DecodeContext): void {
  if (!s) {
    ctx.problem(path, 'is required');
    return;
  }
  const {
    configSourceSpecifier,
    // AggregatedConfigSource is an empty message: only that it is the set member matters.
    ads: _ads,
    // Not checked: the waypoint subscribes to v3 resources whatever version a source names.
    resourceApiVersion: _resourceApiVersion,
    ...rest
  } = s;
  allFieldsHandled(rest);
  if (configSourceSpecifier !== 'ads' && configSourceSpecifier !== 'self')
    ctx.problem(path, `${configSourceSpecifier ?? 'nothing'} is not supported: use ads`);
}

export function isPort(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 65535;
}

/**
 * Freezes decoded values all the way down. RegExps stay unfrozen: String.prototype.replace
 * writes `lastIndex` on global ones, which throws on a frozen object.
 */
export function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object' || value instanceof RegExp || Object.isFrozen(value))
    return value;
  if (value instanceof Set || value instanceof Map) return Object.freeze(value);
  for (const v of Object.values(value)) deepFreeze(v);
  return Object.freeze(value);
}

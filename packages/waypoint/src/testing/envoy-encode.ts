/**
 * Test helpers: encode Envoy resources from protobufjs JSON-like objects, as the control plane
 * does. Typed configs are written `{ '@type': TYPE_URL, ...fields }` (protobufjs packs them).
 */
import { envoyProtos } from '../xds/envoy-protos.js';

export const TYPE_PREFIX = 'type.googleapis.com/';

export function encodeMessage(typeName: string, object: Record<string, unknown>): Uint8Array {
  const type = envoyProtos().lookupType(typeName);
  return type.encode(type.fromObject(object)).finish();
}

/** A typed config of message `typeName`. */
export function typed(typeName: string, fields: Record<string, unknown> = {}): Record<string, unknown> {
  return { '@type': `${TYPE_PREFIX}${typeName}`, ...fields };
}

/** A google.protobuf.Struct in protobufjs object form. */
export function struct(object: Record<string, unknown>): { fields: Record<string, unknown> } {
  const value = (v: unknown): Record<string, unknown> => {
    if (v === null) return { nullValue: 0 };
    if (typeof v === 'number') return { numberValue: v };
    if (typeof v === 'string') return { stringValue: v };
    if (typeof v === 'boolean') return { boolValue: v };
    if (Array.isArray(v)) return { listValue: { values: v.map(value) } };
    return { structValue: struct(v as Record<string, unknown>) };
  };
  return { fields: Object.fromEntries(Object.entries(object).map(([k, v]) => [k, value(v)])) };
}

export function duration(ms: number): { seconds: number; nanos: number } {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

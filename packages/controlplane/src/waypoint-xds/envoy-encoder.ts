/**
 * Envoy v3 messages for waypoints, encoded with Envoy's own proto definitions (as shipped with
 * @grpc/grpc-js-xds) through protobufjs: resources are built in the shared wire types
 * (`EnvoyInput<T>`, packages/shared/src/wire/envoy-resources.ts), converted with the
 * looked-up type (enum names become numbers) and encoded. `google.protobuf.Any` values are packed
 * here with their type URL, so callers never handle bytes of nested messages.
 */
import {
  type EnvoyInput,
  type EnvoyMessageName,
  type EnvoyMessages,
  envoyWaypointProtos,
} from '@ambient/shared';
import type protobuf from 'protobufjs';

// The type URLs are the shared protocol facts; re-exported for the control plane's callers.
export {
  CLUSTER_LOAD_ASSIGNMENT_TYPE_URL,
  CLUSTER_TYPE_URL,
  LISTENER_TYPE_URL,
  ROUTE_CONFIGURATION_TYPE_URL,
  WAYPOINT_TYPE_URLS,
} from '@ambient/shared';

const TYPE_PREFIX = 'type.googleapis.com/';

/** protobufjs' built-in google.protobuf.Any keeps the proto field name `type_url`. */
export interface PackedAny {
  readonly type_url: string;
  readonly value: Uint8Array;
}

export class EnvoyEncoder {
  private readonly types = new Map<string, protobuf.Type>();

  constructor(readonly root: protobuf.Root = envoyWaypointProtos()) {}

  /** The message type by its full name (`envoy.config.listener.v3.Listener`). */
  type(name: string): protobuf.Type {
    let t = this.types.get(name);
    if (!t) {
      t = this.root.lookupType(name);
      this.types.set(name, t);
    }
    return t;
  }

  /** Encodes a message in the shared wire shape (camelCase field names, enum names or numbers). */
  encode<N extends EnvoyMessageName>(typeName: N, plain: EnvoyInput<EnvoyMessages[N]>): Uint8Array {
    const t = this.type(typeName);
    return t.encode(t.fromObject(plain as Record<string, unknown>)).finish();
  }

  /** A `google.protobuf.Any` holding `plain` encoded as `typeName`. */
  any<N extends EnvoyMessageName>(typeName: N, plain: EnvoyInput<EnvoyMessages[N]>): PackedAny {
    return { type_url: `${TYPE_PREFIX}${typeName}`, value: this.encode(typeName, plain) };
  }

  /**
   * Decodes a message into a plain object, unpacking every Any it can resolve into
   * `{ '@type': <type URL>, ...fields }`: for tests and debug dumps.
   */
  decode(typeName: string, bytes: Uint8Array): Record<string, unknown> {
    const t = this.type(typeName);
    const plain = t.toObject(t.decode(bytes), { enums: String, longs: Number, bytes: String });
    return this.unpack(plain) as Record<string, unknown>;
  }

  private unpack(v: unknown): unknown {
    if (Array.isArray(v)) return v.map((x) => this.unpack(x));
    if (!v || typeof v !== 'object') return v;
    const o = v as Record<string, unknown>;
    const url = o.type_url;
    if (typeof url === 'string' && url.startsWith(TYPE_PREFIX) && Object.keys(o).length <= 2) {
      const name = url.slice(TYPE_PREFIX.length);
      const inner = typeof o.value === 'string' ? Buffer.from(o.value, 'base64') : new Uint8Array(0);
      try {
        return { '@type': url, ...this.decode(name, inner) };
      } catch {
        return o;
      }
    }
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, this.unpack(x)]));
  }
}

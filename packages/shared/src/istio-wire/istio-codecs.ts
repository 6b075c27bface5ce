/**
 * The type URLs of Istio's workload discovery and a typed codec for each: the control plane
 * encodes `Input<Address>` / `Input<Authorization>`, ztunnel decodes `Address` / `Authorization`.
 */
import type protobuf from 'protobufjs';
import { meshProtos } from '../xds/xds-protos.js';
import type { Authorization } from './istio-authorization.js';
import type { Address } from './istio-workload.js';
import type { Input } from './wire-input.js';

/** Istio's workload discovery type URLs (ztunnel's subscriptions). */
export const ADDRESS_TYPE_URL = 'type.googleapis.com/istio.workload.Address';
export const AUTHORIZATION_TYPE_URL = 'type.googleapis.com/istio.security.Authorization';

export interface WireCodec<T> {
  readonly typeUrl: string;
  /** The fully qualified message name, e.g. `istio.workload.Address`. */
  readonly messageName: string;
  encode(value: Input<T>): Uint8Array;
  /**
   * Throws on malformed bytes. The message is read in place: unset fields read as their defaults
   * from the prototype, so no copy is made of tens of thousands of resources per sync.
   */
  decode(bytes: Uint8Array): T;
}

class ProtobufCodec<T> implements WireCodec<T> {
  private type?: protobuf.Type;

  constructor(
    readonly typeUrl: string,
    readonly messageName: string,
  ) {}

  private messageType(): protobuf.Type {
    this.type ??= meshProtos().lookupType(this.messageName);
    return this.type;
  }

  encode(value: Input<T>): Uint8Array {
    // The one place the typed value meets protobufjs's untyped one.
    return this.messageType()
      .encode(value as protobuf.Message)
      .finish();
  }

  decode(bytes: Uint8Array): T {
    return this.messageType().decode(bytes) as unknown as T;
  }
}

/** `istio.workload.Address`: a Workload or a Service. */
export const ADDRESS_CODEC: WireCodec<Address> = new ProtobufCodec<Address>(
  ADDRESS_TYPE_URL,
  'istio.workload.Address',
);

/** `istio.security.Authorization`. */
export const AUTHORIZATION_CODEC: WireCodec<Authorization> = new ProtobufCodec<Authorization>(
  AUTHORIZATION_TYPE_URL,
  'istio.security.Authorization',
);

/**
 * Reads a DeltaDiscoveryResponse straight from the wire: the fields the client uses, with each
 * resource's payload as a view into the received buffer. A full snapshot holds tens of thousands
 * of resources; reading them without building Resource and Any objects halves the garbage of a
 * sync. Field numbers are envoy.service.discovery.v3's: DeltaDiscoveryResponse
 * {system_version_info=1, resources=2, type_url=4, nonce=5, removed_resources=6}, Resource
 * {version=1, resource=2, name=3}, google.protobuf.Any {type_url=1, value=2}.
 */
import protobuf from 'protobufjs';

export interface DeltaResource {
  readonly name: string;
  readonly version: string;
  /** Undefined when the resource carries no payload. */
  readonly typeUrl?: string;
  readonly value?: Uint8Array;
}

export interface DeltaResponse {
  readonly typeUrl: string;
  readonly nonce: string;
  readonly systemVersionInfo: string;
  readonly resources: DeltaResource[];
  readonly removedResources: string[];
}

function readAny(r: protobuf.Reader, buf: Uint8Array, end: number): { typeUrl: string; value: Uint8Array } {
  let typeUrl = '';
  let value: Uint8Array = new Uint8Array(0);
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10) typeUrl = r.string();
    else if (tag === 18) {
      const len = r.uint32();
      value = buf.subarray(r.pos, r.pos + len);
      r.skip(len);
    } else r.skipType(tag & 7);
  }
  return { typeUrl, value };
}

function readResource(r: protobuf.Reader, buf: Uint8Array, end: number): DeltaResource {
  let name = '';
  let version = '';
  let any: { typeUrl: string; value: Uint8Array } | undefined;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 26) name = r.string();
    else if (tag === 10) version = r.string();
    else if (tag === 18) {
      const len = r.uint32();
      any = readAny(r, buf, r.pos + len);
    } else r.skipType(tag & 7);
  }
  return any ? { name, version, typeUrl: any.typeUrl, value: any.value } : { name, version };
}

/** Throws on malformed input (the caller treats the stream as unusable). */
export function readDeltaResponse(buf: Uint8Array): DeltaResponse {
  const r = protobuf.Reader.create(buf);
  let typeUrl = '';
  let nonce = '';
  let systemVersionInfo = '';
  const resources: DeltaResource[] = [];
  const removedResources: string[] = [];
  while (r.pos < r.len) {
    const tag = r.uint32();
    switch (tag) {
      case 10:
        systemVersionInfo = r.string();
        break;
      case 18: {
        const len = r.uint32();
        const end = r.pos + len;
        if (end > r.len) throw new RangeError('resource extends past the end of the message');
        resources.push(readResource(r, buf, end));
        r.pos = end;
        break;
      }
      case 34:
        typeUrl = r.string();
        break;
      case 42:
        nonce = r.string();
        break;
      case 50:
        removedResources.push(r.string());
        break;
      default:
        r.skipType(tag & 7);
    }
  }
  return { typeUrl, nonce, systemVersionInfo, resources, removedResources };
}

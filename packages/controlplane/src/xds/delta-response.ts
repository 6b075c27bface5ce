/**
 * The bytes of a DeltaDiscoveryResponse, spliced from resources encoded once. A resource's
 * `Resource` message is encoded when its snapshot is built; here each is framed once as the
 * response's field 2 (tag and length) and, for a whole snapshot, all of them are concatenated
 * once: a new proxy's first response (every resource of the snapshot) then costs one copy of that
 * body instead of writing 10,000 resources again for each of 50 proxies. As nonces count per
 * stream, streams that connect to the same snapshot get the very same response bytes, built once.
 * Caches are keyed by the
 * entry and snapshot objects, so a superseded snapshot's bytes go with it.
 * Field numbers are envoy.service.discovery.v3.DeltaDiscoveryResponse's: system_version_info=1,
 * resources=2, type_url=4, nonce=5, removed_resources=6.
 */
import protobuf from 'protobufjs';
import type { ResourceEntry, TypeSnapshot } from './snapshot-store.js';

const framedEntries = new WeakMap<ResourceEntry, Buffer>();
const snapshotBodies = new WeakMap<TypeSnapshot, Buffer>();
const wholeResponses = new WeakMap<TypeSnapshot, Map<string, Buffer>>();
/** Whole-snapshot responses kept per snapshot (system version, type and nonce vary rarely). */
const WHOLE_RESPONSES_PER_SNAPSHOT = 8;

/** One resource as field 2 of a response: tag, length, encoded `Resource`. */
export function framedResource(entry: ResourceEntry): Buffer {
  let framed = framedEntries.get(entry);
  if (!framed) {
    const w = protobuf.Writer.create();
    w.uint32(18).bytes(entry.encoded);
    const bytes = w.finish();
    framed = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    framedEntries.set(entry, framed);
  }
  return framed;
}

/** Every resource of a snapshot, framed, in the snapshot's order. */
export function snapshotBody(snap: TypeSnapshot): Buffer {
  let body = snapshotBodies.get(snap);
  if (!body) {
    body = Buffer.concat([...snap.values()].map(framedResource));
    snapshotBodies.set(snap, body);
  }
  return body;
}

export interface DeltaResponseParts {
  readonly systemVersionInfo: string;
  /** Framed resources: `snapshotBody` or `framedResource`s. */
  readonly resources: readonly Buffer[];
  readonly typeUrl: string;
  readonly nonce: string;
  readonly removed: readonly string[];
}

/** The response, with its fields in field-number order. */
export function deltaResponseBytes(parts: DeltaResponseParts): Buffer {
  const head = protobuf.Writer.create().uint32(10).string(parts.systemVersionInfo).finish();
  const tail = protobuf.Writer.create();
  tail.uint32(34).string(parts.typeUrl);
  tail.uint32(42).string(parts.nonce);
  for (const name of parts.removed) tail.uint32(50).string(name);
  return Buffer.concat([head, ...parts.resources, tail.finish()]);
}

/**
 * The response carrying every resource of a snapshot and no removals: one buffer shared by every
 * stream given the same system version and nonce (it must not be changed).
 */
export function wholeSnapshotResponse(
  snap: TypeSnapshot,
  systemVersionInfo: string,
  typeUrl: string,
  nonce: string,
): Buffer {
  let bySnap = wholeResponses.get(snap);
  if (!bySnap) {
    bySnap = new Map();
    wholeResponses.set(snap, bySnap);
  }
  const key = `${systemVersionInfo}\n${typeUrl}\n${nonce}`;
  let bytes = bySnap.get(key);
  if (!bytes) {
    bytes = deltaResponseBytes({
      systemVersionInfo,
      resources: [snapshotBody(snap)],
      typeUrl,
      nonce,
      removed: [],
    });
    if (bySnap.size >= WHOLE_RESPONSES_PER_SNAPSHOT) bySnap.clear();
    bySnap.set(key, bytes);
  }
  return bytes;
}

/**
 * The resources every xDS server serves, per scope and type URL (name -> version and the encoded
 * `Resource`): scope '' is what every ztunnel sees, and each waypoint gateway has a scope of its
 * own. Publishing installs new snapshots and tells each listener which names changed or went, so
 * the Delta and the state-of-the-world servers serve the same generation of resources.
 */
import { createHash } from 'node:crypto';
import type { Input, WireCodec } from '@ambient/shared';
import protobuf from 'protobufjs';
import type { SnapshotMap } from '../ambient/snapshot-map.js';
import { runToEnd } from '../ambient/time-slicer.js';

export interface ResourceEntry {
  readonly version: string;
  /** The encoded envoy.service.discovery.v3.Resource. */
  readonly encoded: Uint8Array;
}

export type TypeSnapshot = ReadonlyMap<string, ResourceEntry>;

/** Encodes resources into `Resource` messages, caching by the identity of each wire object. */
export class ResourceEncoder<T> {
  private readonly cache = new WeakMap<object, { name: string; entry: ResourceEntry }>();
  readonly typeUrl: string;

  constructor(private readonly codec: WireCodec<T>) {
    this.typeUrl = codec.typeUrl;
  }

  encode(name: string, value: Input<T> & object): ResourceEntry {
    const hit = this.cache.get(value);
    if (hit && hit.name === name) return hit.entry;
    const entry = resourceEntry(this.typeUrl, name, this.codec.encode(value));
    this.cache.set(value, { name, entry });
    return entry;
  }

  encodeAll(values: ReadonlyMap<string, Input<T> & object>): Map<string, ResourceEntry> {
    return runToEnd(this.encodeSteps(values));
  }

  /**
   * Encodes again only `names` from `values` into `target` (removing those `values` lacks), for a
   * change that touched only those resources, and returns the snapshot of the result. Snapshots
   * taken of `target` before are not modified.
   */
  *encodeChangedSteps(
    target: SnapshotMap<string, ResourceEntry>,
    values: ReadonlyMap<string, Input<T> & object>,
    names: Iterable<string>,
  ): Generator<void, TypeSnapshot> {
    for (const name of names) {
      const v = values.get(name);
      if (v) target.set(name, this.encode(name, v));
      else target.delete(name);
      yield;
    }
    return target.snapshot();
  }

  /** `encodeAll` as steps, one per resource, for running in time slices. */
  *encodeSteps(values: ReadonlyMap<string, Input<T> & object>): Generator<void, Map<string, ResourceEntry>> {
    const out = new Map<string, ResourceEntry>();
    for (const [name, v] of values) {
      out.set(name, this.encode(name, v));
      yield;
    }
    return out;
  }
}

/** Wraps already encoded messages into `Resource`s, versioned by the hash of their bytes. */
export function encodeResources(
  typeUrl: string,
  messages: ReadonlyMap<string, Uint8Array>,
): Map<string, ResourceEntry> {
  const out = new Map<string, ResourceEntry>();
  for (const [name, bytes] of messages) out.set(name, resourceEntry(typeUrl, name, bytes));
  return out;
}

function resourceEntry(typeUrl: string, name: string, bytes: Uint8Array): ResourceEntry {
  const version = createHash('sha256').update(bytes).digest('base64url').slice(0, 16);
  const w = protobuf.Writer.create();
  w.uint32(10).string(version); // version = 1
  w.uint32(18).fork().uint32(10).string(typeUrl).uint32(18).bytes(bytes).ldelim(); // resource = 2 (Any)
  w.uint32(26).string(name); // name = 3
  return { version, encoded: w.finish() };
}

export interface SnapshotChange {
  readonly scope: string;
  readonly typeUrl: string;
  /** Names added or at a new version. */
  readonly changed: readonly string[];
  readonly removed: readonly string[];
  /** When the change that caused this publish happened, for convergence time. */
  readonly changedAt?: number;
}

const EMPTY: TypeSnapshot = new Map();

export class SnapshotStore {
  /** scope -> type URL -> snapshot. */
  private readonly snapshots = new Map<string, Map<string, TypeSnapshot>>();
  private readonly listeners: Array<(change: SnapshotChange) => void> = [];
  /** Counts publishes: the system version servers report. */
  private publishes = 0;

  get version(): number {
    return this.publishes;
  }

  /** Calls `listener` for every type of every scope whose resources change. */
  onChange(listener: (change: SnapshotChange) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Installs new snapshots of the shared (ztunnel) scope. `only`, per type URL, names every
   * resource that can differ from the snapshot installed now (added, changed or removed), so only
   * those are compared; a type without it is compared whole.
   */
  publish(
    next: ReadonlyMap<string, TypeSnapshot>,
    changedAt?: number,
    only?: ReadonlyMap<string, Iterable<string>>,
  ): void {
    this.publishes += 1;
    for (const [typeUrl, snap] of next) this.install('', typeUrl, snap, changedAt, only?.get(typeUrl));
  }

  /**
   * Installs the snapshots of every per-proxy scope (one per waypoint gateway) for `typeUrls`:
   * a scope absent from `next` loses all its resources of those types.
   */
  publishScoped(
    typeUrls: readonly string[],
    next: ReadonlyMap<string, ReadonlyMap<string, TypeSnapshot>>,
    changedAt?: number,
  ): void {
    this.publishes += 1;
    const scopes = new Set([...this.snapshots.keys(), ...next.keys()]);
    scopes.delete('');
    for (const scope of scopes) {
      for (const typeUrl of typeUrls)
        this.install(scope, typeUrl, next.get(scope)?.get(typeUrl) ?? EMPTY, changedAt);
      const held = this.snapshots.get(scope);
      if (held && [...held.values()].every((s) => s.size === 0)) this.snapshots.delete(scope);
    }
  }

  /** The resources currently published for a type, in a scope ('' is the ztunnel scope). */
  snapshot(typeUrl: string, scope = ''): TypeSnapshot {
    return this.snapshots.get(scope)?.get(typeUrl) ?? EMPTY;
  }

  private install(
    scope: string,
    typeUrl: string,
    snap: TypeSnapshot,
    changedAt?: number,
    only?: Iterable<string>,
  ): void {
    let byType = this.snapshots.get(scope);
    if (!byType) {
      byType = new Map();
      this.snapshots.set(scope, byType);
    }
    const prev = byType.get(typeUrl) ?? EMPTY;
    const changed: string[] = [];
    const removed: string[] = [];
    if (only) {
      for (const name of new Set(only)) {
        const e = snap.get(name);
        if (e) {
          if (prev.get(name)?.version !== e.version) changed.push(name);
        } else if (prev.has(name)) removed.push(name);
      }
    } else {
      for (const [name, e] of snap) if (prev.get(name)?.version !== e.version) changed.push(name);
      for (const name of prev.keys()) if (!snap.has(name)) removed.push(name);
    }
    byType.set(typeUrl, snap);
    if (changed.length === 0 && removed.length === 0) return;
    const change: SnapshotChange = {
      scope,
      typeUrl,
      changed,
      removed,
      ...(changedAt !== undefined && { changedAt }),
    };
    for (const l of this.listeners) l(change);
  }
}

/**
 * What one stream holds of one type: resource name -> version. A stream that was sent a whole
 * snapshot holds exactly that snapshot's versions, so instead of copying 10,000 names into a map
 * per stream, the snapshot itself is kept as the base and only what changed since (a newer
 * version, or a removal) is recorded on top of it.
 */
import type { TypeSnapshot } from './snapshot-store.js';

const EMPTY: TypeSnapshot = new Map();

export class HeldVersions {
  private base: TypeSnapshot = EMPTY;
  /** Differences from `base`: a version, or undefined for a name of `base` no longer held. */
  private readonly over = new Map<string, string | undefined>();
  private count = 0;

  /** Holds exactly every resource of `snap`, at its versions. */
  holdAll(snap: TypeSnapshot): void {
    this.base = snap;
    this.over.clear();
    this.count = snap.size;
  }

  get(name: string): string | undefined {
    return this.over.has(name) ? this.over.get(name) : this.base.get(name)?.version;
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  set(name: string, version: string): void {
    if (!this.has(name)) this.count += 1;
    this.over.set(name, version);
  }

  delete(name: string): void {
    if (!this.has(name)) return;
    this.count -= 1;
    if (this.base.has(name)) this.over.set(name, undefined);
    else this.over.delete(name);
  }

  get size(): number {
    return this.count;
  }

  *keys(): IterableIterator<string> {
    for (const name of this.base.keys()) if (!this.over.has(name)) yield name;
    for (const [name, version] of this.over) if (version !== undefined) yield name;
  }
}

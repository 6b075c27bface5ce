/**
 * A map that hands out read-only snapshots of itself without copying it whole each time: a
 * snapshot is the base map (frozen once shared) plus a small copy of the changes made on top of
 * it since. A source of 10,000 objects changing one at a time thus hands out a snapshot per change
 * for a few hundred entries copied, not 10,000. The changes are folded into a new base once they
 * pass a bound, so a lookup checks at most two maps.
 */

/** Changes held on top of a shared base before they are folded into a new one. */
const FOLD_AT = 256;

export class SnapshotMap<K, V> {
  private base: Map<K, V> = new Map();
  /** Set once a snapshot holds `base`: from then on changes go to `over`. */
  private baseShared = false;
  /** Changes on top of `base`: a value, or undefined for a key of `base` no longer present. */
  private over = new Map<K, V | undefined>();
  private count = 0;
  private view?: MapView<K, V>;

  /** Starts from `initial`, which is never modified (it may be in use elsewhere). */
  constructor(initial?: ReadonlyMap<K, V>) {
    if (initial) {
      this.base = initial as Map<K, V>;
      this.baseShared = true;
      this.count = initial.size;
    }
  }

  get size(): number {
    return this.count;
  }

  get(key: K): V | undefined {
    return this.over.has(key) ? this.over.get(key) : this.base.get(key);
  }

  has(key: K): boolean {
    return this.get(key) !== undefined;
  }

  set(key: K, value: V): void {
    if (!this.has(key)) this.count += 1;
    this.view = undefined;
    if (this.baseShared) {
      this.over.set(key, value);
      this.fold();
    } else this.base.set(key, value);
  }

  delete(key: K): boolean {
    if (!this.has(key)) return false;
    this.count -= 1;
    this.view = undefined;
    if (!this.baseShared) this.base.delete(key);
    else {
      if (this.base.has(key)) this.over.set(key, undefined);
      else this.over.delete(key);
      this.fold();
    }
    return true;
  }

  /** The map as it is now; later changes do not show in it. */
  snapshot(): ReadonlyMap<K, V> {
    if (!this.view) {
      this.baseShared = true;
      this.view = new MapView(this.base, new Map(this.over), this.count);
    }
    return this.view;
  }

  private fold(): void {
    if (this.over.size < FOLD_AT) return;
    this.base = new Map(new MapView(this.base, this.over, this.count));
    this.over = new Map();
    this.baseShared = false;
  }
}

/** A frozen base with frozen changes on top, read as one map. */
class MapView<K, V> implements ReadonlyMap<K, V> {
  constructor(
    private readonly base: ReadonlyMap<K, V>,
    private readonly over: ReadonlyMap<K, V | undefined>,
    readonly size: number,
  ) {}

  get(key: K): V | undefined {
    return this.over.has(key) ? this.over.get(key) : this.base.get(key);
  }

  has(key: K): boolean {
    return this.get(key) !== undefined;
  }

  *entries(): IterableIterator<[K, V]> {
    if (this.over.size === 0) {
      yield* this.base.entries();
      return;
    }
    for (const entry of this.base) if (!this.over.has(entry[0])) yield entry;
    for (const [k, v] of this.over) if (v !== undefined) yield [k, v];
  }

  *keys(): IterableIterator<K> {
    for (const [k] of this.entries()) yield k;
  }

  *values(): IterableIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }

  forEach(fn: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this);
  }
}

import type { WireCodec } from '@ambient/shared';
import { describe, expect, it } from 'vitest';
import { SnapshotMap } from '../ambient/snapshot-map.js';
import { runToEnd } from '../ambient/time-slicer.js';
import { ResourceEncoder, type SnapshotChange, SnapshotStore, type TypeSnapshot } from './snapshot-store.js';

const TYPE = 'type.googleapis.com/test.Value';

/** A codec of small JSON values: enough to tell versions apart. */
const CODEC = {
  typeUrl: TYPE,
  encode: (v: unknown) => Buffer.from(JSON.stringify(v)),
} as unknown as WireCodec<{ n: number }>;

function values(entries: Array<[string, number]>): Map<string, { n: number }> {
  return new Map(entries.map(([k, n]) => [k, { n }]));
}

function changes(store: SnapshotStore): SnapshotChange[] {
  const out: SnapshotChange[] = [];
  store.onChange((c) => out.push({ ...c, changed: [...c.changed].sort(), removed: [...c.removed].sort() }));
  return out;
}

describe('SnapshotStore: publishing only the named resources', () => {
  it('reports the same changes as comparing the whole snapshot', () => {
    const encoder = new ResourceEncoder(CODEC);
    const first = values([
      ['a', 1],
      ['b', 2],
      ['c', 3],
      ['d', 4],
    ]);
    const base = encoder.encodeAll(first);
    const next = new Map(first);
    next.set('b', { n: 20 }); // changed
    next.delete('c'); // removed
    next.set('e', { n: 5 }); // added
    // 'd' is named but the same value: no change; 'x' is named but in neither.
    const named = ['b', 'c', 'e', 'd', 'x'];
    const whole = new SnapshotStore();
    const partial = new SnapshotStore();
    whole.publish(new Map([[TYPE, base]]));
    partial.publish(new Map([[TYPE, base]]));
    const wholeChanges = changes(whole);
    const partialChanges = changes(partial);
    whole.publish(new Map([[TYPE, encoder.encodeAll(next)]]));
    const snap: TypeSnapshot = runToEnd(encoder.encodeChangedSteps(new SnapshotMap(base), next, named));
    partial.publish(new Map([[TYPE, snap]]), undefined, new Map([[TYPE, named]]));
    expect(partialChanges).toEqual(wholeChanges);
    expect(partialChanges).toEqual([{ scope: '', typeUrl: TYPE, changed: ['b', 'e'], removed: ['c'] }]);
    expect([...partial.snapshot(TYPE).entries()].sort()).toEqual([...whole.snapshot(TYPE).entries()].sort());
    // The base snapshot is left as it was (streams hold it as what they were sent).
    expect([...base.keys()]).toEqual(['a', 'b', 'c', 'd']);
    // Unchanged resources keep their encoded entry (the encoder caches by value identity).
    expect(snap.get('a')).toBe(base.get('a'));
    expect(snap.get('d')).toBe(base.get('d'));
  });

  it('reports nothing for a type named with no resources', () => {
    const encoder = new ResourceEncoder(CODEC);
    const base = encoder.encodeAll(values([['a', 1]]));
    const store = new SnapshotStore();
    store.publish(new Map([[TYPE, base]]));
    const seen = changes(store);
    store.publish(new Map([[TYPE, base]]), undefined, new Map([[TYPE, []]]));
    expect(seen).toEqual([]);
    expect(store.version).toBe(2);
  });
});

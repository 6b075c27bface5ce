import { describe, expect, it } from 'vitest';
import { HeldVersions } from './held-versions.js';
import { encodeResources } from './snapshot-store.js';

const snap = encodeResources(
  'type.googleapis.com/istio.workload.Address',
  new Map([
    ['a', new Uint8Array([1])],
    ['b', new Uint8Array([2])],
  ]),
);
const version = (name: string) => snap.get(name)?.version;

describe('HeldVersions', () => {
  it('holds names set one by one, and forgets deleted ones', () => {
    const held = new HeldVersions();
    held.set('x', 'v1');
    held.set('x', 'v2');
    held.set('y', 'v1');
    held.delete('y');
    held.delete('never');
    expect(held.get('x')).toBe('v2');
    expect(held.has('y')).toBe(false);
    expect(held.size).toBe(1);
    expect([...held.keys()]).toEqual(['x']);
  });

  it('holds a whole snapshot at its versions, with later changes on top', () => {
    const held = new HeldVersions();
    held.set('stale', 'v0');
    held.holdAll(snap);
    expect(held.has('stale')).toBe(false);
    expect(held.get('a')).toBe(version('a'));
    expect(held.size).toBe(2);
    held.set('a', 'newer');
    held.delete('b');
    held.delete('b');
    held.set('c', 'v1');
    expect(held.get('a')).toBe('newer');
    expect(held.has('b')).toBe(false);
    expect(held.size).toBe(2);
    expect([...held.keys()].sort()).toEqual(['a', 'c']);
    held.set('b', 'back');
    expect(held.get('b')).toBe('back');
    expect(held.size).toBe(3);
    held.delete('c');
    expect([...held.keys()].sort()).toEqual(['a', 'b']);
    // The snapshot itself is not changed.
    expect(snap.get('a')?.version).toBe(version('a'));
  });
});

/**
 * The manifest directory source updates its object map from the files read again only: the
 * objects, refusals and reported keys must be what reading every file from scratch gives.
 */
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { seededRandom } from '../../../shared/src/testing/seeded-random.js';
import { SnapshotMap } from '../ambient/snapshot-map.js';
import type { KubeObject } from '../manifests/kube-objects.js';
import { ManifestDirFixture } from './manifest-dir-fixture.js';
import { type InvalidResource, ManifestDirSource } from './manifest-dir-source.js';

const fx = new ManifestDirFixture();
beforeEach(() => fx.setUp('manifest-dir-incremental-'));
afterEach(() => fx.tearDown());
const put = (name: string, text: string) => fx.put(name, text);
const open = () => fx.open();

const pod = (name: string, ip: string) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'demo' },
  spec: { nodeName: 'node-a' },
  status: { podIP: ip },
});

const list = (...items: unknown[]) => JSON.stringify({ apiVersion: 'v1', kind: 'List', items });

const sortedInvalid = (xs: readonly InvalidResource[]) =>
  [...xs].sort((a, b) => `${a.file} ${a.ref}`.localeCompare(`${b.file} ${b.ref}`));

const asObject = (m: ReadonlyMap<string, KubeObject>) => Object.fromEntries([...m].sort());

describe('ManifestDirSource: incremental merge', () => {
  it('moves an unchanged object between files without reporting it, and keeps its identity', async () => {
    await put('a.json', list(pod('web', '10.0.0.1'), pod('db', '10.0.0.2')));
    await put('b.json', list(pod('other', '10.0.0.3')));
    const { source, changes } = await open();
    const before = source.objects();
    await put('b.json', list(pod('other', '10.0.0.3'), pod('web', '10.0.0.1')));
    await put('a.json', list(pod('db', '10.0.0.2')));
    await source.rescan();
    expect(changes()).toEqual([]);
    expect(source.invalid()).toEqual([]);
    expect(source.objects().get('Pod/demo/web')).toBe(before.get('Pod/demo/web'));
    // Moved with another IP: reported once, the new object in force.
    await put('a.json', list(pod('db', '10.0.0.2'), pod('web', '10.0.9.9')));
    await unlink(join(fx.dir, 'b.json'));
    await source.rescan();
    expect(changes()).toEqual(['Pod/demo/other', 'Pod/demo/web']);
    expect(source.objects().get('Pod/demo/web')).toMatchObject({ podIps: ['10.0.9.9'] });
    expect(source.objects().has('Pod/demo/other')).toBe(false);
  });

  it('keeps the first file by name in force for a duplicate, whichever file is edited', async () => {
    await put('a.json', list(pod('web', '10.0.0.1')));
    await put('b.json', list(pod('web', '10.0.0.2')));
    const { source, changes } = await open();
    expect(source.objects().get('Pod/demo/web')).toMatchObject({ podIps: ['10.0.0.1'] });
    const dup = {
      file: 'b.json',
      ref: 'duplicate:Pod/demo/web',
      problems: [{ path: 'metadata.name', message: 'Pod/demo/web is already defined in a.json' }],
    };
    expect(source.invalid()).toEqual([dup]);
    // Editing the later definition changes nothing in force.
    await put('b.json', list(pod('web', '10.0.0.3')));
    await source.rescan();
    expect(changes()).toEqual([]);
    expect(source.invalid()).toEqual([dup]);
    // A third file in between by name: still a duplicate, of a.json.
    await put('ab.json', list(pod('web', '10.0.0.4')));
    await source.rescan();
    expect(changes()).toEqual([]);
    expect(sortedInvalid(source.invalid())).toEqual([{ ...dup, file: 'ab.json' }, dup]);
    // The first definition gone: the next by name takes over, and is reported.
    await unlink(join(fx.dir, 'a.json'));
    await source.rescan();
    expect(changes()).toEqual(['Pod/demo/web']);
    expect(source.objects().get('Pod/demo/web')).toMatchObject({ podIps: ['10.0.0.4'] });
    expect(source.invalid()).toEqual([
      {
        ...dup,
        problems: [{ path: 'metadata.name', message: 'Pod/demo/web is already defined in ab.json' }],
      },
    ]);
  });

  it('keeps the last good objects of a file that turns invalid, while another file defines one too', async () => {
    await put('a.json', list(pod('web', '10.0.0.1'), pod('db', '10.0.0.2')));
    await put('b.json', list(pod('db', '10.0.0.3')));
    const { source, changes } = await open();
    await put('a.json', '{ not json');
    await source.rescan();
    expect(changes()).toEqual([]);
    expect(source.objects().get('Pod/demo/web')).toMatchObject({ podIps: ['10.0.0.1'] });
    expect(source.objects().get('Pod/demo/db')).toMatchObject({ podIps: ['10.0.0.2'] });
    expect(sortedInvalid(source.invalid()).map((i) => [i.file, i.ref, i.kept])).toEqual([
      ['a.json', 'a.json', ['Pod/demo/db', 'Pod/demo/web']],
      ['b.json', 'duplicate:Pod/demo/db', undefined],
    ]);
    await unlink(join(fx.dir, 'a.json'));
    await source.rescan();
    expect(changes()).toEqual(['Pod/demo/db', 'Pod/demo/web']);
    expect(source.objects().get('Pod/demo/db')).toMatchObject({ podIps: ['10.0.0.3'] });
    expect(source.invalid()).toEqual([]);
  });

  for (const seed of [1, 2, 3]) {
    it(`equals a fresh read of the directory after random writes, moves and deletions (seed ${seed})`, async () => {
      const rnd = seededRandom(seed);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
      const files = ['a.json', 'b.json', 'c.json', 'd.json'];
      await put('a.json', list(pod('p0', '10.0.0.1')));
      const { source, changes } = await open();
      let before = source.objects();
      for (let step = 0; step < 40; step++) {
        const ops = 1 + Math.floor(rnd() * 2);
        for (let o = 0; o < ops; o++) {
          const file = pick(files);
          if (rnd() < 0.25) await unlink(join(fx.dir, file)).catch(() => {});
          else {
            const n = Math.floor(rnd() * 4);
            const names = new Set(Array.from({ length: n }, () => `p${Math.floor(rnd() * 6)}`));
            await put(
              file,
              list(...[...names].map((name) => pod(name, `10.0.0.${1 + Math.floor(rnd() * 3)}`))),
            );
          }
        }
        await source.rescan();
        const fresh = new ManifestDirSource({ dir: fx.dir, rescanMs: 600_000 });
        await fresh.start();
        fresh.close();
        const after = source.objects();
        expect(asObject(after), `seed ${seed} step ${step}`).toEqual(asObject(fresh.objects()));
        expect(sortedInvalid(source.invalid())).toEqual(sortedInvalid(fresh.invalid()));
        // Every key whose object was added, replaced or removed is reported (watch events may
        // have split the writes over several scans, each reporting its own changes); the rest
        // keep their identity.
        const keys = new Set([...before.keys(), ...after.keys()]);
        const differ = [...keys].filter((k) => before.get(k) !== after.get(k));
        const reported = new Set(changes());
        expect(differ.filter((k) => !reported.has(k))).toEqual([]);
        for (const k of keys) if (!reported.has(k)) expect(after.get(k), k).toBe(before.get(k));
        before = after;
      }
    });
  }
});

describe('SnapshotMap', () => {
  it('hands out snapshots that later changes leave alone, across folds', () => {
    const rnd = seededRandom(7);
    const map = new SnapshotMap<string, number>();
    const model = new Map<string, number>();
    const held: Array<[ReadonlyMap<string, number>, Map<string, number>]> = [];
    for (let i = 0; i < 3000; i++) {
      const key = `k${Math.floor(rnd() * 400)}`;
      if (rnd() < 0.3) {
        expect(map.delete(key)).toBe(model.delete(key));
      } else {
        map.set(key, i);
        model.set(key, i);
      }
      expect(map.size).toBe(model.size);
      if (i % 37 === 0) held.push([map.snapshot(), new Map(model)]);
    }
    held.push([map.snapshot(), new Map(model)]);
    for (const [snap, expected] of held) {
      expect(snap.size).toBe(expected.size);
      expect(new Map([...snap].sort())).toEqual(new Map([...expected].sort()));
      for (const k of expected.keys()) expect(snap.get(k)).toBe(expected.get(k));
      expect(snap.has('k-missing')).toBe(false);
    }
    // No change in between: the same snapshot.
    expect(map.snapshot()).toBe(map.snapshot());
  });
});

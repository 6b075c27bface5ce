import { meshProtos } from '@ambient/shared';
import { describe, expect, it } from 'vitest';
import { deltaResponseBytes, framedResource, snapshotBody, wholeSnapshotResponse } from './delta-response.js';
import { encodeResources } from './snapshot-store.js';

const TYPE = 'type.googleapis.com/istio.workload.Address';
const response = meshProtos().lookupType('envoy.service.discovery.v3.DeltaDiscoveryResponse');

function snapshot(names: readonly string[]) {
  return encodeResources(TYPE, new Map(names.map((n, i) => [n, new Uint8Array([8, i + 1])])));
}

function decode(bytes: Buffer) {
  return response.toObject(response.decode(bytes), { bytes: Array, defaults: true }) as {
    systemVersionInfo: string;
    resources: Array<{ name: string; version: string; resource: { value: number[] } }>;
    typeUrl: string;
    nonce: string;
    removedResources: string[];
  };
}

describe('deltaResponseBytes', () => {
  it('splices a whole snapshot into a response that decodes to every resource, in order', () => {
    const snap = snapshot(['a', 'b', 'c']);
    const res = decode(
      deltaResponseBytes({
        systemVersionInfo: '7',
        resources: [snapshotBody(snap)],
        typeUrl: TYPE,
        nonce: '1-1',
        removed: ['gone'],
      }),
    );
    expect(res.systemVersionInfo).toBe('7');
    expect(res.typeUrl).toBe(TYPE);
    expect(res.nonce).toBe('1-1');
    expect(res.removedResources).toEqual(['gone']);
    expect(res.resources.map((r) => r.name)).toEqual(['a', 'b', 'c']);
    expect(res.resources.map((r) => r.version)).toEqual([...snap.values()].map((e) => e.version));
    expect(res.resources.map((r) => r.resource.value)).toEqual([
      [8, 1],
      [8, 2],
      [8, 3],
    ]);
  });

  it('carries only the resources it is given, each framed alone', () => {
    const snap = snapshot(['a', 'b', 'c']);
    const res = decode(
      deltaResponseBytes({
        systemVersionInfo: '1',
        resources: [framedResource(snap.get('c') as never)],
        typeUrl: TYPE,
        nonce: 'n',
        removed: [],
      }),
    );
    expect(res.resources.map((r) => r.name)).toEqual(['c']);
    expect(res.removedResources).toEqual([]);
  });

  it('builds a snapshot body once and a new one for a new snapshot', () => {
    const one = snapshot(['a', 'b']);
    const two = snapshot(['a', 'b', 'x']);
    expect(snapshotBody(one)).toBe(snapshotBody(one));
    expect(snapshotBody(two)).not.toBe(snapshotBody(one));
    expect(snapshotBody(two).length).toBeGreaterThan(snapshotBody(one).length);
    expect(snapshotBody(new Map()).length).toBe(0);
  });

  it('shares one whole-snapshot response among streams given the same version and nonce', () => {
    const snap = snapshot(['a', 'b']);
    const one = wholeSnapshotResponse(snap, '3', TYPE, '1');
    expect(wholeSnapshotResponse(snap, '3', TYPE, '1')).toBe(one);
    const other = wholeSnapshotResponse(snap, '3', TYPE, '2');
    expect(other).not.toBe(one);
    const res = decode(other);
    expect(res.nonce).toBe('2');
    expect(res.systemVersionInfo).toBe('3');
    expect(res.resources.map((r) => r.name)).toEqual(['a', 'b']);
    expect(res.removedResources).toEqual([]);
  });
});

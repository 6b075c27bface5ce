import { SpiffeId } from '@ambient/shared';
import { describe, expect, it } from 'vitest';
import type { FilterChain, UpstreamEndpoint, WaypointConfig } from '../config/waypoint-config.js';
import { knownSource, matchChain, parseBaggage } from './waypoint-app.js';

const chain = (name: string, port: number, ...prefixes: Array<[string, number]>): FilterChain => ({
  name,
  port,
  prefixes: prefixes.map(([address, prefixLen]) => ({ address, prefixLen })),
  handler: { kind: 'tcp', cluster: name, statPrefix: name },
});

describe('matchChain', () => {
  const chains = [
    chain('vip-80', 80, ['198.19.0.1', 32]),
    chain('net-80', 80, ['198.19.0.0', 16]),
    chain('any-port', 0, ['198.19.0.1', 32]),
    chain('v6-80', 80, ['fd00::1', 128]),
  ];

  it('prefers a port match, then the longest prefix', () => {
    expect(matchChain(chains, '198.19.0.1', 80)?.name).toBe('vip-80');
    expect(matchChain(chains, '198.19.7.7', 80)?.name).toBe('net-80');
    expect(matchChain(chains, '198.19.0.1', 9090)?.name).toBe('any-port');
    expect(matchChain(chains, 'fd00::1', 80)?.name).toBe('v6-80');
  });

  it('finds nothing for an address no chain covers', () => {
    expect(matchChain(chains, '10.0.0.1', 80)).toBeUndefined();
    expect(matchChain(chains, '198.19.0.2', 9090)).toBeUndefined();
  });
});

describe('parseBaggage', () => {
  it('reads members, decodes values, drops properties and malformed members', () => {
    const b = parseBaggage('k8s.namespace.name=demo, k8s.pod.name=sleep;p=1,bad,service.name=a%20b,x=%E0');
    expect([...b]).toEqual([
      ['k8s.namespace.name', 'demo'],
      ['k8s.pod.name', 'sleep'],
      ['service.name', 'a b'],
    ]);
    expect(parseBaggage(undefined).size).toBe(0);
  });
});

describe('knownSource', () => {
  const ep = (workload: string, address: string, sa: string): UpstreamEndpoint => ({
    address,
    port: 8080,
    workload,
    namespace: 'demo',
    serviceAccount: sa,
    identity: SpiffeId.of('cluster.local', 'demo', sa),
    tunnel: 'hbone',
  });
  const config: WaypointConfig = {
    routes: new Map(),
    clusters: new Map(),
    endpoints: new Map([['c', [ep('sleep', '10.0.0.1', 'sleep'), ep('other', '10.0.0.2', 'other')]]]),
  };

  it('names the workload at the verified address when it holds the peer identity', () => {
    const found = knownSource(config, '10.0.0.1', 'spiffe://cluster.local/ns/demo/sa/sleep');
    expect(found.knownSource?.workload).toBe('sleep');
    expect(found.knownSource?.address).toBe('10.0.0.1');
  });

  it("never names a workload whose identity is not the peer's", () => {
    expect(knownSource(config, '10.0.0.1', 'spiffe://cluster.local/ns/demo/sa/other')).toEqual({});
    expect(knownSource(config, '10.0.0.9', 'spiffe://cluster.local/ns/demo/sa/sleep')).toEqual({});
  });
});

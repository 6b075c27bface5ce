import { describe, expect, it } from 'vitest';
import type { Service } from './service.js';
import type { Workload } from './workload.js';
import { ZtunnelState } from './ztunnel-state.js';

const WP_KEY = 'demo/reviews-waypoint.demo.svc.cluster.local';

function workload(name: string, ip: string, extra: Partial<Workload> = {}): Workload {
  return {
    uid: `Kubernetes//Pod/demo/${name}`,
    name,
    namespace: 'demo',
    serviceAccount: name,
    ips: [ip],
    protocol: 'HBONE',
    node: 'node0',
    network: '',
    services: new Map(),
    authorizationPolicies: [],
    ...extra,
  };
}

const waypointService: Service = {
  name: 'reviews-waypoint',
  namespace: 'demo',
  hostname: 'reviews-waypoint.demo.svc.cluster.local',
  vips: [{ network: '', address: '198.19.250.1' }],
  ports: new Map([[15008, 15008]]),
  subjectAltNames: [],
};

describe('ZtunnelState.waypointWorkload', () => {
  const wp0 = workload('reviews-waypoint-0', '198.18.17.20', {
    services: new Map([[WP_KEY, new Map([[15008, 15008]])]]),
  });
  const wp1 = workload('reviews-waypoint-1', '198.18.16.20', {
    services: new Map([[WP_KEY, new Map([[15008, 15008]])]]),
  });
  const state = new ZtunnelState({ workloads: [wp0, wp1], services: [waypointService], policies: [] });

  it('resolves a hostname waypoint to its pods, round robin', () => {
    const gw = { namespace: 'demo', hostname: 'reviews-waypoint.demo.svc.cluster.local', port: 15008 };
    const picks = [1, 2, 3, 4].map(() => state.waypointWorkload(gw)?.name);
    expect(picks).toEqual([
      'reviews-waypoint-0',
      'reviews-waypoint-1',
      'reviews-waypoint-0',
      'reviews-waypoint-1',
    ]);
  });

  it('resolves an address waypoint through the service VIP, or a pod address directly', () => {
    expect(state.waypointWorkload({ address: '198.19.250.1', port: 15008 })?.namespace).toBe('demo');
    expect(state.waypointWorkload({ address: '198.18.16.20', port: 15008 })?.name).toBe('reviews-waypoint-1');
  });

  it('finds no waypoint when its service or pods are unknown: such traffic must fail, not bypass', () => {
    expect(
      state.waypointWorkload({ namespace: 'demo', hostname: 'gone.demo.svc.cluster.local', port: 15008 }),
    ).toBeUndefined();
    const empty = new ZtunnelState({ workloads: [], services: [waypointService], policies: [] });
    expect(
      empty.waypointWorkload({ namespace: 'demo', hostname: waypointService.hostname, port: 15008 }),
    ).toBeUndefined();
  });
});

describe('ZtunnelState.identity', () => {
  const home = workload('home', '198.18.16.10');
  const guest = workload('guest', '198.18.16.11', { trustDomain: 'other.example' });
  const state = new ZtunnelState({ workloads: [home, guest], services: [], policies: [] }, 'node.example');

  it("names a workload from another trust domain in that trust domain, as upstream ztunnel's Workload::identity", () => {
    expect(state.identity(guest).toString()).toBe('spiffe://other.example/ns/demo/sa/guest');
  });

  it("falls back to the node's trust domain when the workload names none", () => {
    expect(state.identity(home).toString()).toBe('spiffe://node.example/ns/demo/sa/home');
  });
});

describe('ZtunnelState.serviceByVip', () => {
  const svc = (name: string, namespace: string, extra: Partial<Service> = {}): Service => ({
    name,
    namespace,
    hostname: `${name}.${namespace}.svc.cluster.local`,
    vips: [],
    ports: new Map([[80, 8080]]),
    subjectAltNames: [],
    ...extra,
  });
  const vip = (address: string) => [{ network: '', address }];

  it('finds a service by every address in its CIDR VIP, and none outside it', () => {
    const range = svc('range', 'demo', { cidrVips: [{ network: '', address: '198.18.32.0', length: 24 }] });
    const v6 = svc('range6', 'demo', {
      cidrVips: [{ network: '', address: 'fd00:0:0:0:0:0:0:0', length: 64 }],
    });
    const state = new ZtunnelState({ workloads: [], services: [range, v6], policies: [] });
    expect(state.serviceByVip('198.18.32.0')?.name).toBe('range');
    expect(state.serviceByVip('198.18.32.77')?.name).toBe('range');
    expect(state.serviceByVip('198.18.32.255')?.name).toBe('range');
    expect(state.serviceByVip('198.18.33.1')).toBeUndefined();
    expect(state.serviceByVip('fd00::1234')?.name).toBe('range6');
    expect(state.serviceByVip('fd01::1')).toBeUndefined();
  });

  it("leaves a workload's own address to the workload, even inside a CIDR VIP, as upstream's find_address", () => {
    const range = svc('range', 'demo', { cidrVips: [{ network: '', address: '198.18.0.0', length: 15 }] });
    const pod = workload('pod', '198.18.16.10');
    const state = new ZtunnelState({ workloads: [pod], services: [range], policies: [] });
    expect(state.serviceByVip('198.18.16.10', 'demo')).toBeUndefined();
    expect(state.workloadByIp('198.18.16.10')?.name).toBe('pod');
    expect(state.serviceByVip('198.18.16.11', 'demo')?.name).toBe('range');
  });

  it('prefers an exact VIP, then the CIDR in the client namespace, then the longest prefix, then canonical', () => {
    const exact = svc('exact', 'demo', { vips: vip('198.18.32.5') });
    const wide = svc('wide', 'demo', { cidrVips: [{ network: '', address: '198.18.0.0', length: 16 }] });
    const narrow = svc('narrow', 'other', {
      cidrVips: [{ network: '', address: '198.18.32.0', length: 24 }],
    });
    const narrowCanonical = svc('narrow-canonical', 'third', {
      canonical: true,
      cidrVips: [{ network: '', address: '198.18.32.0', length: 24 }],
    });
    const state = new ZtunnelState({
      workloads: [],
      services: [exact, wide, narrow, narrowCanonical],
      policies: [],
    });
    expect(state.serviceByVip('198.18.32.5', 'other')?.name).toBe('exact');
    expect(state.serviceByVip('198.18.32.6', 'demo')?.name).toBe('wide');
    expect(state.serviceByVip('198.18.32.6', 'other')?.name).toBe('narrow');
    expect(state.serviceByVip('198.18.32.6', 'elsewhere')?.name).toBe('narrow-canonical');
    expect(state.serviceByVip('198.18.40.1', 'elsewhere')?.name).toBe('wide');
  });

  it('hides a namespace-visible service from clients in other namespaces, at exact and CIDR VIPs', () => {
    const priv = svc('private', 'demo', {
      visibility: 'Namespace',
      vips: vip('198.18.50.1'),
      cidrVips: [{ network: '', address: '198.18.51.0', length: 24 }],
    });
    const state = new ZtunnelState({ workloads: [], services: [priv], policies: [] });
    expect(state.serviceByVip('198.18.50.1', 'demo')?.name).toBe('private');
    expect(state.serviceByVip('198.18.51.9', 'demo')?.name).toBe('private');
    expect(state.serviceByVip('198.18.50.1', 'other')).toBeUndefined();
    expect(state.serviceByVip('198.18.51.9', 'other')).toBeUndefined();
  });

  it('of services sharing a VIP, picks the one in the client namespace, else the canonical one, else the first', () => {
    const first = svc('first', 'a', { vips: vip('198.18.60.1') });
    const canonical = svc('canonical', 'b', { vips: vip('198.18.60.1'), canonical: true });
    const mine = svc('mine', 'c', { vips: vip('198.18.60.1') });
    const state = new ZtunnelState({ workloads: [], services: [first, canonical, mine], policies: [] });
    expect(state.serviceByVip('198.18.60.1', 'c')?.name).toBe('mine');
    expect(state.serviceByVip('198.18.60.1', 'z')?.name).toBe('canonical');
    const plain = new ZtunnelState({ workloads: [], services: [first, mine], policies: [] });
    expect(plain.serviceByVip('198.18.60.1', 'z')?.name).toBe('first');
  });
});

describe('ZtunnelState.serviceWaypoint', () => {
  const gw = (hostname: string) => ({ namespace: 'demo', hostname, port: 15008 });
  const service = (weighted?: Service['weightedWaypoints']): Service => ({
    ...waypointService,
    name: 'reviews',
    waypoint: gw('primary'),
    ...(weighted && { weightedWaypoints: weighted }),
  });
  const state = new ZtunnelState({ workloads: [], services: [], policies: [] });

  it('draws a weighted waypoint in proportion to its weight', () => {
    const s = service([
      { destination: gw('primary'), weight: 90 },
      { destination: gw('canary'), weight: 10 },
    ]);
    expect(state.serviceWaypoint(s, () => 0)?.hostname).toBe('primary');
    expect(state.serviceWaypoint(s, () => 0.8999)?.hostname).toBe('primary');
    expect(state.serviceWaypoint(s, () => 0.9)?.hostname).toBe('canary');
    expect(state.serviceWaypoint(s, () => 0.99999)?.hostname).toBe('canary');
    // 1000 evenly spread draws: the realized share is the weight's share.
    let canary = 0;
    for (let i = 0; i < 1000; i++)
      if (state.serviceWaypoint(s, () => i / 1000)?.hostname === 'canary') canary++;
    expect(canary).toBe(100);
  });

  it('never sends to a weight-0 waypoint, and falls back to the single waypoint without weights', () => {
    const zero = service([
      { destination: gw('off'), weight: 0 },
      { destination: gw('on'), weight: 5 },
    ]);
    for (const r of [0, 0.5, 0.999999]) expect(state.serviceWaypoint(zero, () => r)?.hostname).toBe('on');
    expect(state.serviceWaypoint(service(), () => 0.5)?.hostname).toBe('primary');
    expect(state.serviceWaypoint(service([{ destination: gw('off'), weight: 0 }]), () => 0)?.hostname).toBe(
      'primary',
    );
    expect(state.serviceWaypoint({ ...waypointService }, () => 0)).toBeUndefined();
  });
});

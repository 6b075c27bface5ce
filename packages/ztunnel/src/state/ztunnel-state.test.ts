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

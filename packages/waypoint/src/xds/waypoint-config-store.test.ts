import { SpiffeId } from '@ambient/shared';
import { describe, expect, it } from 'vitest';
import type {
  RouteTable,
  UpstreamCluster,
  UpstreamEndpoint,
  WaypointListener,
} from '../config/waypoint-config.js';
import type { ClusterEndpoints } from './decode-endpoints.js';
import {
  CLUSTER_LOAD_ASSIGNMENT_TYPE_URL,
  CLUSTER_TYPE_URL,
  LISTENER_TYPE_URL,
  ROUTE_CONFIGURATION_TYPE_URL,
} from './envoy-protos.js';
import { type WaypointConfigChange, WaypointConfigStore } from './waypoint-config-store.js';

const HTTP = 'inbound-vip|9080|http|reviews.bookinfo.svc.cluster.local';
const TCP = 'inbound-vip|3306|tcp|mysql.db.svc.cluster.local';

const listener: WaypointListener = {
  name: 'waypoint',
  chains: [
    {
      name: HTTP,
      prefixes: [{ address: '10.96.0.10', prefixLen: 32 }],
      port: 9080,
      handler: { kind: 'http', codec: 'auto', routeConfigName: HTTP, rbac: [], statPrefix: HTTP },
    },
    { name: TCP, prefixes: [], port: 3306, handler: { kind: 'tcp', cluster: TCP, statPrefix: TCP } },
  ],
};

const noHeaders = { add: [], remove: [] };
const routes: RouteTable = {
  name: HTTP,
  routes: [
    {
      name: 'split',
      match: { path: { prefix: '/' }, headers: [], query: [] },
      action: {
        kind: 'route',
        clusters: [
          { cluster: HTTP, weight: 90 },
          { cluster: 'missing-v2', weight: 10 },
        ],
        timeoutMs: 0,
        mirrors: [{ cluster: 'missing-mirror', percent: 100 }],
        hashPolicies: [],
      },
      requestHeaders: noHeaders,
      responseHeaders: noHeaders,
    },
    {
      name: 'direct',
      match: { path: { exact: '/health' }, headers: [], query: [] },
      action: { kind: 'direct', status: 200 },
      requestHeaders: noHeaders,
      responseHeaders: noHeaders,
    },
  ],
};

const cluster = (name: string): UpstreamCluster => ({
  name,
  connectTimeoutMs: 10_000,
  lbPolicy: 'ROUND_ROBIN',
  circuitBreakers: { maxConnections: 1, maxPendingRequests: 1, maxRequests: 1, maxRetries: 1 },
  protocol: 'http1',
});

const endpoint: UpstreamEndpoint = {
  address: '10.1.0.5',
  port: 9080,
  workload: 'reviews-v1',
  namespace: 'bookinfo',
  serviceAccount: 'reviews',
  identity: SpiffeId.of('cluster.local', 'bookinfo', 'reviews'),
  tunnel: 'hbone',
};

function fullStore(): WaypointConfigStore {
  const store = new WaypointConfigStore();
  store.setListeners(new Map([['waypoint', listener]]));
  store.setRoutes(new Map([[HTTP, routes]]));
  store.setClusters(
    new Map([
      [HTTP, cluster(HTTP)],
      [TCP, cluster(TCP)],
    ]),
  );
  store.setEndpoints(
    new Map<string, ClusterEndpoints>([
      [HTTP, { cluster: HTTP, endpoints: [endpoint] }],
      [TCP, { cluster: TCP, endpoints: [] }],
    ]),
  );
  return store;
}

describe('WaypointConfigStore', () => {
  it('starts empty, at version 0', () => {
    const store = new WaypointConfigStore();
    expect(store.version).toBe(0);
    expect(store.config.listener).toBeUndefined();
    expect(store.config.routes.size).toBe(0);
    expect(store.warnings).toEqual([]);
  });

  it('assembles the four types into one snapshot', () => {
    const store = fullStore();
    const c = store.config;
    expect(c.listener).toBe(listener);
    expect(c.routes.get(HTTP)).toBe(routes);
    expect([...c.clusters.keys()]).toEqual([HTTP, TCP]);
    expect(c.endpoints.get(HTTP)).toEqual([endpoint]);
    expect(store.version).toBe(4);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('warns about dangling references without failing', () => {
    const store = fullStore();
    expect(store.warnings).toEqual([
      { path: `routes[${HTTP}].routes[0].clusters[1]`, message: 'unknown cluster missing-v2' },
      { path: `routes[${HTTP}].routes[0].mirrors[0]`, message: 'unknown cluster missing-mirror' },
    ]);
  });

  it('warns about missing route configurations, clusters, assignments and foreign listeners', () => {
    const store = new WaypointConfigStore();
    store.setListeners(
      new Map([
        ['waypoint', listener],
        ['other', { name: 'other', chains: [] }],
      ]),
    );
    store.setEndpoints(new Map([['orphan', { cluster: 'orphan', endpoints: [] }]]));
    store.setClusters(new Map([['lonely', cluster('lonely')]]));
    expect(store.config.listener).toBe(listener);
    expect(store.warnings).toEqual([
      { path: 'listeners[other]', message: 'ignored: this waypoint serves waypoint' },
      { path: 'endpoints[orphan]', message: 'no Cluster of that name' },
      {
        path: 'listeners[waypoint].chains[0].route_config_name',
        message: `unknown route configuration ${HTTP}`,
      },
      { path: 'listeners[waypoint].chains[1].cluster', message: `unknown cluster ${TCP}` },
      { path: 'clusters[lonely]', message: 'no ClusterLoadAssignment yet' },
    ]);
  });

  it('serves another listener name when told to', () => {
    const store = new WaypointConfigStore({ listenerName: 'other' });
    store.setListeners(new Map([['waypoint', listener]]));
    expect(store.config.listener).toBeUndefined();
  });

  it('swaps whole snapshots: an old snapshot never changes', () => {
    const store = fullStore();
    const before = store.config;
    store.setClusters(new Map());
    expect(before.clusters.size).toBe(2);
    expect(store.config.clusters.size).toBe(0);
    expect(store.config).not.toBe(before);
  });

  it('copies the maps it is given, so later changes to them do not leak in', () => {
    const store = new WaypointConfigStore();
    const live = new Map([[HTTP, cluster(HTTP)]]);
    store.setClusters(live);
    live.delete(HTTP);
    expect(store.config.clusters.has(HTTP)).toBe(true);
  });

  it('notifies listeners of each snapshot until they unsubscribe', () => {
    const store = new WaypointConfigStore();
    const seen: WaypointConfigChange[] = [];
    const off = store.onChange((c) => seen.push(c));
    store.setListeners(new Map([['waypoint', listener]]));
    off();
    store.setRoutes(new Map());
    expect(seen).toHaveLength(1);
    expect(seen[0]?.version).toBe(1);
    expect(seen[0]?.config.listener).toBe(listener);
    expect(seen[0]?.warnings).toHaveLength(2);
  });

  it('offers wildcard subscriptions for the four types, feeding the store', () => {
    const store = new WaypointConfigStore();
    const subs = store.subscriptions();
    expect(subs.map((s) => s.type.typeUrl)).toEqual([
      LISTENER_TYPE_URL,
      ROUTE_CONFIGURATION_TYPE_URL,
      CLUSTER_TYPE_URL,
      CLUSTER_LOAD_ASSIGNMENT_TYPE_URL,
    ]);
    expect(subs.every((s) => s.names === undefined)).toBe(true);
    subs[0].onChange({ updated: new Map(), removed: [], all: new Map([['waypoint', listener]]) });
    subs[1].onChange({ updated: new Map(), removed: [], all: new Map([[HTTP, routes]]) });
    subs[2].onChange({ updated: new Map(), removed: [], all: new Map([[HTTP, cluster(HTTP)]]) });
    subs[3].onChange({
      updated: new Map(),
      removed: [],
      all: new Map([[HTTP, { cluster: HTTP, endpoints: [endpoint] }]]),
    });
    expect(store.config.listener).toBe(listener);
    expect(store.config.routes.get(HTTP)).toBe(routes);
    expect(store.config.endpoints.get(HTTP)).toEqual([endpoint]);
  });
});

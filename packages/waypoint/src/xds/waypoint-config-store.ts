/**
 * Assembles the four Envoy resource types into one immutable WaypointConfig. Each update builds a
 * new snapshot and swaps it in whole, so a request that read `config` once sees a consistent view
 * for its whole life. Dangling references (a route to a cluster not yet received) are warnings, not
 * failures: xDS delivers types independently and Envoy, too, serves while they converge (a request
 * to a missing cluster gets 503 NC).
 */
import type { Problem, XdsDelta, XdsSubscription } from '@ambient/shared';
import type {
  RouteTable,
  UpstreamCluster,
  UpstreamEndpoint,
  WaypointConfig,
  WaypointListener,
} from '../config/waypoint-config.js';
import type { ClusterEndpoints } from './decode-endpoints.js';
import {
  clusterLoadAssignmentResourceType,
  clusterResourceType,
  listenerResourceType,
  routeConfigurationResourceType,
} from './envoy-xds.js';

export interface WaypointConfigStoreOptions {
  /** The Listener the waypoint serves; others are ignored with a warning. Default `waypoint`. */
  readonly listenerName?: string;
}

export interface WaypointConfigChange {
  readonly config: WaypointConfig;
  readonly warnings: readonly Problem[];
  /** Increases by one with every snapshot. */
  readonly version: number;
}

export type WaypointConfigListener = (change: WaypointConfigChange) => void;

const EMPTY: WaypointConfig = Object.freeze({
  routes: new Map(),
  clusters: new Map(),
  endpoints: new Map(),
});

export class WaypointConfigStore {
  private readonly listenerName: string;
  private listeners: ReadonlyMap<string, WaypointListener> = new Map();
  private routes: ReadonlyMap<string, RouteTable> = new Map();
  private clusters: ReadonlyMap<string, UpstreamCluster> = new Map();
  private assignments: ReadonlyMap<string, ClusterEndpoints> = new Map();
  private snapshot: WaypointConfigChange = Object.freeze({ config: EMPTY, warnings: [], version: 0 });
  private readonly watchers = new Set<WaypointConfigListener>();

  constructor(options: WaypointConfigStoreOptions = {}) {
    this.listenerName = options.listenerName ?? 'waypoint';
  }

  /** The current snapshot. Read it once per request or connection. */
  get config(): WaypointConfig {
    return this.snapshot.config;
  }

  get warnings(): readonly Problem[] {
    return this.snapshot.warnings;
  }

  get version(): number {
    return this.snapshot.version;
  }

  /** Calls `listener` after every swap; returns the unsubscribe function. */
  onChange(listener: WaypointConfigListener): () => void {
    this.watchers.add(listener);
    return () => this.watchers.delete(listener);
  }

  // The client passes its live maps; they are copied so later deltas cannot reach a snapshot.
  setListeners(all: ReadonlyMap<string, WaypointListener>): void {
    this.listeners = new Map(all);
    this.rebuild();
  }

  setRoutes(all: ReadonlyMap<string, RouteTable>): void {
    this.routes = new Map(all);
    this.rebuild();
  }

  setClusters(all: ReadonlyMap<string, UpstreamCluster>): void {
    this.clusters = new Map(all);
    this.rebuild();
  }

  setEndpoints(all: ReadonlyMap<string, ClusterEndpoints>): void {
    this.assignments = new Map(all);
    this.rebuild();
  }

  /** Wildcard subscriptions for the Delta ADS client, feeding this store. */
  subscriptions(): readonly [
    XdsSubscription<WaypointListener>,
    XdsSubscription<RouteTable>,
    XdsSubscription<UpstreamCluster>,
    XdsSubscription<ClusterEndpoints>,
  ] {
    return [
      { type: listenerResourceType(), onChange: (d: XdsDelta<WaypointListener>) => this.setListeners(d.all) },
      {
        type: routeConfigurationResourceType(),
        onChange: (d: XdsDelta<RouteTable>) => this.setRoutes(d.all),
      },
      { type: clusterResourceType(), onChange: (d: XdsDelta<UpstreamCluster>) => this.setClusters(d.all) },
      {
        type: clusterLoadAssignmentResourceType(),
        onChange: (d: XdsDelta<ClusterEndpoints>) => this.setEndpoints(d.all),
      },
    ];
  }

  private rebuild(): void {
    const warnings: Problem[] = [];
    const listener = this.listeners.get(this.listenerName);
    for (const name of this.listeners.keys())
      if (name !== this.listenerName)
        warnings.push({
          path: `listeners[${name}]`,
          message: `ignored: this waypoint serves ${this.listenerName}`,
        });

    const endpoints = new Map<string, readonly UpstreamEndpoint[]>();
    for (const [name, cla] of this.assignments) {
      endpoints.set(name, cla.endpoints);
      if (!this.clusters.has(name))
        warnings.push({ path: `endpoints[${name}]`, message: 'no Cluster of that name' });
    }
    const cluster = (name: string, path: string) => {
      if (!this.clusters.has(name)) warnings.push({ path, message: `unknown cluster ${name}` });
    };

    listener?.chains.forEach((chain, i) => {
      const path = `listeners[${listener.name}].chains[${i}]`;
      if (chain.handler.kind === 'tcp') cluster(chain.handler.cluster, `${path}.cluster`);
      else if (!this.routes.has(chain.handler.routeConfigName))
        warnings.push({
          path: `${path}.route_config_name`,
          message: `unknown route configuration ${chain.handler.routeConfigName}`,
        });
    });
    for (const [name, table] of this.routes) {
      table.routes.forEach((route, i) => {
        if (route.action.kind !== 'route') return;
        const path = `routes[${name}].routes[${i}]`;
        route.action.clusters.forEach((c, j) => {
          cluster(c.cluster, `${path}.clusters[${j}]`);
        });
        route.action.mirrors.forEach((m, j) => {
          cluster(m.cluster, `${path}.mirrors[${j}]`);
        });
      });
    }
    for (const name of this.clusters.keys())
      if (!this.assignments.has(name))
        warnings.push({ path: `clusters[${name}]`, message: 'no ClusterLoadAssignment yet' });

    const config: WaypointConfig = Object.freeze({
      ...(listener && { listener }),
      routes: this.routes,
      clusters: this.clusters,
      endpoints,
    });
    this.snapshot = Object.freeze({
      config,
      warnings: Object.freeze(warnings),
      version: this.snapshot.version + 1,
    });
    for (const watcher of this.watchers) watcher(this.snapshot);
  }
}

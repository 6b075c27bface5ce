// The public API of @ambient/waypoint: what the end-to-end suites and the in-process benchmark of
// the request steps (bench/waypoint/src/direct-path-cpu.ts) use. The waypoint runs from main.ts;
// anything else is internal to the package.
export { WaypointApp } from './app/waypoint-app.js';
export type { WaypointSettings } from './app/waypoint-settings.js';
export { parseWaypointSettings } from './app/waypoint-settings.js';
export type {
  FilterChain,
  HttpChain,
  UpstreamCluster,
  UpstreamEndpoint,
  WaypointConfig,
} from './config/waypoint-config.js';
export { UNLIMITED } from './config/waypoint-config.js';
export type { ConnectionContext } from './proxy/exchange.js';
export { HttpProxy } from './proxy/http-proxy.js';
export { UpstreamPool } from './proxy/upstream-pool.js';
export { RequestMetrics } from './telemetry/request-metrics.js';
export { clusterLoadAssignmentResourceType } from './xds/envoy-xds.js';
export { WaypointConfigStore } from './xds/waypoint-config-store.js';

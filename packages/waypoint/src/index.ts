// The public API of @ambient/waypoint: what the end-to-end suites use. The waypoint runs from
// main.ts; anything else is internal to the package.
export { WaypointApp } from './app/waypoint-app.js';
export type { WaypointSettings } from './app/waypoint-settings.js';
export { parseWaypointSettings } from './app/waypoint-settings.js';
export { clusterLoadAssignmentResourceType } from './xds/envoy-xds.js';
export { WaypointConfigStore } from './xds/waypoint-config-store.js';

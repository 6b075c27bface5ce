// The public API of @ambient/lab: what the CLI, the end-to-end suites and the benchmarks use.

export type { KubeApiServerOptions } from './kube-api-server.js';
export { freeLoopbackPort, KubeApiServer, kubeBinaries } from './kube-api-server.js';
export type { LabPod } from './lab.js';
export { Lab } from './lab.js';
export { applyManifests, deleteManifest, labelManifest, manifestFile } from './lab-manifests.js';
export type { LabMeshOptions } from './lab-mesh.js';
export { LabMesh } from './lab-mesh.js';
export type { LabSpec } from './lab-spec.js';
export type { WaypointGatewayManifest, WaypointGatewaySpec } from './waypoint-gateway.js';
export { WAYPOINT_FOR_LABEL, waypointGateway } from './waypoint-gateway.js';

// The public API of @ambient/lab: what the CLI, the end-to-end suites and the benchmarks use.

export type { SingleBinaryImage, TarEntry } from './image-archive.js';
export { singleBinaryImageArchive, tar } from './image-archive.js';
export type { KubeApiServerOptions } from './kube-api-server.js';
export { freeLoopbackPort, KubeApiServer, kubeBinaries, NETNS_API_PORT } from './kube-api-server.js';
export type { KubeClusterInfo, KubeClusterOptions, SysctlRegistry } from './kube-cluster.js';
export {
  CLUSTER_STATE_ROOT,
  KUBELET_SYSCTLS,
  KubeCluster,
  KubeClusterError,
  PAUSE_IMAGE,
} from './kube-cluster.js';
export type { LabPod } from './lab.js';
export { Lab } from './lab.js';
export { applyManifests, deleteManifest, labelManifest, manifestFile } from './lab-manifests.js';
export type { LabMeshOptions } from './lab-mesh.js';
export { LabMesh, ZTUNNEL_NODE_OPTIONS } from './lab-mesh.js';
export type { LabSpec } from './lab-spec.js';
export type { WaypointGatewayManifest, WaypointGatewaySpec } from './waypoint-gateway.js';
export { WAYPOINT_FOR_LABEL, waypointGateway } from './waypoint-gateway.js';

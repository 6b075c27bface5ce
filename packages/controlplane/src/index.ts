// The public API of @ambient/controlplane: what the lab, the end-to-end suites and the benchmarks
// use. The control plane runs from main.ts; anything else is internal to the package.

export { translateAuthorizationPolicy } from './ambient/authorization-translate.js';
export { ControlPlaneApp } from './app/controlplane-app.js';
export type { ControlPlaneConfig } from './app/controlplane-config.js';
export { parseControlPlaneConfig } from './app/controlplane-config.js';
export { TokenAuthenticator } from './auth/token-authenticator.js';
export { DEFAULT_MANIFEST_LIMITS, decodeManifest } from './manifests/kube-objects.js';
export type { KubeKindSpec, KubeSourceStats } from './source/kube-api-source.js';
export { KUBE_SOURCE_KINDS, KubeApiSource } from './source/kube-api-source.js';
export { loadKubeConfig } from './source/kube-config-loader.js';
export { ControlPlaneMetrics, XDS_METRIC_TYPES, xdsMetricType } from './telemetry/controlplane-metrics.js';
export type { KubeRestOptions } from './waypoint-controller/kube-rest.js';
export { CONTENT_APPLY, CONTENT_MERGE, KubeApiError, KubeRest } from './waypoint-controller/kube-rest.js';
export {
  CLUSTER_LOAD_ASSIGNMENT_TYPE_URL,
  CLUSTER_TYPE_URL,
  EnvoyEncoder,
  LISTENER_TYPE_URL,
  ROUTE_CONFIGURATION_TYPE_URL,
} from './waypoint-xds/envoy-encoder.js';
export { DeltaAdsServer } from './xds/delta-ads-server.js';
export { waypointScope } from './xds/proxy-admission.js';
export type { ResourceEntry } from './xds/snapshot-store.js';
export { encodeResources, ResourceEncoder, SnapshotStore } from './xds/snapshot-store.js';
export { SOTW_ADS_METHOD, SotwAdsServer } from './xds/sotw-ads-server.js';

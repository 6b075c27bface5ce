// The public API of @ambient/cli, for the end-to-end suites: running a command line in-process,
// and the transport to a cluster's node agents.

export type { CliIo } from './cli.js';
export { runCli } from './cli.js';
export type { CliErrorCode } from './cli-error.js';
export { CliError } from './cli-error.js';
export type { ClusterTarget } from './cluster/cluster-target.js';
export { selectTarget } from './cluster/cluster-target.js';
export { KubeClient } from './cluster/kube-client.js';
export type { ZtunnelLocator, ZtunnelPod } from './cluster/ztunnel-pods.js';
export { fetchFromZtunnel, findZtunnelPods } from './cluster/ztunnel-pods.js';
export { runHboneDemo } from './hbone-demo.js';
export { parsePrometheusText, tcpTrafficRows } from './ztunnel/tcp-traffic-table.js';
export { parseZtunnelDump, renderZtunnelConfig } from './ztunnel/ztunnel-config-view.js';

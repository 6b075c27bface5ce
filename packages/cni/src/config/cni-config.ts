import path from 'node:path';
import { type EnvMap, EnvSettings, type Result } from '@ambient/shared';

/** The CNI node agent's settings, parsed once from an environment map and frozen. */
export interface CniConfig {
  /** The node this agent serves: only pods with spec.nodeName equal to it are watched. */
  readonly nodeName: string;
  /** ztunnel's ZDS socket, where pods' network namespaces are handed over. */
  readonly zdsSocket: string;
  /** Unix socket the chained plugin posts pod ADD events to (same path on the host). */
  readonly pluginEventSocket: string;
  /** Host directory the plugin binary is copied into. */
  readonly hostBinDir: string;
  /** Host directory holding the primary CNI network configuration. */
  readonly hostNetDir: string;
  /** The host's /proc, scanned for the network namespaces of pods already running. */
  readonly hostProc: string;
  /**
   * Where the host's root is mounted in the agent's container: the network namespace path the
   * plugin reports (a host path) is opened under it, as istio-cni opens it under /host
   * (`openNetnsInRoot(HostMountsPath)`). Empty: the agent runs on the host and opens it as is.
   */
  readonly hostMounts: string;
  /** The agent's namespace and DaemonSet, read as it stops to tell an uninstall from an upgrade. */
  readonly podNamespace: string;
  readonly daemonSetName: string;
  readonly logLevel: string;
  /** HTTP port of GET /readyz. */
  readonly readyPort: number;
  /** Kubeconfig; empty: the pod's service account (in-cluster). */
  readonly kubeconfig: string;
  readonly kubernetesServiceHost: string;
  readonly kubernetesServicePort: string;
}

export function parseCniConfig(env: EnvMap): Result<CniConfig> {
  const e = new EnvSettings(env);
  const kubeconfig = e.optional('CNI_KUBECONFIG') ?? '';
  const kubernetesServiceHost = e.optional('KUBERNETES_SERVICE_HOST') ?? '';
  if (!kubeconfig && !kubernetesServiceHost) {
    e.add(
      'CNI_KUBECONFIG',
      'is required outside a cluster: a kubeconfig, or KUBERNETES_SERVICE_HOST (in a pod)',
    );
  }
  return e.result<CniConfig>({
    nodeName: e.required('CNI_NODE_NAME'),
    zdsSocket: e.required('CNI_ZDS_SOCKET', '/var/run/ztunnel/ztunnel.sock'),
    pluginEventSocket: e.required('CNI_PLUGIN_EVENT_SOCKET', '/var/run/ambient-cni/pluginevent.sock'),
    hostBinDir: e.required('CNI_HOST_BIN_DIR', '/host/opt/cni/bin'),
    hostNetDir: e.required('CNI_HOST_NET_DIR', '/host/etc/cni/net.d'),
    hostProc: e.required('CNI_HOST_PROC', '/host/proc'),
    hostMounts: e.optional('CNI_HOST_MOUNTS') ?? '',
    podNamespace: e.required('CNI_POD_NAMESPACE', 'istio-system'),
    daemonSetName: e.required('CNI_DAEMONSET_NAME', 'ambient-cni-node'),
    logLevel: e.logLevel('CNI_LOG_LEVEL'),
    readyPort: e.integer('CNI_READY_PORT', 8000, 0, 65535),
    kubeconfig,
    kubernetesServiceHost,
    kubernetesServicePort: e.optional('KUBERNETES_SERVICE_PORT') ?? '443',
  });
}

/** The plugin's netns path (a host path) as the agent opens it: under `hostMounts` when set. */
export function netnsInAgent(hostMounts: string, hostPath: string): string {
  return hostMounts ? path.posix.join(hostMounts, hostPath) : hostPath;
}

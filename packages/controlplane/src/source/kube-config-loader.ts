/**
 * The Kubernetes client configuration the control plane's API source uses: a kubeconfig file when
 * one is named, else the pod's own service account (in-cluster), as client-go's InClusterConfig.
 * The environment arrives through the settings, so nothing here reads process.env.
 */
import { KubeConfig } from '@kubernetes/client-node';

/** Where a pod finds its service account's token, CA and namespace. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubeConnectionSettings {
  /** Kubeconfig path; empty for in-cluster. */
  readonly kubeconfig: string;
  /** KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT, for in-cluster. */
  readonly serviceHost: string;
  readonly servicePort: string;
  /** Where the service account files are (tests point it elsewhere). */
  readonly serviceAccountDir?: string;
}

export function loadKubeConfig(s: KubeConnectionSettings): KubeConfig {
  const kc = new KubeConfig();
  if (s.kubeconfig) {
    kc.loadFromFile(s.kubeconfig);
    return kc;
  }
  const dir = s.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  const host = s.serviceHost.includes(':') ? `[${s.serviceHost}]` : s.serviceHost;
  kc.loadFromClusterAndUser(
    {
      name: 'inCluster',
      server: `https://${host}:${s.servicePort}`,
      caFile: `${dir}/ca.crt`,
      skipTLSVerify: false,
    },
    // The projected token is rotated on disk: it is read again for every request.
    { name: 'inClusterUser', authProvider: { name: 'tokenFile', config: { tokenFile: `${dir}/token` } } },
  );
  return kc;
}

/**
 * The authenticator the settings select: the tokens file (followed as it changes) or TokenReview
 * on the API server of CP_KUBECONFIG (in-cluster config when empty). The Kubernetes client is
 * loaded only for TokenReview, so a lab control plane does not pay for it.
 */
import type { Logger } from 'pino';
import type { ControlPlaneConfig } from '../app/controlplane-config.js';
import { apiTokenReviewer, KubeTokenAuthenticator, type PodLookup } from './kube-token-authenticator.js';
import { type Authenticator, TokenAuthenticator } from './token-authenticator.js';

export async function createAuthenticator(
  config: ControlPlaneConfig,
  pods: PodLookup,
  logger: Logger,
): Promise<Authenticator> {
  if (config.auth.mode === 'file') {
    const authenticator = await TokenAuthenticator.fromFile(config.tokensFile);
    authenticator.watch(config.tokensFile, (err) =>
      logger.error({ err }, `tokens file rejected, previous tokens kept: ${err.message}`),
    );
    return authenticator;
  }
  const k8s = await import('@kubernetes/client-node');
  const { loadKubeConfig } = await import('../source/kube-config-loader.js');
  const kc = loadKubeConfig({
    kubeconfig: config.kubeconfig,
    serviceHost: config.kubernetesServiceHost,
    servicePort: config.kubernetesServicePort,
  });
  return new KubeTokenAuthenticator({
    review: apiTokenReviewer(kc.makeApiClient(k8s.AuthenticationV1Api)),
    pods,
    audiences: config.auth.audiences,
    nodeAgent: config.auth.nodeAgent,
    cacheTtlMs: config.auth.cacheTtlMs,
  });
}

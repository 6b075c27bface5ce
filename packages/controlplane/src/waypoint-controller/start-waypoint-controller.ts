import type { Logger } from 'pino';
import type { ControlPlaneConfig } from '../app/controlplane-config.js';
import { loadKubeConfig } from '../source/kube-config-loader.js';
import { KubeRest } from './kube-rest.js';
import { WaypointController } from './waypoint-controller.js';
import type { WaypointControllerConfig } from './waypoint-controller-config.js';

/** Builds the controller from the settings and starts its election. */
export function startWaypointController(
  config: ControlPlaneConfig,
  wc: WaypointControllerConfig,
  logger: Logger,
): WaypointController {
  const controller = new WaypointController({
    // The same API server connection as the Kubernetes source and TokenReview (CP_KUBECONFIG, else in-cluster).
    kube: new KubeRest(
      loadKubeConfig({
        kubeconfig: config.kubeconfig,
        serviceHost: config.kubernetesServiceHost,
        servicePort: config.kubernetesServicePort,
      }),
    ),
    logger: logger.child({ component: 'waypoint-controller' }),
    identity: wc.identity,
    leaseNamespace: wc.leaseNamespace,
    timings: wc.timings,
    resyncMs: wc.resyncMs,
    template: {
      image: wc.image,
      xdsAddress: wc.xdsAddress,
      controlPlaneName: config.serverNames[0] ?? `istiod.${config.rootNamespace}.svc`,
      clusterId: config.clusterId,
      trustDomain: config.trustDomain,
      domainSuffix: config.domainSuffix,
      rootCertConfigMap: wc.rootCertConfigMap,
    },
  });
  controller.start();
  return controller;
}

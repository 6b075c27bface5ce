import { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ControlPlaneConfig } from '../app/controlplane-config.js';
import { KubeRest } from './kube-rest.js';
import { WaypointController } from './waypoint-controller.js';
import type { WaypointControllerConfig } from './waypoint-controller-config.js';

/** The kubeconfig file when one is set, else the pod's service account. */
export function loadKubeConfig(kubeconfig: string): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfig) kc.loadFromFile(kubeconfig);
  else kc.loadFromCluster();
  return kc;
}

/** Builds the controller from the settings and starts its election. */
export function startWaypointController(
  config: ControlPlaneConfig,
  wc: WaypointControllerConfig,
  logger: Logger,
): WaypointController {
  const controller = new WaypointController({
    kube: new KubeRest(loadKubeConfig(wc.kubeconfig)),
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

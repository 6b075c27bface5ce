import type { Logger } from 'pino';
import type { ControlPlaneConfig } from '../app/controlplane-config.js';
import type { LeaderElection } from '../leader/leader-election.js';
import type { KubeRest } from './kube-rest.js';
import { WaypointController } from './waypoint-controller.js';
import type { WaypointControllerConfig } from './waypoint-controller-config.js';

/** Builds the controller from the settings on the replica's API connection and election. */
export function startWaypointController(
  config: ControlPlaneConfig,
  wc: WaypointControllerConfig,
  kube: KubeRest,
  leader: LeaderElection,
  logger: Logger,
): WaypointController {
  return new WaypointController({
    kube,
    leader,
    logger: logger.child({ component: 'waypoint-controller' }),
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
}

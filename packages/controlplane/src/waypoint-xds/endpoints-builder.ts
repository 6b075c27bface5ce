/**
 * The ClusterLoadAssignment of a cluster: the running pods behind its service (and subset), at the
 * port's target port, each with the metadata the waypoint needs to reach it (its identity, and
 * whether its ztunnel takes HBONE) and to label its telemetry (istiod's `workload` key:
 * workload name, namespace, canonical name and revision, cluster).
 */
import { type EnvoyInput, formatEndpointWorkload, type WireClusterLoadAssignment } from '@ambient/shared';
import { isAmbientEnrolled } from '../ambient/mesh-model.js';
import { type BuildContext, type ClusterEntry, struct } from './build-context.js';

export function buildLoadAssignment(
  b: BuildContext,
  name: string,
  e: ClusterEntry,
): EnvoyInput<WireClusterLoadAssignment> {
  const { svc, port } = e.sp;
  const { trustDomain } = b.options;
  const ns = b.ix.namespaces.get(svc.metadata.namespace);
  const lbEndpoints = (e.sp.pod ? [e.sp.pod] : b.pods(svc, e.subset)).flatMap((pod) => {
    const target = typeof port.targetPort === 'number' ? port.targetPort : pod.namedPorts[port.targetPort];
    if (target === undefined) return [];
    const { name: podName, namespace } = pod.metadata;
    const w = b.workloadOf(pod);
    return [
      {
        endpoint: { address: { socketAddress: { address: pod.podIps[0], portValue: target } } },
        metadata: {
          filterMetadata: {
            istio: struct({
              workload: formatEndpointWorkload({
                workloadName: w?.workloadName || podName,
                namespace,
                canonicalName: w?.canonicalName ?? '',
                canonicalRevision: w?.canonicalRevision ?? '',
                clusterId: w?.clusterId ?? '',
              }),
              namespace,
              service_account: pod.serviceAccountName,
              identity: `spiffe://${trustDomain}/ns/${namespace}/sa/${pod.serviceAccountName}`,
              tunnel: isAmbientEnrolled(pod, ns) ? 'hbone' : 'none',
            }),
          },
        },
      },
    ];
  });
  return { clusterName: name, endpoints: [{ lbEndpoints }] };
}

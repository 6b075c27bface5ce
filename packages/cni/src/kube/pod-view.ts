import type { V1Pod } from '@kubernetes/client-node';
import type { PodView } from '../enroll/enrollment.js';

/** The parts of an API Pod the agent decides on, read once at the boundary. */
export function podView(pod: V1Pod): PodView {
  const ips = pod.status?.podIPs?.map((p) => p.ip).filter((ip): ip is string => !!ip) ?? [];
  if (ips.length === 0 && pod.status?.podIP) ips.push(pod.status.podIP);
  return {
    uid: pod.metadata?.uid ?? '',
    name: pod.metadata?.name ?? '',
    namespace: pod.metadata?.namespace ?? '',
    labels: { ...(pod.metadata?.labels ?? {}) },
    annotations: { ...(pod.metadata?.annotations ?? {}) },
    hostNetwork: pod.spec?.hostNetwork === true,
    phase: pod.status?.phase ?? '',
    ips,
    serviceAccount: pod.spec?.serviceAccountName || 'default',
  };
}

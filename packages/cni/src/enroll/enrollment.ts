/**
 * Which pods the node agent captures, as istio-cni decides (cni/pkg/util/enablement_selector.go
 * with the chart's default enablement selectors, cni/pkg/nodeagent/informers.go): a pod labeled
 * `istio.io/dataplane-mode=ambient`, or any pod not labeled `none` in a namespace labeled
 * `ambient`; never a host-network pod, a pod with a sidecar, a finished pod, or one in an excluded
 * namespace. Pure: the informers and the plugin event path both ask it.
 */

export const DATAPLANE_MODE_LABEL = 'istio.io/dataplane-mode';
export const DATAPLANE_MODE_AMBIENT = 'ambient';
export const DATAPLANE_MODE_NONE = 'none';
/** Set by the sidecar injector; ztunnel and a sidecar in one pod is not supported upstream. */
export const SIDECAR_STATUS_ANNOTATION = 'sidecar.istio.io/status';
/** istio-cni's chart default `excludeNamespaces`. */
export const DEFAULT_EXCLUDED_NAMESPACES: readonly string[] = Object.freeze(['kube-system']);

/** What the decision reads of a pod (converted once from the API object). */
export interface PodView {
  readonly uid: string;
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly hostNetwork: boolean;
  /** status.phase; '' when not reported yet. */
  readonly phase: string;
  /** status.podIPs (else status.podIP). */
  readonly ips: readonly string[];
  readonly serviceAccount: string;
}

export type EnrollReason =
  | 'pod_label'
  | 'namespace_label'
  | 'host_network'
  | 'sidecar'
  | 'opted_out'
  | 'terminated'
  | 'excluded_namespace'
  | 'namespace_unknown'
  | 'not_selected';

export interface EnrollDecision {
  readonly enroll: boolean;
  readonly reason: EnrollReason;
}

/** A pod whose containers all ended (kube.CheckPodTerminal): its netns is going away. */
export function podTerminated(pod: Pick<PodView, 'phase'>): boolean {
  return pod.phase === 'Succeeded' || pod.phase === 'Failed';
}

/**
 * Whether `pod` is to be captured, given its namespace's labels (undefined: the namespace is not
 * known, which never enrolls).
 */
export function decideEnrollment(
  pod: PodView,
  namespaceLabels: Readonly<Record<string, string>> | undefined,
  excludedNamespaces: readonly string[] = DEFAULT_EXCLUDED_NAMESPACES,
): EnrollDecision {
  const no = (reason: EnrollReason): EnrollDecision => ({ enroll: false, reason });
  if (excludedNamespaces.includes(pod.namespace)) return no('excluded_namespace');
  if (pod.hostNetwork) return no('host_network');
  if (SIDECAR_STATUS_ANNOTATION in pod.annotations) return no('sidecar');
  if (podTerminated(pod)) return no('terminated');
  const podMode = pod.labels[DATAPLANE_MODE_LABEL];
  if (podMode === DATAPLANE_MODE_AMBIENT) return { enroll: true, reason: 'pod_label' };
  if (podMode === DATAPLANE_MODE_NONE) return no('opted_out');
  if (namespaceLabels === undefined) return no('namespace_unknown');
  if (namespaceLabels[DATAPLANE_MODE_LABEL] === DATAPLANE_MODE_AMBIENT)
    return { enroll: true, reason: 'namespace_label' };
  return no('not_selected');
}

/**
 * The names istiod gives a pod's Workload, for telemetry and baggage:
 * - `workload_name`: the `service.istio.io/workload-name` label, else the controller that created
 *   the pod when its name was generated (a ReplicaSet's Deployment, a CronJob's Job, ...), else
 *   the pod name;
 * - `canonical_name` / `canonical_revision`: the first label present of the canonical-service
 *   lists, else the workload name and `latest`;
 * - `trust_domain`: empty for the default `cluster.local`, which ztunnel assumes.
 * Pure functions over decoded pods and labels.
 */
import type { PodObject } from '../manifests/kube-objects.js';

export const WORKLOAD_NAME_LABEL = 'service.istio.io/workload-name';
export const CANONICAL_NAME_LABEL = 'service.istio.io/canonical-name';
export const CANONICAL_REVISION_LABEL = 'service.istio.io/canonical-revision';
const DEFAULT_TRUST_DOMAIN = 'cluster.local';

// The order matters: the first label present wins, even with an empty value.
const NAME_LABELS = [CANONICAL_NAME_LABEL, 'app.kubernetes.io/name', 'app'];
const REVISION_LABELS = [CANONICAL_REVISION_LABEL, 'app.kubernetes.io/version', 'version'];

/** A Job a CronJob created is named `<cronjob>-<8 to 10 digit schedule time>`. */
const CRONJOB_JOB_NAME = /^(.+)-\d{8,10}$/;

export interface DeployMeta {
  /** The controller's name as derived (a Deployment for a ReplicaSet, ...), else the pod's. */
  readonly name: string;
  /** Kind of what `name` names: Pod, Deployment, CronJob, or the controller's own kind. */
  readonly kind: string;
}

/**
 * What controls a pod, guessed from its managing owner reference as istiod does: only a pod whose
 * name was generated is looked into, and owners are not fetched (so a ReplicaSet is known to
 * belong to a Deployment by its `pod-template-hash` suffix).
 */
export function deployMeta(pod: PodObject): DeployMeta {
  const podName = pod.metadata.name;
  if (!pod.generateName) return { name: podName, kind: 'Pod' };
  const ref = pod.ownerReferences?.find((r) => r.controller);
  if (!ref) return { name: podName, kind: 'Pod' };
  const labels = pod.metadata.labels;
  const hash = labels['pod-template-hash'];
  const rolloutHash = labels['rollouts-pod-template-hash'];
  let meta: DeployMeta = { name: ref.name, kind: ref.kind };
  if (ref.kind === 'ReplicaSet' && hash && ref.name.endsWith(hash)) {
    meta = { name: stripSuffix(ref.name, `-${hash}`), kind: 'Deployment' };
  } else if (ref.kind === 'ReplicaSet' && rolloutHash && ref.name.endsWith(rolloutHash)) {
    meta = { name: stripSuffix(ref.name, `-${rolloutHash}`), kind: 'Rollout' };
  } else if (ref.kind === 'ReplicationController' && labels.deploymentconfig) {
    meta = { name: labels.deploymentconfig, kind: 'DeploymentConfig' };
  } else if (ref.kind === 'Job') {
    const m = CRONJOB_JOB_NAME.exec(ref.name);
    if (m?.[1]) meta = { name: m[1], kind: 'CronJob' };
  }
  return meta.name ? meta : { name: podName, kind: meta.kind };
}

/** Go's strings.TrimSuffix: the suffix goes only when it is there. */
function stripSuffix(s: string, suffix: string): string {
  return s.endsWith(suffix) ? s.slice(0, -suffix.length) : s;
}

/** The workload name of a pod: the override label, else what controls it, else the pod name. */
export function workloadName(pod: PodObject): string {
  const override = pod.metadata.labels[WORKLOAD_NAME_LABEL];
  return override !== undefined ? override : deployMeta(pod).name;
}

function firstPresent(labels: Readonly<Record<string, string>>, keys: readonly string[]): string | undefined {
  for (const k of keys) if (Object.hasOwn(labels, k)) return labels[k];
  return undefined;
}

/** Canonical service name and revision from labels, falling back to the workload name and `latest`. */
export function canonicalService(
  labels: Readonly<Record<string, string>>,
  workload: string,
): { readonly name: string; readonly revision: string } {
  return {
    name: firstPresent(labels, NAME_LABELS) ?? workload,
    revision: firstPresent(labels, REVISION_LABELS) ?? 'latest',
  };
}

/** The trust domain a Workload carries: empty for the default, which ztunnel fills in. */
export function workloadTrustDomain(meshTrustDomain: string): string {
  return meshTrustDomain === DEFAULT_TRUST_DOMAIN ? '' : meshTrustDomain;
}

/**
 * The conditions istiod's ambient status queue writes, from the mesh model
 * (pilot/pkg/model/service.go: WorkloadAuthorization.GetConditions, ServiceInfo.GetConditions;
 * pilot/pkg/serviceregistry/ambient/ambientindex.go registers the field managers):
 * - `ZtunnelAccepted` on every AuthorizationPolicy ztunnel is concerned with (not those with
 *   targetRefs): True "attached to ztunnel", or the UnsupportedValue message, True when it is sent
 *   without what ztunnel cannot check, False when it is not sent at all;
 * - `istio.io/WaypointBound` on a Service: True/WaypointAccepted when bound to a waypoint, False with
 *   the reason when its use-waypoint label names no usable one, and removed when it names none.
 */
import type { PolicyBinding, WaypointBinding } from '../ambient/binding-status.js';
import type { MeshModel } from '../ambient/mesh-model.js';
import type { ConditionSet, OwnedCondition } from './status-conditions.js';

export const ZTUNNEL_ACCEPTED = 'ZtunnelAccepted';
export const WAYPOINT_BOUND = 'istio.io/WaypointBound';
/** istiod's field managers for these two writers. */
export const POLICY_FIELD_MANAGER = 'istio-ambient-ztunnel-policy';
export const SERVICE_FIELD_MANAGER = 'istio-ambient-service';

export function ztunnelAcceptedConditions(binding: PolicyBinding, generation: number): ConditionSet {
  return new Map([
    [
      ZTUNNEL_ACCEPTED,
      {
        status: binding.bound,
        reason: binding.status?.reason ?? 'Accepted',
        message: binding.status?.message ?? 'attached to ztunnel',
        observedGeneration: generation,
      },
    ],
  ]);
}

export function waypointBoundConditions(binding: WaypointBinding, generation: number): ConditionSet {
  let cond: OwnedCondition | null = null;
  if (binding.waypoint) {
    let message = `Successfully attached to waypoint ${binding.waypoint}`;
    if (binding.ingressUseWaypoint) message += '. Ingress traffic will traverse the waypoint';
    else if (binding.ingressLabelPresent)
      message +=
        '. Ingress traffic is not using the waypoint, set the istio.io/ingress-use-waypoint label to true if desired.';
    cond = { status: true, reason: 'WaypointAccepted', message, observedGeneration: generation };
  } else if (binding.error) {
    cond = {
      status: false,
      reason: binding.error.reason,
      message: binding.error.message,
      observedGeneration: generation,
    };
  }
  return new Map([[WAYPOINT_BOUND, cond]]);
}

/** One object whose status the leader keeps. */
export interface StatusTarget {
  /** The source's key: `Kind/namespace/name`. */
  readonly key: string;
  readonly apiVersion: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  /** The object's path on the API server (its status is `<path>/status`). */
  readonly path: string;
  readonly fieldManager: string;
  readonly desired: ConditionSet;
}

/** What the source knows of an object besides its spec. */
export type GenerationOf = (key: string) => number | undefined;

/** Every status target of a model; objects the source does not hold are left out. */
export function ambientStatusTargets(model: MeshModel, generationOf: GenerationOf): StatusTarget[] {
  const out: StatusTarget[] = [];
  for (const [nsName, binding] of model.policyBindings) {
    const [namespace = '', name = ''] = nsName.split('/');
    const key = `AuthorizationPolicy/${nsName}`;
    const generation = generationOf(key);
    if (generation === undefined) continue;
    out.push({
      key,
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      namespace,
      name,
      path: `/apis/security.istio.io/v1/namespaces/${namespace}/authorizationpolicies/${name}`,
      fieldManager: POLICY_FIELD_MANAGER,
      desired: ztunnelAcceptedConditions(binding, generation),
    });
  }
  for (const [nsName, binding] of model.serviceBindings) {
    const [namespace = '', name = ''] = nsName.split('/');
    const key = `Service/${nsName}`;
    const generation = generationOf(key);
    if (generation === undefined) continue;
    out.push({
      key,
      apiVersion: 'v1',
      kind: 'Service',
      namespace,
      name,
      path: `/api/v1/namespaces/${namespace}/services/${name}`,
      fieldManager: SERVICE_FIELD_MANAGER,
      desired: waypointBoundConditions(binding, generation),
    });
  }
  return out;
}

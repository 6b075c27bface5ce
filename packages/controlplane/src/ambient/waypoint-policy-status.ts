/**
 * The `WaypointAccepted` condition of an AuthorizationPolicy with targetRefs, in istiod's words
 * (WaypointPolicyStatusCollection in pilot/pkg/serviceregistry/ambient/policies.go; flattenConditions
 * and the WaypointPolicyReason* constants in pilot/pkg/model/service.go). One binding per target,
 * flattened into one condition. Pure: the caller supplies what exists.
 */
import type { AuthorizationPolicyObject } from '../manifests/kube-objects.js';
import type { OwnedCondition } from '../status/status-conditions.js';

export const WAYPOINT_ACCEPTED = 'WaypointAccepted';

export const POLICY_REASON_ACCEPTED = 'Accepted';
export const POLICY_REASON_INVALID = 'Invalid';
export const POLICY_REASON_PARTIALLY_INVALID = 'PartiallyInvalid';
export const POLICY_REASON_ANCESTOR_NOT_BOUND = 'AncestorNotBound';
export const POLICY_REASON_TARGET_NOT_FOUND = 'TargetNotFound';

/** What the computation reads of the cluster. */
export interface WaypointPolicyLookups {
  readonly rootNamespace: string;
  /** `namespace/name` of an istio-waypoint Gateway, when one of that key exists. */
  readonly waypoint: (key: string) => string | undefined;
  /** Whether the Service exists. */
  readonly serviceExists: (key: string) => boolean;
  /** `namespace/name` of the waypoint a Service is bound to, if any. */
  readonly serviceWaypoint: (key: string) => string | undefined;
}

/** istiod's model.PolicyBindingStatus. */
export interface PolicyTargetBinding {
  readonly ancestor: string;
  readonly bound: boolean;
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration: number;
}

/** One binding per targetRef; none when the policy has no targetRefs (it is ztunnel's). */
export function waypointPolicyBindings(
  policy: AuthorizationPolicyObject,
  generation: number,
  look: WaypointPolicyLookups,
): PolicyTargetBinding[] {
  const out: PolicyTargetBinding[] = [];
  for (const target of policy.targetRefs) {
    // Our targetRefs carry no namespace: the policy's own.
    const namespace = policy.metadata.namespace;
    const key = `${namespace}/${target.name}`;
    let message = 'not bound';
    let reason = 'unknown';
    let bound = false;
    switch (enforcedKind(target.kind, target.group)) {
      case 'GatewayClass':
        if (namespace !== look.rootNamespace) {
          reason = POLICY_REASON_INVALID;
          message = `AuthorizationPolicy must be in the root namespace \`${look.rootNamespace}\` when referencing a GatewayClass`;
        } else {
          // Our waypoints enforce policies bound to their Gateway or a Service only: one bound to
          // the class would be accepted and never applied, so it is reported as not bound.
          reason = POLICY_REASON_INVALID;
          message = `GatewayClass ${target.name}: policies bound to a GatewayClass are not enforced by these waypoints; bind to the waypoint Gateway or a Service`;
        }
        break;
      case 'Gateway': {
        const w = look.waypoint(key);
        if (w) {
          bound = true;
          reason = POLICY_REASON_ACCEPTED;
          message = `bound to ${w}`;
        } else reason = POLICY_REASON_TARGET_NOT_FOUND;
        break;
      }
      case 'Service':
        if (look.serviceExists(key)) {
          const w = look.serviceWaypoint(key);
          if (w) {
            bound = true;
            reason = POLICY_REASON_ACCEPTED;
            message = `bound to ${w}`;
          } else {
            message = `Service ${key} is not bound to a waypoint`;
            reason = POLICY_REASON_ANCESTOR_NOT_BOUND;
          }
        } else {
          message = `Service ${key} was not found`;
          reason = POLICY_REASON_TARGET_NOT_FOUND;
        }
        break;
    }
    out.push({
      ancestor: `${target.kind}.${target.group || 'core'}:${key}`,
      bound,
      reason,
      message,
      observedGeneration: generation,
    });
  }
  return out;
}

/**
 * The kind as the waypoints enforce it: a Gateway or Service of another group is nothing they
 * apply, so it falls to istiod's default (not bound, reason unknown).
 */
function enforcedKind(kind: string, group: string): string | undefined {
  if (kind === 'Gateway' && (group === 'gateway.networking.k8s.io' || group === '')) return kind;
  if (kind === 'Service' && (group === '' || group === 'core')) return kind;
  if (kind === 'GatewayClass' && (group === 'gateway.networking.k8s.io' || group === '')) return kind;
  return undefined;
}

/** istiod's flattenConditions: one condition from the bindings of every target. */
export function flattenPolicyBindings(bindings: readonly PolicyTargetBinding[]): OwnedCondition {
  const [only] = bindings;
  if (bindings.length === 1 && only)
    return {
      status: only.bound,
      reason: only.reason,
      message: only.message,
      observedGeneration: only.observedGeneration,
    };
  let status = false;
  const unbound: string[] = [];
  let observedGeneration = 0;
  for (const b of bindings) {
    if (b.bound) status = true;
    else unbound.push(b.ancestor);
    if (b.observedGeneration > observedGeneration) observedGeneration = b.observedGeneration;
  }
  let reason = POLICY_REASON_INVALID;
  if (status) reason = POLICY_REASON_ACCEPTED;
  if (status && unbound.length > 0) reason = POLICY_REASON_PARTIALLY_INVALID;
  const message = unbound.length > 0 ? `Invalid targetRefs: ${unbound.join(', ')}` : '';
  return { status, reason, message, observedGeneration };
}

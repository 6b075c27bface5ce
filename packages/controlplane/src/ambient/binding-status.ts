/**
 * Why an object is or is not bound where it asked to be, in istiod's words: the reasons and
 * messages istiod puts in the `ZtunnelAccepted` condition of an AuthorizationPolicy and the
 * `istio.io/WaypointBound` condition of a Service (pilot/pkg/serviceregistry/ambient/status.go,
 * authorization.go; pilot/pkg/model/service.go). Pure values: the status writer turns them into
 * conditions.
 */

/** istiod's model.StatusMessage. */
export interface StatusMessage {
  readonly reason: string;
  readonly message: string;
}

export function waypointNotReady(waypoint: string): StatusMessage {
  return { reason: 'WaypointIsNotReady', message: `waypoint ${JSON.stringify(waypoint)} is not ready` };
}

export function waypointAttachmentDenied(waypoint: string): StatusMessage {
  return {
    reason: 'AttachmentDenied',
    message: `we are not permitted to attach to waypoint ${JSON.stringify(waypoint)} (missing allowedRoutes?)`,
  };
}

export function waypointUnsupportedTrafficType(waypoint: string, trafficType: string): StatusMessage {
  return {
    reason: 'UnsupportedTrafficType',
    message: `attempting to bind to traffic type ${JSON.stringify(trafficType)} which the waypoint ${JSON.stringify(waypoint)} does not support`,
  };
}

/** A Service's waypoint binding (istiod's WaypointBindingStatus). */
export interface WaypointBinding {
  /** `namespace/name` of the waypoint, when bound. */
  readonly waypoint?: string;
  /** `istio.io/ingress-use-waypoint` on the Service or its namespace: present, and true. */
  readonly ingressLabelPresent: boolean;
  readonly ingressUseWaypoint: boolean;
  readonly error?: StatusMessage;
}

/** An AuthorizationPolicy's binding to ztunnel (istiod's PolicyBindingStatus). */
export interface PolicyBinding {
  /** Sent to ztunnel. */
  readonly bound: boolean;
  /** Why it is not sent, or what of it is not enforced; absent: accepted as written. */
  readonly status?: StatusMessage;
}

const UNSUPPORTED = 'UnsupportedValue';

export function dryRunNotEnabled(namespace: string, name: string): StatusMessage {
  return {
    reason: UNSUPPORTED,
    message: `found policy "${namespace}/${name}" using dry-run annotation, but support for ambient dry-run authorizationPolicies isn't enabled`,
  };
}

export function actionNotSupported(action: string): StatusMessage {
  return { reason: UNSUPPORTED, message: `ztunnel does not support the ${action} action` };
}

const HTTP_DENY_NO_EFFECT =
  'After omitting unsupported HTTP attributes, this DENY policy has no enforceable rules at ztunnel ' +
  'and will have no effect. Deploy a waypoint proxy and use a targetRef to enforce this policy.';
const HTTP_DENY_MIXED =
  'DENY policy with HTTP attributes is enforced without the HTTP rules. This will be more restrictive than requested.';
const HTTP_ALLOW =
  'Within an ALLOW policy, rules matching HTTP attributes are omitted. This will be more restrictive than requested.';

/**
 * A policy using HTTP attributes ztunnel cannot check (field names, or `when` keys): still sent,
 * without them. `denyHasEffect` says whether a DENY policy keeps a rule that can match.
 */
export function httpAttributesOmitted(
  found: readonly string[],
  action: 'ALLOW' | 'DENY',
  denyHasEffect: boolean,
): StatusMessage {
  const boilerplate = action === 'ALLOW' ? HTTP_ALLOW : denyHasEffect ? HTTP_DENY_MIXED : HTTP_DENY_NO_EFFECT;
  return {
    reason: UNSUPPORTED,
    message: `ztunnel does not support HTTP attributes (found: ${[...new Set(found)].sort().join(', ')}). In ambient mode you must use a waypoint proxy to enforce HTTP rules. ${boilerplate}`,
  };
}

/**
 * The conditions istiod's ambient status queue writes, from the mesh model
 * (pilot/pkg/model/service.go: WorkloadAuthorization.GetConditions, ServiceInfo.GetConditions;
 * pilot/pkg/serviceregistry/ambient/ambientindex.go registers the field managers):
 * - `ZtunnelAccepted` on every AuthorizationPolicy ztunnel is concerned with (not those with
 *   targetRefs): True "attached to ztunnel", or the UnsupportedValue message, True when it is sent
 *   without what ztunnel cannot check, False when it is not sent at all;
 * - `istio.io/WaypointBound` on a Service: True/WaypointAccepted when bound to a waypoint, False with
 *   the reason when its use-waypoint label names no usable one, and removed when it names none;
 * - `WaypointAccepted` on every AuthorizationPolicy with targetRefs (waypoint-policy-status.ts);
 * - HTTPRoute `status.parents` for Service parents (route-status.ts).
 */
import type { Problem } from '@ambient/shared';
import type { PolicyBinding, WaypointBinding } from '../ambient/binding-status.js';
import { type MeshModel, WAYPOINT_CLASS } from '../ambient/mesh-model.js';
import {
  flattenPolicyBindings,
  WAYPOINT_ACCEPTED,
  type WaypointPolicyLookups,
  waypointPolicyBindings,
} from '../ambient/waypoint-policy-status.js';
import type { KubeObject } from '../manifests/kube-objects.js';
import type { ObjectStatusView } from '../source/kube-api-source.js';
import {
  desiredRouteParents,
  type RawParentRef,
  ROUTE_FIELD_MANAGER,
  type RouteLookups,
  readParentRefs,
  routeParentsToWrite,
  type Wanted,
} from './route-status.js';
import { type ConditionSet, conditionsToWrite, type OwnedCondition } from './status-conditions.js';

export const ZTUNNEL_ACCEPTED = 'ZtunnelAccepted';
export const WAYPOINT_BOUND = 'istio.io/WaypointBound';
/** istiod's field managers for these two writers. */
export const POLICY_FIELD_MANAGER = 'istio-ambient-ztunnel-policy';
export const SERVICE_FIELD_MANAGER = 'istio-ambient-service';
export const WAYPOINT_POLICY_FIELD_MANAGER = 'istio-ambient-waypoint-policy';

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
  /** Our `status.conditions` (empty for a route). */
  readonly desired: ConditionSet;
  /** An HTTPRoute: our `status.parents` entries, by parentRefString. */
  readonly parents?: DesiredParents;
}

export interface DesiredParents {
  readonly routeNamespace: string;
  readonly generation: number;
  readonly entries: ReadonlyMap<string, { ref: RawParentRef; conditions: readonly Wanted[] }>;
}

/** What to send as `status` for a target, or undefined when the object already says it. */
export function statusToWrite(
  t: StatusTarget,
  status: unknown,
  now: string,
): Record<string, unknown> | undefined {
  if (t.parents) {
    const parents = routeParentsToWrite(
      t.parents.entries,
      t.parents.routeNamespace,
      t.parents.generation,
      status,
      now,
    );
    return parents && { parents };
  }
  const conditions = conditionsToWrite(t.desired, status, now);
  return conditions && { conditions };
}

/** Where each kind whose status the leader writes lives on the API server. */
const STATUS_KINDS = {
  AuthorizationPolicy: { apiVersion: 'security.istio.io/v1', plural: 'authorizationpolicies' },
  Service: { apiVersion: 'v1', plural: 'services' },
  HTTPRoute: { apiVersion: 'gateway.networking.k8s.io/v1', plural: 'httproutes' },
} as const;

/** A status target's object reference: its key, apiVersion, kind, names and API path. */
function statusObject(kind: keyof typeof STATUS_KINDS, namespace: string, name: string) {
  const { apiVersion, plural } = STATUS_KINDS[kind];
  const prefix = apiVersion === 'v1' ? '/api/v1' : `/apis/${apiVersion}`;
  return {
    key: `${kind}/${namespace}/${name}`,
    apiVersion,
    kind,
    namespace,
    name,
    path: `${prefix}/namespaces/${namespace}/${plural}/${name}`,
  };
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
      ...statusObject('AuthorizationPolicy', namespace, name),
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
      ...statusObject('Service', namespace, name),
      fieldManager: SERVICE_FIELD_MANAGER,
      desired: waypointBoundConditions(binding, generation),
    });
  }
  return out;
}

/** What the route and waypoint-policy targets read besides the model. */
export interface StatusSourceView {
  readonly statusOf: (key: string) => ObjectStatusView | undefined;
  readonly statusKeys: (kind: 'HTTPRoute') => readonly string[];
  readonly problemsOf: (key: string) => readonly Problem[] | undefined;
}

export interface MeshStatusOptions {
  readonly rootNamespace: string;
  readonly domainSuffix: string;
}

/**
 * `WaypointAccepted` on every AuthorizationPolicy with targetRefs (istiod's
 * WaypointPolicyStatusCollection, written under `istio-ambient-waypoint-policy`).
 */
export function waypointPolicyTargets(
  model: MeshModel,
  objects: ReadonlyMap<string, KubeObject>,
  generationOf: GenerationOf,
  rootNamespace: string,
): StatusTarget[] {
  const out: StatusTarget[] = [];
  const look: WaypointPolicyLookups = {
    rootNamespace,
    waypoint: (key) => {
      const gw = objects.get(`Gateway/${key}`);
      return gw?.kind === 'Gateway' && gw.gatewayClassName === WAYPOINT_CLASS ? key : undefined;
    },
    serviceExists: (key) => objects.get(`Service/${key}`)?.kind === 'Service',
    serviceWaypoint: (key) => model.serviceBindings.get(key)?.waypoint,
  };
  for (const [key, o] of objects) {
    if (o.kind !== 'AuthorizationPolicy' || o.targetRefs.length === 0) continue;
    const generation = generationOf(key);
    if (generation === undefined) continue;
    const { namespace, name } = o.metadata;
    out.push({
      ...statusObject('AuthorizationPolicy', namespace, name),
      fieldManager: WAYPOINT_POLICY_FIELD_MANAGER,
      desired: new Map([
        [WAYPOINT_ACCEPTED, flattenPolicyBindings(waypointPolicyBindings(o, generation, look))],
      ]),
    });
  }
  return out;
}

/** HTTPRoute `status.parents` for every route as read, refused ones included. */
export function routeStatusTargets(
  objects: ReadonlyMap<string, KubeObject>,
  source: StatusSourceView,
  domainSuffix: string,
): StatusTarget[] {
  const out: StatusTarget[] = [];
  const look: RouteLookups = {
    domainSuffix,
    serviceLabels: (key) => {
      const o = objects.get(`Service/${key}`);
      return o?.kind === 'Service' ? o.metadata.labels : undefined;
    },
    namespaceLabels: (name) => {
      const o = objects.get(`Namespace//${name}`);
      return o?.kind === 'Namespace' ? o.metadata.labels : undefined;
    },
  };
  for (const key of source.statusKeys('HTTPRoute')) {
    const view = source.statusOf(key);
    if (!view) continue;
    const [, namespace = '', name = ''] = key.split('/');
    const problems = source.problemsOf(key);
    const decoded = objects.get(key);
    // A refused route is not in force, even when an earlier version of it is kept.
    const route = !problems && decoded?.kind === 'HTTPRoute' ? decoded : undefined;
    const entries = desiredRouteParents(
      namespace,
      readParentRefs(view.parentRefs),
      route,
      problems ?? [],
      look,
    );
    out.push({
      ...statusObject('HTTPRoute', namespace, name),
      fieldManager: ROUTE_FIELD_MANAGER,
      desired: new Map(),
      parents: { routeNamespace: namespace, generation: view.generation, entries },
    });
  }
  return out;
}

/** Every status target the leader keeps. */
export function meshStatusTargets(
  model: MeshModel,
  objects: ReadonlyMap<string, KubeObject>,
  source: StatusSourceView,
  opts: MeshStatusOptions,
): StatusTarget[] {
  const generationOf = (key: string) => source.statusOf(key)?.generation;
  return [
    ...ambientStatusTargets(model, generationOf),
    ...waypointPolicyTargets(model, objects, generationOf, opts.rootNamespace),
    ...routeStatusTargets(objects, source, opts.domainSuffix),
  ];
}

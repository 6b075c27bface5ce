/**
 * HTTPRoute `status.parents` for the parents the mesh owns, as istiod writes them
 * (pilot/pkg/config/kube/gateway: createRouteStatus in conditions.go, referenceAllowed and
 * buildDestination in conversion.go, computeRoute in route_collections.go):
 * - one entry per Service parentRef (GAMMA), under controller `istio.io/gateway-controller`, with
 *   `Accepted`, `ResolvedRefs` and `ResolvedWaypoints` (istiod reports the last when ambient is on);
 * - no entry for a Gateway parentRef of class istio-waypoint: istiod builds no parent for a
 *   waypoint Gateway (GatewayCollection skips the mesh controller's listeners), so it writes none
 *   and drops one of its own left from before;
 * - entries of other controllers are kept where they are; ours replace ours in place, new ones are
 *   appended sorted, stale ones removed.
 * Where our waypoints do not apply what istiod would (a route refused by field path, a parent in
 * another namespace), Accepted is False and says why.
 */
import type { Problem } from '@ambient/shared';
import type { HttpRouteObject } from '../manifests/kube-objects.js';

export const GATEWAY_CONTROLLER = 'istio.io/gateway-controller';
/** istiod writes route status with UpdateStatus under its client's default manager. */
export const ROUTE_FIELD_MANAGER = 'pilot-discovery';

const GATEWAY_GROUP = 'gateway.networking.k8s.io';
const MISSING_LABEL_MESSAGE =
  'istio.io/use-waypoint label missing from parent and parent namespace; in ambient mode, route will not be respected';

/** A parentRef as written (absent fields stay absent: they are part of the entry's identity). */
export interface RawParentRef {
  readonly group?: string;
  readonly kind?: string;
  readonly name: string;
  readonly namespace?: string;
  readonly sectionName?: string;
  readonly port?: number;
}

export interface RouteCondition {
  readonly type: string;
  readonly status: 'True' | 'False';
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration: number;
  readonly lastTransitionTime: string;
}

export interface RouteParentStatus {
  readonly parentRef: RawParentRef;
  readonly controllerName: string;
  readonly conditions: readonly RouteCondition[];
}

/** One of our conditions before it is merged into what the object holds. */
export interface Wanted {
  readonly type: string;
  readonly status: boolean;
  readonly reason: string;
  readonly message: string;
}

/** What the route's parents and backends resolve against. */
export interface RouteLookups {
  readonly domainSuffix: string;
  /** Labels of a Service by `namespace/name`, or undefined when it does not exist. */
  readonly serviceLabels: (key: string) => Readonly<Record<string, string>> | undefined;
  /** Labels of a Namespace, or undefined when it does not exist. */
  readonly namespaceLabels: (name: string) => Readonly<Record<string, string>> | undefined;
}

/** The parentRefs of a route as the API holds them; entries that are not objects are skipped. */
export function readParentRefs(raw: unknown): RawParentRef[] {
  if (!Array.isArray(raw)) return [];
  const out: RawParentRef[] = [];
  for (const r of raw) {
    if (!r || typeof r !== 'object') continue;
    const o = r as Record<string, unknown>;
    if (typeof o.name !== 'string') continue;
    out.push({
      ...(typeof o.group === 'string' && { group: o.group }),
      ...(typeof o.kind === 'string' && { kind: o.kind }),
      name: o.name,
      ...(typeof o.namespace === 'string' && { namespace: o.namespace }),
      ...(typeof o.sectionName === 'string' && { sectionName: o.sectionName }),
      ...(typeof o.port === 'number' && { port: o.port }),
    });
  }
  return out;
}

/** istiod's parentRefString: the identity of an entry. */
export function parentRefString(ref: RawParentRef, routeNamespace: string): string {
  return `${ref.group ?? GATEWAY_GROUP}/${ref.kind ?? 'Gateway'}/${ref.name}/${ref.sectionName ?? ''}/${ref.port ?? 0}.${ref.namespace ?? routeNamespace}`;
}

function isServiceParent(ref: RawParentRef): boolean {
  return ref.kind === 'Service' && (ref.group === '' || ref.group === 'core');
}

function waypointConfigured(labels: Readonly<Record<string, string>> | undefined): boolean {
  const v = labels?.['istio.io/use-waypoint'];
  return v !== undefined && v.length > 0 && v.toLowerCase() !== 'none';
}

function problemsMessage(problems: readonly Problem[]): string {
  return problems.map((p) => `${p.path}: ${p.message}`).join('; ');
}

/**
 * The route's first backend error, as istiod's buildDestination words it, or undefined. Our
 * waypoints also refuse what istiod lets a mesh route do (another namespace without a grant).
 */
function backendError(
  route: HttpRouteObject,
  look: RouteLookups,
): { reason: string; message: string } | undefined {
  const ns = route.metadata.namespace;
  for (const rule of route.rules) {
    for (const ref of rule.backendRefs) {
      if (ref.kind !== 'Service' || (ref.group !== '' && ref.group !== 'core'))
        return {
          reason: 'InvalidKind',
          message: `referencing unsupported backendRef: group ${JSON.stringify(ref.group)} kind ${JSON.stringify(ref.kind)}`,
        };
      if (ref.name.includes('.'))
        return {
          reason: 'InvalidDestination',
          message: 'service name invalid; the name of the Service must be used, not the hostname.',
        };
      const target = ref.namespace ?? ns;
      if (target !== ns)
        return {
          reason: 'RefNotPermitted',
          message: `backendRef ${ref.name}/${target} not accessible to a HTTPRoute in namespace ${JSON.stringify(ns)} (missing a ReferenceGrant?)`,
        };
      if (!look.serviceLabels(`${target}/${ref.name}`))
        return {
          reason: 'BackendNotFound',
          message: `backend(${ref.name}.${target}.svc.${look.domainSuffix}) not found`,
        };
      if (ref.port === undefined)
        return { reason: 'InvalidDestination', message: 'port is required in backendRef' };
    }
  }
  return undefined;
}

/**
 * Our conditions for each Service parentRef of a route, keyed by parentRefString. `route` is the
 * decoded route, or undefined when it was refused with `problems`.
 */
export function desiredRouteParents(
  routeNamespace: string,
  parentRefs: readonly RawParentRef[],
  route: HttpRouteObject | undefined,
  problems: readonly Problem[],
  look: RouteLookups,
): Map<string, { ref: RawParentRef; conditions: Wanted[] }> {
  const out = new Map<string, { ref: RawParentRef; conditions: Wanted[] }>();
  const refusal = route ? undefined : problemsMessage(problems);
  const resolveError = route ? backendError(route, look) : undefined;
  const mesh = parentRefs.filter(isServiceParent);
  for (const ref of mesh) {
    const id = parentRefString(ref, routeNamespace);
    if (out.has(id)) continue; // istiod warns of a duplicate parent and reports it once
    const ns = ref.namespace ?? routeNamespace;
    const svcLabels = look.serviceLabels(`${ns}/${ref.name}`);
    let accepted: Omit<Wanted, 'type'> = { status: true, reason: 'Accepted', message: 'Route was valid' };
    let resolved: Omit<Wanted, 'type'> = {
      status: true,
      reason: 'ResolvedRefs',
      message: 'All references resolved',
    };
    let waypoints = 'All waypoints resolved';
    if (!svcLabels) {
      accepted = {
        status: false,
        reason: 'NoMatchingParent',
        message: `parent service: ${JSON.stringify(ref.name)} not found`,
      };
      waypoints = 'parent not found';
    } else if (!waypointConfigured(svcLabels)) {
      const nsLabels = look.namespaceLabels(ns);
      if (nsLabels && !waypointConfigured(nsLabels)) waypoints = MISSING_LABEL_MESSAGE;
    }
    if (accepted.status && ns !== routeNamespace)
      // istiod lets a consumer route (another namespace) bind; our waypoints apply a Service's
      // routes from its own namespace only, so this one is not in force.
      accepted = {
        status: false,
        reason: 'NotAllowedByListeners',
        message: `a route for Service ${ns}/${ref.name} from namespace ${routeNamespace} is not applied: only routes in the Service's namespace are`,
      };
    if (refusal !== undefined) {
      // A route with a field our waypoints cannot honour is refused whole, never applied in part.
      if (accepted.status)
        accepted = { status: false, reason: 'UnsupportedValue', message: `Route was refused: ${refusal}` };
      resolved = { status: false, reason: 'InvalidConfiguration', message: refusal };
    } else if (resolveError) resolved = { status: false, ...resolveError };
    out.set(id, {
      ref,
      conditions: [
        { type: 'Accepted', ...accepted },
        { type: 'ResolvedRefs', ...resolved },
        { type: 'ResolvedWaypoints', status: true, reason: 'ResolvedWaypoints', message: waypoints },
      ],
    });
  }
  return out;
}

interface ReadParent {
  parentRef?: RawParentRef;
  controllerName?: string;
  conditions?: unknown;
}

function readParents(status: unknown): ReadParent[] {
  const list = (status as { parents?: unknown } | undefined)?.parents;
  if (!Array.isArray(list)) return [];
  return list.filter((p): p is ReadParent => typeof p === 'object' && p !== null);
}

/** istiod's kstatus.UpdateConditionIfChanged over our types; others' types in our entry stay. */
function mergeConditions(
  existing: unknown,
  wanted: readonly Wanted[],
  generation: number,
  now: string,
): RouteCondition[] {
  const out: RouteCondition[] = Array.isArray(existing)
    ? (existing.filter((c) => c && typeof c === 'object' && typeof c.type === 'string') as RouteCondition[])
    : [];
  for (const w of [...wanted].sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0))) {
    const status = w.status ? 'True' : 'False';
    const i = out.findIndex((c) => c.type === w.type);
    const have = i >= 0 ? out[i] : undefined;
    const cond: RouteCondition = {
      type: w.type,
      status,
      reason: w.reason,
      message: w.message,
      observedGeneration: generation,
      lastTransitionTime: have?.status === status && have.lastTransitionTime ? have.lastTransitionTime : now,
    };
    if (i >= 0) out[i] = cond;
    else out.push(cond);
  }
  return out;
}

function sameConditions(a: unknown, b: readonly RouteCondition[]): boolean {
  if (!Array.isArray(a) || a.length !== b.length) return false;
  return b.every((c, i) => {
    const h = a[i] as Partial<RouteCondition> | undefined;
    return (
      h?.type === c.type &&
      h.status === c.status &&
      (h.reason ?? '') === c.reason &&
      (h.message ?? '') === c.message &&
      (h.observedGeneration ?? 0) === c.observedGeneration
    );
  });
}

/**
 * The whole `status.parents` to write, or undefined when the object already holds it. Others'
 * entries are kept as read (the list is replaced whole, so they must be sent back).
 */
export function routeParentsToWrite(
  desired: ReadonlyMap<string, { ref: RawParentRef; conditions: readonly Wanted[] }>,
  routeNamespace: string,
  generation: number,
  status: unknown,
  now: string,
): unknown[] | undefined {
  const current = readParents(status);
  const out: unknown[] = [];
  const placed = new Set<string>();
  let changed = false;
  for (const p of current) {
    if (p.controllerName !== GATEWAY_CONTROLLER || !p.parentRef) {
      out.push(p);
      continue;
    }
    const id = parentRefString(p.parentRef, routeNamespace);
    const want = desired.get(id);
    if (!want || placed.has(id)) {
      changed = true; // ours, no longer wanted (or a duplicate): removed
      continue;
    }
    placed.add(id);
    const conditions = mergeConditions(p.conditions, want.conditions, generation, now);
    if (!sameConditions(p.conditions, conditions) || JSON.stringify(p.parentRef) !== JSON.stringify(want.ref))
      changed = true;
    out.push({ ...p, parentRef: want.ref, conditions });
  }
  const append = [...desired]
    .filter(([id]) => !placed.has(id))
    .sort(([a], [b]) => (a > b ? -1 : a < b ? 1 : 0));
  for (const [, want] of append) {
    changed = true;
    out.push({
      parentRef: want.ref,
      controllerName: GATEWAY_CONTROLLER,
      conditions: mergeConditions(undefined, want.conditions, generation, now),
    });
  }
  return changed ? out : undefined;
}

import { describe, expect, it } from 'vitest';
import { decodeManifest, type HttpRouteObject } from '../manifests/kube-objects.js';
import {
  desiredRouteParents,
  GATEWAY_CONTROLLER,
  type RawParentRef,
  type RouteLookups,
  routeParentsToWrite,
} from './route-status.js';

const look: RouteLookups = {
  domainSuffix: 'cluster.local',
  serviceLabels: (key) =>
    (<Record<string, Record<string, string>>>{
      'demo/echo': { 'istio.io/use-waypoint': 'wp' },
      'demo/plain': {},
      'other/remote': { 'istio.io/use-waypoint': 'wp' },
    })[key],
  namespaceLabels: (name) => (name === 'demo' || name === 'other' ? {} : undefined),
};
const SVC: RawParentRef = { group: '', kind: 'Service', name: 'echo' };

function route(spec: Record<string, unknown>): HttpRouteObject {
  const d = decodeManifest({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: 'r', namespace: 'demo' },
    spec,
  });
  if (d.ok !== true || d.value.kind !== 'HTTPRoute') throw new Error(JSON.stringify(d));
  return d.value;
}
const backend = (name: string, extra: Record<string, unknown> = {}) => ({
  rules: [{ backendRefs: [{ name, port: 80, ...extra }] }],
});
const conds = (
  refs: RawParentRef[],
  r: HttpRouteObject | undefined,
  problems: { path: string; message: string }[] = [],
) =>
  [...desiredRouteParents('demo', refs, r, problems, look).values()].map((e) =>
    Object.fromEntries(e.conditions.map((c) => [c.type, `${c.status} ${c.reason}: ${c.message}`])),
  );

describe('HTTPRoute parents for Service parents (istiod createRouteStatus, referenceAllowed)', () => {
  it('a valid route on a Service with a waypoint: Accepted, ResolvedRefs, ResolvedWaypoints', () => {
    expect(conds([SVC], route({ parentRefs: [SVC], ...backend('echo') }))).toEqual([
      {
        Accepted: 'true Accepted: Route was valid',
        ResolvedRefs: 'true ResolvedRefs: All references resolved',
        ResolvedWaypoints: 'true ResolvedWaypoints: All waypoints resolved',
      },
    ]);
  });

  it('a backend that does not exist: ResolvedRefs False BackendNotFound with the hostname', () => {
    expect(conds([SVC], route({ parentRefs: [SVC], ...backend('gone') }))[0]?.ResolvedRefs).toBe(
      'false BackendNotFound: backend(gone.demo.svc.cluster.local) not found',
    );
    expect(
      conds([SVC], route({ parentRefs: [SVC], ...backend('echo', { namespace: 'other' }) }))[0]?.ResolvedRefs,
    ).toBe(
      'false RefNotPermitted: backendRef echo/other not accessible to a HTTPRoute in namespace "demo" (missing a ReferenceGrant?)',
    );
  });

  it('a parent Service that does not exist, or without use-waypoint: istiod messages', () => {
    const gone = { ...SVC, name: 'gone' };
    expect(conds([gone], route({ parentRefs: [gone] }))).toEqual([
      {
        Accepted: 'false NoMatchingParent: parent service: "gone" not found',
        ResolvedRefs: 'true ResolvedRefs: All references resolved',
        ResolvedWaypoints: 'true ResolvedWaypoints: parent not found',
      },
    ]);
    const plain = { ...SVC, name: 'plain' };
    expect(conds([plain], route({ parentRefs: [plain] }))[0]?.ResolvedWaypoints).toBe(
      'true ResolvedWaypoints: istio.io/use-waypoint label missing from parent and parent namespace; in ambient mode, route will not be respected',
    );
  });

  it('a parent in another namespace is not Accepted: the waypoint applies only routes of its namespace', () => {
    const remote = { ...SVC, name: 'remote', namespace: 'other' };
    expect(conds([remote], route({ parentRefs: [remote] }))[0]?.Accepted).toBe(
      "false NotAllowedByListeners: a route for Service other/remote from namespace demo is not applied: only routes in the Service's namespace are",
    );
  });

  it('a route refused by field path: not Accepted, the paths in both conditions', () => {
    const problems = [{ path: 'spec.rules[0].filters[0].type', message: '"ExtensionRef" is not supported' }];
    const [c] = conds([SVC], undefined, problems);
    expect(c?.Accepted).toBe(
      'false UnsupportedValue: Route was refused: spec.rules[0].filters[0].type: "ExtensionRef" is not supported',
    );
    expect(c?.ResolvedRefs).toBe(
      'false InvalidConfiguration: spec.rules[0].filters[0].type: "ExtensionRef" is not supported',
    );
  });

  it('Gateway parents (a waypoint included) get no entry: istiod builds no parent for a waypoint', () => {
    const gw = { name: 'wp' };
    expect(conds([gw, SVC], route({ parentRefs: [gw, SVC] }))).toHaveLength(1);
    expect(conds([gw], route({ parentRefs: [gw] }))).toEqual([]);
  });
});

describe('merging into status.parents (only our controllerName is replaced)', () => {
  const NOW = '2026-01-01T00:00:00Z';
  const LATER = '2026-01-02T00:00:00Z';
  const foreign = {
    parentRef: { name: 'edge' },
    controllerName: 'example.com/gateway',
    conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: 'theirs' }],
  };
  const want = (r: HttpRouteObject) =>
    desiredRouteParents('demo', r.parentRefs as RawParentRef[], r, [], look);

  it("appends ours after another controller's entry, then writes nothing when it is held", () => {
    const r = route({ parentRefs: [SVC], ...backend('echo') });
    const first = routeParentsToWrite(want(r), 'demo', 2, { parents: [foreign] }, NOW);
    expect(first).toHaveLength(2);
    expect(first?.[0]).toEqual(foreign);
    expect(first?.[1]).toMatchObject({ controllerName: GATEWAY_CONTROLLER, parentRef: SVC });
    const conditions = ((first ?? [])[1] as { conditions: { type: string; observedGeneration: number }[] })
      .conditions;
    expect(conditions.map((c) => c.type)).toEqual(['Accepted', 'ResolvedRefs', 'ResolvedWaypoints']);
    expect(conditions.every((c) => c.observedGeneration === 2)).toBe(true);
    expect(routeParentsToWrite(want(r), 'demo', 2, { parents: first }, LATER)).toBeUndefined();
  });

  it('a change replaces our entry in place and keeps lastTransitionTime of an unchanged status', () => {
    const r = route({ parentRefs: [SVC], ...backend('gone') });
    const held = routeParentsToWrite(want(r), 'demo', 1, { parents: [foreign] }, NOW);
    const fixed = route({ parentRefs: [SVC], ...backend('echo') });
    const next = routeParentsToWrite(want(fixed), 'demo', 2, { parents: [...(held ?? [])].reverse() }, LATER);
    expect(next?.[1]).toEqual(foreign);
    const c = (
      (next ?? [])[0] as { conditions: { type: string; status: string; lastTransitionTime: string }[] }
    ).conditions;
    expect(c.find((x) => x.type === 'ResolvedRefs')).toMatchObject({
      status: 'True',
      lastTransitionTime: LATER,
    });
    expect(c.find((x) => x.type === 'Accepted')).toMatchObject({ status: 'True', lastTransitionTime: NOW });
  });

  it("our entry for a parent no longer referenced is removed; others' stay", () => {
    const r = route({ parentRefs: [SVC], ...backend('echo') });
    const held = routeParentsToWrite(want(r), 'demo', 1, { parents: [foreign] }, NOW);
    const noParents = route({ parentRefs: [{ name: 'wp' }] });
    expect(routeParentsToWrite(want(noParents), 'demo', 2, { parents: held }, LATER)).toEqual([foreign]);
  });
});

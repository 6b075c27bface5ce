import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { ObjectStatusView } from '../source/kube-api-source.js';
import type { KubeRest } from '../waypoint-controller/kube-rest.js';
import { type StatusTarget, ztunnelAcceptedConditions } from './ambient-status.js';
import { desiredRouteParents, ROUTE_FIELD_MANAGER } from './route-status.js';
import { StatusWriter } from './status-writer.js';

/** An API that stores status as `store` says (possibly not what was sent) and bumps the version. */
function fakeApi(store: (sent: { conditions: object[] }) => unknown) {
  const views = new Map<string, ObjectStatusView>([
    ['AuthorizationPolicy/demo/p', { generation: 1, resourceVersion: '10', status: undefined }],
  ]);
  let rv = 10;
  const calls: string[] = [];
  const kube = {
    request: async (method: string, path: string, body: { status: { conditions: object[] } }) => {
      calls.push(`${method} ${path}`);
      rv += 1;
      return { metadata: { resourceVersion: String(rv) }, status: store(body.status) };
    },
  } as unknown as KubeRest;
  /** The watch event of the last write reaching the source. */
  const deliver = (status: unknown) => {
    views.set('AuthorizationPolicy/demo/p', { generation: 1, resourceVersion: String(rv), status });
  };
  return { kube, views, calls, deliver };
}

function leadership(leading = true) {
  const subs: Array<(l: boolean) => void> = [];
  return {
    isLeader: leading,
    subscribe: (fn: (l: boolean) => void) => subs.push(fn),
    set(l: boolean) {
      this.isLeader = l;
      for (const s of subs) s(l);
    },
  };
}

const target = (bound: boolean): StatusTarget => ({
  key: 'AuthorizationPolicy/demo/p',
  apiVersion: 'security.istio.io/v1',
  kind: 'AuthorizationPolicy',
  namespace: 'demo',
  name: 'p',
  path: '/apis/security.istio.io/v1/namespaces/demo/authorizationpolicies/p',
  fieldManager: 'istio-ambient-ztunnel-policy',
  desired: ztunnelAcceptedConditions({ bound }, 1),
});

const settle = () => new Promise((r) => setTimeout(r, 10));

describe('StatusWriter', () => {
  it('writes once by server-side apply of the status subresource, then not again once the object says so', async () => {
    const api = fakeApi((s) => s);
    let targets = [target(true)];
    const w = new StatusWriter({
      kube: api.kube,
      logger: pino({ level: 'silent' }),
      leader: leadership(),
      view: (k) => api.views.get(k),
      targets: () => targets,
    });
    w.kick();
    await settle();
    expect(api.calls).toEqual([
      'PATCH /apis/security.istio.io/v1/namespaces/demo/authorizationpolicies/p/status?fieldManager=istio-ambient-ztunnel-policy&force=true',
    ]);
    api.deliver({
      conditions: [
        {
          type: 'ZtunnelAccepted',
          status: 'True',
          reason: 'Accepted',
          message: 'attached to ztunnel',
          observedGeneration: 1,
        },
      ],
    });
    for (let i = 0; i < 5; i++) w.kick();
    await settle();
    expect(w.counts.writes).toBe(1);
    // A new wish is written.
    targets = [target(false)];
    w.kick();
    await settle();
    expect(w.counts.writes).toBe(2);
    w.close();
  });

  it('never loops when the server keeps something else than what was sent, nor while its event is on the way', async () => {
    // The stored status drops observedGeneration: it never equals the wish.
    const api = fakeApi(() => ({
      conditions: [
        { type: 'ZtunnelAccepted', status: 'True', reason: 'Accepted', message: 'attached to ztunnel' },
      ],
    }));
    const w = new StatusWriter({
      kube: api.kube,
      logger: pino({ level: 'silent' }),
      leader: leadership(),
      view: (k) => api.views.get(k),
      targets: () => [target(true)],
    });
    w.kick();
    await settle();
    // Before the event: the source still shows the version read before the write.
    for (let i = 0; i < 5; i++) w.kick();
    await settle();
    api.deliver({
      conditions: [
        { type: 'ZtunnelAccepted', status: 'True', reason: 'Accepted', message: 'attached to ztunnel' },
      ],
    });
    for (let i = 0; i < 5; i++) w.kick();
    await settle();
    expect(w.counts.writes).toBe(1);
    // Someone else changes the object (a newer version): written again, once.
    api.views.set('AuthorizationPolicy/demo/p', { generation: 1, resourceVersion: '99', status: {} });
    w.kick();
    await settle();
    expect(w.counts.writes).toBe(2);
    w.close();
  });

  it('writes nothing while not leading, and everything needed on becoming leader', async () => {
    const api = fakeApi((s) => s);
    const leader = leadership(false);
    const w = new StatusWriter({
      kube: api.kube,
      logger: pino({ level: 'silent' }),
      leader,
      view: (k) => api.views.get(k),
      targets: () => [target(true)],
    });
    w.kick();
    await settle();
    expect(api.calls).toEqual([]);
    leader.set(true);
    await settle();
    expect(w.counts.writes).toBe(1);
    w.close();
  });
});

describe('StatusWriter, HTTPRoute parents', () => {
  it('applies the whole parents list (others kept) at the version it was read, then not again once held', async () => {
    const foreign = { parentRef: { name: 'edge' }, controllerName: 'example.com/gw', conditions: [] };
    const views = new Map<string, ObjectStatusView>([
      ['HTTPRoute/demo/r', { generation: 3, resourceVersion: '7', status: { parents: [foreign] } }],
    ]);
    const sent: Array<{ path: string; body: { metadata: object; status: { parents: unknown[] } } }> = [];
    const kube = {
      request: async (
        _m: string,
        path: string,
        body: { metadata: object; status: { parents: unknown[] } },
      ) => {
        sent.push({ path, body });
        return { metadata: { resourceVersion: '8' } };
      },
    } as unknown as KubeRest;
    const entries = desiredRouteParents(
      'demo',
      [{ group: '', kind: 'Service', name: 'echo' }],
      undefined,
      [{ path: 'spec.rules[0].filters[0].type', message: 'refused' }],
      { domainSuffix: 'cluster.local', serviceLabels: () => ({}), namespaceLabels: () => ({}) },
    );
    const t: StatusTarget = {
      key: 'HTTPRoute/demo/r',
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      namespace: 'demo',
      name: 'r',
      path: '/apis/gateway.networking.k8s.io/v1/namespaces/demo/httproutes/r',
      fieldManager: ROUTE_FIELD_MANAGER,
      desired: new Map(),
      parents: { routeNamespace: 'demo', generation: 3, entries },
    };
    const w = new StatusWriter({
      kube,
      logger: pino({ level: 'silent' }),
      leader: leadership(),
      view: (k) => views.get(k),
      targets: () => [t],
    });
    w.kick();
    await settle();
    expect(sent.map((s) => s.path)).toEqual([
      '/apis/gateway.networking.k8s.io/v1/namespaces/demo/httproutes/r/status?fieldManager=pilot-discovery&force=true',
    ]);
    const body = sent[0]?.body;
    expect(body?.metadata).toEqual({ name: 'r', namespace: 'demo', resourceVersion: '7' });
    expect(body?.status.parents[0]).toEqual(foreign);
    expect(body?.status.parents[1]).toMatchObject({
      controllerName: 'istio.io/gateway-controller',
      conditions: [
        { type: 'Accepted', status: 'False', reason: 'UnsupportedValue', observedGeneration: 3 },
        { type: 'ResolvedRefs', status: 'False', reason: 'InvalidConfiguration' },
        { type: 'ResolvedWaypoints', status: 'True' },
      ],
    });
    // Its watch event: the object holds what was sent; nothing more is written.
    views.set('HTTPRoute/demo/r', { generation: 3, resourceVersion: '8', status: body?.status });
    w.kick();
    await settle();
    expect(sent).toHaveLength(1);
    w.close();
  });
});

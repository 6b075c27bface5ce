import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import type { Caller } from '../auth/token-authenticator.js';
import {
  decodeManifest,
  type GatewayObject,
  type KubeObject,
  type PodObject,
} from '../manifests/kube-objects.js';
import { admitProxy, type ProxyDirectory, parseRouterNodeId, waypointScope } from './proxy-admission.js';

function decode<T extends KubeObject>(doc: unknown): T {
  const r = decodeManifest(doc);
  if (r.ok !== true) throw new Error(JSON.stringify(r));
  return r.value as T;
}

const pods = new Map<string, PodObject>(
  [
    ['waypoint-0', 'waypoint', { 'gateway.networking.k8s.io/gateway-name': 'waypoint' }],
    ['sleep', 'sleep', { app: 'sleep' }],
    ['ingress-0', 'ingress', { 'gateway.networking.k8s.io/gateway-name': 'ingress' }],
    ['ghost-0', 'ghost', { 'gateway.networking.k8s.io/gateway-name': 'ghost' }],
  ].map(([name, sa, labels]) => [
    `demo/${name}`,
    decode<PodObject>({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: 'demo', labels },
      spec: { serviceAccountName: sa },
    }),
  ]),
);
const gateways = new Map<string, GatewayObject>(
  [
    ['waypoint', 'istio-waypoint'],
    ['ingress', 'istio'],
  ].map(([name, cls]) => [
    `demo/${name}`,
    decode<GatewayObject>({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name, namespace: 'demo' },
      spec: { gatewayClassName: cls },
    }),
  ]),
);
const directory: ProxyDirectory = {
  pod: (ns, name) => pods.get(`${ns}/${name}`),
  gateway: (ns, name) => gateways.get(`${ns}/${name}`),
};

const node0: Caller = {
  kind: 'ztunnel',
  node: 'node0',
  namespace: 'istio-system',
  serviceAccount: 'ztunnel',
};
const workload = (sa: string, ns = 'demo'): Caller => ({
  kind: 'workload',
  namespace: ns,
  serviceAccount: sa,
});
const router = (pod: string, ns = 'demo') => `router~10.0.0.9~${pod}.${ns}~${ns}.svc.cluster.local`;
const ZTUNNEL_ID = 'ztunnel~10.0.0.100~ztunnel-a.istio-system~istio-system.svc.cluster.local';

describe('parseRouterNodeId', () => {
  it('reads IP, pod and namespace, splitting the pod part at its last dot', () => {
    expect(parseRouterNodeId(router('waypoint-0'))).toEqual({
      ip: '10.0.0.9',
      pod: 'waypoint-0',
      namespace: 'demo',
    });
    expect(parseRouterNodeId('router~fd00::1~web.v2.prod~prod.svc.cluster.local')).toEqual({
      ip: 'fd00::1',
      pod: 'web.v2',
      namespace: 'prod',
    });
  });

  it.each([
    'router~10.0.0.9~waypoint-0~demo.svc.cluster.local',
    'router~~waypoint-0.demo~demo.svc.cluster.local',
    'router~10.0.0.9~.demo~demo.svc.cluster.local',
    'router~10.0.0.9~waypoint-0.~demo.svc.cluster.local',
    'router~10.0.0.9~waypoint-0.demo',
    'sidecar~10.0.0.9~waypoint-0.demo~demo.svc.cluster.local',
  ])('refuses %s', (id) => {
    expect(parseRouterNodeId(id)).toBeUndefined();
  });
});

describe('admitProxy', () => {
  it('admits a waypoint pod running as the token service account, scoped to its gateway', () => {
    expect(admitProxy(workload('waypoint'), router('waypoint-0'), {}, directory)).toEqual({
      ok: true,
      kind: 'waypoint',
      scope: waypointScope('demo', 'waypoint'),
      gateway: 'demo/waypoint',
    });
  });

  it('admits a node agent for its own node only, as today', () => {
    expect(admitProxy(node0, ZTUNNEL_ID, { NODE_NAME: 'node0' }, directory)).toEqual({
      ok: true,
      kind: 'ztunnel',
      scope: '',
    });
    expect(admitProxy(node0, ZTUNNEL_ID, { NODE_NAME: 'node1' }, directory)).toEqual({
      ok: false,
      code: grpc.status.PERMISSION_DENIED,
      reason: 'node',
      details: 'token is bound to node node0, not node1',
    });
  });

  it.each([
    [
      'a node token opening a waypoint stream',
      node0,
      router('waypoint-0'),
      grpc.status.PERMISSION_DENIED,
      "a node agent token (node node0) may not open a waypoint stream; use the waypoint's service account token",
    ],
    [
      'a workload token opening a ztunnel stream',
      workload('waypoint'),
      ZTUNNEL_ID,
      grpc.status.PERMISSION_DENIED,
      `a workload token (demo/waypoint) may only open a waypoint stream (node id router~...), not ${ZTUNNEL_ID}`,
    ],
    [
      'a malformed router node id',
      workload('waypoint'),
      'router~10.0.0.9~waypoint-0',
      grpc.status.INVALID_ARGUMENT,
      'node id router~10.0.0.9~waypoint-0 is not router~<ip>~<pod>.<namespace>~<namespace>.svc.<domain>',
    ],
    [
      'an unknown pod',
      workload('waypoint'),
      router('nobody'),
      grpc.status.PERMISSION_DENIED,
      'no pod demo/nobody is known',
    ],
    [
      "another service account's pod",
      workload('sleep'),
      router('waypoint-0'),
      grpc.status.PERMISSION_DENIED,
      'token is for demo/sleep, but pod demo/waypoint-0 runs as demo/waypoint',
    ],
    [
      'the same service account name in another namespace',
      workload('waypoint', 'other'),
      router('waypoint-0'),
      grpc.status.PERMISSION_DENIED,
      'token is for other/waypoint, but pod demo/waypoint-0 runs as demo/waypoint',
    ],
    [
      'a pod that is not a waypoint',
      workload('sleep'),
      router('sleep'),
      grpc.status.PERMISSION_DENIED,
      'pod demo/sleep is not a waypoint: it has no gateway.networking.k8s.io/gateway-name label',
    ],
    [
      'a pod of a gateway of another class',
      workload('ingress'),
      router('ingress-0'),
      grpc.status.PERMISSION_DENIED,
      'pod demo/ingress-0 is not a waypoint: demo/ingress is not a Gateway of class istio-waypoint',
    ],
    [
      'a pod naming a gateway that does not exist',
      workload('ghost'),
      router('ghost-0'),
      grpc.status.PERMISSION_DENIED,
      'pod demo/ghost-0 is not a waypoint: demo/ghost is not a Gateway of class istio-waypoint',
    ],
  ] as const)('refuses %s', (_what, caller, id, code, details) => {
    expect(admitProxy(caller, id, {}, directory)).toEqual({ ok: false, code, reason: 'waypoint', details });
  });

  it('admits a pod-bound waypoint token for its own pod only', () => {
    const bound = (name: string, uid: string): Caller => ({
      kind: 'workload',
      namespace: 'demo',
      serviceAccount: 'waypoint',
      pod: { name, uid },
    });
    expect(admitProxy(bound('waypoint-0', 'u0'), router('waypoint-0'), {}, directory)).toMatchObject({
      ok: true,
      gateway: 'demo/waypoint',
    });
    // Another replica of the same account: its token does not open this pod's stream.
    expect(admitProxy(bound('waypoint-1', 'u1'), router('waypoint-0'), {}, directory)).toEqual({
      ok: false,
      code: grpc.status.PERMISSION_DENIED,
      reason: 'waypoint',
      details: 'token is bound to pod demo/waypoint-1 (u1), not demo/waypoint-0',
    });
    const withUid: ProxyDirectory = {
      ...directory,
      pod: (ns, name) => {
        const p = pods.get(`${ns}/${name}`);
        return p && { ...p, metadata: { ...p.metadata, uid: 'u-now' } };
      },
    };
    // The pod was re-created under the same name: the old pod's token is not the new pod's.
    expect(admitProxy(bound('waypoint-0', 'u-old'), router('waypoint-0'), {}, withUid)).toMatchObject({
      ok: false,
      details: 'token is bound to pod demo/waypoint-0 (u-old), not demo/waypoint-0 (u-now)',
    });
    expect(admitProxy(bound('waypoint-0', 'u-now'), router('waypoint-0'), {}, withUid)).toMatchObject({
      ok: true,
    });
  });

  it('refuses waypoints when the server has no directory of pods', () => {
    expect(admitProxy(workload('waypoint'), router('waypoint-0'), {}, undefined)).toMatchObject({
      ok: false,
      code: grpc.status.UNIMPLEMENTED,
    });
  });
});

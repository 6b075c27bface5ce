import { describe, expect, it } from 'vitest';
import { decodeManifest, type KubeObject, objectKey } from '../manifests/kube-objects.js';
import { type MeshModel, MeshModelBuilder, type WireService, type WireWorkload } from './mesh-model.js';

const OPTIONS = {
  clusterId: 'Kubernetes',
  trustDomain: 'cluster.local',
  rootNamespace: 'istio-system',
  domainSuffix: 'cluster.local',
};
const STATIC_STRICT = 'istio-system/istio_converted_static_strict';
const AMBIENT = { 'istio.io/dataplane-mode': 'ambient' };

function decode(doc: unknown): KubeObject {
  const r = decodeManifest(doc);
  if (r.ok !== true) throw new Error(`invalid test manifest: ${JSON.stringify(r)}`);
  return r.value;
}

/** The objects map a config source hands to the builder. */
function objects(...docs: unknown[]): Map<string, KubeObject> {
  const map = new Map<string, KubeObject>();
  for (const doc of docs) {
    const o = decode(doc);
    map.set(objectKey(o), o);
  }
  return map;
}

function build(...docs: unknown[]): MeshModel {
  return new MeshModelBuilder(OPTIONS).build(objects(...docs));
}

const namespace = (name: string, labels: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, labels },
});

interface PodOpts {
  ns?: string;
  labels?: Record<string, string>;
  ip?: string | string[] | null;
  node?: string;
  sa?: string;
  phase?: string;
  hostNetwork?: boolean;
  ports?: Record<string, number>;
}
let podCounter = 0;
const pod = (name: string, o: PodOpts = {}) => {
  const ips = o.ip === null ? [] : Array.isArray(o.ip) ? o.ip : [o.ip ?? `10.0.0.${++podCounter}`];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: o.ns ?? 'demo', labels: o.labels ?? { app: name } },
    spec: {
      nodeName: o.node ?? 'node-a',
      serviceAccountName: o.sa ?? name,
      ...(o.hostNetwork && { hostNetwork: true }),
      containers: [
        {
          name: 'app',
          ports: Object.entries(o.ports ?? {}).map(([n, p]) => ({ name: n, containerPort: p })),
        },
      ],
    },
    status: { phase: o.phase ?? 'Running', podIPs: ips.map((ip) => ({ ip })) },
  };
};

interface ServiceOpts {
  ns?: string;
  labels?: Record<string, string>;
  selector?: Record<string, string> | null;
  clusterIP?: string;
  ports?: Array<{ port: number; targetPort?: number | string; name?: string }>;
}
const service = (name: string, o: ServiceOpts = {}) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: o.ns ?? 'demo', labels: o.labels ?? {} },
  spec: {
    clusterIP: o.clusterIP ?? '10.96.0.10',
    ...(o.selector !== null && { selector: o.selector ?? { app: name } }),
    ports: o.ports ?? [{ name: 'http', port: 80, targetPort: 8080 }],
  },
});

const authz = (name: string, ns: string, spec: Record<string, unknown>) => ({
  apiVersion: 'security.istio.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name, namespace: ns },
  spec,
});

const peerAuth = (
  name: string,
  ns: string,
  mode: string | undefined,
  extra: { selector?: Record<string, string>; portLevel?: Record<string, string> } = {},
) => ({
  apiVersion: 'security.istio.io/v1',
  kind: 'PeerAuthentication',
  metadata: { name, namespace: ns },
  spec: {
    ...(mode && { mtls: { mode } }),
    ...(extra.selector && { selector: { matchLabels: extra.selector } }),
    ...(extra.portLevel && {
      portLevelMtls: Object.fromEntries(Object.entries(extra.portLevel).map(([p, m]) => [p, { mode: m }])),
    }),
  },
});

const gateway = (
  name: string,
  ns = 'demo',
  o: {
    className?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    /** allowedRoutes.namespaces of the HBONE listener. */
    allowed?: { from: string; selector?: { matchLabels: Record<string, string> } };
  } = {},
) => ({
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'Gateway',
  metadata: { name, namespace: ns, labels: o.labels ?? {}, annotations: o.annotations ?? {} },
  spec: {
    gatewayClassName: o.className ?? 'istio-waypoint',
    listeners: [
      {
        name: 'mesh',
        port: 15008,
        protocol: 'HBONE',
        ...(o.allowed && { allowedRoutes: { namespaces: o.allowed } }),
      },
    ],
  },
});

function workloadOf(model: MeshModel, name: string, ns = 'demo'): WireWorkload | undefined {
  const a = model.addresses.get(`Kubernetes//Pod/${ns}/${name}`);
  return a && 'workload' in a ? a.workload : undefined;
}

function mustWorkload(model: MeshModel, name: string, ns = 'demo'): WireWorkload {
  const w = workloadOf(model, name, ns);
  if (!w) throw new Error(`no workload for ${ns}/${name}`);
  return w;
}

function serviceOf(model: MeshModel, name: string, ns = 'demo'): WireService {
  const a = model.addresses.get(`${ns}/${name}.${ns}.svc.cluster.local`);
  if (!a || !('service' in a)) throw new Error(`no service ${ns}/${name}`);
  return a.service;
}

const waypointAddress = (name: string, ns = 'demo') => ({
  hostname: { namespace: ns, hostname: `${name}.${ns}.svc.cluster.local` },
  hboneMtlsPort: 15008,
});

describe('MeshModelBuilder: workloads', () => {
  it('makes a workload for a running pod with an IP, keyed by its uid', () => {
    const model = build(
      namespace('demo', AMBIENT),
      pod('web', { ip: '10.0.0.5', node: 'node-a', sa: 'web-sa', labels: { app: 'web', version: 'v2' } }),
    );
    expect([...model.addresses.keys()]).toEqual(['Kubernetes//Pod/demo/web']);
    expect(mustWorkload(model, 'web')).toEqual({
      uid: 'Kubernetes//Pod/demo/web',
      name: 'web',
      namespace: 'demo',
      addresses: [Buffer.from([10, 0, 0, 5])],
      network: '',
      tunnelProtocol: 1,
      // istiod leaves the default trust domain out; ztunnel assumes it.
      trustDomain: '',
      serviceAccount: 'web-sa',
      node: 'node-a',
      canonicalName: 'web',
      canonicalRevision: 'v2',
      workloadType: 2,
      workloadName: 'web',
      services: {},
      authorizationPolicies: [],
      status: 0,
      clusterId: 'Kubernetes',
    });
    expect(mustWorkload(model, 'web')).not.toHaveProperty('waypoint');
  });

  it('prefers the canonical-name and canonical-revision labels, falling back to the workload name and latest', () => {
    const model = build(
      pod('a', {
        labels: {
          app: 'web',
          'service.istio.io/canonical-name': 'frontend',
          'service.istio.io/canonical-revision': 'r1',
        },
      }),
      pod('b', { labels: {} }),
    );
    expect(mustWorkload(model, 'a')).toMatchObject({
      canonicalName: 'frontend',
      canonicalRevision: 'r1',
      // The workload name comes from what controls the pod, never from the app label.
      workloadName: 'a',
    });
    expect(mustWorkload(model, 'b')).toMatchObject({
      canonicalName: 'b',
      canonicalRevision: 'latest',
      workloadName: 'b',
    });
  });

  it('names a Deployment pod after its Deployment, and derives the canonical name from it', () => {
    const doc = pod('reviews-v1-7d4b9c8f5-x2x9q', { labels: { 'pod-template-hash': '7d4b9c8f5' } });
    const model = build({
      ...doc,
      metadata: {
        ...doc.metadata,
        generateName: 'reviews-v1-7d4b9c8f5-',
        ownerReferences: [
          {
            apiVersion: 'apps/v1',
            kind: 'ReplicaSet',
            name: 'reviews-v1-7d4b9c8f5',
            uid: 'u',
            controller: true,
          },
        ],
      },
    });
    expect(mustWorkload(model, 'reviews-v1-7d4b9c8f5-x2x9q')).toMatchObject({
      name: 'reviews-v1-7d4b9c8f5-x2x9q',
      workloadName: 'reviews-v1',
      workloadType: 2,
      canonicalName: 'reviews-v1',
      canonicalRevision: 'latest',
    });
  });

  it('writes a trust domain other than cluster.local, and the cluster id, on every workload', () => {
    const model = new MeshModelBuilder({ ...OPTIONS, trustDomain: 'example.org', clusterId: 'east' }).build(
      objects(pod('web')),
    );
    const w = [...model.addresses.values()].flatMap((a) => ('workload' in a ? [a.workload] : []))[0];
    expect(w).toMatchObject({ trustDomain: 'example.org', clusterId: 'east', uid: 'east//Pod/demo/web' });
  });

  it('sends every address of a dual-stack pod', () => {
    const w = mustWorkload(build(pod('web', { ip: ['10.0.0.5', 'fd00::5'] })), 'web');
    expect(w.addresses).toEqual([
      Buffer.from([10, 0, 0, 5]),
      Buffer.from('fd000000000000000000000000000005', 'hex'),
    ]);
  });

  it.each<[string, Record<string, string> | undefined, Record<string, string>, number]>([
    ['namespace ambient', AMBIENT, {}, 1],
    ['no labels', {}, {}, 0],
    ['no namespace object', undefined, {}, 0],
    ['pod ambient in a plain namespace', {}, AMBIENT, 1],
    ['pod ambient without a namespace object', undefined, AMBIENT, 1],
    ['pod none in an ambient namespace', AMBIENT, { 'istio.io/dataplane-mode': 'none' }, 0],
    ['pod ambient in a none namespace', { 'istio.io/dataplane-mode': 'none' }, AMBIENT, 1],
    ['namespace with another mode', { 'istio.io/dataplane-mode': 'sidecar' }, {}, 0],
  ])('uses HBONE by the dataplane-mode labels: %s', (_what, nsLabels, podLabels, tunnel) => {
    const docs: unknown[] = [pod('web', { labels: { app: 'web', ...podLabels } })];
    if (nsLabels) docs.push(namespace('demo', nsLabels));
    expect(mustWorkload(build(...docs), 'web').tunnelProtocol).toBe(tunnel);
  });

  it.each<[string, PodOpts]>([
    ['without an IP', { ip: null }],
    ['that failed', { phase: 'Failed' }],
    ['that succeeded', { phase: 'Succeeded' }],
    ['on the host network', { hostNetwork: true }],
  ])('makes no workload for a pod %s', (_what, opts) => {
    const model = build(namespace('demo', AMBIENT), pod('web', opts), pod('other'));
    expect(workloadOf(model, 'web')).toBeUndefined();
    expect(workloadOf(model, 'other')).toBeDefined();
    expect(model.addresses.size).toBe(1);
  });
});

describe('MeshModelBuilder: services', () => {
  it('lists the services selecting a pod with their target ports, resolving named ports per pod', () => {
    const model = build(
      pod('web', { labels: { app: 'web', tier: 'front' }, ports: { http: 8080, grpc: 9090 } }),
      service('web', {
        ports: [
          { name: 'http', port: 80, targetPort: 'http' },
          { name: 'grpc', port: 9000, targetPort: 'grpc' },
          { name: 'admin', port: 81, targetPort: 'admin' },
          { name: 'metrics', port: 15020, targetPort: 15021 },
          { name: 'plain', port: 443 },
        ],
      }),
      service('front', { selector: { tier: 'front' }, ports: [{ port: 8000, targetPort: 8080 }] }),
      service('other', { selector: { app: 'other' } }),
      service('external', { selector: null }),
      service('everything', { selector: {} }),
      service('elsewhere', { ns: 'other', selector: { app: 'web' } }),
    );
    expect(mustWorkload(model, 'web').services).toEqual({
      'demo/web.demo.svc.cluster.local': {
        ports: [
          { servicePort: 80, targetPort: 8080 },
          { servicePort: 9000, targetPort: 9090 },
          { servicePort: 15020, targetPort: 15021 },
          { servicePort: 443, targetPort: 443 },
        ],
      },
      'demo/front.demo.svc.cluster.local': { ports: [{ servicePort: 8000, targetPort: 8080 }] },
    });
  });

  it('resolves the same named target port to each pod’s own container port', () => {
    const model = build(
      pod('a', { labels: { app: 'web' }, ports: { http: 8080 } }),
      pod('b', { labels: { app: 'web' }, ports: { http: 8081 } }),
      service('web', { ports: [{ port: 80, targetPort: 'http' }] }),
    );
    const key = 'demo/web.demo.svc.cluster.local';
    expect(mustWorkload(model, 'a').services[key]?.ports).toEqual([{ servicePort: 80, targetPort: 8080 }]);
    expect(mustWorkload(model, 'b').services[key]?.ports).toEqual([{ servicePort: 80, targetPort: 8081 }]);
  });

  it('makes a Service address named namespace/hostname with its VIPs and ports', () => {
    const model = build(
      service('web', {
        clusterIP: '10.96.0.10',
        ports: [
          { port: 80, targetPort: 8080 },
          { port: 81, targetPort: 'http' },
        ],
      }),
    );
    expect([...model.addresses.keys()]).toEqual(['demo/web.demo.svc.cluster.local']);
    expect(serviceOf(model, 'web')).toEqual({
      name: 'web',
      namespace: 'demo',
      hostname: 'web.demo.svc.cluster.local',
      addresses: [{ network: '', address: Buffer.from([10, 96, 0, 10]) }],
      ports: [
        { servicePort: 80, targetPort: 8080 },
        { servicePort: 81, targetPort: 0 },
      ],
      subjectAltNames: [],
    });
  });

  it('makes a headless Service address with no VIP, and a dual-stack one with both', () => {
    const headless = decode(service('db', { clusterIP: 'None' }));
    const dual = decode({
      ...service('web'),
      spec: { clusterIPs: ['10.96.0.10', 'fd00:96::a'], ports: [{ port: 80 }] },
    });
    const model = new MeshModelBuilder(OPTIONS).build(
      new Map([
        [objectKey(headless), headless],
        [objectKey(dual), dual],
      ]),
    );
    expect(serviceOf(model, 'db').addresses).toEqual([]);
    expect(serviceOf(model, 'web').addresses).toEqual([
      { network: '', address: Buffer.from([10, 96, 0, 10]) },
      { network: '', address: Buffer.from('fd00009600000000000000000000000a', 'hex') },
    ]);
  });
});

describe('MeshModelBuilder: authorization', () => {
  it('sends each enforceable policy under namespace/name and reports the skipped ones', () => {
    const model = build(
      authz('deny-all', 'demo', { action: 'DENY', rules: [{}] }),
      authz('global', 'istio-system', {}),
      authz('for-waypoint', 'demo', { targetRefs: [{ kind: 'Service', name: 'web' }] }),
      authz('audit', 'demo', { action: 'AUDIT' }),
    );
    expect([...model.authorizations.keys()].sort()).toEqual(['demo/deny-all', 'istio-system/global']);
    expect(model.authorizations.get('demo/deny-all')).toMatchObject({ scope: 1, action: 1 });
    expect(model.authorizations.get('istio-system/global')).toMatchObject({ scope: 0, action: 0, rules: [] });
    expect(model.problems).toEqual([
      {
        ref: 'AuthorizationPolicy demo/for-waypoint',
        path: 'spec',
        message: 'not sent to ztunnel: attached to a waypoint by targetRefs',
      },
      {
        ref: 'AuthorizationPolicy demo/audit',
        path: 'spec',
        message: 'not sent to ztunnel: action AUDIT is not enforced by ztunnel',
      },
    ]);
  });

  it('lists the workload-selector policies selecting a pod, its own namespace’s and the root namespace’s', () => {
    const model = build(
      pod('web', { labels: { app: 'web', tier: 'front' } }),
      pod('api', { ns: 'other', labels: { app: 'api', tier: 'front' } }),
      authz('web-only', 'demo', { selector: { matchLabels: { app: 'web' } }, rules: [{}] }),
      authz('front', 'demo', { selector: { matchLabels: { tier: 'front' } }, rules: [{}] }),
      authz('db-only', 'demo', { selector: { matchLabels: { app: 'db' } }, rules: [{}] }),
      authz('namespace-wide', 'demo', { rules: [{}] }),
      authz('mesh-front', 'istio-system', { selector: { matchLabels: { tier: 'front' } }, rules: [{}] }),
      authz('mesh-wide', 'istio-system', { rules: [{}] }),
      authz('other-front', 'other', { selector: { matchLabels: { tier: 'front' } }, rules: [{}] }),
      authz('audit-web', 'demo', { action: 'AUDIT', selector: { matchLabels: { app: 'web' } } }),
    );
    expect(mustWorkload(model, 'web').authorizationPolicies).toEqual([
      'demo/front',
      'demo/web-only',
      'istio-system/mesh-front',
    ]);
    expect(mustWorkload(model, 'api', 'other').authorizationPolicies).toEqual([
      'istio-system/mesh-front',
      'other/other-front',
    ]);
    expect(model.authorizations.has('demo/namespace-wide')).toBe(true);
    expect(model.authorizations.has('istio-system/mesh-wide')).toBe(true);
  });

  it('leaves a dry-run policy out of the Authorizations and the workloads it selects, with a notice', () => {
    const dry = {
      ...authz('dry-deny', 'demo', {
        action: 'DENY',
        selector: { matchLabels: { app: 'web' } },
        rules: [{}],
      }),
    };
    const docs = [
      pod('web'),
      { ...dry, metadata: { ...dry.metadata, annotations: { 'istio.io/dry-run': 'true' } } },
      authz('real', 'demo', { selector: { matchLabels: { app: 'web' } }, rules: [{}] }),
    ];
    const model = build(...docs);
    expect([...model.authorizations.keys()]).toEqual(['demo/real']);
    expect(mustWorkload(model, 'web').authorizationPolicies).toEqual(['demo/real']);
    expect(model.problems).toContainEqual({
      ref: 'AuthorizationPolicy demo/dry-deny',
      path: 'spec',
      message: 'not sent to ztunnel: dry-run policy, and sending dry-run policies to ztunnel is not enabled',
    });

    // Enabled, the policy is sent marked dry_run and listed on the workload like any other.
    const sending = new MeshModelBuilder({ ...OPTIONS, sendDryRunPolicies: true }).build(objects(...docs));
    expect(sending.authorizations.get('demo/dry-deny')).toMatchObject({ action: 1, dryRun: true });
    expect(mustWorkload(sending, 'web').authorizationPolicies).toEqual(['demo/dry-deny', 'demo/real']);
  });

  it('enforces a policy whose dry-run annotation is not a boolean, and says so', () => {
    const doc = authz('maybe', 'demo', {
      action: 'DENY',
      selector: { matchLabels: { app: 'web' } },
      rules: [{}],
    });
    const model = build(pod('web'), {
      ...doc,
      metadata: { ...doc.metadata, annotations: { 'istio.io/dry-run': 'yes' } },
    });
    expect(model.authorizations.get('demo/maybe')).not.toHaveProperty('dryRun');
    expect(mustWorkload(model, 'web').authorizationPolicies).toEqual(['demo/maybe']);
    expect(model.problems).toContainEqual({
      ref: 'AuthorizationPolicy demo/maybe',
      path: 'metadata.annotations',
      message: 'istio.io/dry-run: "yes" is not a boolean; the policy is enforced',
    });
  });

  it('sends no static strict policy when there is no PeerAuthentication', () => {
    const model = build(pod('web'));
    expect(model.authorizations.has(STATIC_STRICT)).toBe(false);
    expect(mustWorkload(model, 'web').authorizationPolicies).toEqual([]);
  });

  it('applies mesh-wide STRICT from the root namespace to every workload', () => {
    const model = build(
      pod('web'),
      pod('api', { ns: 'other' }),
      peerAuth('default', 'istio-system', 'STRICT'),
    );
    expect(model.authorizations.get(STATIC_STRICT)).toEqual({
      name: 'istio_converted_static_strict',
      namespace: 'istio-system',
      scope: 2,
      action: 1,
      rules: [{ clauses: [{ matches: [{ notPrincipals: [{ presence: {} }] }] }] }],
    });
    expect(mustWorkload(model, 'web').authorizationPolicies).toEqual([STATIC_STRICT]);
    expect(mustWorkload(model, 'api', 'other').authorizationPolicies).toEqual([STATIC_STRICT]);
  });

  it('applies namespace STRICT to that namespace only', () => {
    const model = build(pod('web'), pod('api', { ns: 'other' }), peerAuth('default', 'demo', 'STRICT'));
    expect(model.authorizations.has(STATIC_STRICT)).toBe(true);
    expect(mustWorkload(model, 'web').authorizationPolicies).toEqual([STATIC_STRICT]);
    expect(mustWorkload(model, 'api', 'other').authorizationPolicies).toEqual([]);
  });

  it('applies workload STRICT to the selected pods only', () => {
    const model = build(
      pod('web'),
      pod('db'),
      peerAuth('web', 'demo', 'STRICT', { selector: { app: 'web' } }),
    );
    expect(mustWorkload(model, 'web').authorizationPolicies).toEqual([STATIC_STRICT]);
    expect(mustWorkload(model, 'db').authorizationPolicies).toEqual([]);
  });

  it.each<[string, unknown[], boolean]>([
    [
      'workload UNSET inherits namespace STRICT',
      [peerAuth('ns', 'demo', 'STRICT'), peerAuth('w', 'demo', 'UNSET', { selector: { app: 'web' } })],
      true,
    ],
    [
      'workload without mtls inherits mesh STRICT',
      [
        peerAuth('mesh', 'istio-system', 'STRICT'),
        peerAuth('w', 'demo', undefined, { selector: { app: 'web' } }),
      ],
      true,
    ],
    [
      'namespace UNSET inherits mesh STRICT',
      [peerAuth('mesh', 'istio-system', 'STRICT'), peerAuth('ns', 'demo', 'UNSET')],
      true,
    ],
    [
      'namespace PERMISSIVE overrides mesh STRICT',
      [peerAuth('mesh', 'istio-system', 'STRICT'), peerAuth('ns', 'demo', 'PERMISSIVE')],
      false,
    ],
    [
      'workload PERMISSIVE overrides namespace STRICT',
      [peerAuth('ns', 'demo', 'STRICT'), peerAuth('w', 'demo', 'PERMISSIVE', { selector: { app: 'web' } })],
      false,
    ],
    [
      'workload DISABLE overrides mesh STRICT',
      [
        peerAuth('mesh', 'istio-system', 'STRICT'),
        peerAuth('w', 'demo', 'DISABLE', { selector: { app: 'web' } }),
      ],
      false,
    ],
    [
      'workload STRICT overrides namespace PERMISSIVE',
      [peerAuth('ns', 'demo', 'PERMISSIVE'), peerAuth('w', 'demo', 'STRICT', { selector: { app: 'web' } })],
      true,
    ],
    [
      'UNSET everywhere stays permissive',
      [
        peerAuth('mesh', 'istio-system', 'UNSET'),
        peerAuth('w', 'demo', 'UNSET', { selector: { app: 'web' } }),
      ],
      false,
    ],
    [
      'a selector policy in the root namespace is not mesh-wide',
      [peerAuth('root-web', 'istio-system', 'STRICT', { selector: { app: 'web' } })],
      false,
    ],
  ])('resolves the mTLS mode: %s', (_what, policies, strict) => {
    const model = build(pod('web'), ...policies);
    expect(model.authorizations.has(STATIC_STRICT)).toBe(true);
    expect(mustWorkload(model, 'web').authorizationPolicies).toEqual(strict ? [STATIC_STRICT] : []);
  });

  it('turns a STRICT workload policy with a PERMISSIVE port into a converted DENY listed instead of static strict', () => {
    const model = build(
      pod('web'),
      pod('db'),
      peerAuth('web-mtls', 'demo', 'STRICT', {
        selector: { app: 'web' },
        portLevel: { '8080': 'PERMISSIVE' },
      }),
      peerAuth('default', 'demo', 'STRICT'),
    );
    expect(model.authorizations.get('demo/converted_peer_authentication_web-mtls')).toEqual({
      name: 'converted_peer_authentication_web-mtls',
      namespace: 'demo',
      scope: 2,
      action: 1,
      rules: [
        { clauses: [{ matches: [{ notPrincipals: [{ presence: {} }], notDestinationPorts: [8080] }] }] },
      ],
    });
    expect(mustWorkload(model, 'web').authorizationPolicies).toEqual([
      'demo/converted_peer_authentication_web-mtls',
    ]);
    expect(mustWorkload(model, 'db').authorizationPolicies).toEqual([STATIC_STRICT]);
  });

  it('converts STRICT ports over an inherited PERMISSIVE mode into a DENY on those ports', () => {
    const model = build(
      pod('web'),
      peerAuth('web-mtls', 'demo', undefined, { selector: { app: 'web' }, portLevel: { '9090': 'STRICT' } }),
    );
    expect(model.authorizations.get('demo/converted_peer_authentication_web-mtls')?.rules).toEqual([
      { clauses: [{ matches: [{ notPrincipals: [{ presence: {} }], destinationPorts: [9090] }] }] },
    ]);
    expect(mustWorkload(model, 'web').authorizationPolicies).toEqual([
      'demo/converted_peer_authentication_web-mtls',
    ]);
  });

  it('converts a workload policy with UNSET mode against the inherited namespace STRICT', () => {
    const model = build(
      pod('web'),
      peerAuth('default', 'demo', 'STRICT'),
      peerAuth('web-mtls', 'demo', 'UNSET', { selector: { app: 'web' }, portLevel: { '8080': 'DISABLE' } }),
    );
    expect(model.authorizations.get('demo/converted_peer_authentication_web-mtls')?.rules).toEqual([
      { clauses: [{ matches: [{ notPrincipals: [{ presence: {} }], notDestinationPorts: [8080] }] }] },
    ]);
  });

  it('converts nothing when no port ends up strict', () => {
    const model = build(
      pod('web'),
      peerAuth('web-mtls', 'demo', 'PERMISSIVE', {
        selector: { app: 'web' },
        portLevel: { '8080': 'DISABLE' },
      }),
    );
    expect([...model.authorizations.keys()]).toEqual([STATIC_STRICT]);
    expect(mustWorkload(model, 'web').authorizationPolicies).toEqual([]);
  });
});

describe('MeshModelBuilder: waypoints', () => {
  const useWaypoint = (name: string) => ({ 'istio.io/use-waypoint': name });
  const waypointFor = (target: string) => ({ labels: { 'istio.io/waypoint-for': target } });

  it.each<[string, Record<string, string> | undefined, boolean, boolean]>([
    ['no waypoint-for label (service traffic)', undefined, false, true],
    ['waypoint-for service', { 'istio.io/waypoint-for': 'service' }, false, true],
    ['waypoint-for workload', { 'istio.io/waypoint-for': 'workload' }, true, false],
    ['waypoint-for all', { 'istio.io/waypoint-for': 'all' }, true, true],
    ['waypoint-for none', { 'istio.io/waypoint-for': 'none' }, false, false],
  ])(
    'gives labelled pods and services the waypoint by its %s',
    (_what, gwLabels, forWorkload, forService) => {
      const model = build(
        gateway('waypoint', 'demo', { labels: gwLabels ?? {} }),
        pod('web', { labels: { app: 'web', ...useWaypoint('waypoint') } }),
        service('web', { labels: useWaypoint('waypoint') }),
      );
      expect(mustWorkload(model, 'web').waypoint).toEqual(
        forWorkload ? waypointAddress('waypoint') : undefined,
      );
      expect(serviceOf(model, 'web').waypoint).toEqual(forService ? waypointAddress('waypoint') : undefined);
    },
  );

  it('uses the namespace label for pods and services without their own', () => {
    const model = build(
      namespace('demo', useWaypoint('waypoint')),
      gateway('waypoint', 'demo', waypointFor('all')),
      pod('web'),
      service('web'),
      pod('api', { ns: 'other' }),
      service('api', { ns: 'other' }),
    );
    expect(mustWorkload(model, 'web').waypoint).toEqual(waypointAddress('waypoint'));
    expect(serviceOf(model, 'web').waypoint).toEqual(waypointAddress('waypoint'));
    expect(mustWorkload(model, 'api', 'other').waypoint).toBeUndefined();
    expect(serviceOf(model, 'api', 'other').waypoint).toBeUndefined();
  });

  it('says why a Service is bound to no waypoint, as istiod does (WaypointIsNotReady, AttachmentDenied, UnsupportedTrafficType)', () => {
    const model = build(
      gateway('wp', 'demo'),
      gateway('wl-only', 'demo', waypointFor('workload')),
      gateway('infra-only', 'infra'),
      gateway('ingress', 'demo', { className: 'istio' }),
      namespace('demo', { 'istio.io/ingress-use-waypoint': 'true' }),
      service('bound', { labels: useWaypoint('wp') }),
      service('missing', { labels: useWaypoint('nope'), clusterIP: '10.96.0.21' }),
      service('other-class', { labels: useWaypoint('ingress'), clusterIP: '10.96.0.22' }),
      service('wrong-traffic', { labels: useWaypoint('wl-only'), clusterIP: '10.96.0.23' }),
      service('denied', {
        labels: { ...useWaypoint('infra-only'), 'istio.io/use-waypoint-namespace': 'infra' },
        clusterIP: '10.96.0.24',
      }),
      service('opted-out', { labels: useWaypoint('none'), clusterIP: '10.96.0.25' }),
    );
    const b = (name: string) => model.serviceBindings.get(`demo/${name}`);
    expect(b('bound')).toEqual({ waypoint: 'demo/wp', ingressLabelPresent: true, ingressUseWaypoint: true });
    expect(b('missing')?.error).toEqual({
      reason: 'WaypointIsNotReady',
      message: 'waypoint "demo/nope" is not ready',
    });
    expect(b('other-class')?.error?.reason).toBe('WaypointIsNotReady');
    expect(b('wrong-traffic')?.error).toEqual({
      reason: 'UnsupportedTrafficType',
      message:
        'attempting to bind to traffic type "service" which the waypoint "demo/wl-only" does not support',
    });
    expect(b('denied')?.error).toEqual({
      reason: 'AttachmentDenied',
      message: 'we are not permitted to attach to waypoint "infra/infra-only" (missing allowedRoutes?)',
    });
    expect(b('opted-out')).toEqual({ ingressLabelPresent: false, ingressUseWaypoint: false });
    // The Gateway of another class is a notice with its field path.
    expect(model.problems).toContainEqual({
      ref: 'Gateway demo/ingress',
      path: 'spec.gatewayClassName',
      message: 'class "istio" is not served here (only istio-waypoint): the Gateway is ignored',
    });
  });

  it('lets a pod or service label name another waypoint, or opt out with none', () => {
    const model = build(
      namespace('demo', useWaypoint('waypoint')),
      gateway('waypoint', 'demo', waypointFor('all')),
      gateway('special', 'demo', waypointFor('all')),
      pod('web', { labels: { app: 'web', ...useWaypoint('special') } }),
      pod('db', { labels: { app: 'db', ...useWaypoint('none') } }),
      service('web', { labels: useWaypoint('special') }),
      service('db', { labels: useWaypoint('none'), clusterIP: '10.96.0.11' }),
    );
    expect(mustWorkload(model, 'web').waypoint).toEqual(waypointAddress('special'));
    expect(serviceOf(model, 'web').waypoint).toEqual(waypointAddress('special'));
    expect(mustWorkload(model, 'db').waypoint).toBeUndefined();
    expect(serviceOf(model, 'db').waypoint).toBeUndefined();
  });

  it('finds the waypoint in the namespace named by use-waypoint-namespace, when it lets every namespace attach', () => {
    const model = build(
      gateway('shared', 'infra', { ...waypointFor('all'), allowed: { from: 'All' } }),
      pod('web', {
        labels: { app: 'web', ...useWaypoint('shared'), 'istio.io/use-waypoint-namespace': 'infra' },
      }),
      namespace('other', { ...useWaypoint('shared'), 'istio.io/use-waypoint-namespace': 'infra' }),
      service('api', { ns: 'other' }),
    );
    expect(mustWorkload(model, 'web').waypoint).toEqual(waypointAddress('shared', 'infra'));
    expect(serviceOf(model, 'api', 'other').waypoint).toEqual(waypointAddress('shared', 'infra'));
  });

  it('refuses a waypoint in another namespace unless its HBONE listener lets that namespace attach', () => {
    const nsRef = { ...useWaypoint('shared'), 'istio.io/use-waypoint-namespace': 'infra' };
    const model = build(
      // No allowedRoutes: Same, as istiod defaults it.
      gateway('shared', 'infra', waypointFor('all')),
      gateway('picky', 'infra', { allowed: { from: 'Selector', selector: { matchLabels: { team: 'a' } } } }),
      namespace('demo'),
      pod('web', { labels: { app: 'web', ...nsRef } }),
      service('web', { labels: nsRef }),
      namespace('team-a', { team: 'a', ...useWaypoint('picky'), 'istio.io/use-waypoint-namespace': 'infra' }),
      namespace('team-b', { team: 'b', ...useWaypoint('picky'), 'istio.io/use-waypoint-namespace': 'infra' }),
      service('api', { ns: 'team-a' }),
      service('api', { ns: 'team-b' }),
      // The Gateway's own namespace always may.
      service('local', { ns: 'infra', labels: useWaypoint('shared') }),
    );
    expect(mustWorkload(model, 'web').waypoint).toBeUndefined();
    expect(serviceOf(model, 'web').waypoint).toBeUndefined();
    expect(serviceOf(model, 'api', 'team-a').waypoint).toEqual(waypointAddress('picky', 'infra'));
    expect(serviceOf(model, 'api', 'team-b').waypoint).toBeUndefined();
    expect(serviceOf(model, 'local', 'infra').waypoint).toEqual(waypointAddress('shared', 'infra'));
  });

  it('does not fall back to the namespace label when the object names a waypoint that does not serve it', () => {
    const model = build(
      namespace('demo', useWaypoint('waypoint')),
      gateway('waypoint', 'demo', waypointFor('all')),
      gateway('svc-only', 'demo', waypointFor('service')),
      pod('web', { labels: { app: 'web', ...useWaypoint('missing') } }),
      service('web', { labels: useWaypoint('missing') }),
      pod('api', { labels: { app: 'api', ...useWaypoint('svc-only') } }),
    );
    expect(mustWorkload(model, 'web').waypoint).toBeUndefined();
    expect(serviceOf(model, 'web').waypoint).toBeUndefined();
    expect(mustWorkload(model, 'api').waypoint).toBeUndefined();
  });

  it('filters a namespace label by waypoint-for: a service waypoint serves services, a workload one pods', () => {
    const model = build(
      namespace('demo', useWaypoint('svc-wp')),
      namespace('other', useWaypoint('wl-wp')),
      gateway('svc-wp', 'demo'),
      gateway('wl-wp', 'other', waypointFor('workload')),
      pod('web'),
      service('web'),
      pod('api', { ns: 'other' }),
      service('api', { ns: 'other' }),
    );
    expect(serviceOf(model, 'web').waypoint).toEqual(waypointAddress('svc-wp'));
    expect(mustWorkload(model, 'web').waypoint).toBeUndefined();
    expect(serviceOf(model, 'api', 'other').waypoint).toBeUndefined();
    expect(mustWorkload(model, 'api', 'other').waypoint).toEqual(waypointAddress('wl-wp', 'other'));
  });

  it('gives nothing for a namespace labelled use-waypoint=none', () => {
    const model = build(
      namespace('demo', useWaypoint('none')),
      gateway('none', 'demo', waypointFor('all')),
      pod('web'),
      service('web'),
    );
    expect(mustWorkload(model, 'web').waypoint).toBeUndefined();
    expect(serviceOf(model, 'web').waypoint).toBeUndefined();
  });

  it("gives the waypoint's own Service (managed by the mesh controller) no waypoint, whatever its namespace says", () => {
    const model = build(
      namespace('demo', useWaypoint('waypoint')),
      gateway('waypoint', 'demo', waypointFor('all')),
      service('waypoint', {
        labels: {
          'gateway.networking.k8s.io/gateway-name': 'waypoint',
          'gateway.istio.io/managed': 'istio.io-mesh-controller',
        },
      }),
    );
    expect(serviceOf(model, 'waypoint').waypoint).toBeUndefined();
  });

  it('ignores a waypoint that does not exist or is not of class istio-waypoint', () => {
    const model = build(
      gateway('ingress', 'demo', { className: 'istio', ...waypointFor('all') }),
      pod('web', { labels: { app: 'web', ...useWaypoint('ingress') } }),
      service('web', { labels: useWaypoint('ingress') }),
      pod('api', { labels: { app: 'api', ...useWaypoint('missing') } }),
    );
    expect(mustWorkload(model, 'web').waypoint).toBeUndefined();
    expect(serviceOf(model, 'web').waypoint).toBeUndefined();
    expect(mustWorkload(model, 'api').waypoint).toBeUndefined();
  });

  it('gives pods of a service account the waypoint annotated for it in their namespace', () => {
    const model = build(
      gateway('sa-waypoint', 'demo', { annotations: { 'istio.io/for-service-account': 'web-sa' } }),
      pod('web', { sa: 'web-sa' }),
      pod('db', { sa: 'db-sa' }),
      pod('elsewhere', { ns: 'other', sa: 'web-sa' }),
    );
    expect(mustWorkload(model, 'web').waypoint).toEqual(waypointAddress('sa-waypoint'));
    expect(mustWorkload(model, 'db').waypoint).toBeUndefined();
    expect(mustWorkload(model, 'elsewhere', 'other').waypoint).toBeUndefined();
  });

  it('puts a legacy service-account waypoint on the services selecting that account’s pods, and follows pod changes', () => {
    const builder = new MeshModelBuilder(OPTIONS);
    // The same Gateway and Service objects in both builds, as a config source keeps them.
    const kept = [
      decode(gateway('sa-waypoint', 'demo', { annotations: { 'istio.io/for-service-account': 'web-sa' } })),
      decode(service('web')),
      decode(service('db', { clusterIP: '10.96.0.11' })),
    ];
    const withPod = (sa: string) => {
      const map = new Map(kept.map((o) => [objectKey(o), o]));
      const p = decode(pod('web', { sa }));
      return map.set(objectKey(p), p);
    };
    const first = builder.build(withPod('web-sa'));
    expect(serviceOf(first, 'web').waypoint).toEqual(waypointAddress('sa-waypoint'));
    expect(serviceOf(first, 'db').waypoint).toBeUndefined();
    // The pod now runs as another account: the service loses the waypoint on a pod-only change.
    const second = builder.build(withPod('other-sa'), new Set(['Pod']));
    expect(serviceOf(second, 'web').waypoint).toBeUndefined();
  });

  it('uses the legacy for-service-account annotation only when no use-waypoint label applies', () => {
    const model = build(
      namespace('demo', useWaypoint('svc-wp')),
      gateway('svc-wp', 'demo'),
      gateway('sa-waypoint', 'demo', { annotations: { 'istio.io/for-service-account': 'web-sa' } }),
      gateway('sa-waypoint', 'other', { annotations: { 'istio.io/for-service-account': 'web-sa' } }),
      pod('web', { sa: 'web-sa' }),
      pod('web', { ns: 'other', sa: 'web-sa' }),
      pod('opted-out', { ns: 'other', sa: 'web-sa', labels: useWaypoint('none') }),
    );
    // The namespace label names a service-only waypoint: the pod gets none, not the legacy one.
    expect(mustWorkload(model, 'web').waypoint).toBeUndefined();
    expect(mustWorkload(model, 'web', 'other').waypoint).toEqual(waypointAddress('sa-waypoint', 'other'));
    expect(mustWorkload(model, 'opted-out', 'other').waypoint).toBeUndefined();
  });

  it('gives a waypoint pod no waypoint of its own', () => {
    const model = build(
      namespace('demo', useWaypoint('waypoint')),
      gateway('waypoint', 'demo', waypointFor('all')),
      pod('waypoint-pod', { labels: { 'gateway.networking.k8s.io/gateway-name': 'waypoint' } }),
    );
    expect(mustWorkload(model, 'waypoint-pod').waypoint).toBeUndefined();
  });
});

describe('MeshModelBuilder: identities by node', () => {
  it('lists namespace/serviceAccount of the running pods on each node', () => {
    const model = build(
      pod('a', { node: 'node-a', sa: 'web' }),
      pod('b', { node: 'node-a', sa: 'web' }),
      pod('c', { node: 'node-a', sa: 'db' }),
      pod('d', { node: 'node-b', sa: 'api', ns: 'other' }),
      pod('pending', { node: 'node-b', sa: 'starting', ip: null }),
      pod('failed', { node: 'node-b', sa: 'gone', phase: 'Failed' }),
      pod('host', { node: 'node-b', sa: 'host', hostNetwork: true }),
      pod('unscheduled', { node: '', sa: 'nowhere' }),
    );
    expect(model.identitiesByNode).toEqual(
      new Map([
        ['node-a', new Set(['demo/web', 'demo/db'])],
        ['node-b', new Set(['other/api', 'demo/starting'])],
      ]),
    );
  });
});

describe('MeshModelBuilder: caching by identity', () => {
  const docs = () => [
    namespace('demo', AMBIENT),
    namespace('other', AMBIENT),
    pod('a'),
    pod('b'),
    pod('c', { ns: 'other' }),
    service('web', { selector: { app: 'a' } }),
  ];
  const names: Array<[string, string]> = [
    ['a', 'demo'],
    ['b', 'demo'],
    ['c', 'other'],
  ];

  it('returns the identical workload and service objects when nothing changed', () => {
    const builder = new MeshModelBuilder(OPTIONS);
    const objs = objects(...docs());
    const first = builder.build(objs);
    for (const changed of [
      new Set<KubeObject['kind']>(),
      new Set<KubeObject['kind']>(['Pod', 'ServiceAccount']),
    ]) {
      const again = builder.build(objs, changed);
      for (const [n, ns] of names) expect(mustWorkload(again, n, ns)).toBe(mustWorkload(first, n, ns));
      expect(serviceOf(again, 'web')).toBe(serviceOf(first, 'web'));
    }
  });

  it('recomputes only the workload of the pod object that changed', () => {
    const builder = new MeshModelBuilder(OPTIONS);
    const objs = objects(...docs());
    const first = builder.build(objs);
    const next = new Map(objs);
    const changed = decode(pod('b', { ip: '10.9.9.9' }));
    next.set(objectKey(changed), changed);
    const second = builder.build(next, new Set(['Pod']));
    expect(mustWorkload(second, 'b')).not.toBe(mustWorkload(first, 'b'));
    expect(mustWorkload(second, 'b').addresses).toEqual([Buffer.from([10, 9, 9, 9])]);
    expect(mustWorkload(second, 'a')).toBe(mustWorkload(first, 'a'));
    expect(mustWorkload(second, 'c', 'other')).toBe(mustWorkload(first, 'c', 'other'));
    expect(serviceOf(second, 'web')).toBe(serviceOf(first, 'web'));
  });

  it('drops the workload of a removed pod', () => {
    const builder = new MeshModelBuilder(OPTIONS);
    const objs = objects(...docs());
    const first = builder.build(objs);
    const next = new Map(objs);
    next.delete('Pod/demo/b');
    const second = builder.build(next, new Set(['Pod']));
    expect(workloadOf(second, 'b')).toBeUndefined();
    expect(mustWorkload(second, 'a')).toBe(mustWorkload(first, 'a'));
  });

  it('recomputes the workloads and services of a namespace whose object changed, and only those', () => {
    const builder = new MeshModelBuilder(OPTIONS);
    const objs = objects(...docs());
    const first = builder.build(objs);
    const next = new Map(objs);
    const plain = decode(namespace('demo'));
    next.set(objectKey(plain), plain);
    const second = builder.build(next, new Set(['Namespace']));
    expect(mustWorkload(second, 'a').tunnelProtocol).toBe(0);
    expect(mustWorkload(second, 'b')).not.toBe(mustWorkload(first, 'b'));
    expect(serviceOf(second, 'web')).not.toBe(serviceOf(first, 'web'));
    expect(mustWorkload(second, 'c', 'other')).toBe(mustWorkload(first, 'c', 'other'));
  });

  it.each(['Service', 'AuthorizationPolicy', 'PeerAuthentication', 'Gateway'] as const)(
    'recomputes every workload and service when changedKinds contains %s',
    (kind) => {
      const builder = new MeshModelBuilder(OPTIONS);
      const objs = objects(...docs());
      const first = builder.build(objs);
      const second = builder.build(objs, new Set([kind]));
      for (const [n, ns] of names) {
        expect(mustWorkload(second, n, ns)).not.toBe(mustWorkload(first, n, ns));
        expect(mustWorkload(second, n, ns)).toEqual(mustWorkload(first, n, ns));
      }
      expect(serviceOf(second, 'web')).not.toBe(serviceOf(first, 'web'));
    },
  );

  it('recomputes everything when changedKinds is not given', () => {
    const builder = new MeshModelBuilder(OPTIONS);
    const objs = objects(...docs());
    const first = builder.build(objs);
    const second = builder.build(objs);
    for (const [n, ns] of names) expect(mustWorkload(second, n, ns)).not.toBe(mustWorkload(first, n, ns));
  });

  it('picks up a policy change in cached workloads once the policy kind is reported', () => {
    const builder = new MeshModelBuilder(OPTIONS);
    const objs = objects(...docs());
    builder.build(objs);
    const next = new Map(objs);
    const strict = decode(peerAuth('default', 'istio-system', 'STRICT'));
    next.set(objectKey(strict), strict);
    const second = builder.build(next, new Set(['PeerAuthentication']));
    for (const [n, ns] of names)
      expect(mustWorkload(second, n, ns).authorizationPolicies).toEqual([STATIC_STRICT]);
  });
});

describe('MeshModelBuilder: building in steps', () => {
  it('buildSteps gives the model build gives, one step per policy, pod and service', () => {
    const input = objects(
      namespace('demo', AMBIENT),
      pod('a', { ip: '10.0.0.1' }),
      pod('b', { ip: '10.0.0.2' }),
      service('web', { selector: { app: 'a' } }),
      authz('deny', 'demo', { action: 'DENY', rules: [{ from: [{ source: { namespaces: ['x'] } }] }] }),
    );
    const steps = new MeshModelBuilder(OPTIONS).buildSteps(input);
    let count = 0;
    let r = steps.next();
    while (!r.done) {
      count += 1;
      r = steps.next();
    }
    expect(count).toBe(4);
    expect(r.value).toEqual(new MeshModelBuilder(OPTIONS).build(input));
  });
});

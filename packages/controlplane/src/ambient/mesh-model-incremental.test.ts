/**
 * The incremental model update against a full build: after every change, in any order, the model
 * updated from the last one must equal the model built from scratch from the same objects.
 */
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../../shared/src/testing/seeded-random.js';
import { decodeManifest, type KubeObject, objectKey } from '../manifests/kube-objects.js';
import { type MeshModel, MeshModelBuilder, type MeshModelUpdate } from './mesh-model.js';
import { runToEnd } from './time-slicer.js';

const OPTIONS = {
  clusterId: 'Kubernetes',
  trustDomain: 'cluster.local',
  rootNamespace: 'istio-system',
  domainSuffix: 'cluster.local',
};

function decode(doc: unknown): KubeObject {
  const r = decodeManifest(doc);
  if (r.ok !== true) throw new Error(`invalid test manifest: ${JSON.stringify(r)}`);
  return r.value;
}

const NAMESPACES = ['demo', 'other'];
const NODES = ['node-a', 'node-b', 'node-c'];
const APPS = ['a', 'b', 'c'];

const namespaceDoc = (name: string, labels: Record<string, string>) => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, labels },
});

function podDoc(pick: <T>(xs: readonly T[]) => T, name: string, n: number) {
  const labels: Record<string, string> = { app: pick(APPS) };
  const extra = pick(['', '', 'waypoint', 'none', 'ambient', 'off']);
  if (extra === 'waypoint') labels['istio.io/use-waypoint'] = 'wp';
  if (extra === 'none') labels['istio.io/use-waypoint'] = 'none';
  if (extra === 'ambient') labels['istio.io/dataplane-mode'] = 'ambient';
  if (extra === 'off') labels['istio.io/dataplane-mode'] = 'none';
  const ips = pick([
    [`10.0.${n % 200}.${(n % 250) + 1}`],
    [`10.1.${n % 200}.${(n % 250) + 1}`, 'fd00::1'],
    [],
  ]);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: pick(NAMESPACES), labels },
    spec: {
      nodeName: pick(NODES),
      serviceAccountName: pick(['sa1', 'sa2', 'sa3']),
      containers: [{ name: 'app', ports: [{ name: 'http', containerPort: pick([8080, 9090]) }] }],
    },
    status: {
      phase: pick(['Running', 'Running', 'Running', 'Pending', 'Succeeded']),
      podIPs: ips.map((ip) => ({ ip })),
    },
  };
}

const serviceDoc = (name: string, ns: string, app: string, targetPort: number | string) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: ns, labels: {} },
  spec: { clusterIP: '10.96.0.10', selector: { app }, ports: [{ name: 'http', port: 80, targetPort }] },
});

const gatewayDoc = (name: string, ns: string, annotations: Record<string, string> = {}) => ({
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'Gateway',
  metadata: { name, namespace: ns, labels: { 'istio.io/waypoint-for': 'all' }, annotations },
  spec: { gatewayClassName: 'istio-waypoint', listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] },
});

/** The objects every sequence starts from: policies, peer authentication, a waypoint, services. */
function baseDocs(): unknown[] {
  return [
    namespaceDoc('demo', { 'istio.io/dataplane-mode': 'ambient' }),
    namespaceDoc('other', {}),
    namespaceDoc('istio-system', {}),
    serviceDoc('web', 'demo', 'a', 'http'),
    serviceDoc('api', 'demo', 'b', 8080),
    serviceDoc('web', 'other', 'a', 80),
    gatewayDoc('wp', 'demo'),
    {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'allow-a', namespace: 'demo' },
      spec: {
        selector: { matchLabels: { app: 'a' } },
        action: 'ALLOW',
        rules: [{ from: [{ source: { namespaces: ['demo'] } }] }],
      },
    },
    {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'deny-all-c', namespace: 'istio-system' },
      spec: { selector: { matchLabels: { app: 'c' } }, action: 'DENY', rules: [{}] },
    },
    {
      apiVersion: 'security.istio.io/v1',
      kind: 'PeerAuthentication',
      metadata: { name: 'strict', namespace: 'other' },
      spec: { mtls: { mode: 'STRICT' } },
    },
    {
      apiVersion: 'security.istio.io/v1',
      kind: 'PeerAuthentication',
      metadata: { name: 'b-ports', namespace: 'demo' },
      spec: { selector: { matchLabels: { app: 'b' } }, portLevelMtls: { '8080': { mode: 'DISABLE' } } },
    },
  ];
}

/** The outputs a model consists of, as plain maps (an updated model's addresses are a snapshot view). */
function outputs(m: MeshModel) {
  return {
    addresses: new Map(m.addresses),
    authorizations: m.authorizations,
    identitiesByNode: m.identitiesByNode,
    problems: m.problems,
    policyBindings: m.policyBindings,
    serviceBindings: m.serviceBindings,
  };
}

describe('MeshModelBuilder: incremental updates equal full builds', () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`random pod, service, namespace and waypoint changes (seed ${seed})`, () => {
      const rnd = seededRandom(seed);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
      const objects = new Map<string, KubeObject>();
      const put = (doc: unknown, changed: Set<string>) => {
        const o = decode(doc);
        const key = objectKey(o);
        objects.set(key, o);
        changed.add(key);
      };
      const setup = new Set<string>();
      for (const d of baseDocs()) put(d, setup);
      for (let i = 0; i < 12; i++) put(podDoc(pick, `p${i}`, i), setup);
      const builder = new MeshModelBuilder(OPTIONS);
      let prev = runToEnd(builder.updateSteps(objects, undefined)).model;
      let prevObjects = new Map(objects);
      let incremental = 0;
      let full = 0;
      for (let step = 0; step < 150; step++) {
        const changed = new Set<string>();
        if (objects.has('Gateway/demo/legacy') && rnd() < 0.3) {
          objects.delete('Gateway/demo/legacy');
          changed.add('Gateway/demo/legacy');
        }
        const batch = 1 + Math.floor(rnd() * 3);
        for (let b = 0; b < batch; b++) {
          const r = rnd();
          if (r < 0.6) {
            put(podDoc(pick, `p${Math.floor(rnd() * 16)}`, step * 7 + b), changed);
          } else if (r < 0.8) {
            const pods = [...objects.keys()].filter((k) => k.startsWith('Pod/'));
            if (pods.length === 0) continue;
            const key = pick(pods);
            objects.delete(key);
            changed.add(key);
          } else if (r < 0.85) {
            put(
              serviceDoc(pick(['web', 'api', 'new']), pick(NAMESPACES), pick(APPS), pick([80, 'http'])),
              changed,
            );
          } else if (r < 0.9) {
            const ns = pick(NAMESPACES);
            put(
              namespaceDoc(
                ns,
                pick<Record<string, string>>([
                  { 'istio.io/dataplane-mode': 'ambient' },
                  {},
                  { 'istio.io/use-waypoint': 'wp' },
                ]),
              ),
              changed,
            );
          } else if (r < 0.93) {
            // A legacy service-account waypoint makes services depend on pods while it exists.
            const key = 'Gateway/demo/legacy';
            if (objects.has(key)) {
              objects.delete(key);
              changed.add(key);
            } else put(gatewayDoc('legacy', 'demo', { 'istio.io/for-service-account': 'sa1' }), changed);
          } else {
            // The same object again: reported, not changed.
            const pods = [...objects.keys()].filter((k) => k.startsWith('Pod/'));
            if (pods.length) changed.add(pick(pods));
          }
        }
        const update: MeshModelUpdate = runToEnd(builder.updateSteps(objects, changed));
        const expected = new MeshModelBuilder(OPTIONS).build(new Map(objects));
        expect(outputs(update.model), `seed ${seed}, step ${step}`).toEqual(outputs(expected));
        // The previous model is left as it was: it may still be served or read.
        expect(outputs(prev)).toEqual(outputs(new MeshModelBuilder(OPTIONS).build(prevObjects)));
        if (update.changedAddresses) {
          incremental += 1;
          expect(update.previous).toBe(prev);
          // Every address that differs from the previous model is named as changed.
          const names = new Set([...prev.addresses.keys(), ...update.model.addresses.keys()]);
          for (const name of names) {
            if (update.changedAddresses.has(name)) continue;
            expect(update.model.addresses.get(name), name).toBe(prev.addresses.get(name));
          }
          expect(update.model.authorizations).toBe(prev.authorizations);
        } else full += 1;
        prev = update.model;
        prevObjects = new Map(objects);
      }
      console.log(`seed ${seed}: ${incremental} incremental updates, ${full} full builds`);
      expect(incremental).toBeGreaterThan(50);
      expect(full).toBeGreaterThan(5);
    });
  }

  it('keeps a node identity while another running pod on the node has it', () => {
    const docs = [
      namespaceDoc('demo', {}),
      ...['x', 'y'].map((name) => ({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace: 'demo', labels: {} },
        spec: { nodeName: 'node-a', serviceAccountName: 'shared' },
        status: { phase: 'Running', podIPs: [{ ip: name === 'x' ? '10.0.0.1' : '10.0.0.2' }] },
      })),
    ];
    const objects = new Map(docs.map((d) => decode(d)).map((o) => [objectKey(o), o] as const));
    const builder = new MeshModelBuilder(OPTIONS);
    runToEnd(builder.updateSteps(objects));
    objects.delete('Pod/demo/x');
    const one = runToEnd(builder.updateSteps(objects, new Set(['Pod/demo/x'])));
    expect(one.changedAddresses).toEqual(new Set(['Kubernetes//Pod/demo/x']));
    expect(one.model.identitiesByNode.get('node-a')).toEqual(new Set(['demo/shared']));
    objects.delete('Pod/demo/y');
    const none = runToEnd(builder.updateSteps(objects, new Set(['Pod/demo/y'])));
    expect(none.changedAddresses).toBeDefined();
    expect(none.model.identitiesByNode.has('node-a')).toBe(false);
    expect(none.model.addresses.size).toBe(0);
  });

  it('builds in full after a reset, and after a build that did not finish', () => {
    const objects = new Map(
      [namespaceDoc('demo', {}), serviceDoc('web', 'demo', 'a', 80)].map((d) => {
        const o = decode(d);
        return [objectKey(o), o] as const;
      }),
    );
    const builder = new MeshModelBuilder(OPTIONS);
    runToEnd(builder.updateSteps(objects));
    builder.reset();
    expect(runToEnd(builder.updateSteps(objects, new Set(['Pod/demo/x']))).changedAddresses).toBeUndefined();
    // A full build abandoned after its first step leaves nothing to update from.
    const steps = builder.updateSteps(objects, new Set(['Service/demo/web']));
    steps.next();
    expect(runToEnd(builder.updateSteps(objects, new Set(['Pod/demo/x']))).changedAddresses).toBeUndefined();
  });
});

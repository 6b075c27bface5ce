/**
 * The charts installed by the real Helm binary into a real Kubernetes 1.20 API server (etcd and
 * kube-apiserver on loopback, from @ambient/lab): the API server accepts every object each chart
 * renders for it, one chart at a time and all four in the ambient chart; an upgrade changes what a
 * value says and keeps the CA; an uninstall removes the release and keeps what is marked keep (the
 * CRDs, the CA Secret). No kubelet runs: nothing is waited for (`helm install` without --wait).
 */
import path from 'node:path';
import { KubeApiServer, kubeBinaries } from '@ambient/lab';
import { LocalCa } from '@ambient/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubectlOf } from '../kube/kubectl.js';
import { CHARTS_DIR, helm, helmBinary, type KubeDoc, parseManifests, REPO_ROOT } from './helm.js';

const NS = 'istio-system';

let api: KubeApiServer;

const { kubectl, kubectlStdin } = kubectlOf(() => api.kubeconfig);
const kubectlJson = async <T>(...args: string[]) => JSON.parse(await kubectl(...args, '-o', 'json')) as T;

/** helm against the test API server; fails the test with Helm's message when it fails. */
async function helmOk(...args: string[]): Promise<string> {
  const r = await helm([...args, '--kubeconfig', api.kubeconfig]);
  if (r.code !== 0) throw new Error(`helm ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/**
 * Every object of a release's manifest as the API server holds it now, by `Kind/name`: its
 * apiVersion, or '' when it is gone. One kubectl call, each object asked for in exactly the version
 * rendered (kind.version.group; core kinds by kind alone); every namespaced object is in NS.
 */
async function served(release: string): Promise<Map<string, string>> {
  const docs = parseManifests(await helmOk('get', 'manifest', release, '-n', NS));
  const refs = docs.map(
    (d) =>
      `${d.apiVersion.includes('/') ? `${d.kind.toLowerCase()}.${d.apiVersion.split('/').reverse().join('.')}` : d.kind.toLowerCase()}/${d.metadata.name}`,
  );
  const list = await kubectlJson<{ items: KubeDoc[] }>('get', '-n', NS, '--ignore-not-found', ...refs);
  const got = new Map(list.items.map((o) => [`${o.kind}/${o.metadata.name}`, o.apiVersion]));
  return new Map(
    docs.map((d) => [`${d.kind}/${d.metadata.name}`, got.get(`${d.kind}/${d.metadata.name}`) ?? '']),
  );
}

const caRoot = async () => {
  const s = await kubectlJson<{ data: Record<string, string> }>('get', 'secret', 'istio-ca-secret', '-n', NS);
  return Object.fromEntries(Object.entries(s.data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
};

describe('helm install into a real Kubernetes 1.20 API server', () => {
  beforeAll(async () => {
    const t0 = Date.now();
    const [bin] = await Promise.all([kubeBinaries(REPO_ROOT), helmBinary()]);
    api = await KubeApiServer.start({ binDir: bin });
    console.log(`kube-apiserver and etcd ready in ${Date.now() - t0} ms`);
  }, 600_000);

  afterAll(async () => {
    await api?.stop();
  }, 60_000);

  it('installs base, controlplane, ztunnel and cni one by one; the API server holds every object in the version rendered for 1.20', async () => {
    const t0 = Date.now();
    await helmOk(
      'install',
      'base',
      path.join(CHARTS_DIR, 'base'),
      '-n',
      NS,
      '--create-namespace',
      '--set',
      'gatewayAPI.installCRDs=true',
    );
    // The three after base are independent of each other.
    await Promise.all([
      helmOk('install', 'controlplane', path.join(CHARTS_DIR, 'controlplane'), '-n', NS),
      helmOk('install', 'ztunnel', path.join(CHARTS_DIR, 'ztunnel'), '-n', NS),
      helmOk('install', 'cni', path.join(CHARTS_DIR, 'cni'), '-n', NS, '--set', 'cniBinDir=/var/lib/k/bin'),
    ]);
    console.log(`four charts installed one by one in ${Date.now() - t0} ms`);
    const all = new Map<string, string>();
    for (const r of ['base', 'controlplane', 'ztunnel', 'cni'])
      for (const [k, v] of await served(r)) all.set(k, v);
    expect([...all.entries()].filter(([, v]) => v === '')).toEqual([]);
    expect(all.get('PodDisruptionBudget/controlplane')).toBe('policy/v1beta1');
    expect(all.size).toBe(7 + 9 + 2 + 4);
    const ds = await kubectlJson<{
      spec: { updateStrategy: object; template: { spec: { volumes: object[] } } };
    }>('get', 'daemonset', 'ztunnel', '-n', NS);
    expect(ds.spec.updateStrategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } });
    expect(ds.spec.template.spec.volumes).toContainEqual({
      name: 'istio-token',
      projected: {
        defaultMode: 420,
        sources: [
          { serviceAccountToken: { audience: 'istio-ca', expirationSeconds: 43200, path: 'istio-token' } },
        ],
      },
    });
    for (const r of ['cni', 'ztunnel', 'controlplane', 'base']) await helmOk('uninstall', r, '-n', NS);
    // What is kept after an uninstall belongs to its old release; the ambient chart below is
    // another release, which Helm would refuse to adopt them into.
    await kubectl('delete', 'crd', '-l', 'app.kubernetes.io/part-of=ambient-mesh');
    await kubectl('delete', 'secret', 'istio-ca-secret', '-n', NS);
  }, 120_000);

  it('installs the ambient chart in one command: every object accepted, the CA usable by the control plane', async () => {
    const t0 = Date.now();
    await helmOk(
      'install',
      'ambient',
      path.join(CHARTS_DIR, 'ambient'),
      '-n',
      NS,
      '--create-namespace',
      '--set',
      'base.gatewayAPI.installCRDs=true',
      '--set',
      'cni.cniBinDir=/var/lib/k/bin',
      '--set',
      'cni.cniConfDir=/var/lib/k/net.d',
    );
    console.log(`ambient chart installed in ${Date.now() - t0} ms`);
    const objects = await served('ambient');
    expect([...objects.entries()].filter(([, v]) => v === '')).toEqual([]);
    expect([...objects.keys()].sort()).toEqual([
      'ClusterRole/ambient-cni',
      'ClusterRole/ambient-controlplane',
      'ClusterRoleBinding/ambient-cni',
      'ClusterRoleBinding/ambient-controlplane',
      'CustomResourceDefinition/authorizationpolicies.security.istio.io',
      'CustomResourceDefinition/destinationrules.networking.istio.io',
      'CustomResourceDefinition/gatewayclasses.gateway.networking.k8s.io',
      'CustomResourceDefinition/gateways.gateway.networking.k8s.io',
      'CustomResourceDefinition/httproutes.gateway.networking.k8s.io',
      'CustomResourceDefinition/peerauthentications.security.istio.io',
      'CustomResourceDefinition/virtualservices.networking.istio.io',
      'DaemonSet/ambient-cni-node',
      'DaemonSet/ztunnel',
      'Deployment/controlplane',
      'PodDisruptionBudget/controlplane',
      'Role/ambient-controlplane',
      'RoleBinding/ambient-controlplane',
      'Secret/istio-ca-secret',
      'Service/istiod',
      'ServiceAccount/ambient-cni',
      'ServiceAccount/controlplane',
      'ServiceAccount/ztunnel',
    ]);
    // The CRDs serve: a v1beta1 AuthorizationPolicy is read back as v1.
    await kubectl('wait', '--for=condition=Established', 'crd', '--all', '--timeout=30s');
    await kubectl('create', 'namespace', 'demo');
    const ap = {
      apiVersion: 'security.istio.io/v1beta1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'p', namespace: 'demo' },
      spec: { action: 'DENY' },
    };
    await kubectlStdin(JSON.stringify(ap), 'apply', '-f', '-');
    expect(
      await kubectl(
        'get',
        'authorizationpolicies.v1.security.istio.io',
        'p',
        '-n',
        'demo',
        '-o',
        'jsonpath={.spec.action}',
      ),
    ).toBe('DENY');
    const ca = await caRoot();
    await expect(
      LocalCa.fromPem(ca['ca-cert.pem'] ?? '', ca['ca-key.pem'] ?? '', { trustDomain: 'cluster.local' }),
    ).resolves.toBeDefined();
    const cni = await kubectlJson<{
      spec: { template: { spec: { volumes: { name: string; hostPath?: { path: string } }[] } } };
    }>('get', 'daemonset', 'ambient-cni-node', '-n', NS);
    expect(cni.spec.template.spec.volumes.find((v) => v.name === 'cni-net-dir')?.hostPath?.path).toBe(
      '/var/lib/k/net.d',
    );
  }, 120_000);

  it("each workload's pod passes the API server's pod admission (server-side dry run): its priority class resolves", async () => {
    // No controller makes the pods here, so each pod template is sent as a Pod, dry run. The one
    // change: no legacy token secret exists without the token controller, which the
    // ServiceAccount admission plugin would otherwise require for the automounted API token.
    const priorities: Record<string, number> = {};
    for (const [kind, name] of [
      ['deployment', 'controlplane'],
      ['daemonset', 'ztunnel'],
      ['daemonset', 'ambient-cni-node'],
    ] as const) {
      const w = await kubectlJson<{ spec: { template: { metadata: object; spec: object } } }>(
        'get',
        kind,
        name,
        '-n',
        NS,
      );
      const pod = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { ...w.spec.template.metadata, name: `${name}-dry-run`, namespace: NS },
        spec: { ...w.spec.template.spec, nodeName: 'node-a', automountServiceAccountToken: false },
      };
      const admitted = JSON.parse(
        await kubectlStdin(JSON.stringify(pod), 'create', '--dry-run=server', '-o', 'json', '-f', '-'),
      ) as { spec: { priority?: number; priorityClassName?: string } };
      priorities[name] = admitted.spec.priority ?? -1;
    }
    console.log(`admitted pod priorities: ${JSON.stringify(priorities)}`);
    // system-node-critical is 2000001000; the control plane has no priority class (0).
    expect(priorities).toEqual({ controlplane: 0, ztunnel: 2000001000, 'ambient-cni-node': 2000001000 });
  }, 60_000);

  it('helm upgrade with changed values changes the objects and keeps the CA', async () => {
    const before = await caRoot();
    await helmOk(
      'upgrade',
      'ambient',
      path.join(CHARTS_DIR, 'ambient'),
      '-n',
      NS,
      '--reuse-values',
      '--set',
      'controlplane.replicaCount=3',
      '--set',
      'global.logLevel=debug',
      '--set',
      'global.tag=0.2.0',
    );
    const dep = await kubectlJson<{
      spec: {
        replicas: number;
        template: { spec: { containers: { image: string; env: { name: string; value?: string }[] }[] } };
      };
    }>('get', 'deployment', 'controlplane', '-n', NS);
    const c = dep.spec.template.spec.containers[0];
    const env = Object.fromEntries((c?.env ?? []).map((e) => [e.name, e.value]));
    expect([dep.spec.replicas, c?.image, env.CP_LOG_LEVEL, env.CP_WAYPOINT_IMAGE]).toEqual([
      3,
      'ambient-mesh/controlplane:0.2.0',
      'debug',
      'ambient-mesh/waypoint:0.2.0',
    ]);
    expect(
      await kubectl(
        'get',
        'daemonset',
        'ztunnel',
        '-n',
        NS,
        '-o',
        'jsonpath={.spec.template.spec.containers[0].image}',
      ),
    ).toBe('ambient-mesh/ztunnel:0.2.0');
    // lookup found the Secret: the same root, not a new one per upgrade.
    expect(await caRoot()).toEqual(before);
    const history = parseManifests(await helmOk('history', 'ambient', '-n', NS, '-o', 'yaml')) as unknown as {
      revision: number;
      status: string;
    }[][];
    expect(history[0]?.map((h) => `${h.revision}:${h.status}`)).toEqual(['1:superseded', '2:deployed']);
    // A wrong value is refused before anything changes.
    const bad = await helm([
      'upgrade',
      'ambient',
      path.join(CHARTS_DIR, 'ambient'),
      '-n',
      NS,
      '--reuse-values',
      '--set',
      'controlplane.replicaCount=-1',
      '--kubeconfig',
      api.kubeconfig,
    ]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/controlplane:\s*- replicaCount: Must be greater than or equal to 1/);
    expect(
      await kubectl('get', 'deployment', 'controlplane', '-n', NS, '-o', 'jsonpath={.spec.replicas}'),
    ).toBe('3');
  }, 120_000);

  it('helm uninstall removes the workloads and RBAC, keeps the CRDs and the CA; a reinstall signs with the same root', async () => {
    const root = await caRoot();
    await helmOk('uninstall', 'ambient', '-n', NS);
    const left = async (kind: string, ...args: string[]) =>
      (await kubectl('get', kind, ...args, '-o', 'name', '-l', 'app.kubernetes.io/part-of=ambient-mesh'))
        .trim()
        .split('\n')
        .filter(Boolean)
        .sort();
    expect(
      await left(
        'deployments,daemonsets,services,serviceaccounts,poddisruptionbudgets.v1beta1.policy,roles,rolebindings',
        '-n',
        NS,
      ),
    ).toEqual([]);
    expect(await left('clusterroles,clusterrolebindings')).toEqual([]);
    expect(await left('customresourcedefinitions')).toHaveLength(7);
    expect(await left('secrets', '-n', NS)).toEqual(['secret/istio-ca-secret']);
    // The AuthorizationPolicy outlived the release with its CRD.
    expect(await kubectl('get', 'authorizationpolicies', '-n', 'demo', '-o', 'name')).toBe(
      'authorizationpolicy.security.istio.io/p\n',
    );
    expect((await helmOk('list', '-n', NS, '-q')).trim()).toBe('');
    await helmOk(
      'install',
      'ambient',
      path.join(CHARTS_DIR, 'ambient'),
      '-n',
      NS,
      '--set',
      'base.gatewayAPI.installCRDs=true',
    );
    expect(await caRoot()).toEqual(root);
  }, 120_000);
});

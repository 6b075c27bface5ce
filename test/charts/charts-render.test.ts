/**
 * The Helm charts rendered by the real Helm binary: `helm lint` of each, the objects `helm template`
 * renders (kinds, names, ports, env, capabilities, probes, token projection), what depends on the
 * cluster's version (1.20 against 1.29), and values refused by each chart's values.schema.json with
 * the path of the wrong value.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseControlPlaneConfig } from '@ambient/controlplane';
import { createCsr, LocalCa, SpiffeId } from '@ambient/shared';
import { parseZtunnelConfig } from '@ambient/ztunnel';
import { beforeAll, describe, expect, it } from 'vitest';
import { CHART_NAMES, CHARTS_DIR, helm, helmBinary, helmTemplate, type KubeDoc } from './helm.js';

const run = promisify(execFile);

interface Container {
  name: string;
  image: string;
  imagePullPolicy: string;
  env: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  ports: { containerPort: number; name: string }[];
  readinessProbe?: { httpGet: { path: string; port: number } };
  livenessProbe?: { httpGet: { path: string; port: number } };
  securityContext: { capabilities: { add?: string[]; drop: string[] }; runAsUser?: number };
  volumeMounts: { name: string; mountPath: string; mountPropagation?: string; readOnly?: boolean }[];
}
interface PodSpec {
  serviceAccountName: string;
  priorityClassName?: string;
  hostNetwork?: boolean;
  tolerations?: object[];
  containers: Container[];
  volumes: Record<string, unknown>[];
}
interface Workload extends KubeDoc {
  spec: {
    replicas?: number;
    updateStrategy?: { rollingUpdate: Record<string, unknown> };
    template: {
      metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
      spec: PodSpec;
    };
  };
}

const find = (docs: KubeDoc[], kind: string, name: string): KubeDoc => {
  const d = docs.find((o) => o.kind === kind && o.metadata.name === name);
  if (!d)
    throw new Error(`no ${kind} ${name} in ${docs.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return d;
};
const workload = (docs: KubeDoc[], kind: string, name: string) => find(docs, kind, name) as Workload;
const container = (w: Workload) => w.spec.template.spec.containers[0] as Container;
/** A container's env as NAME -> value, or `field:<path>` for a downward API field. */
const envOf = (c: Container) =>
  Object.fromEntries(
    c.env.map((e) => [
      e.name,
      e.value ?? (e.valueFrom?.fieldRef ? `field:${e.valueFrom.fieldRef.fieldPath}` : '?'),
    ]),
  );
const volume = (w: Workload, name: string) => {
  const v = w.spec.template.spec.volumes.find((x) => x.name === name);
  if (!v) throw new Error(`no volume ${name}`);
  return v;
};
/** The env a pod's process sees: downward API fields filled in as the kubelet would, plus what it adds. */
const podEnv = (c: Container, extra: Record<string, string>) => ({
  ...Object.fromEntries(
    Object.entries(envOf(c)).map(([k, v]) => [
      k,
      {
        'field:metadata.name': 'pod-0',
        'field:metadata.namespace': 'istio-system',
        'field:spec.nodeName': 'node-a',
        'field:status.podIP': '10.244.0.5',
      }[v] ?? v,
    ]),
  ),
  ...extra,
});
const kinds = (docs: KubeDoc[]) => docs.map((d) => `${d.kind}/${d.metadata.name}`).sort();

beforeAll(async () => {
  console.log(`helm: ${(await helm(['version', '--short'])).stdout.trim()} at ${await helmBinary()}`);
}, 600_000);

describe('helm lint', () => {
  it('passes for every chart, strict, on Kubernetes 1.20 and on the newest Helm knows', async () => {
    for (const chart of CHART_NAMES) {
      for (const version of ['1.20.2', '']) {
        const r = await helm([
          'lint',
          '--strict',
          path.join(CHARTS_DIR, chart),
          ...(version ? ['--kube-version', version] : []),
        ]);
        expect({ chart, version, code: r.code, out: r.code ? r.stdout + r.stderr : '' }).toEqual({
          chart,
          version,
          code: 0,
          out: '',
        });
      }
    }
  }, 120_000);
});

describe('base', () => {
  it("renders the Istio CRDs the control plane reads, each kept on uninstall, served in Istio's versions", async () => {
    const docs = await helmTemplate('base');
    expect(kinds(docs)).toEqual([
      'CustomResourceDefinition/authorizationpolicies.security.istio.io',
      'CustomResourceDefinition/destinationrules.networking.istio.io',
      'CustomResourceDefinition/peerauthentications.security.istio.io',
      'CustomResourceDefinition/virtualservices.networking.istio.io',
    ]);
    for (const d of docs) {
      expect(d.metadata.annotations?.['helm.sh/resource-policy']).toBe('keep');
      expect(d.metadata.labels?.['app.kubernetes.io/part-of']).toBe('ambient-mesh');
      const versions = (d.spec as { versions: { name: string; served: boolean; storage: boolean }[] })
        .versions;
      expect(versions.filter((v) => v.storage).map((v) => v.name)).toEqual(['v1']);
      expect(versions.every((v) => v.served)).toBe(true);
    }
    const vs = find(docs, 'CustomResourceDefinition', 'virtualservices.networking.istio.io');
    expect((vs.spec as { versions: { name: string }[] }).versions.map((v) => v.name).sort()).toEqual([
      'v1',
      'v1alpha3',
      'v1beta1',
    ]);
  });

  it('adds the Gateway API CRDs only when asked (gatewayAPI.installCRDs)', async () => {
    const docs = await helmTemplate('base', ['--set', 'gatewayAPI.installCRDs=true']);
    expect(kinds(docs).filter((k) => k.includes('gateway.networking.k8s.io'))).toEqual([
      'CustomResourceDefinition/gatewayclasses.gateway.networking.k8s.io',
      'CustomResourceDefinition/gateways.gateway.networking.k8s.io',
      'CustomResourceDefinition/httproutes.gateway.networking.k8s.io',
    ]);
  });
});

describe('controlplane', () => {
  let docs: KubeDoc[];
  beforeAll(async () => {
    docs = await helmTemplate('controlplane', ['--kube-version', '1.20.2']);
  });

  it('renders the Deployment, Service istiod, its ServiceAccount, RBAC, CA Secret and PodDisruptionBudget', () => {
    expect(kinds(docs)).toEqual([
      'ClusterRole/ambient-controlplane',
      'ClusterRoleBinding/ambient-controlplane',
      'Deployment/controlplane',
      'PodDisruptionBudget/controlplane',
      'Role/ambient-controlplane',
      'RoleBinding/ambient-controlplane',
      'Secret/istio-ca-secret',
      'Service/istiod',
      'ServiceAccount/controlplane',
    ]);
    expect(docs.filter((d) => d.metadata.namespace !== undefined).map((d) => d.metadata.namespace)).toEqual(
      Array(7).fill('istio-system'),
    );
    const svc = find(docs, 'Service', 'istiod') as KubeDoc & {
      spec: { ports: { port: number; name: string }[]; selector: Record<string, string> };
    };
    expect(svc.spec.ports.map((p) => `${p.name}:${p.port}`)).toEqual([
      'grpc-xds:15012',
      'http-monitoring:15014',
    ]);
    const dep = workload(docs, 'Deployment', 'controlplane');
    expect(dep.spec.template.metadata.labels).toMatchObject(svc.spec.selector);
  });

  it('runs 2 replicas of {hub}/controlplane:{tag} with the in-cluster settings', () => {
    const dep = workload(docs, 'Deployment', 'controlplane');
    expect(dep.spec.replicas).toBe(2);
    expect(dep.spec.template.spec.serviceAccountName).toBe('controlplane');
    const c = container(dep);
    expect([c.image, c.imagePullPolicy]).toEqual(['ambient-mesh/controlplane:0.1.0', 'IfNotPresent']);
    expect(envOf(c)).toEqual({
      CP_CONFIG_SOURCE: 'kubernetes',
      CP_AUTHENTICATION: 'tokenreview',
      CP_WAYPOINT_CONTROLLER: 'true',
      CP_POD_NAME: 'field:metadata.name',
      CP_POD_NAMESPACE: 'field:metadata.namespace',
      CP_CA_DIR: '/etc/ambient-mesh/ca',
      CP_TRUST_DOMAIN: 'cluster.local',
      CP_CLUSTER_ID: 'Kubernetes',
      CP_ROOT_NAMESPACE: 'istio-system',
      CP_SERVER_NAMES: 'istiod.istio-system.svc,istiod.istio-system.svc.cluster.local,istiod',
      CP_ZTUNNEL_SERVICE_ACCOUNT: 'istio-system/ztunnel',
      CP_TOKEN_AUDIENCES: 'istio-ca',
      CP_WORKLOAD_CERT_TTL: '24h',
      CP_WAYPOINT_IMAGE: 'ambient-mesh/waypoint:0.1.0',
      CP_WAYPOINT_XDS_ADDRESS: 'istiod.istio-system.svc:15012',
      CP_WAYPOINT_ROOT_CERT_CONFIGMAP: 'istio-ca-root-cert',
      CP_LOG_LEVEL: 'info',
    });
    expect(c.ports.map((p) => `${p.name}:${p.containerPort}`)).toEqual([
      'grpc-xds:15012',
      'http-monitoring:15014',
    ]);
    // Paths the control plane's monitor serves (packages/controlplane/src/app/controlplane-app.ts).
    expect(c.readinessProbe?.httpGet).toEqual({ path: '/ready', port: 15014 });
    expect(c.livenessProbe?.httpGet).toEqual({ path: '/metrics', port: 15014 });
    expect(c.securityContext.capabilities).toEqual({ drop: ['ALL'] });
  });

  it("mounts istio-ca-secret in CP_CA_DIR's layout, and the generated root signs workload certificates", async () => {
    const dep = workload(docs, 'Deployment', 'controlplane');
    expect(volume(dep, 'ca')).toEqual({
      name: 'ca',
      secret: {
        secretName: 'istio-ca-secret',
        defaultMode: 0o440,
        items: [
          { key: 'ca-cert.pem', path: 'root-cert.pem' },
          { key: 'ca-key.pem', path: 'root-key.pem' },
        ],
      },
    });
    expect(container(dep).volumeMounts).toContainEqual({
      name: 'ca',
      mountPath: '/etc/ambient-mesh/ca',
      readOnly: true,
    });
    const secret = find(docs, 'Secret', 'istio-ca-secret') as KubeDoc & { data: Record<string, string> };
    expect(secret.metadata.annotations?.['helm.sh/resource-policy']).toBe('keep');
    const pem = (k: string) => Buffer.from(secret.data[k] ?? '', 'base64').toString('utf8');
    // The control plane's own loader (the one CP_CA_DIR goes through) accepts the chart's key type.
    const ca = await LocalCa.fromPem(pem('ca-cert.pem'), pem('ca-key.pem'), { trustDomain: 'cluster.local' });
    const id = SpiffeId.of('cluster.local', 'demo', 'sleep');
    const chain = await ca.sign((await createCsr(id)).csrPem);
    expect(chain).toHaveLength(2);
    const root = ca.rootCertificate();
    expect([
      root.ca,
      root.publicKey.asymmetricKeyType,
      root.publicKey.asymmetricKeyDetails?.namedCurve,
    ]).toEqual([true, 'ec', 'prime256v1']);
    console.log(`generated root: ${root.subject.trim()}, valid to ${root.validTo}`);
  });

  it("the Deployment's environment is one the control plane's own settings parser accepts, as the chart means it", () => {
    const env = podEnv(container(workload(docs, 'Deployment', 'controlplane')), {
      KUBERNETES_SERVICE_HOST: '10.96.0.1',
      HOSTNAME: 'pod-0',
    });
    const r = parseControlPlaneConfig(env);
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    expect([r.value.configSource, r.value.auth.mode, r.value.caDir, r.value.serverNames[0]]).toEqual([
      'kubernetes',
      'tokenreview',
      '/etc/ambient-mesh/ca',
      'istiod.istio-system.svc',
    ]);
    expect(r.value.waypointController?.identity).toBe('pod-0');
    expect(r.value.waypointController?.image).toBe('ambient-mesh/waypoint:0.1.0');
  });

  it('chooses policy/v1beta1 for the PodDisruptionBudget on 1.20, policy/v1 on 1.29, none with one replica', async () => {
    expect(find(docs, 'PodDisruptionBudget', 'controlplane').apiVersion).toBe('policy/v1beta1');
    const newer = await helmTemplate('controlplane', ['--kube-version', '1.29.0']);
    expect(find(newer, 'PodDisruptionBudget', 'controlplane').apiVersion).toBe('policy/v1');
    const one = await helmTemplate('controlplane', ['--set', 'replicaCount=1']);
    expect(one.some((d) => d.kind === 'PodDisruptionBudget')).toBe(false);
  });

  it("an RSA root (Helm's genCA, or a user's own) is refused by the control plane's CA loader: hence genCAWithKey with a P-256 key", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rsa-ca-'));
    try {
      await run('openssl', [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-subj',
        '/CN=rsa root',
        '-days',
        '1',
        '-keyout',
        path.join(dir, 'k.pem'),
        '-out',
        path.join(dir, 'c.pem'),
      ]);
      await expect(
        LocalCa.fromPem(
          readFileSync(path.join(dir, 'c.pem'), 'utf8'),
          readFileSync(path.join(dir, 'k.pem'), 'utf8'),
          {
            trustDomain: 'cluster.local',
          },
        ),
      ).rejects.toMatchObject({ code: 'MESH_ERR_CA_FILES' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('ca.generate=false renders no Secret: the cluster must hold istio-ca-secret', async () => {
    const own = await helmTemplate('controlplane', ['--set', 'ca.generate=false']);
    expect(own.some((d) => d.kind === 'Secret')).toBe(false);
    expect(
      (volume(workload(own, 'Deployment', 'controlplane'), 'ca').secret as { secretName: string }).secretName,
    ).toBe('istio-ca-secret');
  });
});

describe('ztunnel', () => {
  let docs: KubeDoc[];
  beforeAll(async () => {
    docs = await helmTemplate('ztunnel', ['--kube-version', '1.20.2']);
  });

  it('renders the DaemonSet ztunnel and its ServiceAccount ztunnel', () => {
    expect(kinds(docs)).toEqual(['DaemonSet/ztunnel', 'ServiceAccount/ztunnel']);
  });

  it("runs as upstream's: NET_ADMIN, SYS_ADMIN, NET_RAW, system-node-critical, every taint tolerated, ready on 15021", () => {
    const ds = workload(docs, 'DaemonSet', 'ztunnel');
    const pod = ds.spec.template.spec;
    const c = container(ds);
    expect(c.image).toBe('ambient-mesh/ztunnel:0.1.0');
    expect(c.securityContext.capabilities).toEqual({
      drop: ['ALL'],
      add: ['NET_ADMIN', 'SYS_ADMIN', 'NET_RAW'],
    });
    expect(c.securityContext.runAsUser).toBe(0);
    expect(pod.priorityClassName).toBe('system-node-critical');
    expect(pod.serviceAccountName).toBe('ztunnel');
    expect(pod.tolerations).toEqual([
      { effect: 'NoSchedule', operator: 'Exists' },
      { key: 'CriticalAddonsOnly', operator: 'Exists' },
      { effect: 'NoExecute', operator: 'Exists' },
    ]);
    expect(c.readinessProbe?.httpGet).toEqual({ path: '/healthz/ready', port: 15021 });
    expect(ds.spec.template.metadata.annotations).toMatchObject({
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': '15020',
    });
    expect(ds.spec.template.metadata.labels['istio.io/dataplane-mode']).toBe('none');
  });

  it('reaches istiod with a projected istio-ca token and the istio-ca-root-cert root, and takes pods from ZDS', () => {
    const ds = workload(docs, 'DaemonSet', 'ztunnel');
    const c = container(ds);
    expect(envOf(c)).toEqual({
      ZT_XDS_ADDRESS: 'istiod.istio-system.svc:15012',
      ZT_CONTROL_PLANE_NAME: 'istiod.istio-system.svc',
      ZT_ROOT_CERT: '/var/run/secrets/istio/root-cert.pem',
      ZT_TOKEN_FILE: '/var/run/secrets/tokens/istio-token',
      ZT_POD_SOURCE: 'zds',
      ZT_ZDS_SOCKET: '/var/run/ztunnel/ztunnel.sock',
      ZT_TRUST_DOMAIN: 'cluster.local',
      ZT_CLUSTER_ID: 'Kubernetes',
      ZT_LOG_LEVEL: 'info',
      ZT_NODE_NAME: 'field:spec.nodeName',
      ZT_POD_NAME: 'field:metadata.name',
      ZT_POD_NAMESPACE: 'field:metadata.namespace',
      ZT_INSTANCE_IP: 'field:status.podIP',
    });
    expect(volume(ds, 'istio-token')).toEqual({
      name: 'istio-token',
      projected: {
        sources: [
          { serviceAccountToken: { path: 'istio-token', expirationSeconds: 43200, audience: 'istio-ca' } },
        ],
      },
    });
    expect(volume(ds, 'istiod-ca-cert')).toEqual({
      name: 'istiod-ca-cert',
      configMap: { name: 'istio-ca-root-cert' },
    });
    expect(volume(ds, 'cni-ztunnel-sock-dir')).toEqual({
      name: 'cni-ztunnel-sock-dir',
      hostPath: { path: '/var/run/ztunnel', type: 'DirectoryOrCreate' },
    });
    const mounts = Object.fromEntries(c.volumeMounts.map((m) => [m.name, m.mountPath]));
    expect(mounts).toMatchObject({
      'istiod-ca-cert': '/var/run/secrets/istio',
      'istio-token': '/var/run/secrets/tokens',
      'cni-ztunnel-sock-dir': '/var/run/ztunnel',
    });
  });

  it("the DaemonSet's environment is one the ztunnel's own settings parser accepts", () => {
    const r = parseZtunnelConfig(podEnv(container(workload(docs, 'DaemonSet', 'ztunnel')), {}));
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    expect(r.value).toMatchObject({
      nodeName: 'node-a',
      xdsAddress: 'istiod.istio-system.svc:15012',
      rootCertFile: '/var/run/secrets/istio/root-cert.pem',
      tokenFile: '/var/run/secrets/tokens/istio-token',
      controlPlaneName: 'istiod.istio-system.svc',
      podName: 'pod-0',
      podNamespace: 'istio-system',
      instanceIp: '10.244.0.5',
      trustDomain: 'cluster.local',
      readinessPort: 15021,
      metricsPort: 15020,
    });
  });

  it('surges one pod per node on a rolling update from 1.22, one unavailable at a time before', async () => {
    expect(workload(docs, 'DaemonSet', 'ztunnel').spec.updateStrategy?.rollingUpdate).toEqual({
      maxUnavailable: 1,
    });
    const newer = await helmTemplate('ztunnel', ['--kube-version', '1.29.0']);
    expect(workload(newer, 'DaemonSet', 'ztunnel').spec.updateStrategy?.rollingUpdate).toEqual({
      maxSurge: 1,
      maxUnavailable: 0,
    });
  });
});

describe('cni', () => {
  let docs: KubeDoc[];
  beforeAll(async () => {
    docs = await helmTemplate('cni', ['--set', 'cniBinDir=/tmp/k/bin', '--set', 'cniConfDir=/tmp/k/net.d']);
  });

  it('renders the DaemonSet ambient-cni-node, its ServiceAccount and a ClusterRole reading pods and namespaces only', () => {
    expect(kinds(docs)).toEqual([
      'ClusterRole/ambient-cni',
      'ClusterRoleBinding/ambient-cni',
      'DaemonSet/ambient-cni-node',
      'ServiceAccount/ambient-cni',
    ]);
    expect(find(docs, 'ClusterRole', 'ambient-cni').rules).toEqual([
      { apiGroups: [''], resources: ['pods', 'namespaces'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['apps'], resources: ['daemonsets'], resourceNames: ['ambient-cni-node'], verbs: ['get'] },
    ]);
  });

  it("mounts the node's CNI directories from values at the agent's fixed paths, /proc, netns, and both sockets' directories", () => {
    const ds = workload(docs, 'DaemonSet', 'ambient-cni-node');
    const c = container(ds);
    const hostPathOf = (name: string) => (volume(ds, name).hostPath as { path: string }).path;
    const mounts = Object.fromEntries(c.volumeMounts.map((m) => [m.mountPath, hostPathOf(m.name)]));
    expect(mounts).toEqual({
      '/host/opt/cni/bin': '/tmp/k/bin',
      '/host/etc/cni/net.d': '/tmp/k/net.d',
      '/host/proc': '/proc',
      '/host/var/run/netns': '/var/run/netns',
      '/var/run/ambient-cni': '/var/run/ambient-cni',
      '/var/run/ztunnel': '/var/run/ztunnel',
    });
    expect(c.volumeMounts.find((m) => m.mountPath === '/host/var/run/netns')?.mountPropagation).toBe(
      'HostToContainer',
    );
    expect(c.volumeMounts.find((m) => m.mountPath === '/host/proc')?.readOnly).toBe(true);
    expect(envOf(c)).toEqual({
      CNI_NODE_NAME: 'field:spec.nodeName',
      CNI_ZDS_SOCKET: '/var/run/ztunnel/ztunnel.sock',
      CNI_PLUGIN_EVENT_SOCKET: '/var/run/ambient-cni/pluginevent.sock',
      CNI_HOST_BIN_DIR: '/host/opt/cni/bin',
      CNI_HOST_NET_DIR: '/host/etc/cni/net.d',
      CNI_HOST_PROC: '/host/proc',
      CNI_HOST_MOUNTS: '/host',
      CNI_POD_NAMESPACE: 'field:metadata.namespace',
      CNI_DAEMONSET_NAME: 'ambient-cni-node',
      CNI_LOG_LEVEL: 'info',
      CNI_READY_PORT: '8000',
    });
  });

  it('mounts another netns directory at the same path under /host, where the agent opens the plugin-reported path', async () => {
    const other = await helmTemplate('cni', ['--set', 'cniNetnsDir=/run/k/containerd/state/netns']);
    const ds = workload(other, 'DaemonSet', 'ambient-cni-node');
    const m = container(ds).volumeMounts.find((v) => v.name === 'cni-netns-dir');
    expect(m?.mountPath).toBe('/host/run/k/containerd/state/netns');
    expect((volume(ds, 'cni-netns-dir').hostPath as { path: string }).path).toBe(
      '/run/k/containerd/state/netns',
    );
  });

  it("runs as upstream istio-cni's: host network, system-node-critical, its capabilities, ready on 8000 /readyz", () => {
    const ds = workload(docs, 'DaemonSet', 'ambient-cni-node');
    const pod = ds.spec.template.spec;
    const c = container(ds);
    expect(c.image).toBe('ambient-mesh/cni:0.1.0');
    expect([pod.hostNetwork, pod.priorityClassName, pod.serviceAccountName]).toEqual([
      true,
      'system-node-critical',
      'ambient-cni',
    ]);
    expect(c.securityContext.capabilities).toEqual({
      drop: ['ALL'],
      add: ['NET_ADMIN', 'NET_RAW', 'SYS_PTRACE', 'SYS_ADMIN', 'DAC_OVERRIDE'],
    });
    expect(c.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 8000 });
    expect(pod.tolerations).toHaveLength(3);
  });
});

describe('ambient (all four charts in one release)', () => {
  it('renders every chart, with global.hub/global.tag/global.logLevel in every image and component, and a per-chart image override', async () => {
    const docs = await helmTemplate('ambient', [
      '--set',
      'global.hub=registry.example/mesh',
      '--set',
      'global.tag=1.2.3',
      '--set',
      'global.logLevel=debug',
      '--set',
      'ztunnel.image=registry.example/custom/zt:dev',
      '--set',
      'cni.logLevel=warn',
    ]);
    const images = docs
      .filter((d) => d.kind === 'Deployment' || d.kind === 'DaemonSet')
      .map((d) => `${d.metadata.name}=${container(d as Workload).image}`)
      .sort();
    expect(images).toEqual([
      'ambient-cni-node=registry.example/mesh/cni:1.2.3',
      'controlplane=registry.example/mesh/controlplane:1.2.3',
      'ztunnel=registry.example/custom/zt:dev',
    ]);
    const cp = envOf(container(workload(docs, 'Deployment', 'controlplane')));
    expect([cp.CP_WAYPOINT_IMAGE, cp.CP_LOG_LEVEL]).toEqual([
      'registry.example/mesh/waypoint:1.2.3',
      'debug',
    ]);
    expect(envOf(container(workload(docs, 'DaemonSet', 'ztunnel'))).ZT_LOG_LEVEL).toBe('debug');
    expect(envOf(container(workload(docs, 'DaemonSet', 'ambient-cni-node'))).CNI_LOG_LEVEL).toBe('warn');
    expect(docs.filter((d) => d.kind === 'CustomResourceDefinition')).toHaveLength(4);
  });

  it('leaves a chart out with <chart>.enabled=false, and trust domain and cluster id reach every component', async () => {
    const docs = await helmTemplate('ambient', [
      '--set',
      'cni.enabled=false',
      '--set',
      'global.trustDomain=example.org',
      '--set',
      'global.clusterId=east',
    ]);
    expect(docs.some((d) => d.metadata.name.includes('cni'))).toBe(false);
    const cp = envOf(container(workload(docs, 'Deployment', 'controlplane')));
    const zt = envOf(container(workload(docs, 'DaemonSet', 'ztunnel')));
    expect([cp.CP_TRUST_DOMAIN, cp.CP_CLUSTER_ID, zt.ZT_TRUST_DOMAIN, zt.ZT_CLUSTER_ID]).toEqual([
      'example.org',
      'east',
      'example.org',
      'east',
    ]);
  });
});

describe('values.schema.json', () => {
  it('every chart has one, refusing unknown keys, and the global block is the same in all', () => {
    const schemas = CHART_NAMES.map(
      (c) =>
        JSON.parse(readFileSync(path.join(CHARTS_DIR, c, 'values.schema.json'), 'utf8')) as {
          additionalProperties: boolean;
          properties: { global: object };
        },
    );
    for (const s of schemas) {
      expect(s.additionalProperties).toBe(false);
      expect(s.properties.global).toEqual(schemas[0]?.properties.global);
    }
  });

  it('env refuses exactly the names each chart sets itself (a duplicate entry breaks an upgrade patch), and takes the rest as strings', async () => {
    for (const [chart, kind, name] of [
      ['controlplane', 'Deployment', 'controlplane'],
      ['ztunnel', 'DaemonSet', 'ztunnel'],
      ['cni', 'DaemonSet', 'ambient-cni-node'],
    ] as const) {
      const schema = JSON.parse(readFileSync(path.join(CHARTS_DIR, chart, 'values.schema.json'), 'utf8')) as {
        properties: { env: { propertyNames: { not: { enum: string[] } } } };
      };
      const rendered = await helmTemplate(chart, ['--set', 'env.EXTRA_SETTING=5000']);
      const env = envOf(container(workload(rendered, kind, name)));
      expect(env.EXTRA_SETTING).toBe('5000');
      delete env.EXTRA_SETTING;
      expect(schema.properties.env.propertyNames.not.enum).toEqual(Object.keys(env).sort());
    }
  });

  // [chart, --set, what Helm must name]: the chart whose schema refuses and the value's path.
  const refused: [string, string, RegExp][] = [
    ['controlplane', 'replicaCount=two', /controlplane:\s*- replicaCount: Invalid type. Expected: integer/],
    ['controlplane', 'replicaCount=0', /replicaCount: Must be greater than or equal to 1/],
    ['controlplane', 'logLevel=loud', /logLevel: logLevel must be one of/],
    ['controlplane', 'workloadCertTTL=1day', /workloadCertTTL: Does not match pattern/],
    ['controlplane', 'ca.generat=true', /ca: Additional property generat is not allowed/],
    ['controlplane', 'resources.requests.gpu=1', /resources.requests: .*gpu/],
    ['ztunnel', 'xdsAddress=istiod', /xdsAddress: Does not match pattern/],
    [
      'ztunnel',
      'tolerations[0].operator=Maybe',
      /tolerations.0.operator: tolerations.0.operator must be one of/,
    ],
    ['ztunnel', 'env.ZT_LOG_LEVEL=debug', /ztunnel:\s*- env: Property name of "ZT_LOG_LEVEL" does not match/],
    ['controlplane', 'env.CP_CA_DIR=/x', /env: Property name of "CP_CA_DIR" does not match/],
    ['cni', 'env.CNI_NODE_NAME=n', /env: Property name of "CNI_NODE_NAME" does not match/],
    ['cni', 'cniBinDir=opt/cni/bin', /cni:\s*- cniBinDir: Does not match pattern/],
    ['cni', 'readyPort=70000', /readyPort: Must be less than or equal to 65535/],
    ['base', 'gatewayAPI.install=true', /gatewayAPI: Additional property install is not allowed/],
    [
      'base',
      'global.imagePullPolicy=Sometimes',
      /global.imagePullPolicy: global.imagePullPolicy must be one of/,
    ],
    [
      'ambient',
      'controlplan.replicaCount=3',
      /ambient:\s*- \(root\): Additional property controlplan is not allowed/,
    ],
    ['ambient', 'cni.cniConfDir=net.d', /cni:\s*- cniConfDir: Does not match pattern/],
    ['ambient', 'global.hubb=x', /ambient:\s*- global: Additional property hubb is not allowed/],
  ];
  it.each(refused)('%s refuses --set %s, naming the value', async (chart, set, message) => {
    const r = await helm(['template', 'x', path.join(CHARTS_DIR, chart), '--set', set]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/values don't meet the specifications of the schema/);
    expect(r.stderr).toMatch(message);
  });
});

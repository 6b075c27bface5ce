/**
 * The control plane reading a real Kubernetes API server (etcd + kube-apiserver on loopback):
 * objects applied with kubectl reach the mesh model, `kubectl label namespace` enrolls pods,
 * policies come and go, an object our decoders refuse is reported with its field path while the
 * rest is served, a missing CRD is picked up once installed, and an API server restart resyncs
 * (through a real 410 Gone) without losing or duplicating objects. One API server for the file.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  ControlPlaneApp,
  KubeApiSource,
  loadKubeConfig,
  parseControlPlaneConfig,
} from '@ambient/controlplane';
import { freeLoopbackPort, KubeApiServer, kubeBinaries } from '@ambient/lab';
import { workloadapi } from '@ambient/shared';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
// The CRDs the base chart installs (charts/base/files), applied as plain files.
const CRDS = path.join(import.meta.dirname, '../../charts/base/files');
const FAST = { initialMs: 100, maxMs: 1000 };
/** Warnings logged, parsed: what an operator reads. */
const warnings: Array<{ msg: string; resource?: string; kind?: string }> = [];
const logger = pino(
  { level: 'warn' },
  {
    write: (line: string) => {
      warnings.push(JSON.parse(line));
    },
  },
);

let api: KubeApiServer;
let tmp: string;
let source: KubeApiSource;
let app: ControlPlaneApp;
let monitorPort: number;
const changes: string[] = [];

const kubectl = async (...args: string[]) =>
  (await run('kubectl', ['--kubeconfig', api.kubeconfig, ...args], { encoding: 'utf8' })).stdout;

/** kubectl apply of a YAML text. */
async function apply(yaml: string): Promise<void> {
  const p = execFile('kubectl', ['--kubeconfig', api.kubeconfig, 'apply', '-f', '-']);
  let err = '';
  p.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  p.stdin?.end(yaml);
  const code = await new Promise<number | null>((r) => p.once('exit', r));
  if (code !== 0) throw new Error(`kubectl apply: ${err}`);
}

/** A request to the API server as its admin (for what kubectl 1.20 cannot do: pod status). */
function kapi(method: string, apiPath: string, body?: unknown, contentType = 'application/json') {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = https.request(
      `${api.url}${apiPath}`,
      {
        method,
        ca: readFileSync(api.caFile),
        headers: { authorization: `Bearer ${api.adminToken}`, 'content-type': contentType },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => {
          text += d.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** Creates a running pod with an IP (no kubelet here: its status is written as a kubelet would). */
async function createPod(name: string, ip: string, ns = 'demo'): Promise<void> {
  const created = await kapi('POST', `/api/v1/namespaces/${ns}/pods`, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels: { app: 'echo' } },
    spec: {
      nodeName: 'node0',
      automountServiceAccountToken: false,
      containers: [{ name: 'echo', image: 'echo', ports: [{ name: 'http', containerPort: 8080 }] }],
    },
  });
  if (created.status !== 201) throw new Error(`create pod ${name}: ${created.status} ${created.body}`);
  const patched = await kapi(
    'PATCH',
    `/api/v1/namespaces/${ns}/pods/${name}/status`,
    { status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] } },
    'application/merge-patch+json',
  );
  if (patched.status !== 200) throw new Error(`pod ${name} status: ${patched.status} ${patched.body}`);
}

async function deletePod(name: string, ns = 'demo'): Promise<void> {
  const r = await kapi('DELETE', `/api/v1/namespaces/${ns}/pods/${name}?gracePeriodSeconds=0`);
  if (r.status !== 200) throw new Error(`delete pod ${name}: ${r.status} ${r.body}`);
}

async function eventually<T>(what: string, fn: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The model's workloads in demo: pod name -> tunnel protocol. */
function demoWorkloads(a: ControlPlaneApp = app): Map<string, number> {
  const out = new Map<string, number>();
  for (const addr of a.currentModel()?.addresses.values() ?? []) {
    if ('workload' in addr && addr.workload.namespace === 'demo') {
      out.set(addr.workload.name, addr.workload.tunnelProtocol);
    }
  }
  return out;
}

/** Pod names the API server holds in demo. */
async function apiPods(): Promise<string[]> {
  const out = await kubectl('get', 'pods', '-n', 'demo', '-o', 'jsonpath={.items[*].metadata.name}');
  return out.split(/\s+/).filter(Boolean).sort();
}

function sourcePods(s: KubeApiSource = source): string[] {
  return [...s.objects().keys()]
    .filter((k) => k.startsWith('Pod/demo/'))
    .map((k) => k.slice('Pod/demo/'.length))
    .sort();
}

async function ready(port: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/ready`).catch(() => undefined);
  return res?.status ?? 0;
}

function configFor(monitor: number) {
  const config = parseControlPlaneConfig({
    CP_CONFIG_SOURCE: 'kubernetes',
    CP_KUBECONFIG: api.kubeconfig,
    CP_CA_DIR: path.join(tmp, 'ca'),
    CP_TOKENS_FILE: path.join(tmp, 'tokens.json'),
    CP_GRPC_ADDRESS: '127.0.0.1',
    CP_GRPC_PORT: '0',
    CP_MONITOR_ADDRESS: '127.0.0.1',
    CP_MONITOR_PORT: String(monitor),
    // The replicas here elect a leader for their writes (status, root-cert ConfigMaps).
    CP_POD_NAME: `cp-${monitor}`,
  });
  if (!config.ok) throw new Error(JSON.stringify(config.problems));
  return config.value;
}

function newSource(): KubeApiSource {
  return new KubeApiSource({
    kubeConfig: loadKubeConfig({ kubeconfig: api.kubeconfig, serviceHost: '', servicePort: '' }),
    backoff: FAST,
    crdPollBackoff: FAST,
    logger,
  });
}

const HBONE = workloadapi.TunnelProtocol.HBONE;
const NONE = workloadapi.TunnelProtocol.NONE;

describe('the control plane on a real Kubernetes API server', () => {
  beforeAll(async () => {
    const t0 = Date.now();
    api = await KubeApiServer.start({ binDir: await kubeBinaries(ROOT) });
    tmp = await mkdtemp(path.join(os.tmpdir(), 'kube-source-'));
    await writeFile(path.join(tmp, 'tokens.json'), '{}');
    // The networking.istio.io CRDs are left out: they are installed later, while running.
    await kubectl('apply', '-f', path.join(CRDS, 'crd-gateway-api.yaml'));
    await kubectl('apply', '-f', path.join(CRDS, 'crd-security.yaml'));
    await kubectl('wait', '--for=condition=Established', 'crd', '--all', '--timeout=30s');
    await kubectl('create', 'namespace', 'demo');
    await kubectl('create', 'serviceaccount', 'default', '-n', 'demo');
    await createPod('seed', '10.1.0.1');
    source = newSource();
    source.onChange((keys) => changes.push(...keys));
    monitorPort = await freeLoopbackPort();
    app = new ControlPlaneApp({ config: configFor(monitorPort), logger, source });
    await app.start();
    console.log(`API server up and control plane synced in ${Date.now() - t0} ms`);
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await api?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }, 60_000);

  it('is synced when start resolves: every kind listed, the missing networking.istio.io CRDs reported once, /ready true', async () => {
    expect(source.objects().has('Namespace//demo')).toBe(true);
    expect(source.objects().has('Pod/demo/seed')).toBe(true);
    expect(demoWorkloads().get('seed')).toBe(NONE);
    expect([...source.stats().missing].sort()).toEqual(['DestinationRule', 'VirtualService']);
    const crds = source.invalid().filter((i) => i.ref.startsWith('CustomResourceDefinition'));
    expect(crds.map((i) => i.ref).sort()).toEqual([
      'CustomResourceDefinition destinationrules.networking.istio.io',
      'CustomResourceDefinition virtualservices.networking.istio.io',
    ]);
    expect(crds[0]?.problems[0]?.message).toMatch(/not installed/);
    expect(await ready(monitorPort)).toBe(200);
  });

  it('kubectl label namespace demo istio.io/dataplane-mode=ambient enrolls its pods over HBONE; removing the label takes them out', async () => {
    await createPod('a1', '10.1.0.11');
    await createPod('a2', '10.1.0.12');
    await eventually('pods in the model', () => demoWorkloads().size === 3);
    changes.length = 0;
    await kubectl('label', 'namespace', 'demo', 'istio.io/dataplane-mode=ambient');
    await eventually('enrollment', () => [...demoWorkloads().values()].every((p) => p === HBONE));
    expect(changes).toContain('Namespace//demo');
    expect(source.objects().get('Namespace//demo')?.metadata.labels['istio.io/dataplane-mode']).toBe(
      'ambient',
    );
    await kubectl('label', 'namespace', 'demo', 'istio.io/dataplane-mode-');
    await eventually('un-enrollment', () => [...demoWorkloads().values()].every((p) => p === NONE));
    await kubectl('label', 'namespace', 'demo', 'istio.io/dataplane-mode=ambient');
    await eventually('enrollment again', () => [...demoWorkloads().values()].every((p) => p === HBONE));
  });

  it('pod churn: pods created and deleted reach the model, exactly as the API server holds them', async () => {
    const names = Array.from({ length: 12 }, (_, i) => `churn-${i}`);
    await Promise.all(names.map((n, i) => createPod(n, `10.1.1.${i + 1}`)));
    await Promise.all(names.filter((_, i) => i % 2 === 0).map((n) => deletePod(n)));
    const want = await apiPods();
    expect(want).toHaveLength(3 + 6);
    await eventually('churn settled', () => sourcePods().join() === want.join());
    await eventually('model settled', () => [...demoWorkloads().keys()].sort().join() === want.join());
    expect([...demoWorkloads().values()].every((p) => p === HBONE)).toBe(true);
  });

  it('a missing CRD installed later is picked up and its notice cleared, the other kinds still served; it was logged once, not with every push', async () => {
    const vs = 'CustomResourceDefinition virtualservices.networking.istio.io';
    expect(warnings.filter((w) => w.resource === vs)).toHaveLength(1);
    expect(warnings.filter((w) => w.kind === 'VirtualService' && /not served/.test(w.msg))).toHaveLength(1);
    changes.length = 0;
    await kubectl('apply', '-f', path.join(CRDS, 'crd-networking.yaml'));
    await kubectl('wait', '--for=condition=Established', 'crd', '--all', '--timeout=30s');
    await eventually('notices cleared', () => source.stats().missing.length === 0);
    expect(source.invalid().filter((i) => i.ref.startsWith('CustomResourceDefinition'))).toEqual([]);
    // Watched now: a resourceVersion from its own list.
    await eventually('watching', () => source.stats().resourceVersions.DestinationRule !== '');
    expect(source.objects().has('Pod/demo/seed')).toBe(true);
  });

  it('API server restart mid-watch (a real 410 Gone on resume): changes just before the stop and after the start arrive, none lost or duplicated; a control plane started while it is down is not ready until synced', async () => {
    const relistsBefore = source.stats().relists;
    // Changes right before the stop, not waited for.
    await createPod('before-stop', '10.1.2.1');
    await deletePod('churn-1');
    // A write to a kind the source does not watch moves etcd past every watched resourceVersion:
    // the restarted API server's watch cache starts after them, so each resumed watch gets 410.
    await kubectl('create', 'configmap', 'bump', '-n', 'demo');
    await api.stopApiServer();
    // A second control plane starting now has nothing to sync from: not ready.
    const port2 = await freeLoopbackPort();
    const source2 = newSource();
    const app2 = new ControlPlaneApp({ config: configFor(port2), logger, source: source2 });
    const started2 = app2.start();
    try {
      let status = 0;
      for (let i = 0; i < 50 && status === 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
        status = await ready(port2);
      }
      expect(status).toBe(503);
      const t0 = Date.now();
      await api.startApiServer();
      await createPod('after-start', '10.1.2.2');
      await deletePod('churn-3');
      const want = await apiPods();
      expect(want).toContain('before-stop');
      expect(want).toContain('after-start');
      expect(want).not.toContain('churn-1');
      await eventually('resync', () => sourcePods().join() === want.join(), 30_000);
      await eventually(
        'model resync',
        () => [...demoWorkloads().keys()].sort().join() === want.join(),
        30_000,
      );
      console.log(`resynced ${want.length} pods ${Date.now() - t0} ms after the API server restart began`);
      const relists = source.stats().relists - relistsBefore;
      console.log(`relists after 410 Gone: ${relists}; failed requests retried: ${source.stats().failures}`);
      expect(relists).toBeGreaterThan(0);
      // The second control plane syncs once the API server is back, then says ready.
      await started2;
      expect(await ready(port2)).toBe(200);
      expect(sourcePods(source2)).toEqual(want);
      expect([...demoWorkloads(app2).keys()].sort()).toEqual(want);
    } finally {
      await app2.close();
    }
  }, 60_000);

  it('on the real API server: an AuthorizationPolicy added and removed, and one the decoder refuses reported with its field path (skipped where this kube-apiserver build cannot store custom resources)', async (ctx) => {
    const policy = (name: string, action: string) => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ${name}, namespace: demo }
spec: { action: ${action}, rules: [{ from: [{ source: { namespaces: [demo] } }] }] }
`;
    const stored: Error | undefined = await apply(policy('allow-demo', 'ALLOW')).then(
      () => undefined,
      (err: Error) => err,
    );
    if (stored) {
      // kube-apiserver 1.20 built with Go 1.19 (vendored modern-go/reflect2 1.0.1) exits with
      // SIGSEGV encoding a custom resource: bring it back, let the source resync, and skip.
      console.log(
        `custom resources cannot be stored by this kube-apiserver build: ${stored.message.split('\n')[0]}`,
      );
      await new Promise((r) => setTimeout(r, 1000));
      await api.startApiServer();
      const want = await apiPods();
      await eventually('resync after the crash', () => sourcePods().join() === want.join(), 30_000);
      ctx.skip();
      return;
    }
    await eventually('policy in', () => app.currentModel()?.authorizations.has('demo/allow-demo'));
    await apply(policy('allow-demo', 'MAYBE'));
    const refused = await eventually('refusal', () =>
      source.invalid().find((i) => i.ref === 'AuthorizationPolicy demo/allow-demo'),
    );
    expect(refused.problems.map((p) => p.path)).toEqual(['spec.action']);
    expect(refused.kept).toEqual(['AuthorizationPolicy/demo/allow-demo']);
    expect(app.currentModel()?.authorizations.has('demo/allow-demo')).toBe(true);
    await kubectl('delete', 'authorizationpolicy', 'allow-demo', '-n', 'demo');
    await eventually('policy out', () => !app.currentModel()?.authorizations.has('demo/allow-demo'));
    expect(source.invalid().some((i) => i.ref.startsWith('AuthorizationPolicy'))).toBe(false);
  }, 60_000);
});

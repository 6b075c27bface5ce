/**
 * What the leader writes to a real kube-apiserver, as istiod does: status.conditions on
 * AuthorizationPolicies (ZtunnelAccepted, WaypointAccepted) and Services (istio.io/WaypointBound),
 * HTTPRoute status.parents for Service parents, and the CA root
 * ConfigMap in every namespace. Two control plane replicas read the API (the kubernetes source) as
 * their own service account with the RBAC the project ships; only the one holding the Lease
 * writes. Objects the API server accepts but the mesh cannot use are reported with their field
 * path (log, /debug/config, metric) while the rest is served. One API server for the file.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ControlPlaneApp, parseControlPlaneConfig } from '@ambient/controlplane';
import { KubeApiServer, kubeBinaries } from '@ambient/lab';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlplaneRbac } from '../charts/helm.js';
import { kubectlOf } from './kubectl.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
// The CRDs the base chart installs (charts/base/files), applied as plain files.
const CRDS = path.join(import.meta.dirname, '../../charts/base/files');
const LEASE = { duration: '4s', renew: '2s', retry: '500ms' };

let api: KubeApiServer;
let dir: string;
let cpKubeconfig: string;
const replicas = new Map<string, { app: ControlPlaneApp; monitor: number; logs: LogLine[] }>();
interface LogLine {
  msg: string;
  resource?: string;
  path?: string;
  file?: string;
  problems?: Array<{ path: string; message: string }>;
}

const { kubectl, kubectlStdin } = kubectlOf(() => api.kubeconfig);

/** One kubectl apply for all the objects. */
const apply = (...items: object[]) =>
  kubectlStdin(JSON.stringify({ apiVersion: 'v1', kind: 'List', items }), 'apply', '-f', '-');

// biome-ignore lint/suspicious/noExplicitAny: JSON read back from kubectl
async function getJson(...args: string[]): Promise<any | undefined> {
  try {
    return JSON.parse(await kubectl('get', ...args, '-o', 'json'));
  } catch (err) {
    if (String((err as Error).message).includes('NotFound')) return undefined;
    throw err;
  }
}

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function startReplica(name: string): Promise<ControlPlaneApp> {
  const own = path.join(dir, name);
  await mkdir(own, { recursive: true });
  await writeFile(path.join(own, 'tokens.json'), '{}');
  const config = parseControlPlaneConfig({
    CP_CONFIG_SOURCE: 'kubernetes',
    CP_KUBECONFIG: cpKubeconfig,
    CP_CA_DIR: path.join(dir, 'ca'),
    CP_TOKENS_FILE: path.join(own, 'tokens.json'),
    CP_GRPC_ADDRESS: '127.0.0.1',
    CP_GRPC_PORT: '0',
    CP_MONITOR_ADDRESS: '127.0.0.1',
    CP_MONITOR_PORT: '0',
    CP_DEBOUNCE_MS: '0',
    CP_POD_NAME: name,
    CP_LEADER_ELECTION_LEASE_DURATION: LEASE.duration,
    CP_LEADER_ELECTION_RENEW_DEADLINE: LEASE.renew,
    CP_LEADER_ELECTION_RETRY_PERIOD: LEASE.retry,
  });
  if (!config.ok) throw new Error(JSON.stringify(config.problems));
  const logs: LogLine[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const app = new ControlPlaneApp({ config: config.value, logger });
  const { monitor } = await app.start();
  replicas.set(name, { app, monitor: monitor.port, logs });
  return app;
}

const replica = (name: string) => {
  const r = replicas.get(name);
  if (!r) throw new Error(`no replica ${name}`);
  return r;
};

// biome-ignore lint/suspicious/noExplicitAny: JSON from /debug/config
async function debugConfig(name: string): Promise<any> {
  return (await fetch(`http://127.0.0.1:${replica(name).monitor}/debug/config`)).json();
}

async function metric(name: string, metricName: string, labels = ''): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${replica(name).monitor}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${metricName}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

interface Cond {
  type: string;
  status: string;
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}
// biome-ignore lint/suspicious/noExplicitAny: JSON read back from kubectl
const condition = (obj: any, type: string): Cond | undefined =>
  obj?.status?.conditions?.find((c: Cond) => c.type === type);

const policy = (name: string, spec: object, annotations: Record<string, string> = {}) => ({
  apiVersion: 'security.istio.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name, namespace: 'demo', annotations },
  spec,
});

const service = (name: string, labels: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'demo', labels },
  spec: { selector: { app: name }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
});

const gateway = (name: string, className: string) => ({
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'Gateway',
  metadata: { name, namespace: 'demo' },
  spec: { gatewayClassName: className, listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] },
});

const statusWrites = (name: string) => replica(name).app.statusWriter?.counts.writes ?? 0;

describe('what the leader writes on a real kube-apiserver', () => {
  beforeAll(async () => {
    const t0 = Date.now();
    api = await KubeApiServer.start({ binDir: await kubeBinaries(ROOT) });
    for (const f of ['crd-gateway-api.yaml', 'crd-security.yaml', 'crd-networking.yaml'])
      await kubectl('apply', '-f', path.join(CRDS, f));
    await kubectl('wait', '--for=condition=Established', 'crd', '--all', '--timeout=30s');
    await kubectl('create', 'namespace', 'istio-system');
    await kubectl('create', 'namespace', 'demo');
    // The control plane talks to the API as its own service account, with only the RBAC its chart
    // installs (charts/controlplane, rendered by the real Helm).
    await kubectlStdin(await controlplaneRbac(), 'apply', '-f', '-');
    const tr = JSON.parse(
      await kubectlStdin(
        JSON.stringify({
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: { audiences: ['https://kubernetes.default.svc.cluster.local'], expirationSeconds: 3600 },
        }),
        'create',
        '--raw',
        '/api/v1/namespaces/istio-system/serviceaccounts/controlplane/token',
        '-f',
        '-',
      ),
    );
    dir = await mkdtemp(path.join(os.tmpdir(), 'leader-writes-'));
    cpKubeconfig = path.join(dir, 'controlplane.kubeconfig');
    await writeFile(
      cpKubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        `clusters:\n- name: lab\n  cluster:\n    server: ${api.url}\n    certificate-authority: ${api.caFile}`,
        `users:\n- name: controlplane\n  user:\n    token: ${tr.status.token}`,
        'contexts:\n- name: lab\n  context:\n    cluster: lab\n    user: controlplane',
        'current-context: lab',
        '',
      ].join('\n'),
    );
    const a = await startReplica('cp-a');
    await until('cp-a to lead', async () => a.leader?.isLeader);
    await startReplica('cp-b');
    console.log(`kube-apiserver, CRDs and two replicas (cp-a leading) in ${Date.now() - t0} ms`);
  }, 180_000);

  afterAll(async () => {
    for (const { app } of replicas.values()) await app.close().catch(() => undefined);
    await api?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('ZtunnelAccepted on AuthorizationPolicies with istiod reasons and messages and observedGeneration; a waypoint policy gets none', async () => {
    await apply(
      policy('l4', { action: 'ALLOW', rules: [{ to: [{ operation: { ports: ['8080'] } }] }] }),
      policy('http', {
        selector: { matchLabels: { app: 'echo' } },
        action: 'ALLOW',
        rules: [{ to: [{ operation: { methods: ['GET'], paths: ['/admin'] } }] }],
      }),
      policy('audit', { action: 'AUDIT', rules: [{}] }),
      policy('dry', { action: 'DENY', rules: [{}] }, { 'istio.io/dry-run': 'true' }),
      policy('for-waypoint', {
        targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'wp' }],
        action: 'ALLOW',
        rules: [{}],
      }),
    );
    const cond = async (name: string) =>
      until(`ZtunnelAccepted on ${name}`, async () =>
        condition(await getJson('authorizationpolicy', name, '-n', 'demo'), 'ZtunnelAccepted'),
      );
    expect(await cond('l4')).toMatchObject({
      status: 'True',
      reason: 'Accepted',
      message: 'attached to ztunnel',
      observedGeneration: 1,
    });
    expect(await cond('http')).toMatchObject({
      status: 'True',
      reason: 'UnsupportedValue',
      message:
        'ztunnel does not support HTTP attributes (found: methods, paths). In ambient mode you must use a waypoint proxy to enforce HTTP rules. Within an ALLOW policy, rules matching HTTP attributes are omitted. This will be more restrictive than requested.',
    });
    expect(await cond('audit')).toMatchObject({
      status: 'False',
      reason: 'UnsupportedValue',
      message: 'ztunnel does not support the AUDIT action',
    });
    expect(await cond('dry')).toMatchObject({
      status: 'False',
      reason: 'UnsupportedValue',
      message:
        'found policy "demo/dry" using dry-run annotation, but support for ambient dry-run authorizationPolicies isn\'t enabled',
    });
    const l4 = await getJson('authorizationpolicy', 'l4', '-n', 'demo', '--show-managed-fields');
    const managers = l4.metadata.managedFields.map(
      (m: { manager: string; operation: string; subresource?: string }) => `${m.manager}/${m.operation}`,
    );
    expect(managers).toContain('istio-ambient-ztunnel-policy/Apply');
    // A policy with targetRefs is the waypoint's: WaypointAccepted (next test), never ZtunnelAccepted.
    await until('WaypointAccepted on for-waypoint', async () =>
      condition(await getJson('authorizationpolicy', 'for-waypoint', '-n', 'demo'), 'WaypointAccepted'),
    );
    expect(
      condition(await getJson('authorizationpolicy', 'for-waypoint', '-n', 'demo'), 'ZtunnelAccepted'),
    ).toBeUndefined();
    // A new generation is observed.
    await apply(policy('l4', { action: 'ALLOW', rules: [{ to: [{ operation: { ports: ['9090'] } }] }] }));
    await until('observedGeneration 2', async () => {
      const c = condition(await getJson('authorizationpolicy', 'l4', '-n', 'demo'), 'ZtunnelAccepted');
      return c?.observedGeneration === 2;
    });
  }, 60_000);

  it('istio.io/WaypointBound on Services: bound, a missing Gateway, a Gateway of another class, removed with the label', async () => {
    await apply(
      gateway('wp', 'istio-waypoint'),
      gateway('ingress', 'istio'),
      service('bound', { 'istio.io/use-waypoint': 'wp' }),
      service('missing', { 'istio.io/use-waypoint': 'nope' }),
      service('wrong-class', { 'istio.io/use-waypoint': 'ingress' }),
      service('plain'),
    );
    const cond = async (name: string) =>
      until(`WaypointBound on ${name}`, async () =>
        condition(await getJson('service', name, '-n', 'demo'), 'istio.io/WaypointBound'),
      );
    expect(await cond('bound')).toMatchObject({
      status: 'True',
      reason: 'WaypointAccepted',
      message: 'Successfully attached to waypoint demo/wp',
    });
    const svc = await getJson('service', 'bound', '-n', 'demo', '--show-managed-fields');
    // The Service's generation when it has one (a 1.20 Service has none: then none is written).
    expect(condition(svc, 'istio.io/WaypointBound')?.observedGeneration).toBe(svc.metadata.generation);
    expect(
      svc.metadata.managedFields.map(
        (m: { manager: string; operation: string }) => `${m.manager}/${m.operation}`,
      ),
    ).toContain('istio-ambient-service/Apply');
    expect(await cond('missing')).toMatchObject({
      status: 'False',
      reason: 'WaypointIsNotReady',
      message: 'waypoint "demo/nope" is not ready',
    });
    expect(await cond('wrong-class')).toMatchObject({
      status: 'False',
      reason: 'WaypointIsNotReady',
      message: 'waypoint "demo/ingress" is not ready',
    });
    expect((await getJson('service', 'plain', '-n', 'demo')).status.conditions).toBeUndefined();
    await kubectl('label', 'service', 'missing', '-n', 'demo', 'istio.io/use-waypoint-');
    await until('WaypointBound removed', async () => {
      const svc = await getJson('service', 'missing', '-n', 'demo');
      return !condition(svc, 'istio.io/WaypointBound');
    });
  }, 60_000);

  it('WaypointAccepted on AuthorizationPolicies with targetRefs: bound, a missing or non-waypoint target, a Service without a waypoint, several targets; it changes when the target is fixed', async () => {
    const GW = 'gateway.networking.k8s.io';
    const targeted = (name: string, targetRefs: object[]) =>
      policy(name, { targetRefs, action: 'ALLOW', rules: [{}] });
    await apply(
      targeted('to-wp', [{ group: GW, kind: 'Gateway', name: 'wp' }]),
      targeted('to-ingress', [{ group: GW, kind: 'Gateway', name: 'ingress' }]),
      targeted('to-bound', [{ group: '', kind: 'Service', name: 'bound' }]),
      targeted('to-plain', [{ group: '', kind: 'Service', name: 'plain' }]),
      targeted('to-later', [{ group: '', kind: 'Service', name: 'later-svc' }]),
      targeted('to-several', [
        { group: GW, kind: 'Gateway', name: 'wp' },
        { group: '', kind: 'Service', name: 'absent' },
      ]),
    );
    const cond = async (name: string, accept: (c: Cond) => boolean = () => true) =>
      until(`WaypointAccepted on ${name}`, async () => {
        const c = condition(await getJson('authorizationpolicy', name, '-n', 'demo'), 'WaypointAccepted');
        return c && accept(c) && c;
      });
    expect(await cond('to-wp')).toMatchObject({
      status: 'True',
      reason: 'Accepted',
      message: 'bound to demo/wp',
      observedGeneration: 1,
    });
    expect(await cond('to-ingress')).toMatchObject({
      status: 'False',
      reason: 'TargetNotFound',
      message: 'not bound',
    });
    expect(await cond('to-bound')).toMatchObject({
      status: 'True',
      reason: 'Accepted',
      message: 'bound to demo/wp',
    });
    expect(await cond('to-plain')).toMatchObject({
      status: 'False',
      reason: 'AncestorNotBound',
      message: 'Service demo/plain is not bound to a waypoint',
    });
    const before = await cond('to-later');
    expect(before).toMatchObject({
      status: 'False',
      reason: 'TargetNotFound',
      message: 'Service demo/later-svc was not found',
    });
    expect(await cond('to-several')).toMatchObject({
      status: 'True',
      reason: 'PartiallyInvalid',
      message: 'Invalid targetRefs: Service.core:demo/absent',
    });
    const managers = (
      await getJson('authorizationpolicy', 'to-wp', '-n', 'demo', '--show-managed-fields')
    ).metadata.managedFields.map(
      (m: { manager: string; operation: string }) => `${m.manager}/${m.operation}`,
    );
    expect(managers).toContain('istio-ambient-waypoint-policy/Apply');
    // The target appears, bound to the waypoint: the condition follows.
    const t0 = Date.now();
    await apply(service('later-svc', { 'istio.io/use-waypoint': 'wp' }));
    const fixed = await cond('to-later', (c) => c.status === 'True');
    console.log(`WaypointAccepted turned True ${Date.now() - t0} ms after its Service appeared`);
    expect(fixed).toMatchObject({ reason: 'Accepted', message: 'bound to demo/wp' });
    expect(fixed.lastTransitionTime >= before.lastTransitionTime).toBe(true);
  }, 60_000);

  it("HTTPRoute status.parents for Service parents: accepted, a missing backend, a refused field, a missing parent; fixed routes follow, and another controller's entry is kept", async () => {
    const route = (name: string, spec: object) => ({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name, namespace: 'demo' },
      spec,
    });
    const svcParent = (name: string) => ({ group: '', kind: 'Service', name });
    const backend = (name: string) => [{ backendRefs: [{ name, port: 80 }] }];
    await apply(
      route('ok', { parentRefs: [svcParent('bound')], rules: backend('bound') }),
      route('no-backend', { parentRefs: [svcParent('bound')], rules: backend('nowhere') }),
      route('refused', {
        parentRefs: [svcParent('bound')],
        rules: [{ filters: [{ type: 'ExtensionRef', extensionRef: { group: 'x', kind: 'Y', name: 'z' } }] }],
      }),
      route('no-parent', { parentRefs: [svcParent('ghost')] }),
      route('waypoint-parent', { parentRefs: [{ name: 'wp' }] }),
    );
    interface Parent {
      parentRef: { name: string; kind?: string };
      controllerName: string;
      conditions: Cond[];
    }
    const parents = async (name: string): Promise<Parent[]> =>
      (await getJson('httproute', name, '-n', 'demo'))?.status?.parents ?? [];
    const ours = async (name: string, accept: (p: Parent) => boolean = () => true) =>
      until(`status.parents of ${name}`, async () => {
        const p = (await parents(name)).find((x) => x.controllerName === 'istio.io/gateway-controller');
        return p && accept(p) && p;
      });
    const byType = (p: Parent) =>
      Object.fromEntries(p.conditions.map((c) => [c.type, `${c.status} ${c.reason}: ${c.message}`]));
    const ok = await ours('ok');
    expect(ok.parentRef).toEqual(svcParent('bound'));
    expect(byType(ok)).toEqual({
      Accepted: 'True Accepted: Route was valid',
      ResolvedRefs: 'True ResolvedRefs: All references resolved',
      ResolvedWaypoints: 'True ResolvedWaypoints: All waypoints resolved',
    });
    expect(ok.conditions.every((c) => c.observedGeneration === 1)).toBe(true);
    const managers = (
      await getJson('httproute', 'ok', '-n', 'demo', '--show-managed-fields')
    ).metadata.managedFields.map(
      (m: { manager: string; operation: string }) => `${m.manager}/${m.operation}`,
    );
    expect(managers).toContain('pilot-discovery/Apply');
    expect(byType(await ours('no-backend')).ResolvedRefs).toBe(
      'False BackendNotFound: backend(nowhere.demo.svc.cluster.local) not found',
    );
    const refused = byType(await ours('refused'));
    expect(refused.Accepted).toMatch(
      /^False UnsupportedValue: Route was refused: spec\.rules\[0\]\.filters\[0\]/,
    );
    expect(refused.ResolvedRefs).toMatch(/^False InvalidConfiguration: spec\.rules\[0\]\.filters\[0\]/);
    expect(byType(await ours('no-parent'))).toMatchObject({
      Accepted: 'False NoMatchingParent: parent service: "ghost" not found',
      ResolvedWaypoints: 'True ResolvedWaypoints: parent not found',
    });
    // A waypoint Gateway parent: istiod builds no parent for it, so no entry.
    await new Promise((r) => setTimeout(r, 500));
    expect(await parents('waypoint-parent')).toEqual([]);

    // Another controller's entry on a route we write: kept, ours replaced beside it.
    const foreign = {
      parentRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'edge' },
      controllerName: 'example.com/gateway-controller',
      conditions: [
        {
          type: 'Accepted',
          status: 'True',
          reason: 'Accepted',
          message: 'theirs',
          observedGeneration: 1,
          lastTransitionTime: '2026-01-01T00:00:00Z',
        },
      ],
    };
    const current = await parents('no-backend');
    await kubectl(
      'patch',
      'httproute',
      'no-backend',
      '-n',
      'demo',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: { parents: [foreign, ...current] } }),
    );
    const t0 = Date.now();
    // The backend appears; the route and the refused one are fixed.
    await apply(service('nowhere'));
    await apply(
      route('refused', { parentRefs: [svcParent('bound')], rules: backend('bound') }),
      route('no-parent', { parentRefs: [svcParent('plain')], rules: backend('plain') }),
    );
    const resolved = await ours('no-backend', (p) => byType(p).ResolvedRefs?.startsWith('True') ?? false);
    console.log(`HTTPRoute ResolvedRefs turned True ${Date.now() - t0} ms after its backend appeared`);
    expect(byType(resolved).ResolvedRefs).toBe('True ResolvedRefs: All references resolved');
    const all = await parents('no-backend');
    expect(all).toHaveLength(2);
    expect(all[0]).toEqual(foreign);
    const fixed = await ours('refused', (p) => byType(p).Accepted?.startsWith('True') ?? false);
    expect(byType(fixed)).toMatchObject({
      Accepted: 'True Accepted: Route was valid',
      ResolvedRefs: 'True ResolvedRefs: All references resolved',
    });
    expect(fixed.conditions.every((c) => c.observedGeneration === 2)).toBe(true);
    const moved = await ours('no-parent', (p) => p.parentRef.name === 'plain');
    expect(byType(moved)).toEqual({
      Accepted: 'True Accepted: Route was valid',
      ResolvedRefs: 'True ResolvedRefs: All references resolved',
      ResolvedWaypoints:
        'True ResolvedWaypoints: istio.io/use-waypoint label missing from parent and parent namespace; in ambient mode, route will not be respected',
    });
    // The entry for the parent no longer referenced is gone.
    expect(await parents('no-parent')).toHaveLength(1);
    // A valid route broken alone by a refused field (its last good version stays in force for
    // the waypoint until then): the refusal by itself rewrites the status, which no longer claims it.
    await apply(
      route('ok', {
        parentRefs: [svcParent('bound')],
        rules: [{ backendRefs: [{ name: 'bound', port: 80 }], filters: [{ type: 'ExtensionRef' }] }],
      }),
    );
    const broken = await ours('ok', (p) => byType(p).Accepted?.startsWith('False') ?? false);
    expect(byType(broken).Accepted).toMatch(
      /^False UnsupportedValue: Route was refused: spec\.rules\[0\]\.filters\[0\]/,
    );
    expect(broken.conditions.every((c) => c.observedGeneration === 2)).toBe(true);
  }, 60_000);

  it('only the leader writes, and a write never causes another (no loop): counts and resourceVersions stay put', async () => {
    // Everything above has settled once the policies' and services' conditions are there.
    await until('writes settle', async () => {
      const before = statusWrites('cp-a');
      await new Promise((r) => setTimeout(r, 1000));
      return statusWrites('cp-a') === before;
    });
    const rv = async () =>
      (
        await kubectl(
          'get',
          'authorizationpolicies,services,httproutes',
          '-n',
          'demo',
          '-o',
          'jsonpath={.items[*].metadata.resourceVersion}',
        )
      ).trim();
    const before = { writes: statusWrites('cp-a'), rv: await rv() };
    // Rebuilds without a change the mesh sees, and a resync's worth of time.
    await kubectl('annotate', 'namespace', 'demo', 'unrelated=1');
    await new Promise((r) => setTimeout(r, 3000));
    const after = { writes: statusWrites('cp-a'), rv: await rv() };
    console.log(
      `status writes by the leader: ${after.writes}; by the other replica: ${statusWrites('cp-b')}`,
    );
    expect(after).toEqual(before);
    expect(before.writes).toBeGreaterThan(0);
    expect(replica('cp-a').app.statusWriter?.counts.failures).toBe(0);
    expect(statusWrites('cp-b')).toBe(0);
    expect(replica('cp-b').app.rootCertController?.writes).toEqual({ created: 0, updated: 0 });
  }, 60_000);

  it('objects the API server accepts but the mesh cannot use are reported with their field path (log, /debug/config, metric) and the rest is served', async () => {
    // A VirtualService with TCP routes (not supported), next to a valid one.
    await apply(
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name: 'tcp', namespace: 'demo' },
        spec: { hosts: ['bound'], tcp: [{ route: [{ destination: { host: 'bound' } }] }] },
      },
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name: 'ok', namespace: 'demo' },
        spec: { hosts: ['plain'], http: [{ route: [{ destination: { host: 'plain' } }] }] },
      },
    );
    for (const name of ['cp-a', 'cp-b']) {
      const cfg = await until(`${name} reports`, async () => {
        const c = await debugConfig(name);
        return c.invalid.some((i: { ref: string }) => i.ref === 'VirtualService demo/tcp') && c;
      });
      const vs = cfg.invalid.find((i: { ref: string }) => i.ref === 'VirtualService demo/tcp');
      expect(vs.file).toBe('/apis/networking.istio.io/v1/namespaces/demo/virtualservices/tcp');
      expect(vs.problems.map((p: { path: string }) => p.path)).toEqual(['spec.tcp']);
      expect(cfg.invalid.some((i: { ref: string }) => i.ref === 'VirtualService demo/ok')).toBe(false);
      const notices = cfg.notices.map((n: { ref: string; path: string }) => `${n.ref} ${n.path}`);
      expect(notices).toEqual(
        expect.arrayContaining([
          'AuthorizationPolicy demo/http spec.rules[0].to[0].operation.methods',
          'AuthorizationPolicy demo/http spec.rules[0].to[0].operation.paths',
          'Gateway demo/ingress spec.gatewayClassName',
        ]),
      );
      // The rest is served: the L4 policy and the HTTP one (without its HTTP rule) go to ztunnel.
      expect(cfg.authorizations).toEqual(expect.arrayContaining(['demo/l4', 'demo/http']));
      expect(await metric(name, 'controlplane_invalid_resources')).toBeGreaterThanOrEqual(1);
      expect(
        await metric(name, 'controlplane_config_notices', '{kind="AuthorizationPolicy"}'),
      ).toBeGreaterThanOrEqual(2);
      expect(await metric(name, 'controlplane_config_notices', '{kind="Gateway"}')).toBe(1);
      const logs = replica(name).logs;
      expect(
        logs.some((l) => l.file?.endsWith('/virtualservices/tcp') && l.problems?.[0]?.path === 'spec.tcp'),
      ).toBe(true);
      expect(logs.filter((l) => l.resource === 'AuthorizationPolicy demo/http').map((l) => l.path)).toEqual([
        'spec.rules[0].to[0].operation.methods',
        'spec.rules[0].to[0].operation.paths',
      ]);
      expect(
        logs.some((l) => l.resource === 'Gateway demo/ingress' && l.path === 'spec.gatewayClassName'),
      ).toBe(true);
    }
    const model = replica('cp-a').app.currentModel();
    expect([...(model?.authorizations.keys() ?? [])]).toEqual(
      expect.arrayContaining(['demo/l4', 'demo/http']),
    );
  }, 60_000);

  it('keeps istio-ca-root-cert (root-cert.pem, istio.io/config label) in every namespace but the skipped ones, in new ones, and puts it back when edited or deleted', async () => {
    const pem = replica('cp-a').app.rootCertPem;
    const cm = (ns: string) => getJson('configmap', 'istio-ca-root-cert', '-n', ns);
    for (const ns of ['demo', 'istio-system', 'default', 'kube-system']) {
      const c = await until(`root cert in ${ns}`, () => cm(ns));
      expect(c.data).toEqual({ 'root-cert.pem': pem });
      expect(c.metadata.labels).toEqual({ 'istio.io/config': 'true' });
    }
    for (const ns of ['kube-public', 'kube-node-lease']) expect(await cm(ns)).toBeUndefined();
    await kubectl('create', 'namespace', 'fresh');
    const t0 = Date.now();
    await until('root cert in a new namespace', () => cm('fresh'));
    console.log(`root-cert ConfigMap in a new namespace after ${Date.now() - t0} ms`);
    await kubectl(
      'patch',
      'configmap',
      'istio-ca-root-cert',
      '-n',
      'fresh',
      '--type=merge',
      '-p',
      JSON.stringify({ data: { 'root-cert.pem': 'tampered', extra: 'kept' } }),
    );
    const repaired = await until('edited root cert restored', async () => {
      const c = await cm('fresh');
      return c?.data['root-cert.pem'] === pem && c;
    });
    expect(repaired.data.extra).toBe('kept');
    await kubectl('delete', 'configmap', 'istio-ca-root-cert', '-n', 'fresh');
    const t1 = Date.now();
    const back = await until('deleted root cert recreated', () => cm('fresh'));
    console.log(`deleted root-cert ConfigMap back after ${Date.now() - t1} ms`);
    expect(back.data).toEqual({ 'root-cert.pem': pem });
    expect(replica('cp-b').app.rootCertController?.writes).toEqual({ created: 0, updated: 0 });
  }, 60_000);

  it('the leader killed, the other replica takes over the writes', async () => {
    const a = replica('cp-a').app;
    const b = replica('cp-b').app;
    a.leader?.destroy();
    const t0 = Date.now();
    await until('cp-b to lead', async () => b.leader?.isLeader, 30_000);
    console.log(`writers failed over after ${Date.now() - t0} ms (lease 4 s)`);
    await apply(
      policy('after-failover', { action: 'DENY', rules: [{ from: [{ source: { namespaces: ['x'] } }] }] }),
    );
    const c = await until('ZtunnelAccepted by cp-b', async () =>
      condition(await getJson('authorizationpolicy', 'after-failover', '-n', 'demo'), 'ZtunnelAccepted'),
    );
    expect(c).toMatchObject({ status: 'True', reason: 'Accepted' });
    expect(statusWrites('cp-b')).toBeGreaterThan(0);
    await kubectl('create', 'namespace', 'later');
    await until('root cert by cp-b', () => getJson('configmap', 'istio-ca-root-cert', '-n', 'later'));
    expect(b.rootCertController?.writes.created).toBeGreaterThan(0);
  }, 60_000);
});

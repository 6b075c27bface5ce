/**
 * ambientctl against a real kube-apiserver: `waypoint apply|list|delete|status` as a user runs
 * them (the built CLI, a kubeconfig), the Programmed status written by the real control plane's
 * waypoint controller, the cluster/lab selection rule, and the one-line errors (no kubeconfig,
 * API server unreachable, no ztunnel on a node) with exit code 1.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path, { join } from 'node:path';
import { promisify } from 'node:util';
import { findZtunnelPods, KubeClient, runCli } from '@ambient/cli';
import { ControlPlaneApp, parseControlPlaneConfig } from '@ambient/controlplane';
import { freeLoopbackPort, KubeApiServer, kubeBinaries, waypointGateway } from '@ambient/lab';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'packages/cli/dist/main.js');

let api: KubeApiServer;
let dir: string;
let cp: ControlPlaneApp | undefined;

/** The environment of a shell with no cluster configured. */
const bareEnv = () => {
  const env = { ...process.env };
  delete env.KUBECONFIG;
  delete env.KUBERNETES_SERVICE_HOST;
  delete env.KUBERNETES_SERVICE_PORT;
  return env;
};

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** One command line, in-process (parsing, selection, output and exit code as the binary has them). */
async function ctl(args: string[], env: NodeJS.ProcessEnv = bareEnv()): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    env,
    out: (l) => {
      stdout += `${l}\n`;
    },
    err: (l) => {
      stderr += `${l}\n`;
    },
    signal: new AbortController().signal,
  });
  return { code, stdout, stderr };
}

/** The built binary, for what only a process shows: its exit status and its stderr. */
async function spawnCtl(args: string[], env: NodeJS.ProcessEnv = bareEnv()): Promise<CliRun> {
  try {
    const r = await run(process.execPath, [CLI, ...args], { env, timeout: 60_000, encoding: 'utf8' });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** ambientctl with --kubeconfig; fails the test unless it exits 0. */
async function kctl(...args: string[]): Promise<string> {
  const r = await ctl([...args, '--kubeconfig', api.kubeconfig]);
  if (r.code !== 0) throw new Error(`ambientctl ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

const kubectl = async (...args: string[]) =>
  (await run('kubectl', ['--kubeconfig', api.kubeconfig, ...args], { encoding: 'utf8' })).stdout;

// biome-ignore lint/suspicious/noExplicitAny: JSON read back from kubectl
async function getJson(...args: string[]): Promise<any | undefined> {
  try {
    return JSON.parse(await kubectl('get', ...args, '-o', 'json'));
  } catch (err) {
    if (String((err as Error).message).includes('NotFound')) return undefined;
    throw err;
  }
}

async function startControlPlane(): Promise<ControlPlaneApp> {
  await mkdir(join(dir, 'manifests'), { recursive: true });
  await writeFile(join(dir, 'tokens.json'), '{}');
  const config = parseControlPlaneConfig({
    CP_MANIFEST_DIR: join(dir, 'manifests'),
    CP_CA_DIR: join(dir, 'ca'),
    CP_TOKENS_FILE: join(dir, 'tokens.json'),
    CP_GRPC_ADDRESS: '127.0.0.1',
    CP_GRPC_PORT: '0',
    CP_MONITOR_ADDRESS: '127.0.0.1',
    CP_MONITOR_PORT: '0',
    CP_WAYPOINT_CONTROLLER: 'true',
    CP_KUBECONFIG: api.kubeconfig,
    CP_POD_NAME: 'cp-0',
    CP_WAYPOINT_IMAGE: 'lab/waypoint:test',
    CP_LEADER_ELECTION_LEASE_DURATION: '4s',
    CP_LEADER_ELECTION_RENEW_DEADLINE: '2s',
    CP_LEADER_ELECTION_RETRY_PERIOD: '500ms',
  });
  if (!config.ok) throw new Error(JSON.stringify(config.problems));
  const app = new ControlPlaneApp({ config: config.value, logger: pino({ level: 'silent' }) });
  await app.start();
  return app;
}

async function createZtunnelPod(name: string, node: string): Promise<void> {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'istio-system', labels: { app: 'ztunnel' } },
    spec: {
      nodeName: node,
      serviceAccountName: 'ztunnel',
      automountServiceAccountToken: false,
      containers: [{ name: 'istio-proxy', image: 'lab/ztunnel:test' }],
    },
  };
  await kubectlIn(['create', '-f', '-'], pod);
}

async function kubectlIn(args: string[], obj: object): Promise<void> {
  const p = execFile('kubectl', ['--kubeconfig', api.kubeconfig, ...args]);
  let err = '';
  p.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  p.stdin?.end(JSON.stringify(obj));
  const code = await new Promise<number | null>((r) => p.once('exit', r));
  if (code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${err}`);
}

describe('ambientctl waypoint and ztunnel lookup on a real kube-apiserver', () => {
  beforeAll(async () => {
    const t0 = Date.now();
    api = await KubeApiServer.start({ binDir: await kubeBinaries(ROOT) });
    await kubectl('apply', '-f', join(import.meta.dirname, '../../charts/base/files/crd-gateway-api.yaml'));
    await kubectl(
      'wait',
      '--for',
      'condition=established',
      '--timeout=30s',
      'crd/gateways.gateway.networking.k8s.io',
      'crd/gatewayclasses.gateway.networking.k8s.io',
    );
    for (const ns of ['istio-system', 'demo', 'other', 'plain']) await kubectl('create', 'namespace', ns);
    await kubectl('label', 'namespace', 'demo', 'istio.io/dataplane-mode=ambient');
    await kubectl('label', 'namespace', 'other', 'istio.io/dataplane-mode=ambient');
    dir = await mkdtemp(join(tmpdir(), 'cli-kube-'));
    console.log(`kube-apiserver and CRDs up in ${Date.now() - t0} ms`);
  }, 180_000);

  afterAll(async () => {
    await cp?.close().catch(() => undefined);
    await api?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('waypoint apply writes the Gateway the lab form writes, by server-side apply as field manager ambientctl', async () => {
    const out = await kctl('waypoint', 'apply', '-n', 'demo', '--for', 'service');
    expect(out).toBe('✅ waypoint demo/waypoint applied\n');
    const gw = await getJson('gateway', 'waypoint', '-n', 'demo', '--show-managed-fields');
    const want = waypointGateway({ namespace: 'demo', name: 'waypoint', waypointFor: 'service' });
    expect(gw.spec).toEqual(want.spec);
    expect(gw.metadata.labels).toEqual({ 'istio.io/waypoint-for': 'service' });
    const managers = gw.metadata.managedFields.map(
      (m: { manager: string; operation: string }) => `${m.manager}/${m.operation}`,
    );
    expect(managers).toEqual(['ambientctl/Apply']);
    // Applying the same again changes nothing.
    const rv = gw.metadata.resourceVersion;
    await kctl('waypoint', 'apply', '-n', 'demo', '--for', 'service');
    expect((await getJson('gateway', 'waypoint', '-n', 'demo')).metadata.resourceVersion).toBe(rv);
    // --for none is a value, not an absence: it is written.
    await kctl('waypoint', 'apply', '-n', 'other', '--name', 'none-wp', '--for', 'none');
    expect((await getJson('gateway', 'none-wp', '-n', 'other')).metadata.labels).toEqual({
      'istio.io/waypoint-for': 'none',
    });
  }, 60_000);

  it('--enroll-namespace labels the namespace; a namespace using another waypoint is left alone without --overwrite', async () => {
    const out = await kctl('waypoint', 'apply', '-n', 'demo', '--enroll-namespace');
    expect(out).toBe(
      '✅ waypoint demo/waypoint applied\n✅ namespace demo labeled with "istio.io/use-waypoint: waypoint"\n',
    );
    expect((await getJson('namespace', 'demo')).metadata.labels['istio.io/use-waypoint']).toBe('waypoint');
    // Server-side apply, as istioctl's: what this apply no longer says (--for) is removed.
    expect((await getJson('gateway', 'waypoint', '-n', 'demo')).metadata.labels).toBeUndefined();
    await kctl('waypoint', 'apply', '-n', 'demo', '--for', 'service');
    const refused = await kctl('waypoint', 'apply', '-n', 'demo', '--name', 'second', '--enroll-namespace');
    expect(refused).toBe(
      '⚠️ Warning: namespace (demo) already has an enrolled Waypoint. Consider adding the `--overwrite` flag to your apply command.\n',
    );
    expect(await getJson('gateway', 'second', '-n', 'demo')).toBeUndefined();
    await kctl('waypoint', 'apply', '-n', 'demo', '--name', 'second', '--enroll-namespace', '--overwrite');
    expect((await getJson('namespace', 'demo')).metadata.labels['istio.io/use-waypoint']).toBe('second');
    // A namespace outside ambient is warned about, and still labelled.
    const plain = await kctl('waypoint', 'apply', '-n', 'plain', '--enroll-namespace');
    expect(plain).toContain(
      '⚠️ Warning: namespace is not enrolled in ambient. Consider running\t`kubectl label namespace plain istio.io/dataplane-mode=ambient`\n',
    );
    expect((await getJson('namespace', 'plain')).metadata.labels['istio.io/use-waypoint']).toBe('waypoint');
    // A namespace that does not exist is refused before anything is written.
    const missing = await ctl(['waypoint', 'apply', '-n', 'nowhere', '--kubeconfig', api.kubeconfig]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('ambientctl: namespace: nowhere not found\n');
  }, 60_000);

  it('waypoint list: NAME, REVISION, TRAFFIC TYPE, PROGRAMMED; -A adds NAMESPACE; Gateways of other classes are not waypoints', async () => {
    await kubectlIn(['apply', '-f', '-'], {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name: 'ingress', namespace: 'demo' },
      spec: { gatewayClassName: 'istio', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] },
    });
    // Go tabwriter, padding 5: every column but the last is its widest cell plus 5.
    const row = (widths: number[], cells: string[]) =>
      cells.map((c, i) => (i < cells.length - 1 ? c.padEnd((widths[i] ?? 0) + 5) : c)).join('');
    const w = [8, 8, 12];
    expect(await kctl('waypoint', 'list', '-n', 'demo')).toBe(
      [
        row(w, ['NAME', 'REVISION', 'TRAFFIC TYPE', 'PROGRAMMED']),
        row(w, ['second', 'default', 'none', 'False']),
        row(w, ['waypoint', 'default', 'service', 'False']),
        '',
      ].join('\n'),
    );
    const wA = [9, 8, 8, 12];
    expect(await kctl('waypoint', 'list', '-A')).toBe(
      [
        row(wA, ['NAMESPACE', 'NAME', 'REVISION', 'TRAFFIC TYPE', 'PROGRAMMED']),
        row(wA, ['demo', 'second', 'default', 'none', 'False']),
        row(wA, ['demo', 'waypoint', 'default', 'service', 'False']),
        row(wA, ['other', 'none-wp', 'default', 'none', 'False']),
        row(wA, ['plain', 'waypoint', 'default', 'none', 'False']),
        '',
      ].join('\n'),
    );
    expect(await kctl('waypoint', 'list', '-n', 'istio-system')).toBe('No waypoints found.\n');
  }, 60_000);

  it('waypoint status --waypoint-timeout: a waypoint nobody programs is reported with its name, exit 1', async () => {
    const r = await ctl([
      'waypoint',
      'status',
      '-n',
      'other',
      '--waypoint-timeout',
      '1500ms',
      '--kubeconfig',
      api.kubeconfig,
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout.split('\n').map((l) => l.trimEnd())).toEqual([
      'NAME        STATUS     TYPE     REASON     MESSAGE',
      'none-wp',
      '',
    ]);
    expect(r.stderr).toBe(
      'ambientctl: timed out while retrieving status for waypoint\tother/none-wp: no Programmed condition yet\n',
    );
    expect(r.stderr.split('\n')).toHaveLength(2);
  }, 60_000);

  it('waypoint status and apply --wait read the Programmed condition the real waypoint controller writes', async () => {
    cp = await startControlPlane();
    const t0 = Date.now();
    const status = await kctl('waypoint', 'status', '-n', 'demo');
    console.log(`waypoint status waited ${Date.now() - t0} ms for the controller to program two waypoints`);
    const lines = status.trimEnd().split('\n');
    // Widths: NAME 8, STATUS 6, TYPE 10, REASON 10, each plus 5.
    expect(lines[0]).toMatch(/^NAME {9}STATUS {5}TYPE {11}REASON {9}MESSAGE$/);
    expect(lines[1]).toMatch(
      /^second {7}True {7}Programmed {5}Programmed {5}Resource programmed, assigned to service\(s\) second\.demo\.svc\.cluster\.local:15008$/,
    );
    expect(lines[2]).toMatch(
      /^waypoint {5}True {7}Programmed {5}Programmed {5}Resource programmed, assigned to service\(s\) waypoint\.demo/,
    );
    expect(lines).toHaveLength(3);
    expect(await kctl('waypoint', 'list', '-n', 'demo')).toContain(
      'waypoint     default      service          True',
    );

    const applied = await kctl('waypoint', 'apply', '-n', 'other', '--name', 'fresh', '--wait');
    expect(applied).toBe('✅ waypoint other/fresh applied\n✅ waypoint other/fresh is ready!\n');
    const gw = await getJson('gateway', 'fresh', '-n', 'other');
    expect(gw.status.conditions.find((c: { type: string }) => c.type === 'Programmed').status).toBe('True');
    // The controller deployed it (a Deployment owned by the Gateway).
    expect((await getJson('deployment', 'fresh', '-n', 'other')).metadata.ownerReferences[0].name).toBe(
      'fresh',
    );
  }, 90_000);

  it('waypoint delete: by name (an unknown name is reported), and --all in a namespace', async () => {
    const one = await kctl('waypoint', 'delete', 'second', 'ghost', '-n', 'demo');
    expect(one.split('\n').sort()).toEqual([
      '',
      'waypoint demo/ghost not found',
      'waypoint demo/second deleted',
    ]);
    expect(await getJson('gateway', 'second', '-n', 'demo')).toBeUndefined();
    const all = await kctl('waypoint', 'delete', '--all', '-n', 'other');
    expect(all.split('\n').sort()).toEqual([
      '',
      'waypoint other/fresh deleted',
      'waypoint other/none-wp deleted',
    ]);
    // The Gateway of another class survives --all.
    expect(await getJson('gateway', 'ingress', '-n', 'demo')).toBeDefined();
    const both = await ctl([
      'waypoint',
      'delete',
      'x',
      '--all',
      '-n',
      'demo',
      '--kubeconfig',
      api.kubeconfig,
    ]);
    expect(both.code).toBe(1);
    expect(both.stderr).toBe('ambientctl: cannot specify waypoint names when deleting all waypoints\n');
  }, 60_000);

  it('selection: KUBECONFIG is used without --kubeconfig, and an explicit --lab means the lab even then', async () => {
    const env = { ...bareEnv(), KUBECONFIG: `${api.kubeconfig}${path.delimiter}/nonexistent` };
    const listed = await ctl(['waypoint', 'list', '-n', 'demo'], env);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain('waypoint     default      service          True');
    const lab = await ctl(['waypoint', 'apply', '-n', 'demo', '--lab', 'nolab1'], env);
    expect(lab.code).toBe(1);
    expect(lab.stderr).toBe(
      'ambientctl: no lab named "nolab1" is up (run: ambientctl lab up --name nolab1)\n',
    );
  }, 60_000);

  it('errors are one line with exit code 1: no kubeconfig, API server unreachable, bad kubeconfig', async () => {
    const none = await spawnCtl(['waypoint', 'list']);
    expect(none).toEqual({
      code: 1,
      stdout: '',
      stderr:
        'ambientctl: no Kubernetes cluster: pass --kubeconfig FILE, set KUBECONFIG, or run inside a pod (--lab NAME for a lab)\n',
    });
    const port = await freeLoopbackPort();
    const dead = join(dir, 'dead-kubeconfig');
    await writeFile(
      dead,
      (await readFile(api.kubeconfig, 'utf8')).replace(api.url, `https://127.0.0.1:${port}`),
    );
    for (const [i, args] of [
      ['waypoint', 'list'],
      ['waypoint', 'apply', '-n', 'demo'],
      ['ztunnel-config', 'workloads'],
      ['metrics'],
    ].entries()) {
      const r = await (i === 0 ? spawnCtl : ctl)([...args, '--kubeconfig', dead]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        new RegExp(
          `^ambientctl: cannot reach the Kubernetes API server at https://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED.*\\n$`,
        ),
      );
    }
    const missing = await ctl(['waypoint', 'list', '--kubeconfig', join(dir, 'no-such-file')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(
      /^ambientctl: cannot load kubeconfig \S+no-such-file \(--kubeconfig\): ENOENT[^\n]*\n$/,
    );
  }, 60_000);

  it('finds the ztunnel pod of a node by label in istio-system; no ztunnel on node N is a one-line error, exit 1', async () => {
    await kubectl('create', 'serviceaccount', 'ztunnel', '-n', 'istio-system');
    await createZtunnelPod('ztunnel-a', 'node-a');
    await createZtunnelPod('ztunnel-b', 'node-b');
    const kube = KubeClient.fromFile(api.kubeconfig);
    const where = { namespace: 'istio-system', selector: 'app=ztunnel' };
    expect(await findZtunnelPods(kube, where)).toEqual([
      { namespace: 'istio-system', name: 'ztunnel-a', node: 'node-a' },
      { namespace: 'istio-system', name: 'ztunnel-b', node: 'node-b' },
    ]);
    expect(await findZtunnelPods(kube, where, 'node-b')).toEqual([
      { namespace: 'istio-system', name: 'ztunnel-b', node: 'node-b' },
    ]);
    for (const args of [
      ['ztunnel-config', 'workloads', '--node', 'node-c'],
      ['metrics', '--node', 'node-c'],
    ]) {
      const r = await ctl([...args, '--kubeconfig', api.kubeconfig]);
      expect(r).toEqual({
        code: 1,
        stdout: '',
        stderr:
          'ambientctl: no ztunnel pod on node node-c (pods labelled app=ztunnel in namespace istio-system)\n',
      });
    }
    const otherNs = await ctl([
      'metrics',
      '--ztunnel-namespace',
      'kube-system',
      '--kubeconfig',
      api.kubeconfig,
    ]);
    expect(otherNs.stderr).toBe(
      'ambientctl: no ztunnel pods found (pods labelled app=ztunnel in namespace kube-system)\n',
    );
    // Certificates differ per node: with two nodes one must be named, as istioctl asks.
    const certs = await ctl(['ztunnel-config', 'certificates', '--kubeconfig', api.kubeconfig]);
    expect(certs.code).toBe(1);
    expect(certs.stderr).toBe('ambientctl: ztunnel pod name or --node must be set (nodes: node-a, node-b)\n');
  }, 60_000);
});

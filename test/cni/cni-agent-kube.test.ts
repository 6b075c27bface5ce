/**
 * The CNI node agent against a real kube-apiserver, with a real network namespace per pod and the
 * real in-pod rules (iptables-save and ip rule read back inside each pod's netns), ztunnel replaced
 * by a recorder of the ZDS calls. Pods are created through the API with spec.nodeName set and their
 * status patched, as a kubelet would; the chained plugin binary is run as a runtime runs it.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CniApp, PLUGIN_TYPE, parseCniConfig } from '@ambient/cni';
import { loadKubeConfig } from '@ambient/controlplane';
import { freeLoopbackPort, KubeApiServer, kubeBinaries } from '@ambient/lab';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubePods, RecordingLink, rulesIn, until } from './kube-pods.js';
import { pluginBinary, runPlugin } from './plugin-binary.js';
import { PodNetns } from './pod-netns.js';

const isRoot = process.getuid?.() === 0;
const ROOT = path.resolve(import.meta.dirname, '../..');
const PREFIX = `k${process.pid % 100000}`;
const NODE = 'node-a';
const DAEMONSET = `apiVersion: apps/v1
kind: DaemonSet
metadata: { name: ambient-cni-node, namespace: istio-system }
spec:
  selector: { matchLabels: { k8s-app: ambient-cni-node } }
  template:
    metadata: { labels: { k8s-app: ambient-cni-node } }
    spec: { containers: [{ name: install-cni, image: ambient-mesh/cni:0.1.0 }] }
`;

let api: KubeApiServer;
let dir: string;
let app: CniApp;
let readyPort: number;
let binary: string;
const link = new RecordingLink();
const netnses: PodNetns[] = [];
const uids = new Map<string, string>();

let pods: KubePods;
const kubectl = (...args: string[]) => pods.kubectl(...args);

async function createPod(
  namespace: string,
  name: string,
  node = NODE,
  labels: Record<string, string> = {},
): Promise<string> {
  const uid = await pods.createPod(namespace, name, node, labels);
  uids.set(`${namespace}/${name}`, uid);
  return uid;
}

const patchRunning = (namespace: string, name: string, ip: string) => pods.patchRunning(namespace, name, ip);

async function netns(name: string, ip: string): Promise<PodNetns> {
  const n = await PodNetns.create(`${PREFIX}${name}`, ip);
  netnses.push(n);
  return n;
}

function getReady(port = readyPort): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/readyz' }, (res) => {
        let body = '';
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

const pluginConf = (socket: string) =>
  JSON.stringify({
    cniVersion: '1.0.0',
    name: 'k8s-pod-network',
    type: PLUGIN_TYPE,
    agent_socket: socket,
    exclude_namespaces: ['kube-system'],
    timeout_seconds: 20,
    prevResult: { cniVersion: '1.0.0', ips: [{ address: '198.18.90.30/24' }] },
  });

describe.skipIf(!isRoot)('CNI node agent on a real kube-apiserver (root)', () => {
  let web: PodNetns;
  let early: PodNetns;
  let socket: string;

  /** The agent's entry point (dist/main.js) on this suite's API server and directories. */
  const spawnAgent = (port: number) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'packages/cni/dist/main.js')], {
      env: {
        PATH: process.env.PATH ?? '',
        CNI_NODE_NAME: NODE,
        CNI_KUBECONFIG: api.kubeconfig,
        CNI_PLUGIN_EVENT_SOCKET: socket,
        CNI_ZDS_SOCKET: path.join(dir, 'zds', 'ztunnel.sock'),
        CNI_HOST_BIN_DIR: path.join(dir, 'bin'),
        CNI_HOST_NET_DIR: path.join(dir, 'net.d'),
        CNI_HOST_PROC: '/proc',
        CNI_READY_PORT: String(port),
        CNI_LOG_LEVEL: 'error',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    return { child, exited };
  };

  beforeAll(async () => {
    const t0 = Date.now();
    binary = await pluginBinary();
    api = await KubeApiServer.start({ binDir: await kubeBinaries(ROOT) });
    pods = new KubePods(api);
    await pods.namespace('demo');
    await pods.namespace('mesh', { 'istio.io/dataplane-mode': 'ambient' });
    // Running before the agent starts: `web` in an unlabeled namespace, `early` in an ambient one.
    web = await netns('web', '198.18.90.10');
    early = await netns('early', '198.18.90.11');
    const webUid = await createPod('demo', 'web');
    const earlyUid = await createPod('mesh', 'early');
    await createPod('mesh', 'elsewhere', 'node-b');
    await web.startProcess(webUid);
    await early.startProcess(earlyUid);
    if (!web.realCgroup || !early.realCgroup)
      throw new Error('the cgroup v1 pids hierarchy is not writable here');
    await patchRunning('demo', 'web', web.address);
    await patchRunning('mesh', 'early', early.address);

    dir = await mkdtemp(path.join(tmpdir(), 'cni-kube-'));
    socket = path.join(dir, 'run/pluginevent.sock');
    await mkdir(path.join(dir, 'net.d'), { recursive: true });
    await writeFile(
      path.join(dir, 'net.d/10-bridge.conflist'),
      JSON.stringify({ cniVersion: '1.0.0', name: 'bridge', plugins: [{ type: 'bridge' }] }),
    );
    const config = parseCniConfig({
      CNI_NODE_NAME: NODE,
      CNI_KUBECONFIG: api.kubeconfig,
      CNI_PLUGIN_EVENT_SOCKET: socket,
      CNI_HOST_BIN_DIR: path.join(dir, 'bin'),
      CNI_HOST_NET_DIR: path.join(dir, 'net.d'),
      CNI_HOST_PROC: '/proc',
      CNI_READY_PORT: '0',
      CNI_LOG_LEVEL: 'silent',
    });
    if (!config.ok) throw new Error(JSON.stringify(config.problems));
    app = new CniApp({
      config: config.value,
      logger: pino({ level: 'silent' }),
      kubeConfig: loadKubeConfig({ kubeconfig: api.kubeconfig, serviceHost: '', servicePort: '' }),
      link,
      pluginBinary: binary,
    });
    readyPort = (await app.start()).readyPort;
    console.log(`kube-apiserver, pods and the agent ready in ${Date.now() - t0} ms`);
  }, 180_000);

  afterAll(async () => {
    await app?.close();
    for (const n of netnses) await n.destroy();
    await api?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('is ready once listed, scanned and installed: /readyz 200, the plugin chained into the conflist', async () => {
    expect(await getReady()).toEqual({ status: 200, body: 'ready\n' });
    const conf = JSON.parse(await readFile(path.join(dir, 'net.d/10-bridge.conflist'), 'utf8'));
    expect(conf.plugins.map((p: { type: string }) => p.type)).toEqual(['bridge', PLUGIN_TYPE]);
    expect(conf.plugins[1].agent_socket).toBe(socket);
    // Compared with equals(): a deep equality over 4 MB of bytes would take minutes.
    expect((await readFile(path.join(dir, 'bin', PLUGIN_TYPE))).equals(await readFile(binary))).toBe(true);
  });

  it('a pod already running in an ambient namespace is found in /proc at start: rules in its netns, handed to ztunnel', async () => {
    const uid = uids.get('mesh/early') as string;
    await until('early added', () => link.calls.some((c) => c.startsWith(`add ${uid}`)));
    expect(await rulesIn(early)).toEqual({ iptables: true, ipRule: true });
    expect(link.calls).toContain(`add ${uid} /proc/${early.pid}/ns/net mesh/early default`);
    // Not on this node: never considered.
    expect(link.calls.some((c) => c.includes('elsewhere'))).toBe(false);
  });

  it('labeling the namespace ambient captures its running pod; removing the label releases it', async () => {
    const uid = uids.get('demo/web') as string;
    expect(await rulesIn(web)).toEqual({ iptables: false, ipRule: false });
    await kubectl('label', 'namespace', 'demo', 'istio.io/dataplane-mode=ambient');
    await until('web added', () => link.calls.some((c) => c.startsWith(`add ${uid}`)));
    expect(await rulesIn(web)).toEqual({ iptables: true, ipRule: true });
    expect(link.calls).toContain(`add ${uid} /proc/${web.pid}/ns/net demo/web default`);

    await kubectl('label', 'namespace', 'demo', 'istio.io/dataplane-mode-');
    await until('web removed', () => link.calls.includes(`del ${uid}`));
    expect(await rulesIn(web)).toEqual({ iptables: false, ipRule: false });
  });

  it('a pod labeled none leaves the mesh of its ambient namespace', async () => {
    const uid = uids.get('mesh/early') as string;
    await kubectl('label', 'pod', '-n', 'mesh', 'early', 'istio.io/dataplane-mode=none');
    await until('early removed', () => link.calls.includes(`del ${uid}`));
    expect(await rulesIn(early)).toEqual({ iptables: false, ipRule: false });
    await kubectl('label', 'pod', '-n', 'mesh', 'early', 'istio.io/dataplane-mode-');
    await until('early back', () => link.calls.filter((c) => c.startsWith(`add ${uid}`)).length === 2);
    expect(await rulesIn(early)).toEqual({ iptables: true, ipRule: true });
  });

  it('a new pod: the plugin ADD returns only once its rules are in place and ztunnel took it', async () => {
    const fresh = await netns('fresh', '198.18.90.30');
    const uid = await createPod('mesh', 'fresh');
    const t0 = Date.now();
    const r = await runPlugin(
      binary,
      {
        CNI_COMMAND: 'ADD',
        CNI_CONTAINERID: 'c-fresh',
        CNI_NETNS: fresh.path,
        CNI_IFNAME: 'eth0',
        CNI_PATH: path.join(dir, 'bin'),
        CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=mesh;K8S_POD_NAME=fresh;K8S_POD_UID=${uid}`,
      },
      pluginConf(socket),
    );
    console.log(
      `plugin ADD of an enrolled pod (API lookup, rules installed, ztunnel ack): ${Date.now() - t0} ms`,
    );
    expect(r.code, r.stderr).toBe(0);
    // Checked right after the plugin exits, before the app could send anything.
    expect(await rulesIn(fresh)).toEqual({ iptables: true, ipRule: true });
    expect(link.calls).toContain(`add ${uid} ${fresh.path} mesh/fresh default`);

    await kubectl('delete', 'pod', '-n', 'mesh', 'fresh', '--wait=false');
    // No kubelet confirms the deletion here: force it, as a kubelet's final delete would.
    await kubectl('delete', 'pod', '-n', 'mesh', 'fresh', '--grace-period=0', '--force').catch(() => '');
    await until('fresh removed', () => link.calls.includes(`del ${uid}`));
  });

  it('a new pod in an unlabeled namespace: the plugin ADD succeeds and nothing is installed', async () => {
    const plain = await netns('plain', '198.18.90.31');
    await pods.namespace('plain');
    const uid = await createPod('plain', 'p1');
    const r = await runPlugin(
      binary,
      {
        CNI_COMMAND: 'ADD',
        CNI_CONTAINERID: 'c-p1',
        CNI_NETNS: plain.path,
        CNI_IFNAME: 'eth0',
        CNI_ARGS: `K8S_POD_NAMESPACE=plain;K8S_POD_NAME=p1;K8S_POD_UID=${uid}`,
      },
      pluginConf(socket),
    );
    expect(r.code, r.stderr).toBe(0);
    expect(await rulesIn(plain)).toEqual({ iptables: false, ipRule: false });
    expect(link.calls.some((c) => c.includes(uid))).toBe(false);
  });

  it('fail closed: with ztunnel down the plugin ADD fails and the new pod keeps its rules', async () => {
    const closed = await netns('closed', '198.18.90.32');
    const uid = await createPod('mesh', 'closed');
    link.down = true;
    try {
      const r = await runPlugin(
        binary,
        {
          CNI_COMMAND: 'ADD',
          CNI_CONTAINERID: 'c-closed',
          CNI_NETNS: closed.path,
          CNI_IFNAME: 'eth0',
          CNI_ARGS: `K8S_POD_NAMESPACE=mesh;K8S_POD_NAME=closed;K8S_POD_UID=${uid}`,
        },
        pluginConf(socket),
      );
      expect(r.code).not.toBe(0);
      expect(r.json.details).toContain('CNI_ERR_ZTUNNEL');
      expect(await rulesIn(closed)).toEqual({ iptables: true, ipRule: true });
    } finally {
      link.down = false;
    }
  });

  it('the entry point (dist/main.js, no ztunnel on its ZDS socket) gets ready, serves ZDS on CNI_ZDS_SOCKET, removes the rules the stopped agent left in a pod opted out meanwhile, keeps new pods closed, and leaves the plugin in place on SIGTERM while its DaemonSet exists (an upgrade)', async () => {
    await app.close();
    // The agent's own DaemonSet, as the chart installs it (no controller runs it here).
    await writeFile(path.join(dir, 'ds.yaml'), DAEMONSET);
    await kubectl('create', 'namespace', 'istio-system');
    await kubectl('apply', '-f', path.join(dir, 'ds.yaml'));
    // While no agent runs, a captured pod opts out: the next agent finds its rules and removes them.
    expect(await rulesIn(early)).toEqual({ iptables: true, ipRule: true });
    await kubectl('label', 'pod', '-n', 'mesh', 'early', 'istio.io/dataplane-mode=none');
    const port = await freeLoopbackPort();
    const { child, exited } = spawnAgent(port);
    try {
      await until(
        'main.js ready',
        async () => (await getReady(port).catch(() => ({ status: 0 }))).status === 200,
      );
      expect(await rulesIn(early)).toEqual({ iptables: false, ipRule: false });
      // The ZDS server listens for the node's ztunnel (a SOCK_SEQPACKET socket).
      expect((await stat(path.join(dir, 'zds', 'ztunnel.sock'))).isSocket()).toBe(true);
      const late = await netns('late', '198.18.90.33');
      const uid = await createPod('mesh', 'late');
      const r = await runPlugin(
        binary,
        {
          CNI_COMMAND: 'ADD',
          CNI_CONTAINERID: 'c-late',
          CNI_NETNS: late.path,
          CNI_IFNAME: 'eth0',
          CNI_ARGS: `K8S_POD_NAMESPACE=mesh;K8S_POD_NAME=late;K8S_POD_UID=${uid}`,
        },
        pluginConf(socket),
      );
      expect(r.code).not.toBe(0);
      expect(r.json.details).toContain('CNI_ERR_ZTUNNEL');
      expect(await rulesIn(late)).toEqual({ iptables: true, ipRule: true });
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    const conf = JSON.parse(await readFile(path.join(dir, 'net.d/10-bridge.conflist'), 'utf8'));
    expect(conf.plugins.map((p: { type: string }) => p.type)).toEqual(['bridge', PLUGIN_TYPE]);
  });

  it('on SIGTERM with its DaemonSet deleted (an uninstall), the entry point takes the plugin out of the conflist and the bin dir', async () => {
    const port = await freeLoopbackPort();
    const { child, exited } = spawnAgent(port);
    try {
      await until(
        'main.js ready',
        async () => (await getReady(port).catch(() => ({ status: 0 }))).status === 200,
      );
      await kubectl('delete', 'daemonset', '-n', 'istio-system', 'ambient-cni-node');
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    const conf = JSON.parse(await readFile(path.join(dir, 'net.d/10-bridge.conflist'), 'utf8'));
    expect(conf.plugins.map((p: { type: string }) => p.type)).toEqual(['bridge']);
    await expect(stat(path.join(dir, 'bin', PLUGIN_TYPE))).rejects.toThrow(/ENOENT/);
  });
});

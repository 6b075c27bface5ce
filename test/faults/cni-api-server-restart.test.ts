/**
 * The CNI node agent while its API server restarts (root): plugin events for pods it already knows
 * are answered from its caches, a pod it cannot look up is refused (the plugin fails the ADD: fail
 * closed), and once the API server is back its watches resume, so a namespace labeled then captures
 * the running pod (real netns, real rules, ztunnel recorded).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CniApp, PLUGIN_TYPE, parseCniConfig } from '@ambient/cni';
import { loadKubeConfig } from '@ambient/controlplane';
import { KubeApiServer, kubeBinaries } from '@ambient/lab';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubePods, RecordingLink, rulesIn, until } from '../cni/kube-pods.js';
import { pluginBinary, runPlugin } from '../cni/plugin-binary.js';
import { PodNetns } from '../cni/pod-netns.js';

const isRoot = process.getuid?.() === 0;
const ROOT = path.resolve(import.meta.dirname, '../..');
const PREFIX = `r${process.pid % 100000}`;
const NODE = 'node-a';

describe.skipIf(!isRoot)('CNI node agent across an API server restart (root)', () => {
  let api: KubeApiServer;
  let pods: KubePods;
  let app: CniApp;
  let dir: string;
  let socket: string;
  let binary: string;
  let web: PodNetns;
  let ghost: PodNetns;
  let webUid: string;
  const link = new RecordingLink();

  const add = (name: string, namespace: string, netns: string) =>
    runPlugin(
      binary,
      {
        CNI_COMMAND: 'ADD',
        CNI_CONTAINERID: `c-${name}`,
        CNI_NETNS: netns,
        CNI_IFNAME: 'eth0',
        CNI_ARGS: `K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${name}`,
      },
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'k8s-pod-network',
        type: PLUGIN_TYPE,
        agent_socket: socket,
        exclude_namespaces: ['kube-system'],
        timeout_seconds: 20,
      }),
    );

  beforeAll(async () => {
    binary = await pluginBinary();
    api = await KubeApiServer.start({ binDir: await kubeBinaries(ROOT) });
    pods = new KubePods(api);
    await pods.namespace('demo');
    web = await PodNetns.create(`${PREFIX}web`, '198.18.91.10');
    ghost = await PodNetns.create(`${PREFIX}ghost`, '198.18.91.11');
    webUid = await pods.createPod('demo', 'web', NODE);
    await web.startProcess(webUid);
    if (!web.realCgroup) throw new Error('the cgroup v1 pids hierarchy is not writable here');
    await pods.patchRunning('demo', 'web', web.address);
    dir = await mkdtemp(path.join(tmpdir(), 'cni-restart-'));
    socket = path.join(dir, 'pluginevent.sock');
    await mkdir(path.join(dir, 'net.d'), { recursive: true });
    await writeFile(
      path.join(dir, 'net.d/10-bridge.conflist'),
      JSON.stringify({ cniVersion: '1.0.0', name: 'b', plugins: [{ type: 'bridge' }] }),
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
    await app.start();
  }, 180_000);

  afterAll(async () => {
    await app?.close();
    await web?.destroy();
    await ghost?.destroy();
    await api?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('serves known pods from its caches while the API server is down, refuses unknown ones, and resumes its watches when it is back', async () => {
    const down = Date.now();
    await api.stopApiServer();

    // Known, not enrolled: answered from the caches, the sandbox goes ahead uncaptured as it should.
    const known = await add('web', 'demo', web.path);
    expect(known.code, known.stderr).toBe(0);
    // Unknown to the caches and the API server cannot be asked: refused, the sandbox waits.
    const unknown = await add('ghost', 'demo', ghost.path);
    expect(unknown.code).not.toBe(0);
    expect(unknown.json.details).toContain('CNI_ERR_KUBE');
    expect(await rulesIn(ghost)).toEqual({ iptables: false, ipRule: false });

    await api.startApiServer();
    const back = Date.now();
    console.log(`API server down for ${back - down} ms`);

    await pods.kubectl('label', 'namespace', 'demo', 'istio.io/dataplane-mode=ambient');
    const labeled = Date.now();
    await until(
      'web captured after the restart',
      () => link.calls.some((c) => c.startsWith(`add ${webUid}`)),
      45_000,
    );
    console.log(`namespace labeled after the restart to pod captured: ${Date.now() - labeled} ms`);
    expect(await rulesIn(web)).toEqual({ iptables: true, ipRule: true });
  }, 90_000);
});

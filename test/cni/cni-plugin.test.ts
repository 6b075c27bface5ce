/**
 * The chained plugin binary, run as a container runtime runs it (CNI_* variables, the network
 * config with prevResult on stdin), against the agent's plugin event server on a temporary socket:
 * ADD waits for the agent's answer and passes the previous result through; every failure of the
 * agent fails the ADD (fail closed) with a CNI error on stdout.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type CaptureRules,
  NodeAgent,
  PluginEventServer,
  type PodView,
  type ZtunnelLink,
} from '@ambient/cni';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pluginBinary, runPlugin } from './plugin-binary.js';

const AMBIENT = { 'istio.io/dataplane-mode': 'ambient' };
const pod = (name: string, namespace: string, labels: Record<string, string> = {}): PodView => ({
  uid: `uid-${name}`,
  name,
  namespace,
  labels,
  annotations: {},
  hostNetwork: false,
  phase: 'Pending',
  ips: [],
  serviceAccount: 'default',
});

const PREV = {
  cniVersion: '1.0.0',
  interfaces: [{ name: 'eth0', sandbox: '/var/run/netns/cni-x' }],
  ips: [{ address: '10.244.0.7/24', gateway: '10.244.0.1', interface: 0 }],
  routes: [{ dst: '0.0.0.0/0' }],
};

let binary: string;
let dir: string;
let server: PluginEventServer;
let socket: string;
const added: string[] = [];
let ztunnelDown = false;
let slow: Promise<void> | undefined;

const conf = (over: Record<string, unknown> = {}) =>
  JSON.stringify({
    cniVersion: '1.0.0',
    name: 'k8s-pod-network',
    type: 'ambient-cni',
    agent_socket: socket,
    exclude_namespaces: ['kube-system'],
    timeout_seconds: 5,
    prevResult: PREV,
    ...over,
  });

const env = (podName: string, namespace: string, over: Record<string, string> = {}) => ({
  CNI_COMMAND: 'ADD',
  CNI_CONTAINERID: `c-${podName}`,
  CNI_NETNS: `/var/run/netns/cni-${podName}`,
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin',
  CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${podName};K8S_POD_INFRA_CONTAINER_ID=c-${podName};K8S_POD_UID=uid-${podName}`,
  ...over,
});

beforeAll(async () => {
  binary = await pluginBinary();
  dir = await mkdtemp(path.join(tmpdir(), 'cni-plugin-'));
  socket = path.join(dir, 'run/pluginevent.sock');
  const link: ZtunnelLink = {
    addWorkload: async (uid, netns) => {
      if (slow) await slow;
      if (ztunnelDown) throw new Error('no ztunnel connected');
      added.push(`${uid} ${netns}`);
    },
    removeWorkload: async () => {},
  };
  const capture: CaptureRules = { install: async () => {}, remove: async () => true };
  const pods = [pod('web', 'demo'), pod('plain', 'plain'), pod('solo', 'plain', AMBIENT)];
  const agent = new NodeAgent({
    link,
    capture,
    finder: { find: async () => new Map() },
    kube: {
      getPod: async (ns, name) => pods.find((p) => p.namespace === ns && p.name === name),
      getNamespaceLabels: async (name) => ({ demo: AMBIENT, plain: {} })[name],
    },
    logger: pino({ level: 'silent' }),
  });
  server = new PluginEventServer({
    socketPath: socket,
    logger: pino({ level: 'silent' }),
    onAdd: (ev) => agent.pluginAdd(ev),
  });
  await server.start();
}, 320_000);

afterAll(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('ambient-cni plugin binary', () => {
  it('ADD of an enrolled pod: the agent captured it before the plugin exits, and prevResult comes back unchanged', async () => {
    const r = await runPlugin(binary, env('web', 'demo'), conf());
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toEqual(PREV);
    expect(added).toContain('uid-web /var/run/netns/cni-web');
  });

  it('ADD of a pod the agent does not enroll succeeds and passes prevResult through', async () => {
    const before = server.answered.get(200) ?? 0;
    const r = await runPlugin(binary, env('plain', 'plain'), conf());
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toEqual(PREV);
    expect(server.answered.get(200)).toBe(before + 1);
    expect(added.some((a) => a.startsWith('uid-plain'))).toBe(false);
  });

  it('ADD puts the configuration version on the passed-through result', async () => {
    const r = await runPlugin(binary, env('solo', 'plain'), conf({ cniVersion: '0.4.0' }));
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toEqual({ ...PREV, cniVersion: '0.4.0' });
  });

  it('ADD without a previous result prints an empty result of the configuration version', async () => {
    const r = await runPlugin(binary, env('solo', 'plain'), conf({ prevResult: undefined }));
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toEqual({ cniVersion: '1.0.0' });
  });

  it('fail closed: ADD fails (code 11) when no agent listens on the socket', async () => {
    const r = await runPlugin(
      binary,
      env('web', 'demo'),
      conf({ agent_socket: path.join(dir, 'nobody.sock'), cniVersion: '0.4.0' }),
    );
    expect(r.code).not.toBe(0);
    // The error in the configuration's version, as the spec asks.
    expect(r.json).toMatchObject({ code: 11, cniVersion: '0.4.0' });
    expect(r.json.msg).toContain('node agent unreachable');
  });

  it('fail closed: ADD fails (code 999) when the agent refuses: ztunnel did not take the pod', async () => {
    ztunnelDown = true;
    try {
      // A new sandbox of the pod (a new netns): the agent must hand it to ztunnel again.
      const r = await runPlugin(
        binary,
        env('web', 'demo', { CNI_NETNS: '/var/run/netns/cni-web-2' }),
        conf(),
      );
      expect(r.code).not.toBe(0);
      expect(r.json).toMatchObject({ code: 999 });
      expect(r.json.msg).toContain('status 503');
      expect(r.json.details).toContain('CNI_ERR_ZTUNNEL');
    } finally {
      ztunnelDown = false;
    }
  });

  it('fail closed: ADD fails when the agent refuses a pod the API server does not have (404)', async () => {
    const r = await runPlugin(binary, env('ghost', 'demo'), conf());
    expect(r.code).not.toBe(0);
    expect(r.json.msg).toContain('status 404');
  });

  it('fail closed: ADD fails when the agent does not answer within timeout_seconds', async () => {
    let open: () => void = () => {};
    slow = new Promise<void>((r) => {
      open = r;
    });
    try {
      const r = await runPlugin(
        binary,
        env('web', 'demo', { CNI_NETNS: '/var/run/netns/slow' }),
        conf({ timeout_seconds: 0.5 }),
      );
      expect(r.code).not.toBe(0);
      expect(r.json).toMatchObject({ code: 11 });
    } finally {
      slow = undefined;
      open();
    }
  });

  it('ADD in an excluded namespace passes through without asking the agent', async () => {
    const r = await runPlugin(
      binary,
      env('coredns', 'kube-system'),
      conf({ agent_socket: path.join(dir, 'nobody.sock') }),
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toEqual(PREV);
  });

  it('ADD of a sandbox that is not a Kubernetes pod passes through without asking the agent', async () => {
    const r = await runPlugin(
      binary,
      env('x', 'y', { CNI_ARGS: 'IgnoreUnknown=1' }),
      conf({ agent_socket: path.join(dir, 'nobody.sock') }),
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toEqual(PREV);
  });

  it('malformed stdin fails with the decoding error code 6', async () => {
    for (const stdin of ['', '{"cniVersion":', 'not json']) {
      const r = await runPlugin(binary, env('web', 'demo'), stdin);
      expect(r.code).not.toBe(0);
      expect(r.json).toMatchObject({ code: 6 });
    }
  });

  it('an unsupported cniVersion fails with code 1; a missing CNI_COMMAND with code 4', async () => {
    const v = await runPlugin(binary, env('web', 'demo'), conf({ cniVersion: '0.1.0' }));
    expect(v.json).toMatchObject({ code: 1 });
    const { CNI_COMMAND: _, ...noCommand } = env('web', 'demo');
    const c = await runPlugin(binary, noCommand, conf());
    expect(c.code).not.toBe(0);
    expect(c.json).toMatchObject({ code: 4 });
  });

  it('DEL and CHECK succeed without output and without the agent; CHECK needs a prevResult', async () => {
    const nobody = path.join(dir, 'nobody.sock');
    const del = await runPlugin(
      binary,
      env('web', 'demo', { CNI_COMMAND: 'DEL' }),
      conf({ agent_socket: nobody }),
    );
    expect([del.code, del.stdout]).toEqual([0, '']);
    const check = await runPlugin(
      binary,
      env('web', 'demo', { CNI_COMMAND: 'CHECK' }),
      conf({ agent_socket: nobody }),
    );
    expect([check.code, check.stdout]).toEqual([0, '']);
    const bad = await runPlugin(
      binary,
      env('web', 'demo', { CNI_COMMAND: 'CHECK' }),
      conf({ prevResult: undefined }),
    );
    expect(bad.json).toMatchObject({ code: 7 });
  });

  it('the event socket is for root only (mode 0600): whoever posts names a netns and a pod identity', async () => {
    const { stat } = await import('node:fs/promises');
    expect((await stat(socket)).mode & 0o777).toBe(0o600);
  });

  it('VERSION lists the supported spec versions', async () => {
    const r = await runPlugin(binary, { CNI_COMMAND: 'VERSION' }, '');
    expect(r.code).toBe(0);
    expect(r.json.supportedVersions).toEqual(['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']);
  });

  it('the event server refuses a malformed event (400) and an oversized one (413) with the reason', async () => {
    const http = await import('node:http');
    const post = (body: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request({ socketPath: socket, path: '/cmdadd', method: 'POST' }, (res) => {
          let b = '';
          res.on('data', (c) => {
            b += c;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
        });
        req.on('error', reject);
        req.end(body);
      });
    const bad = await post('{"podName":"x"}');
    expect(bad.status).toBe(400);
    expect(bad.body).toContain('netns: is required');
    const big = await post(
      JSON.stringify({ netns: '/x', podName: 'a', podNamespace: 'b', pad: 'x'.repeat(70_000) }),
    );
    expect(big.status).toBe(413);
  });
});

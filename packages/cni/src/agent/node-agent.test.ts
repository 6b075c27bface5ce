import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { PodView } from '../enroll/enrollment.js';
import { NodeAgent } from './node-agent.js';
import type { WorkloadInfo, ZtunnelLink } from './ztunnel-link.js';

const AMBIENT = { 'istio.io/dataplane-mode': 'ambient' };

const pod = (name: string, over: Partial<PodView> = {}): PodView => ({
  uid: `uid-${name}`,
  name,
  namespace: 'demo',
  labels: {},
  annotations: {},
  hostNetwork: false,
  phase: 'Running',
  ips: ['10.0.0.5'],
  serviceAccount: 'sa1',
  ...over,
});

/** Records every call, in order, across the capture rules and the ztunnel link. */
class Recorder implements ZtunnelLink {
  readonly calls: string[] = [];
  /** While set, addWorkload rejects (no ztunnel). */
  ztunnelDown = false;
  /** While set, addWorkload waits for it. */
  gate: Promise<void> | undefined;
  readonly rules = new Set<string>();
  async addWorkload(uid: string, netnsPath: string, info: WorkloadInfo): Promise<void> {
    this.calls.push(`add ${uid} ${netnsPath} ${info.namespace}/${info.name} sa=${info.serviceAccount}`);
    if (this.gate) await this.gate;
    if (this.ztunnelDown) throw new Error('no ztunnel connected');
  }
  async removeWorkload(uid: string): Promise<void> {
    this.calls.push(`del ${uid}`);
  }
  readonly capture = {
    install: async (netns: string) => {
      this.calls.push(`install ${netns}`);
      this.rules.add(netns);
    },
    remove: async (netns: string) => {
      this.calls.push(`remove ${netns}`);
      return this.rules.delete(netns);
    },
  };
}

function setup(
  opts: {
    found?: Record<string, string>;
    apiPods?: PodView[];
    apiNamespaces?: Record<string, Record<string, string>>;
  } = {},
) {
  const rec = new Recorder();
  const scans: string[][] = [];
  const agent = new NodeAgent({
    link: rec,
    capture: rec.capture,
    finder: {
      find: async (wanted) => {
        scans.push([...wanted.keys()]);
        return new Map(
          [...wanted.keys()]
            .filter((uid) => opts.found?.[uid])
            .map((uid) => [uid, { netnsPath: opts.found?.[uid] as string }]),
        );
      },
    },
    kube: {
      getPod: async (ns, name) => opts.apiPods?.find((p) => p.namespace === ns && p.name === name),
      getNamespaceLabels: async (name) => opts.apiNamespaces?.[name],
    },
    logger: pino({ level: 'silent' }),
    retryInitialMs: 1,
    retryMaxMs: 20,
  });
  return { rec, agent, scans };
}

async function until(what: string, probe: () => boolean): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (probe()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('NodeAgent', () => {
  it('captures a running pod when its namespace is labeled: rules first, then ztunnel', async () => {
    const { rec, agent, scans } = setup({ found: { 'uid-a': '/proc/42/ns/net' } });
    agent.namespaceChanged('demo', {});
    agent.podChanged(pod('a'));
    await agent.enrollRunning();
    // Checked at start for rules a previous agent left (there were none).
    expect(rec.calls).toEqual(['remove /proc/42/ns/net']);
    agent.namespaceChanged('demo', AMBIENT);
    await until('add', () => rec.calls.length === 3);
    expect(rec.calls.slice(1)).toEqual([
      'install /proc/42/ns/net',
      'add uid-a /proc/42/ns/net demo/a sa=sa1',
    ]);
    // The netns found at start is kept: labeling needs no second scan.
    expect(scans).toEqual([['uid-a']]);
    expect(agent.capturedPods().get('uid-a')).toEqual({ netnsPath: '/proc/42/ns/net', linked: true });
  });

  it('releases it when the namespace label goes: rules removed first, then ztunnel told', async () => {
    const { rec, agent } = setup({ found: { 'uid-a': '/proc/42/ns/net' } });
    agent.namespaceChanged('demo', AMBIENT);
    agent.podChanged(pod('a'));
    await agent.enrollRunning();
    await until('add', () => rec.calls.length === 2);
    agent.namespaceChanged('demo', {});
    await until('del', () => rec.calls.length === 4);
    expect(rec.calls.slice(2)).toEqual(['remove /proc/42/ns/net', 'del uid-a']);
    expect(rec.rules.size).toBe(0);
    expect(agent.capturedPods().size).toBe(0);
  });

  it('a pod labeled none leaves the mesh while its namespace stays ambient', async () => {
    const { rec, agent } = setup({ found: { 'uid-a': '/n/a' } });
    agent.namespaceChanged('demo', AMBIENT);
    agent.podChanged(pod('a'));
    await agent.enrollRunning();
    await until('add', () => rec.calls.length === 2);
    agent.podChanged(pod('a', { labels: { 'istio.io/dataplane-mode': 'none' } }));
    await until('del', () => rec.calls.length === 4);
    expect(rec.calls.slice(2)).toEqual(['remove /n/a', 'del uid-a']);
  });

  it('fail closed: with ztunnel down the rules stay in place, and the hand-over is retried until one takes it', async () => {
    const { rec, agent } = setup({ found: { 'uid-a': '/n/a' } });
    rec.ztunnelDown = true;
    agent.namespaceChanged('demo', AMBIENT);
    agent.podChanged(pod('a'));
    await agent.enrollRunning();
    await until('three refused adds', () => rec.calls.filter((c) => c.startsWith('add')).length >= 3);
    expect(rec.rules.has('/n/a')).toBe(true);
    expect(rec.calls.filter((c) => c.startsWith('install'))).toEqual(['install /n/a']);
    expect(rec.calls.some((c) => c.startsWith('remove'))).toBe(false);
    expect(agent.capturedPods().get('uid-a')?.linked).toBe(false);
    rec.ztunnelDown = false;
    await until('linked', () => agent.capturedPods().get('uid-a')?.linked === true);
    expect(rec.rules.has('/n/a')).toBe(true);
    expect(agent.stats.failures).toBeGreaterThanOrEqual(3);
    agent.close();
  });

  it('a deleted pod is only taken back from ztunnel (its netns is gone)', async () => {
    const { rec, agent } = setup({ found: { 'uid-a': '/n/a' } });
    agent.namespaceChanged('demo', AMBIENT);
    agent.podChanged(pod('a'));
    await agent.enrollRunning();
    await until('add', () => rec.calls.length === 2);
    agent.podDeleted(pod('a'));
    await until('del', () => rec.calls.length === 3);
    expect(rec.calls[2]).toBe('del uid-a');
  });

  it('a finished pod is taken back without touching its rules', async () => {
    const { rec, agent } = setup({ found: { 'uid-a': '/n/a' } });
    agent.namespaceChanged('demo', AMBIENT);
    agent.podChanged(pod('a'));
    await agent.enrollRunning();
    await until('add', () => rec.calls.length === 2);
    agent.podChanged(pod('a', { phase: 'Succeeded' }));
    await until('del', () => rec.calls.length === 3);
    expect(rec.calls[2]).toBe('del uid-a');
  });

  it('an enrolled pod without a netns yet waits for its plugin event', async () => {
    const { rec, agent } = setup();
    agent.namespaceChanged('demo', AMBIENT);
    agent.podChanged(pod('a', { ips: [] }));
    await agent.enrollRunning();
    expect(rec.calls).toEqual([]);
    const reply = await agent.pluginAdd({
      netns: '/var/run/netns/cni-a',
      podName: 'a',
      podNamespace: 'demo',
      podUid: 'uid-a',
      ips: ['10.0.0.5'],
    });
    expect(reply).toEqual({ enrolled: true, reason: 'namespace_label' });
    expect(rec.calls).toEqual([
      'install /var/run/netns/cni-a',
      'add uid-a /var/run/netns/cni-a demo/a sa=sa1',
    ]);
  });

  it('a plugin event answers only after ztunnel acknowledged', async () => {
    const { rec, agent } = setup();
    agent.namespaceChanged('demo', AMBIENT);
    agent.podChanged(pod('a'));
    let open: () => void = () => {};
    rec.gate = new Promise<void>((r) => {
      open = r;
    });
    let answered = false;
    const p = agent
      .pluginAdd({ netns: '/n/a', podName: 'a', podNamespace: 'demo', podUid: '', ips: [] })
      .then((r) => {
        answered = true;
        return r;
      });
    await until('add asked', () => rec.calls.some((c) => c.startsWith('add')));
    await new Promise((r) => setTimeout(r, 50));
    expect(answered).toBe(false);
    open();
    await expect(p).resolves.toEqual({ enrolled: true, reason: 'namespace_label' });
  });

  it('a plugin event for a pod the informer has not delivered asks the API server', async () => {
    const { rec, agent } = setup({
      apiPods: [pod('new', { labels: AMBIENT, namespace: 'other' })],
      apiNamespaces: { other: {} },
    });
    const reply = await agent.pluginAdd({
      netns: '/n/new',
      podName: 'new',
      podNamespace: 'other',
      podUid: 'uid-new',
      ips: [],
    });
    expect(reply).toEqual({ enrolled: true, reason: 'pod_label' });
    expect(rec.calls).toEqual(['install /n/new', 'add uid-new /n/new other/new sa=sa1']);
  });

  it('a plugin event for a pod not to be captured touches nothing', async () => {
    const { rec, agent } = setup({ apiPods: [pod('plain')], apiNamespaces: { demo: {} } });
    const reply = await agent.pluginAdd({
      netns: '/n/p',
      podName: 'plain',
      podNamespace: 'demo',
      podUid: '',
      ips: [],
    });
    expect(reply).toEqual({ enrolled: false, reason: 'not_selected' });
    expect(rec.calls).toEqual([]);
  });

  it('a plugin event fails when ztunnel does not take the pod, and the rules stay', async () => {
    const { rec, agent } = setup();
    rec.ztunnelDown = true;
    agent.namespaceChanged('demo', AMBIENT);
    agent.podChanged(pod('a', { ips: [] }));
    await expect(
      agent.pluginAdd({ netns: '/n/a', podName: 'a', podNamespace: 'demo', podUid: '', ips: [] }),
    ).rejects.toMatchObject({
      code: 'CNI_ERR_ZTUNNEL',
    });
    expect(rec.rules.has('/n/a')).toBe(true);
    agent.close();
  });

  it('refuses a plugin event for an unknown pod, or one whose UID differs', async () => {
    const { agent } = setup({ apiPods: [pod('a')], apiNamespaces: { demo: AMBIENT } });
    await expect(
      agent.pluginAdd({ netns: '/n', podName: 'ghost', podNamespace: 'demo', podUid: '', ips: [] }),
    ).rejects.toMatchObject({
      code: 'CNI_ERR_POD_UNKNOWN',
    });
    await expect(
      agent.pluginAdd({ netns: '/n', podName: 'a', podNamespace: 'demo', podUid: 'other', ips: [] }),
    ).rejects.toMatchObject({
      code: 'CNI_ERR_POD_MISMATCH',
    });
  });

  it('a pod re-created with a new netns is installed there and handed over again', async () => {
    const { rec, agent } = setup();
    agent.namespaceChanged('demo', AMBIENT);
    agent.podChanged(pod('a', { ips: [] }));
    await agent.pluginAdd({ netns: '/n/1', podName: 'a', podNamespace: 'demo', podUid: '', ips: [] });
    await agent.pluginAdd({ netns: '/n/2', podName: 'a', podNamespace: 'demo', podUid: '', ips: [] });
    expect(rec.calls).toEqual([
      'install /n/1',
      'add uid-a /n/1 demo/a sa=sa1',
      'install /n/2',
      'add uid-a /n/2 demo/a sa=sa1',
    ]);
  });

  it('at start, removes the rules a previous agent left in a pod that is no longer enrolled, and only there', async () => {
    const { rec, agent, scans } = setup({
      found: { 'uid-a': '/n/a', 'uid-none': '/n/none', 'uid-side': '/n/side', 'uid-host': '/n/host' },
    });
    for (const n of ['/n/a', '/n/none', '/n/side', '/n/host']) rec.rules.add(n);
    agent.namespaceChanged('demo', {});
    agent.podChanged(pod('a'));
    agent.podChanged(pod('none', { labels: { 'istio.io/dataplane-mode': 'none' } }));
    agent.podChanged(pod('side', { annotations: { 'sidecar.istio.io/status': '{}' } }));
    agent.podChanged(pod('host', { hostNetwork: true }));
    await agent.enrollRunning();
    expect(scans).toEqual([['uid-a', 'uid-none']]);
    expect(rec.calls.sort()).toEqual(['remove /n/a', 'remove /n/none']);
    expect([...rec.rules].sort()).toEqual(['/n/host', '/n/side']);
  });
});

import type { ChildProcess } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyManifests, Lab, LabMesh, type LabPod } from '@ambient/lab';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrolledUids } from '../ztunnel-dump.js';

const isRoot = process.getuid?.() === 0;
const prefix = `r${process.pid % 100_000}`;
const HTTP_ECHO = `require('http').createServer((q,r)=>r.end('echo saw '+q.socket.remoteAddress.replace('::ffff:',''))).listen(8080,'0.0.0.0',()=>console.log('ready'))`;
const ECHO_UID = 'Kubernetes//Pod/demo/echo';

/**
 * The node agent of the destination's node is stopped, killed and restarted under a STRICT
 * namespace: its pods stay captured while it is away (fail closed), come back exactly once per
 * rule after any number of restarts, and are released cleanly when un-enrolled, also while it
 * was down.
 */
describe.skipIf(!isRoot)('node agent restarts and kills (root)', () => {
  let lab: Lab;
  let mesh: LabMesh;

  const curl = async (pod: LabPod, url: string) => {
    const r = await lab.exec(pod, ['curl', '-s', '--max-time', '2', url]);
    return r.code === 0 ? r.stdout : `curl exit ${r.code}`;
  };
  const echoUrl = () => `http://${lab.pod('demo', 'echo').ip}:8080/`;
  const enrolled = async (node: number) => {
    const dump = await mesh.configDump(node).catch(() => undefined);
    return dump ? enrolledUids(dump) : ['unreachable'];
  };
  /** What of the capture rule set the echo pod holds. */
  const rulesInEcho = async () => {
    const echo = lab.pod('demo', 'echo');
    const saved = (await lab.exec(echo, ['iptables-save'])).stdout;
    const rules = (await lab.exec(echo, ['ip', 'rule', 'show'])).stdout;
    const tables = Object.fromEntries(
      saved.split(/^\*/m).map((t) => [t.split('\n')[0], t.split('\n')] as const),
    ) as Record<string, string[] | undefined>;
    const jumps = (table: string, line: string) => (tables[table] ?? []).filter((l) => l === line).length;
    return {
      natPrerouting: jumps('nat', '-A PREROUTING -j ISTIO_PRERT'),
      natOutput: jumps('nat', '-A OUTPUT -j ISTIO_OUTPUT'),
      manglePrerouting: jumps('mangle', '-A PREROUTING -j ISTIO_PRERT'),
      mangleOutput: jumps('mangle', '-A OUTPUT -j ISTIO_OUTPUT'),
      fwmarkRules: rules.split('\n').filter((l) => /fwmark 0x111\/0xfff lookup 100/.test(l)).length,
      istio: saved.includes('ISTIO'),
    };
  };
  const ONE_OF_EACH = {
    natPrerouting: 1,
    natOutput: 1,
    manglePrerouting: 1,
    mangleOutput: 1,
    fwmarkRules: 1,
    istio: true,
  };
  const NONE = {
    natPrerouting: 0,
    natOutput: 0,
    manglePrerouting: 0,
    mangleOutput: 0,
    fwmarkRules: 0,
    istio: false,
  };

  beforeAll(async () => {
    lab = await Lab.create(prefix, {
      nodes: 2,
      pods: [
        { name: 'sleep', namespace: 'demo', node: 0, serviceAccount: 'sleep', labels: { app: 'sleep' } },
        { name: 'echo', namespace: 'demo', node: 1, serviceAccount: 'echo', labels: { app: 'echo' } },
        { name: 'legacy', namespace: 'outside', node: 0, labels: { app: 'legacy' } },
      ],
      services: [],
    });
    const app = lab.start(lab.pod('demo', 'echo').netns, [process.execPath, '-e', HTTP_ECHO]);
    await new Promise((resolve) => app.stdout?.once('data', resolve));
    mesh = new LabMesh(lab, {
      dir: await mkdtemp(join(tmpdir(), 'fault-restart-')),
      enrolledNamespaces: ['demo'],
    });
    await mesh.start();
    await applyManifests(
      mesh.manifestDir,
      JSON.stringify({
        apiVersion: 'security.istio.io/v1',
        kind: 'PeerAuthentication',
        metadata: { name: 'strict', namespace: 'demo' },
        spec: { mtls: { mode: 'STRICT' } },
      }),
    );
  }, 60_000);

  afterAll(async () => {
    await lab?.destroy();
  });

  it('while the node agent is stopped (SIGTERM), plaintext to a STRICT pod fails instead of reaching the app; after restart mesh traffic works', async () => {
    const sleep = lab.pod('demo', 'sleep');
    const legacy = lab.pod('outside', 'legacy');
    // STRICT in force: plaintext from outside the mesh is refused while the agent runs.
    await expect
      .poll(() => curl(legacy, echoUrl()), { timeout: 15_000, interval: 100 })
      .toMatch(/^curl exit/);
    expect(await curl(sleep, echoUrl())).toBe(`echo saw ${sleep.ip}`);

    await mesh.stopNodeAgent(1, 'SIGTERM');
    const whileDown = await curl(legacy, echoUrl());
    expect(whileDown).not.toContain('echo saw');
    expect(whileDown).toMatch(/^curl exit/);
    expect(await curl(sleep, echoUrl())).toMatch(/^curl exit/);
    expect(await rulesInEcho()).toEqual(ONE_OF_EACH);

    const startedAt = Date.now();
    mesh.startNodeAgent(1);
    await mesh.waitNodeAgentReady(1);
    console.log(`SIGTERM restart: ready ${Date.now() - startedAt} ms after start`);
    expect(await curl(sleep, echoUrl())).toBe(`echo saw ${sleep.ip}`);
    expect(await curl(legacy, echoUrl())).toMatch(/^curl exit/);
    expect(await rulesInEcho()).toEqual(ONE_OF_EACH);
  });

  it('after kill -9 and restart, three times, the pod is served again with exactly one copy of each rule and without a config push', async () => {
    const sleep = lab.pod('demo', 'sleep');
    for (let round = 1; round <= 3; round++) {
      const killedAt = Date.now();
      await mesh.stopNodeAgent(1, 'SIGKILL');
      expect(await rulesInEcho()).toEqual(ONE_OF_EACH);
      mesh.startNodeAgent(1);
      let readyAt = 0;
      let servedAt = 0;
      const deadline = Date.now() + 20_000;
      while ((readyAt === 0 || servedAt === 0) && Date.now() < deadline) {
        if (readyAt === 0 && (await mesh.ready(1))) readyAt = Date.now();
        if (servedAt === 0 && (await curl(sleep, echoUrl())) === `echo saw ${sleep.ip}`)
          servedAt = Date.now();
      }
      const since = (t: number) => (t === 0 ? 'never (20 s)' : `${t - killedAt} ms`);
      console.log(
        `kill -9 round ${round}: kill to ready ${since(readyAt)}, kill to first successful request ${since(servedAt)}`,
      );
      expect(readyAt).toBeGreaterThan(0);
      expect(servedAt).toBeGreaterThan(0);
      expect(await mesh.readiness(1)).toBe('ready');
      expect(await enrolled(1)).toEqual([ECHO_UID]);
      expect(await rulesInEcho()).toEqual(ONE_OF_EACH);
    }
  }, 90_000);

  it('readiness names a pod that cannot be served, and the enrollment is retried until it is, without a config push', async () => {
    const echo = lab.pod('demo', 'echo');
    const sleep = lab.pod('demo', 'sleep');
    await mesh.stopNodeAgent(1, 'SIGKILL');
    // Something else holds the outbound capture port in the pod: the node agent cannot bind it.
    const squatter: ChildProcess = lab.start(echo.netns, [
      process.execPath,
      '-e',
      `require('net').createServer().listen(15001,'0.0.0.0',()=>console.log('ready'))`,
    ]);
    await new Promise((resolve) => squatter.stdout?.once('data', resolve));
    mesh.startNodeAgent(1);
    await expect
      .poll(() => mesh.readiness(1), { timeout: 20_000, interval: 100 })
      .toBe('not ready, pending: pod demo/echo');
    expect(await enrolled(1)).toEqual([]);
    // The dump names it as upstream's does a pod whose proxy is not up: Pending.
    expect(
      ((await mesh.configDump(1)).workloadState as Record<string, { state: string }>)[ECHO_UID]?.state,
    ).toBe('Pending');
    // Not served, still captured: a STRICT pod's traffic is refused, not let through.
    expect(await curl(lab.pod('outside', 'legacy'), echoUrl())).toMatch(/^curl exit/);
    expect(await rulesInEcho()).toEqual(ONE_OF_EACH);

    const freedAt = Date.now();
    const gone = new Promise((resolve) => squatter.once('exit', resolve));
    squatter.kill('SIGKILL');
    await gone;
    await expect.poll(() => mesh.ready(1), { timeout: 20_000, interval: 50 }).toBe(true);
    console.log(
      `blocked enrollment: ready ${Date.now() - freedAt} ms after the port was freed (retry backoff)`,
    );
    expect(await enrolled(1)).toEqual([ECHO_UID]);
    expect(await curl(sleep, echoUrl())).toBe(`echo saw ${sleep.ip}`);
  });

  it('un-enrolling after a kill -9/restart cycle restores plain networking, with no rules left', async () => {
    const legacy = lab.pod('outside', 'legacy');
    await mesh.setEnrolled('demo', false);
    await expect.poll(() => enrolled(1), { timeout: 15_000, interval: 50 }).toEqual([]);
    await expect.poll(() => rulesInEcho(), { timeout: 10_000, interval: 100 }).toEqual(NONE);
    expect(await curl(legacy, echoUrl())).toBe(`echo saw ${legacy.ip}`);
  });

  it('un-enrolling while the node agent is down is cleaned up when it starts', async () => {
    const sleep = lab.pod('demo', 'sleep');
    const legacy = lab.pod('outside', 'legacy');
    await mesh.setEnrolled('demo', true);
    await expect.poll(() => enrolled(1), { timeout: 15_000, interval: 50 }).toEqual([ECHO_UID]);
    expect(await rulesInEcho()).toEqual(ONE_OF_EACH);

    await mesh.stopNodeAgent(1, 'SIGKILL');
    await mesh.setEnrolled('demo', false);
    // The control plane has pushed it: node0's agent released its pod.
    await expect.poll(() => enrolled(0), { timeout: 15_000, interval: 50 }).toEqual([]);
    expect(await rulesInEcho()).toEqual(ONE_OF_EACH);

    const startedAt = Date.now();
    mesh.startNodeAgent(1);
    await mesh.waitNodeAgentReady(1);
    await expect.poll(() => rulesInEcho(), { timeout: 10_000, interval: 100 }).toEqual(NONE);
    console.log(`stale rules removed ${Date.now() - startedAt} ms after the node agent started`);
    expect(await enrolled(1)).toEqual([]);
    expect(await curl(legacy, echoUrl())).toBe(`echo saw ${legacy.ip}`);
    expect(await curl(sleep, echoUrl())).toBe(`echo saw ${sleep.ip}`);
  });
});

import type { ChildProcess } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyManifests, deleteManifest, Lab, LabMesh, type LabPod } from '@ambient/lab';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrolledUids, type ZtunnelDump } from '../ztunnel-dump.js';

const isRoot = process.getuid?.() === 0;
const prefix = `c${process.pid % 100_000}`;
const CONTROLPLANE = fileURLToPath(new URL('../../packages/controlplane/dist/index.js', import.meta.url));
const SHARED = fileURLToPath(new URL('../../packages/shared/dist/index.js', import.meta.url));
const HTTP_ECHO = (name: string) =>
  `require('http').createServer((q,r)=>r.end('${name} saw '+q.socket.remoteAddress.replace('::ffff:',''))).listen(8080,'0.0.0.0',()=>console.log('ready'))`;

/**
 * The real control plane, started in a child process, that also publishes one Address the node
 * agents cannot accept (tunnel protocol 2, unknown to this ztunnel), as a newer control plane
 * would. Prints the server's view of its connections once both proxies have NACKed it.
 */
const SKEWED_CONTROL_PLANE = `
const { ControlPlaneApp, parseControlPlaneConfig, ResourceEncoder } = await import(${JSON.stringify(CONTROLPLANE)});
const { ADDRESS_CODEC, ADDRESS_TYPE_URL } = await import(${JSON.stringify(SHARED)});
const { pino } = await import('pino');
const app = new ControlPlaneApp({ config: parseControlPlaneConfig(process.env).value, logger: pino({ level: 'silent' }) });
await app.start();
const ads = app.adsServer;
while (ads.connectionCount() < 2 || ads.dump().some((c) => c.acks < 2)) await new Promise((r) => setTimeout(r, 20));
const enc = new ResourceEncoder(ADDRESS_CODEC);
const name = 'Kubernetes//Pod/demo/from-the-future';
const bad = enc.encode(name, { workload: { uid: name, name: 'from-the-future', namespace: 'demo', addresses: [Buffer.from([198, 18, 99, 1])], tunnelProtocol: 3 } });
ads.publish(new Map([[ADDRESS_TYPE_URL, new Map([...ads.snapshot(ADDRESS_TYPE_URL), [name, bad]])]]));
while (ads.dump().filter((c) => c.nacks > 0).length < 2) await new Promise((r) => setTimeout(r, 20));
console.log('DUMP ' + JSON.stringify(ads.dump()));
`;

describe.skipIf(!isRoot)('control plane in the lab: enrollment by label, NACKs, outages (root)', () => {
  let lab: Lab;
  let mesh: LabMesh;

  const curl = async (pod: LabPod, url: string) => {
    const r = await lab.exec(pod, ['curl', '-s', '--max-time', '3', url]);
    return r.code === 0 ? r.stdout : `curl exit ${r.code}`;
  };
  const enrolled = async (node: number) => enrolledUids(await mesh.configDump(node));

  /** Captures the service network at node0's port while `action` runs; returns the packets as text. */
  const capture = async (
    action: () => Promise<void>,
  ): Promise<{ summary: string; payload: string; notHbone: string }> => {
    const dir = await mkdtemp(join(tmpdir(), 'cp-pcap-'));
    const pcap = join(dir, 'fabric.pcap');
    const dump = lab.start(`${prefix}-net`, [
      'tcpdump',
      '--immediate-mode',
      '-i',
      `${prefix}n0`,
      '-U',
      '-n',
      '-w',
      pcap,
      'tcp',
    ]);
    await new Promise((resolve) => dump.stderr?.once('data', resolve));
    await action();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const stopped = new Promise((resolve) => dump.once('exit', resolve));
    dump.kill('SIGINT');
    await stopped;
    const node = { netns: lab.nodes[0]?.netns } as LabPod;
    // Port 15012 is the control plane's own (xDS, CA) traffic: leave it out.
    const read = async (args: string[]) =>
      (await lab.exec(node, ['tcpdump', '-n', ...args, '-r', pcap, 'not port 15012'])).stdout;
    return {
      summary: await read([]),
      payload: await read(['-A']),
      notHbone: (await lab.exec(node, ['tcpdump', '-n', '-r', pcap, 'not port 15008 and not port 15012']))
        .stdout,
    };
  };

  beforeAll(async () => {
    lab = await Lab.create(prefix, {
      nodes: 2,
      pods: [
        { name: 'sleep', namespace: 'demo', node: 0, serviceAccount: 'sleep', labels: { app: 'sleep' } },
        { name: 'echo', namespace: 'demo', node: 1, serviceAccount: 'echo', labels: { app: 'echo' } },
      ],
      services: [
        {
          name: 'echo',
          namespace: 'demo',
          selector: { app: 'echo' },
          ports: [{ port: 80, targetPort: 8080 }],
        },
      ],
    });
    const app = lab.start(lab.pod('demo', 'echo').netns, [process.execPath, '-e', HTTP_ECHO('echo')]);
    await new Promise((resolve) => app.stdout?.once('data', resolve));
    mesh = new LabMesh(lab, { dir: await mkdtemp(join(tmpdir(), 'cp-lab-')), enrolledNamespaces: [] });
    await mesh.start();
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  it('labelling the namespace enrolls its pods live, and removing the label un-enrolls them, checked on the wire', async () => {
    const sleep = lab.pod('demo', 'sleep');
    const url = 'http://echo.demo.svc.cluster.local/';
    const before = await capture(async () => {
      expect(await curl(sleep, `${url}PLAIN-MARKER-1`)).toBe(`echo saw ${sleep.ip}`);
    });
    expect(before.payload).toContain('PLAIN-MARKER-1');
    expect(before.summary).not.toContain('.15008');

    const labelledAt = Date.now();
    await mesh.setEnrolled('demo', true);
    await expect
      .poll(() => enrolled(0), { timeout: 10_000, interval: 20 })
      .toEqual(['Kubernetes//Pod/demo/sleep']);
    await expect
      .poll(() => enrolled(1), { timeout: 10_000, interval: 20 })
      .toEqual(['Kubernetes//Pod/demo/echo']);
    console.log(
      `enrollment reached both node agents ${Date.now() - labelledAt} ms after the label was written`,
    );
    const after = await capture(async () => {
      expect(await curl(sleep, `${url}MTLS-MARKER-2`)).toBe(`echo saw ${sleep.ip}`);
    });
    expect(after.summary).toContain('.15008');
    expect(after.notHbone.trim()).toBe('');
    expect(after.payload).not.toContain('MTLS-MARKER-2');
    expect(await mesh.metrics(1)).toMatch(
      /istio_tcp_connections_opened_total\{reporter="destination",source_workload="sleep",[^}]*connection_security_policy="mutual_tls"\} 1/,
    );

    await mesh.setEnrolled('demo', false);
    await expect.poll(() => enrolled(0), { timeout: 10_000, interval: 20 }).toEqual([]);
    await expect.poll(() => enrolled(1), { timeout: 10_000, interval: 20 }).toEqual([]);
    const again = await capture(async () => {
      expect(await curl(sleep, `${url}PLAIN-MARKER-3`)).toBe(`echo saw ${sleep.ip}`);
    });
    expect(again.payload).toContain('PLAIN-MARKER-3');
    await mesh.setEnrolled('demo', true);
    await expect
      .poll(() => enrolled(1), { timeout: 10_000, interval: 20 })
      .toEqual(['Kubernetes//Pod/demo/echo']);
  });

  it('keeps serving while the control plane is away, and applies a policy changed after it returns', async () => {
    const sleep = lab.pod('demo', 'sleep');
    const url = 'http://echo.demo.svc.cluster.local/';
    await mesh.stopControlPlane();
    for (let i = 0; i < 3; i++) expect(await curl(sleep, url)).toBe(`echo saw ${sleep.ip}`);
    expect(await mesh.ready(0)).toBe(true);
    await mesh.startControlPlane();
    const deny = {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'deny-sleep', namespace: 'demo' },
      spec: {
        selector: { matchLabels: { app: 'echo' } },
        action: 'DENY',
        rules: [{ from: [{ source: { principals: ['cluster.local/ns/demo/sa/sleep'] } }] }],
      },
    };
    await applyManifests(mesh.manifestDir, JSON.stringify(deny));
    await expect.poll(() => curl(sleep, url), { timeout: 15_000, interval: 100 }).toMatch(/^curl exit/);
    const dump = await mesh.configDump(1);
    expect((dump.policies as Array<{ name: string }>).map((p) => p.name)).toContain('deny-sleep');
    await deleteManifest(mesh.manifestDir, {
      kind: 'AuthorizationPolicy',
      namespace: 'demo',
      name: 'deny-sleep',
    });
    await expect
      .poll(() => curl(sleep, url), { timeout: 15_000, interval: 100 })
      .toBe(`echo saw ${sleep.ip}`);
  });

  it('an invalid resource from the control plane is NACKed, recorded on both sides, and traffic keeps flowing', async () => {
    const sleep = lab.pod('demo', 'sleep');
    await mesh.stopControlPlane();
    const skewed: ChildProcess = lab.start(
      lab.nodes[0]?.netns as string,
      [process.execPath, '--input-type=module', '-e', SKEWED_CONTROL_PLANE],
      mesh.controlPlaneEnv(),
    );
    let stderr = '';
    skewed.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    try {
      let stdout = '';
      const line = await new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no NACKs within 20 s: ${stderr}`)), 20_000);
        skewed.stdout?.on('data', (d: Buffer) => {
          stdout += d.toString();
          const dump = /^DUMP (.*)$/m.exec(stdout)?.[1];
          if (dump) {
            clearTimeout(t);
            resolve(dump);
          }
        });
      });
      const server = JSON.parse(line) as Array<{
        node: string;
        nacks: number;
        lastNack?: { message: string };
      }>;
      expect(server.map((c) => c.node).sort()).toEqual(['node0', 'node1']);
      for (const c of server) {
        expect(c.lastNack?.message).toBe(
          'Kubernetes//Pod/demo/from-the-future: workload.tunnel_protocol: 3 is not NONE or HBONE',
        );
      }
      for (const node of [0, 1]) {
        const xds = ((await mesh.configDump(node)) as unknown as ZtunnelDump).agentState.xds;
        expect(xds?.rejections.at(-1)?.message).toBe(server[0]?.lastNack?.message);
      }
      expect(await curl(sleep, 'http://echo.demo.svc.cluster.local/')).toBe(`echo saw ${sleep.ip}`);
    } finally {
      const exited = new Promise((resolve) => skewed.once('exit', resolve));
      skewed.kill('SIGTERM');
      await exited;
      await mesh.startControlPlane();
    }
    expect(await curl(sleep, 'http://echo.demo.svc.cluster.local/')).toBe(`echo saw ${sleep.ip}`);
  });
});

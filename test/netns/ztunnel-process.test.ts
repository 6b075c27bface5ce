import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab, type LabPod } from '@ambient/lab';
import { LocalCa } from '@ambient/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { enrolledUids } from '../ztunnel-dump.js';

const isRoot = process.getuid?.() === 0;
const prefix = `p${process.pid % 100_000}`;
const ZTUNNEL = fileURLToPath(new URL('../../packages/ztunnel/dist/main.js', import.meta.url));
const HTTP_ECHO = (name: string) =>
  `require('http').createServer((q,r)=>r.end('${name} saw '+q.socket.remoteAddress.replace('::ffff:',''))).listen(8080,'0.0.0.0',()=>console.log('ready '+process.pid))`;

describe.skipIf(!isRoot)('ztunnel processes on a two-node lab (root)', () => {
  let lab: Lab;
  let dir: string;
  const ztunnels: Array<ChildProcess | undefined> = [];
  let legacyPid = '';

  const configFile = () => join(dir, 'ztunnel.yaml');
  const workload = (p: LabPod, protocol: 'HBONE' | 'TCP') => ({
    uid: `lab//v1/Pod/${p.namespace}/${p.name}`,
    name: p.name,
    namespace: p.namespace,
    serviceAccount: p.serviceAccount,
    workloadIps: [p.ip],
    protocol,
    node: `node${p.node}`,
    netns: p.netns,
    ...(p.name === 'echo' && { services: { 'demo/echo.demo.svc.cluster.local': { 80: 8080 } } }),
  });
  const writeConfig = async (legacyEnrolled: boolean) => {
    const svc = lab.service('demo', 'echo');
    await writeFile(
      configFile(),
      stringify({
        workloads: [
          workload(lab.pod('demo', 'sleep'), 'HBONE'),
          workload(lab.pod('demo', 'echo'), 'HBONE'),
          workload(lab.pod('demo', 'legacy'), legacyEnrolled ? 'HBONE' : 'TCP'),
          workload(lab.pod('other', 'bystander'), 'TCP'),
        ],
        services: [
          {
            name: 'echo',
            namespace: 'demo',
            hostname: 'echo.demo.svc.cluster.local',
            vips: [`/${svc.vip}`],
            ports: { 80: 8080 },
          },
        ],
      }),
    );
  };
  const inNode = (node: number, cmd: string[]) => lab.exec({ netns: lab.nodes[node]?.netns } as LabPod, cmd);
  const scrape = async (node: number, path = '/metrics') =>
    (await inNode(node, ['curl', '-s', `http://${lab.nodes[node]?.ip}:15020${path}`])).stdout;
  const startZtunnel = async (node: number) => {
    const child = lab.start(lab.nodes[node]?.netns as string, [process.execPath, ZTUNNEL], {
      ZT_NODE_NAME: `node${node}`,
      ZT_CONFIG_FILE: configFile(),
      ZT_CA_DIR: join(dir, 'ca'),
      ZT_METRICS_ADDRESS: lab.nodes[node]?.ip as string,
      ZT_LOG_LEVEL: 'warn',
    });
    child.stderr?.on('data', (d: Buffer) => process.stderr.write(`[ztunnel node${node}] ${d}`));
    ztunnels[node] = child;
    // Bounded wait for readiness (20 s).
    for (let i = 0; i < 200; i++) {
      const r = await inNode(node, ['curl', '-s', `http://${lab.nodes[node]?.ip}:15021/healthz/ready`]);
      if (r.stdout === 'ready\n') return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`ztunnel on node${node} did not become ready`);
  };
  const curl = async (pod: string, url: string) => {
    const r = await lab.exec(lab.pod('demo', pod), ['curl', '-s', '--max-time', '5', url]);
    return r.code === 0 ? r.stdout : `curl exit ${r.code}`;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'zt-e2e-'));
    lab = await Lab.create(prefix, {
      nodes: 2,
      pods: [
        { name: 'sleep', namespace: 'demo', node: 0, serviceAccount: 'sleep', labels: { app: 'sleep' } },
        { name: 'echo', namespace: 'demo', node: 1, serviceAccount: 'echo', labels: { app: 'echo' } },
        { name: 'legacy', namespace: 'demo', node: 0, serviceAccount: 'legacy', labels: { app: 'legacy' } },
        {
          name: 'bystander',
          namespace: 'other',
          node: 1,
          serviceAccount: 'bystander',
          labels: { app: 'bystander' },
        },
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
    for (const name of ['echo', 'legacy']) {
      const app = lab.start(lab.pod('demo', name).netns, [process.execPath, '-e', HTTP_ECHO(name)]);
      const line = await new Promise<string>((resolve) =>
        app.stdout?.once('data', (d: Buffer) => resolve(d.toString())),
      );
      if (name === 'legacy') legacyPid = line.trim().split(' ')[1] ?? '';
    }
    // One root for the lab, created before the node agents share it.
    await LocalCa.loadOrCreate(join(dir, 'ca'), { trustDomain: 'cluster.local' });
    await writeConfig(false);
    await startZtunnel(0);
    await startZtunnel(1);
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  it('curl by service name crosses nodes through both ztunnels, counted by the destination ztunnel', async () => {
    expect(await curl('sleep', 'http://echo.demo.svc.cluster.local/')).toBe(
      `echo saw ${lab.pod('demo', 'sleep').ip}`,
    );
    const metrics = await scrape(1);
    expect(metrics).toMatch(
      /istio_tcp_connections_opened_total\{reporter="destination",source_workload="sleep",[^}]*connection_security_policy="mutual_tls"\} 1/,
    );
    expect(metrics).toContain('process_resident_memory_bytes');
    // Istio's scrape path serves the same exposition.
    expect(await scrape(1, '/stats/prometheus')).toMatch(
      /istio_tcp_connections_opened_total\{reporter="destination",source_workload="sleep",[^}]*connection_security_policy="mutual_tls"\} 1/,
    );
  });

  it('the service network carries only TLS to port 15008, never the request bytes', async () => {
    const pcap = join(dir, 'fabric.pcap');
    const fabric = `${prefix}-net`;
    // A bridge device sees only its own traffic: capture on node0's port of the service network,
    // in immediate mode so that packets are not held in capture blocks when tcpdump stops.
    const dump = lab.start(fabric, [
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
    const started = new Promise((resolve) => dump.stderr?.once('data', resolve)); // "listening on br0"
    await started;
    const marker = 'PLAINTEXT-MARKER-7f3a9';
    expect(await curl('sleep', `http://echo.demo.svc.cluster.local/${marker}`)).toBe(
      `echo saw ${lab.pod('demo', 'sleep').ip}`,
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    const stopped = new Promise((resolve) => dump.once('exit', resolve));
    dump.kill('SIGINT');
    await stopped;
    const read = await inNode(0, ['tcpdump', '-n', '-r', pcap]);
    const all = read.stdout;
    const notHbone = (await inNode(0, ['tcpdump', '-n', '-r', pcap, 'not port 15008'])).stdout;
    const payload = (await inNode(0, ['tcpdump', '-n', '-A', '-r', pcap])).stdout;
    expect(all.split('\n').filter(Boolean).length).toBeGreaterThan(5);
    expect(all).toContain('.15008');
    expect(notHbone.trim()).toBe('');
    expect(payload).not.toContain(marker);
    expect(payload).not.toContain('echo saw');
  });

  it('refuses a malformed config file, reports it, and keeps traffic flowing', async () => {
    // Written whole (staged, then renamed), so the agent never reads a half-written file.
    await writeFile(
      `${configFile()}.tmp`,
      'workloads: [{name: broken, namespace: demo, workloadIps: [not-an-ip]}]\n',
    );
    await rename(`${configFile()}.tmp`, configFile());
    await expect
      .poll(
        async () =>
          JSON.parse((await inNode(0, ['curl', '-s', 'http://127.0.0.1:15000/config_dump'])).stdout)
            .agentState.configRejections,
        {
          timeout: 10_000,
        },
      )
      .toBeGreaterThanOrEqual(1);
    const dump = JSON.parse((await inNode(0, ['curl', '-s', 'http://127.0.0.1:15000/config_dump'])).stdout);
    expect(dump.agentState.lastConfigProblems[0].path).toBe('workloads[0].workloadIps[0]');
    expect(enrolledUids(dump)).toEqual(['lab//v1/Pod/demo/sleep']);
    expect(await curl('sleep', 'http://echo.demo.svc.cluster.local/')).toBe(
      `echo saw ${lab.pod('demo', 'sleep').ip}`,
    );
  });

  it('enrolls a running pod without restarting its app', async () => {
    const before = await scrape(0);
    const count = (m: string) =>
      Number(/hbone_streams_total\{side="server",status="200"\} (\d+)/.exec(m)?.[1] ?? 0);
    await writeConfig(true);
    await expect
      .poll(
        async () =>
          enrolledUids(
            JSON.parse((await inNode(0, ['curl', '-s', 'http://127.0.0.1:15000/config_dump'])).stdout),
          ),
        {
          timeout: 10_000,
        },
      )
      .toContain('lab//v1/Pod/demo/legacy');
    expect(await curl('sleep', `http://${lab.pod('demo', 'legacy').ip}:8080/`)).toBe(
      `legacy saw ${lab.pod('demo', 'sleep').ip}`,
    );
    expect(count(await scrape(0))).toBe(count(before) + 1);
    const ps = await lab.exec(lab.pod('demo', 'legacy'), ['sh', '-c', `kill -0 ${legacyPid} && echo alive`]);
    expect(ps.stdout.trim()).toBe('alive');
  });

  it('after a ztunnel restart, new connections work', async () => {
    const old = ztunnels[1] as ChildProcess;
    const exited = new Promise((resolve) => old.once('exit', resolve));
    old.kill('SIGTERM');
    await exited;
    await startZtunnel(1);
    expect(await curl('sleep', 'http://echo.demo.svc.cluster.local/')).toBe(
      `echo saw ${lab.pod('demo', 'sleep').ip}`,
    );
  });
});

// A ZdsServer in this process plays the CNI node agent: it hands real lab pods' network
// namespaces, as file descriptors over the ZDS socket, to a real ztunnel process started with
// ZT_POD_SOURCE=zds, and takes them back. Capture rules are installed here, as the CNI agent does.
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab, type LabPod } from '@ambient/lab';
import { LocalCa } from '@ambient/shared';
import { installCapture, ZdsServer } from '@ambient/ztunnel';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

const isRoot = process.getuid?.() === 0;
const prefix = `z${process.pid % 100_000}`;
const ZTUNNEL = fileURLToPath(new URL('../../packages/ztunnel/dist/main.js', import.meta.url));
const HTTP_ECHO = `require('http').createServer((q,r)=>r.end('echo saw '+q.socket.remoteAddress.replace('::ffff:',''))).listen(8080,'0.0.0.0',()=>console.log('ready'))`;
const log = { info() {}, warn() {}, error() {}, debug() {} };
/** Descriptors of this lab's network namespaces a process holds. */
const netnsFds = (pid: number | 'self' = 'self') =>
  readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      // An nsfs file opened through its bind mount reads as that path (/run/netns/...).
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      return target.startsWith('net:[') || target.includes(`/netns/${prefix}-`);
    } catch {
      return false;
    }
  }).length;

describe.skipIf(!isRoot)('ztunnel fed by ZDS on a lab node (root)', () => {
  let lab: Lab;
  let dir: string;
  let ztunnel: ChildProcess | undefined;
  let server: ZdsServer;
  let fdsBefore = 0;
  const socketPath = () => join(dir, 'ztunnel.sock');
  const node = () => lab.nodes[0] as { netns: string; ip: string };
  const inNode = (cmd: string[]) => lab.exec({ netns: node().netns } as LabPod, cmd);
  const http = async (port: number, path: string) =>
    (await inNode(['curl', '-s', '--max-time', '2', `http://${node().ip}:${port}${path}`])).stdout;
  const info = (p: LabPod) => ({
    name: p.name,
    namespace: p.namespace,
    serviceAccount: p.serviceAccount ?? 'default',
  });
  const sleep = () => lab.pod('demo', 'sleep');
  const echo = () => lab.pod('demo', 'echo');
  const curlEcho = async () => {
    const r = await lab.exec(sleep(), ['curl', '-s', '--max-time', '5', `http://${echo().ip}:8080/`]);
    return r.code === 0 ? r.stdout : `curl exit ${r.code}`;
  };
  const listening = async (p: LabPod) =>
    (await lab.exec(p, ['ss', '-ltnH'])).stdout
      .split('\n')
      .map((l) => l.split(/\s+/)[3]?.split(':').pop())
      .filter((port) => port && ['15001', '15006', '15008'].includes(port))
      .sort();
  const waitFor = async (what: string, check: () => Promise<boolean>) => {
    for (let i = 0; i < 150; i++) {
      if (await check()) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`timed out waiting for ${what}`);
  };
  const startZtunnel = () => {
    ztunnel = lab.start(node().netns, [process.execPath, ZTUNNEL], {
      ZT_NODE_NAME: 'node0',
      ZT_CONFIG_FILE: join(dir, 'ztunnel.yaml'),
      ZT_CA_DIR: join(dir, 'ca'),
      ZT_METRICS_ADDRESS: node().ip,
      ZT_POD_SOURCE: 'zds',
      ZT_ZDS_SOCKET: socketPath(),
      ZT_DRAIN_SECONDS: '0',
      ZT_LOG_LEVEL: 'error',
    });
    ztunnel.stderr?.on('data', (d: Buffer) => process.stderr.write(`[ztunnel] ${d}`));
  };
  const stopZtunnel = async () => {
    const child = ztunnel;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  };

  beforeAll(async () => {
    fdsBefore = netnsFds();
    dir = await mkdtemp(join(tmpdir(), 'zt-zds-'));
    lab = await Lab.create(prefix, {
      nodes: 1,
      pods: [
        { name: 'sleep', namespace: 'demo', node: 0, serviceAccount: 'sleep', labels: { app: 'sleep' } },
        { name: 'echo', namespace: 'demo', node: 0, serviceAccount: 'echo', labels: { app: 'echo' } },
      ],
      services: [],
    });
    const app = lab.start(echo().netns, [process.execPath, '-e', HTTP_ECHO]);
    await new Promise((resolve) => app.stdout?.once('data', resolve));
    await LocalCa.loadOrCreate(join(dir, 'ca'), { trustDomain: 'cluster.local' });
    // The config names the pods but not their netns: only ZDS says where they are.
    const workload = (p: LabPod) => ({
      uid: `lab//v1/Pod/${p.namespace}/${p.name}`,
      name: p.name,
      namespace: p.namespace,
      serviceAccount: p.serviceAccount,
      workloadIps: [p.ip],
      protocol: 'HBONE',
      node: 'node0',
    });
    await writeFile(
      join(dir, 'ztunnel.yaml'),
      stringify({ workloads: [workload(sleep()), workload(echo())] }),
    );
    for (const p of [sleep(), echo()]) await installCapture(p.netnsPath);
  }, 60_000);

  afterAll(async () => {
    await server?.close();
    await lab?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('waits, not ready, while the CNI agent is absent, then serves the pods it is handed', async () => {
    startZtunnel();
    await waitFor('the readiness endpoint', async () => (await http(15021, '/healthz/ready')) !== '');
    const before = await http(15021, '/healthz/ready');
    console.log(`readiness without a CNI agent: ${before.trim()}`);
    expect(before).toContain('workload proxy manager');
    expect(await listening(echo())).toEqual([]);

    server = new ZdsServer({ socketPath: socketPath(), log });
    await server.start();
    await waitFor('ztunnel to connect', async () => server.connectionCount === 1);
    const t0 = performance.now();
    await server.addWorkload('uid-sleep', sleep().netnsPath, info(sleep()));
    await server.addWorkload('uid-echo', echo().netnsPath, info(echo()));
    console.log(`two adds acked in ${(performance.now() - t0).toFixed(0)} ms`);
    expect(netnsFds()).toBe(fdsBefore + 2);
    await waitFor('readiness', async () => (await http(15021, '/healthz/ready')) === 'ready\n');
    expect(await listening(echo())).toEqual(['15001', '15006', '15008']);
  });

  it('captures traffic from and to the handed pods: sleep -> echo over HBONE, counted by ztunnel', async () => {
    expect(await curlEcho()).toBe(`echo saw ${sleep().ip}`);
    const metrics = await http(15020, '/metrics');
    expect(metrics).toMatch(
      /istio_tcp_connections_opened_total\{reporter="destination",source_workload="sleep",[^}]*destination_workload="echo",[^}]*connection_security_policy="mutual_tls"\} 1/,
    );
    expect(metrics).toMatch(/istio_tcp_connections_opened_total\{reporter="source",source_workload="sleep",/);
  });

  it('a del stops serving the pod: its listeners close, and its captured traffic is refused', async () => {
    await server.removeWorkload('uid-echo');
    await waitFor('echo listeners to close', async () => (await listening(echo())).length === 0);
    // The rules stay until the CNI agent removes them: nothing answers behind the redirect.
    expect(await curlEcho()).toMatch(/^curl exit/);
    expect(await listening(sleep())).toEqual(['15001', '15006', '15008']);
  });

  it('a restarted ztunnel gets the snapshot again and captures new connections', async () => {
    await server.addWorkload('uid-echo', echo().netnsPath, info(echo()));
    await stopZtunnel();
    await waitFor('the old connection to drop', async () => server.connectionCount === 0);
    startZtunnel();
    await waitFor('readiness after restart', async () => (await http(15021, '/healthz/ready')) === 'ready\n');
    expect(server.connectionCount).toBe(1);
    expect(await listening(echo())).toEqual(['15001', '15006', '15008']);
    expect(netnsFds(ztunnel?.pid as number)).toBe(2);
    expect(await curlEcho()).toBe(`echo saw ${sleep().ip}`);
    expect(await http(15020, '/metrics')).toMatch(
      /istio_tcp_connections_opened_total\{reporter="destination",source_workload="sleep",[^}]*connection_security_policy="mutual_tls"\} 1/,
    );
  });

  it('both sides close every netns fd they held once the pods are removed and the server closed', async () => {
    await server.removeWorkload('uid-echo');
    await server.removeWorkload('uid-sleep');
    await waitFor('listeners to close', async () => (await listening(sleep())).length === 0);
    // ztunnel closed each netns it was handed once its pod was gone.
    await waitFor('ztunnel to let go of the netns fds', async () => netnsFds(ztunnel?.pid as number) === 0);
    await stopZtunnel();
    await server.close();
    const after = netnsFds();
    console.log(`netns fds held by the CNI side: ${fdsBefore} before, ${after} after`);
    expect(after).toBe(fdsBefore);
  });
});

/**
 * ztunnel benchmark: pod to pod across two lab nodes, in one run, through
 *   (a) direct: pods that are not enrolled,
 *   (b) stunnel: an mTLS pair inside those same pods (TLS 1.3, P-256 certs from the same CA),
 *   (c) ztunnel: enrolled pods, through the client's and the server's node agents (HBONE),
 * then each ztunnel's RSS with 1,000 extra workloads in its config and 1,000 open connections.
 * Modes are interleaved over BENCH_REPEAT rounds (default 3) and medians printed. Needs root.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stunnelConfig } from '@ambient/bench-hbone/stunnel';
import { Lab, LabMesh, type LabPod } from '@ambient/lab';
import { CertManager, LocalCa, SpiffeId } from '@ambient/shared';

const here = dirname(fileURLToPath(import.meta.url));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3000);
const CONNS = Number(process.env.BENCH_CONNS ?? 2000);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
const HELD = Number(process.env.BENCH_HELD ?? 1000);
const EXTRA_WORKLOADS = 1000;
const PREFIX = 'bz';

let lab: Lab | undefined;
let work = '';

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('needs root (network namespaces)');
  work = await mkdtemp(join(tmpdir(), 'bench-ztunnel-'));
  lab = await Lab.create(PREFIX, {
    nodes: 2,
    pods: [
      { name: 'client', namespace: 'plain', node: 0 },
      { name: 'server', namespace: 'plain', node: 1 },
      { name: 'client', namespace: 'mesh', node: 0, serviceAccount: 'client' },
      { name: 'server', namespace: 'mesh', node: 1, serviceAccount: 'server' },
    ],
    services: [],
  });
  const L = lab;
  const pod = (ns: string, name: string) => L.pod(ns, name);
  const podLoad = join(here, 'pod-load.js');
  const runIn = async (p: LabPod, args: string[]) => {
    const r = await L.exec(
      p,
      ['sh', '-c', 'ulimit -n "$(ulimit -Hn)" && exec "$0" "$@"', process.execPath, podLoad, ...args],
      60_000,
    );
    if (r.code !== 0)
      throw new Error(`${p.namespace}/${p.name} ${args.join(' ')}: exit ${r.code} ${r.stderr}${r.stdout}`);
    return JSON.parse(r.stdout.trim().split('\n').pop() as string);
  };
  const waitLine = (c: ChildProcess) =>
    new Promise((resolve, reject) => {
      c.stdout?.once('data', resolve);
      c.once('exit', (code) => reject(new Error(`helper exited with ${code} before it was ready`)));
    });
  for (const ns of ['plain', 'mesh']) {
    const server = pod(ns, 'server');
    L.start(server.netns, ['iperf3', '-s', '-p', '5201']);
    await waitLine(
      L.start(server.netns, [
        'sh',
        '-c',
        'ulimit -n "$(ulimit -Hn)" && exec "$0" "$@"',
        process.execPath,
        podLoad,
        'echo',
        '',
        '7000',
      ]),
    );
  }
  // stunnel pair inside the plain pods.
  const ca = await LocalCa.loadOrCreate(join(work, 'ca'), { trustDomain: 'cluster.local' });
  const certs = new CertManager({ ca });
  for (const side of ['client', 'server']) {
    const c = await certs.fetch(SpiffeId.of('cluster.local', 'plain', side));
    await writeFile(join(work, `${side}-key.pem`), c.keyPem, { mode: 0o600 });
    await writeFile(join(work, `${side}-cert.pem`), c.chainPem[0] as string);
  }
  certs.close();
  await writeFile(join(work, 'root.pem'), ca.rootPem);
  const serverIp = pod('plain', 'server').ip;
  await writeFile(
    join(work, 'st-server.conf'),
    stunnelConfig(work, 'server', [
      ['0.0.0.0:5443', '127.0.0.1:5201'],
      ['0.0.0.0:7443', '127.0.0.1:7000'],
    ]),
  );
  await writeFile(
    join(work, 'st-client.conf'),
    stunnelConfig(work, 'client', [
      ['127.0.0.1:15201', `${serverIp}:5443`],
      ['127.0.0.1:17000', `${serverIp}:7443`],
    ]),
  );
  for (const side of ['server', 'client'] as const) {
    const st = L.start(pod('plain', side).netns, ['stunnel4', join(work, `st-${side}.conf`)]);
    st.stderr?.on('data', (d: Buffer) => process.stderr.write(`[stunnel ${side}] ${d}`));
  }
  // Wait until both stunnel ends accept (curl exits 7 while the port is refused).
  for (const [p, port] of [
    [pod('plain', 'server'), 7443],
    [pod('plain', 'client'), 17000],
  ] as const) {
    const host = p.name === 'server' ? p.ip : '127.0.0.1';
    for (let i = 0; i < 100; i++) {
      const r = await L.exec(p, ['curl', '-s', '--max-time', '0.3', `telnet://${host}:${port}`]);
      if (r.code !== 7) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  // The mesh: a ztunnel per node, the mesh namespace enrolled, 1,000 more workloads in the config.
  const mesh = new LabMesh(L, {
    dir: join(work, 'mesh'),
    enrolledNamespaces: ['mesh'],
    extraWorkloads: EXTRA_WORKLOADS,
  });
  await mesh.start();
  await new Promise((resolve) => setTimeout(resolve, 500));

  // RSS with 1,000 workloads in config and 1,000 open connections through the mesh, measured on
  // fresh node agents (the scenario), and again after the load runs (their high-water mark).
  const rssWithHeld = async (): Promise<{ rss: number[]; held: number }> => {
    process.stderr.write(`bench: holding ${HELD} connections through the mesh\n`);
    const holder = L.start(pod('mesh', 'client').netns, [
      'sh',
      '-c',
      'ulimit -n "$(ulimit -Hn)" && exec "$0" "$@"',
      process.execPath,
      podLoad,
      'hold',
      pod('mesh', 'server').ip,
      '7000',
      String(HELD),
    ]);
    const held = JSON.parse(String(await waitLine(holder)));
    await new Promise((resolve) => setTimeout(resolve, 500));
    const rss = await Promise.all(mesh.pids.map(rssMb));
    const exited = new Promise((resolve) => holder.once('exit', resolve));
    holder.kill();
    await exited;
    await new Promise((resolve) => setTimeout(resolve, 500));
    return { rss, held: held.held as number };
  };
  const fresh = await rssWithHeld();

  const modes = [
    { name: 'direct', client: pod('plain', 'client'), host: serverIp, iperf: 5201, echo: 7000 },
    { name: 'stunnel', client: pod('plain', 'client'), host: '127.0.0.1', iperf: 15201, echo: 17000 },
    {
      name: 'ztunnel',
      client: pod('mesh', 'client'),
      host: pod('mesh', 'server').ip,
      iperf: 5201,
      echo: 7000,
    },
  ];
  type Sample = { gbps: number; p50: number; p99: number; cps: number };
  const samples: Record<string, Sample[]> = { direct: [], stunnel: [], ztunnel: [] };
  for (const m of modes) await runIn(m.client, ['rate', m.host, String(m.echo), '200']); // warm up
  for (let round = 1; round <= REPEAT; round++) {
    for (const m of modes) {
      process.stderr.write(`bench: round ${round}/${REPEAT} ${m.name}\n`);
      const ip = await L.exec(
        m.client,
        ['iperf3', '-c', m.host, '-p', String(m.iperf), '-t', String(SECONDS), '-J'],
        (SECONDS + 30) * 1000,
      );
      const gbps = JSON.parse(ip.stdout).end.sum_received.bits_per_second / 1e9;
      const lat = await runIn(m.client, ['latency', m.host, String(m.echo), String(ROUNDS)]);
      const rate = await runIn(m.client, ['rate', m.host, String(m.echo), String(CONNS)]);
      samples[m.name]?.push({ gbps, p50: lat.p50Us, p99: lat.p99Us, cps: rate.perSecond });
    }
  }
  const afterLoad = await rssWithHeld();
  const med = (name: string, k: keyof Sample) => median((samples[name] ?? []).map((x) => x[k]));
  printTable(med, fresh.rss, afterLoad.rss, fresh.held);
}

function printTable(
  med: (name: string, k: 'gbps' | 'p50' | 'p99' | 'cps') => number,
  rss: number[],
  rssAfterLoad: number[],
  held: number,
): void {
  const d = (k: 'gbps' | 'p50' | 'p99' | 'cps') =>
    [med('direct', k), med('stunnel', k), med('ztunnel', k)] as const;
  const ratio = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(2)}x` : 'n/a');
  const pad = (v: string, n: number) => v.padStart(n);
  const rows: Array<[string, readonly [number, number, number], number, boolean]> = [
    ['throughput, 1 stream (Gbit/s)', d('gbps'), 2, true],
    ['64 B round trip p50 (us)', d('p50'), 0, true],
    ['64 B round trip p99 (us)', d('p99'), 0, true],
    ['added p50 over direct (us)', [0, d('p50')[1] - d('p50')[0], d('p50')[2] - d('p50')[0]], 0, false],
    ['added p99 over direct (us)', [0, d('p99')[1] - d('p99')[0], d('p99')[2] - d('p99')[0]], 0, false],
    ['new connections/s (x8)', d('cps'), 0, true],
  ];
  console.log(
    `\nztunnel benchmark: pod to pod across two lab nodes; medians of ${REPEAT} interleaved rounds of iperf3 ${SECONDS}s, ${ROUNDS} round trips, up to ${CONNS} connections`,
  );
  console.log(
    `${'metric'.padEnd(32)}${pad('direct', 10)}${pad('stunnel', 10)}${pad('ztunnel', 10)}${pad('zt/direct', 11)}${pad('zt/stunnel', 12)}`,
  );
  for (const [name, [a, b, c], digits, ratios] of rows) {
    console.log(
      `${name.padEnd(32)}${pad(a.toFixed(digits), 10)}${pad(b.toFixed(digits), 10)}${pad(c.toFixed(digits), 10)}${pad(ratios ? ratio(c, a) : '-', 11)}${pad(ratio(c, b), 12)}`,
    );
  }
  console.log(
    `ztunnel RSS with ${EXTRA_WORKLOADS} extra workloads in config and ${held} open connections: ${rss.map((r, k) => `node${k} ${r.toFixed(0)} MB`).join(', ')} (fresh); ${rssAfterLoad.map((r, k) => `node${k} ${r.toFixed(0)} MB`).join(', ')} (after the load runs)`,
  );
  const [gd, gs, gz] = d('gbps');
  const [pd, ps, pz] = d('p99');
  void gd;
  console.log(
    `target throughput >= stunnel: ${gz >= gs ? 'met' : 'NOT met'} (${gz.toFixed(2)} vs ${gs.toFixed(2)} Gbit/s)`,
  );
  console.log(
    `target added p99 <= 1.5x stunnel's: ${pz - pd <= 1.5 * (ps - pd) ? 'met' : 'NOT met'} (${(pz - pd).toFixed(0)} vs ${(1.5 * (ps - pd)).toFixed(0)} us)`,
  );
  console.log(
    `target RSS <= 100 MB: ${Math.max(...rss) <= 100 ? 'met' : 'NOT met'} (max ${Math.max(...rss).toFixed(0)} MB)`,
  );
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN) / 1024;
}

main().then(
  async () => {
    await lab?.destroy();
    await rm(work, { recursive: true, force: true });
    process.exit(0);
  },
  async (err: unknown) => {
    console.error(`bench/ztunnel: ${(err as Error).message}`);
    await lab?.destroy();
    process.exit(1);
  },
);

/**
 * ztunnel benchmark: pod to pod across two lab nodes, in one run, through
 *   (a) direct: pods that are not enrolled,
 *   (b) stunnel: an mTLS pair inside those same pods (TLS 1.3, P-256 certs from the same CA),
 *   (c) node-tls: the least a Node.js mTLS relay can do, in the same places as stunnel: net and TLS
 *       sockets joined with pipe(), no HTTP/2 (bench/hbone's tls-pipe.ts, one pair per port), with
 *       the node agent's V8 settings (BENCH_NODE_TLS_FLAGS to choose others, '' for Node's defaults),
 *   (d) ztunnel: enrolled pods, through the client's and the server's node agents (HBONE),
 * then each ztunnel's RSS with 1,000 extra workloads in its config and 1,000 open connections.
 * Modes are interleaved over BENCH_REPEAT rounds (default 3); medians are printed with their spread
 * (min..max), the CPU seconds each process spent per mode (from /proc/<pid>/stat), and the RSS the
 * held connections add (with them open minus none, on the same agents, per 1,000). Needs root.
 *
 * Diagnostics (opt-in; they do not depend on the machine being idle):
 *   BENCH_LOOP_STATS=1  the agents run with ZT_LOOP_STATS: event-loop delay, GC pauses by kind and
 *                       malloc_trim durations during each latency phase, from /debug/loop_stats;
 *   BENCH_SYSCALLS=1    syscalls per 64 B round trip of every process on the path (perf tracepoints),
 *                       the loop's turns (epoll waits), reads and writes, per mode;
 *   BENCH_AGENT_ENV     JSON object of more environment for the agents, e.g. '{"NODE_OPTIONS":""}';
 *   BENCH_LAB_PREFIX    the lab's namespace prefix (default bz), for runs beside another copy of this bench.
 *   BENCH_SETTLE_SECONDS idle time after the load before a last RSS reading (default 20; 0: none).
 *   BENCH_PERF=1        after the rounds, one more iperf3 run per tunnel mode with every tunnel process
 *                       sampled by `perf record`: its CPU seconds per GB split into the kernel's share
 *                       (netfilter, copies, the rest of TCP/IP), OpenSSL, V8's GC, JavaScript, Node's
 *                       C++ and libc. What a relay in Node.js pays apart from what any relay pays.
 *   BENCH_PERF_TOP=N    with BENCH_PERF, also each process's N most sampled symbols (default 0).
 *   BENCH_PERF_KEEP=dir with BENCH_PERF, keep the profiles there, with call graphs (`perf report -g -i`);
 *                       agents started with --perf-basic-prof (BENCH_AGENT_ENV) name their JavaScript.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type BreakdownRow,
  formatBreakdown,
  formatTopSymbols,
  profileDuring,
} from '@ambient/bench-hbone/perf-breakdown';
import { stunnelConfig } from '@ambient/bench-hbone/stunnel';
import { Lab, LabMesh, type LabPod, ZTUNNEL_NODE_OPTIONS } from '@ambient/lab';
import { CertManager, LocalCa, SpiffeId } from '@ambient/shared';
import { ZTUNNEL_V8_FLAGS } from '@ambient/ztunnel';

const here = dirname(fileURLToPath(import.meta.url));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10_000);
const CONNS = Number(process.env.BENCH_CONNS ?? 2000);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
const HELD = Number(process.env.BENCH_HELD ?? 1000);
const SETTLE_SECONDS = Number(process.env.BENCH_SETTLE_SECONDS ?? 20);
const EXTRA_WORKLOADS = 1000;
/** Kernel clock ticks per second, the unit of /proc/<pid>/stat times. */
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
/** Lab namespace prefix; set another for runs that may overlap with another copy of this bench. */
const PREFIX = process.env.BENCH_LAB_PREFIX ?? 'bz';
const LOOP_STATS = process.env.BENCH_LOOP_STATS === '1';
const SYSCALLS = process.env.BENCH_SYSCALLS === '1';
const PERF = process.env.BENCH_PERF === '1';
/** Node.js flags of the node-tls processes: by default the node agent's own V8 settings. */
const NODE_TLS_FLAGS = (
  process.env.BENCH_NODE_TLS_FLAGS ?? [ZTUNNEL_NODE_OPTIONS, ...ZTUNNEL_V8_FLAGS].join(' ')
)
  .split(' ')
  .filter((f) => f !== '');
const PERF_TOP = Number(process.env.BENCH_PERF_TOP ?? 0);
const PERF_KEEP = process.env.BENCH_PERF_KEEP;
/** The modes, in the order they run in each round and are printed. */
const MODES = ['direct', 'stunnel', 'node-tls', 'ztunnel'] as const;
type ModeName = (typeof MODES)[number];
const AGENT_ENV = JSON.parse(process.env.BENCH_AGENT_ENV ?? '{}') as Record<string, string>;
/** Tracepoints counted per round trip: the loop's turns (epoll/poll waits), reads, writes, wakeups. */
const SYSCALL_EVENTS = [
  'epoll_wait',
  'epoll_pwait',
  'poll',
  'read',
  'recvfrom',
  'write',
  'writev',
  'sendto',
  'futex',
] as const;

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
  /** Processes whose CPU time is read from /proc per mode, by label. */
  const tracked = new Map<string, number>();
  const track = (label: string, c: ChildProcess) => {
    if (c.pid !== undefined) tracked.set(label, c.pid);
    return c;
  };
  for (const ns of ['plain', 'mesh']) {
    const server = pod(ns, 'server');
    track(`iperf3 server (${ns})`, L.start(server.netns, ['iperf3', '-s', '-p', '5201']));
    await waitLine(
      track(
        `echo server (${ns})`,
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
      ),
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
    const st = track(
      `stunnel ${side}`,
      L.start(pod('plain', side).netns, ['stunnel4', join(work, `st-${side}.conf`)]),
    );
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
  // node-tls pairs in the same pods, one per relayed port, from the same CA as stunnel's.
  const tlsPipe = fileURLToPath(import.meta.resolve('@ambient/bench-hbone/tls-pipe'));
  const nodeTls: Array<[string, number, number]> = [
    ['', 5201, 25201],
    [' (echo)', 7000, 27000],
  ];
  const startPipe = (side: 'server' | 'client', suffix: string, address: string, port: number) =>
    waitLine(
      track(
        `node-tls ${side}${suffix}`,
        L.start(pod('plain', side).netns, [
          process.execPath,
          ...NODE_TLS_FLAGS,
          tlsPipe,
          side,
          join(work, 'ca'),
          address,
          String(port),
        ]),
      ),
    );
  for (const [suffix, target, entry] of nodeTls) {
    const tunnelPort = entry - 10_000;
    await startPipe('server', suffix, `0.0.0.0:${tunnelPort}`, target);
    await startPipe('client', suffix, `${serverIp}:${tunnelPort}`, entry);
  }
  // The mesh: a ztunnel per node, the mesh namespace enrolled, 1,000 more workloads in the config.
  const mesh = new LabMesh(L, {
    dir: join(work, 'mesh'),
    enrolledNamespaces: ['mesh'],
    extraWorkloads: EXTRA_WORKLOADS,
    agentEnv: { ...(LOOP_STATS && { ZT_LOOP_STATS: 'true' }), ...AGENT_ENV },
  });
  await mesh.start();
  for (const [k, pid] of mesh.pids.entries()) tracked.set(`ztunnel node${k}`, pid);
  await new Promise((resolve) => setTimeout(resolve, 500));

  // RSS with 1,000 workloads in config and 1,000 open connections through the mesh: on fresh node
  // agents (the scenario), then after each round of load. Each reading is paired with one taken
  // just before the connections open, on the same agents, so the cost of the connections
  // themselves shows apart from the agents' baseline.
  const rssWithHeld = async (): Promise<RssReading> => {
    process.stderr.write(`bench: holding ${HELD} connections through the mesh\n`);
    const idle = await Promise.all(mesh.pids.map(rssMb));
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
    const n = held.held as number;
    return {
      idle,
      rss,
      held: n,
      per1000: rss.map((r, k) => ((r - (idle[k] as number)) * 1000) / Math.max(n, 1)),
    };
  };
  const fresh = await rssWithHeld();

  const modes: Array<{ name: ModeName; client: LabPod; host: string; iperf: number; echo: number }> = [
    { name: 'direct', client: pod('plain', 'client'), host: serverIp, iperf: 5201, echo: 7000 },
    { name: 'stunnel', client: pod('plain', 'client'), host: '127.0.0.1', iperf: 15201, echo: 17000 },
    { name: 'node-tls', client: pod('plain', 'client'), host: '127.0.0.1', iperf: 25201, echo: 27000 },
    {
      name: 'ztunnel',
      client: pod('mesh', 'client'),
      host: pod('mesh', 'server').ip,
      iperf: 5201,
      echo: 7000,
    },
  ];
  const samples: Record<string, Sample[]> = Object.fromEntries(MODES.map((m) => [m, []]));
  const afterRounds: RssReading[] = [];
  for (const m of modes) await runIn(m.client, ['rate', m.host, String(m.echo), '200']); // warm up
  for (let round = 1; round <= REPEAT; round++) {
    for (const m of modes) {
      process.stderr.write(`bench: round ${round}/${REPEAT} ${m.name}\n`);
      if (LOOP_STATS) for (const k of mesh.pids.keys()) await mesh.loopStats(k, true);
      const cpuStart = await cpuOf(tracked);
      const sysStart = await cpuOf(tracked, 'system');
      const ip = await L.exec(
        m.client,
        ['iperf3', '-c', m.host, '-p', String(m.iperf), '-t', String(SECONDS), '-J'],
        (SECONDS + 30) * 1000,
      );
      const cpuIperf = await cpuOf(tracked);
      const sysIperf = await cpuOf(tracked, 'system');
      const report = JSON.parse(ip.stdout).end;
      const gbps = report.sum_received.bits_per_second / 1e9;
      const gb = report.sum_received.bytes / 1e9;
      if (LOOP_STATS && m.name === 'ztunnel') {
        // GC work per GB tunnelled: what the young generation's size costs a bulk transfer.
        for (const k of mesh.pids.keys()) {
          const st = (await mesh.loopStats(k, true)) as {
            gc: Record<string, { count: number; totalMs: number }>;
          };
          const gc = Object.entries(st.gc)
            .map(
              ([kind, t]) => `${kind} ${(t.count / gb).toFixed(0)}/GB ${(t.totalMs / gb).toFixed(1)} ms/GB`,
            )
            .join(', ');
          console.log(`GC during iperf3 round ${round} node${k} (${gb.toFixed(2)} GB): ${gc || 'none'}`);
        }
      }
      if (LOOP_STATS) for (const k of mesh.pids.keys()) await mesh.loopStats(k, true);
      const counting = SYSCALLS ? await countSyscalls(tracked) : undefined;
      const cpuLatStart = await cpuOf(tracked);
      const lat = await runIn(m.client, ['latency', m.host, String(m.echo), String(ROUNDS)]);
      if (counting) {
        const cpuLatEnd = await cpuOf(tracked);
        printSyscalls(m.name, round, await counting(), ROUNDS);
        // CPU time, unlike wall-clock latency, does not grow when other work shares the cores.
        const perRt = [...cpuLatEnd]
          .map(([label, end]) => [label, ((end - (cpuLatStart.get(label) ?? end)) * 1e6) / ROUNDS] as const)
          .filter(([, us]) => us >= 1)
          .map(([label, us]) => `${label} ${us.toFixed(0)}`);
        console.log(`CPU us per round trip ${m.name} round ${round}: ${perRt.join(', ')}`);
      }
      if (LOOP_STATS) {
        for (const k of mesh.pids.keys()) {
          const st = await mesh.loopStats(k, true);
          console.log(`loop stats ${m.name} round ${round} node${k}: ${JSON.stringify(st)}`);
        }
      }
      const rate = await runIn(m.client, ['rate', m.host, String(m.echo), String(CONNS)]);
      const cpuEnd = await cpuOf(tracked);
      const cpu: Record<string, number> = {};
      const cpuPerGb: Record<string, number> = {};
      const sysPerGb: Record<string, number> = {};
      for (const [label, end] of cpuEnd) {
        const start = cpuStart.get(label);
        const mid = cpuIperf.get(label);
        if (start === undefined) continue;
        cpu[label] = end - start;
        if (mid !== undefined && gb > 0) cpuPerGb[label] = (mid - start) / gb;
        const s0 = sysStart.get(label);
        const s1 = sysIperf.get(label);
        if (s0 !== undefined && s1 !== undefined && gb > 0) sysPerGb[label] = (s1 - s0) / gb;
      }
      // The iperf3 client is gone by now: its own report gives its share of the test's wall time.
      const clientCpu = ((report.cpu_utilization_percent?.host_total ?? Number.NaN) / 100) * SECONDS;
      cpu['iperf3 client'] = clientCpu;
      cpuPerGb['iperf3 client'] = clientCpu / gb;
      samples[m.name]?.push({
        gbps,
        p50: lat.p50Us,
        p99: lat.p99Us,
        cps: rate.perSecond,
        cpu,
        cpuPerGb,
        sysPerGb,
      });
    }
    afterRounds.push(await rssWithHeld());
  }
  printTable(samples, fresh, afterRounds);
  if (PERF) {
    // One more iperf3 run per tunnel mode, every tunnel process on its path sampled.
    const onPath: Record<string, string[]> = {
      stunnel: ['stunnel client', 'stunnel server'],
      'node-tls': ['node-tls client', 'node-tls server'],
      ztunnel: ['ztunnel node0', 'ztunnel node1'],
    };
    const rows: BreakdownRow[] = [];
    const tops: string[] = [];
    for (const m of modes) {
      const labels = onPath[m.name];
      if (!labels) continue;
      process.stderr.write(`bench: profiling ${m.name}\n`);
      const pids = new Map(labels.map((l) => [l, tracked.get(l) as number]));
      const before = await cpuOf(pids);
      const {
        result: gb,
        shares,
        symbols,
      } = await profileDuring(
        pids,
        work,
        async () => {
          const ip = await L.exec(
            m.client,
            ['iperf3', '-c', m.host, '-p', String(m.iperf), '-t', String(SECONDS), '-J'],
            (SECONDS + 30) * 1000,
          );
          return JSON.parse(ip.stdout).end.sum_received.bytes / 1e9;
        },
        999,
        PERF_KEEP,
      );
      const after = await cpuOf(pids);
      for (const l of labels) {
        const cpuPerGb = ((after.get(l) ?? Number.NaN) - (before.get(l) ?? Number.NaN)) / gb;
        rows.push({ label: l, cpu: cpuPerGb, shares: shares.get(l) ?? new Map() });
        if (PERF_TOP > 0) tops.push(...formatTopSymbols(l, symbols.get(l) ?? [], cpuPerGb, PERF_TOP, 'GB'));
      }
    }
    console.log(
      '\nWhere the tunnel processes spend their CPU during iperf3 (perf record, all threads), CPU seconds per GB received:',
    );
    for (const line of formatBreakdown(rows)) console.log(line);
    for (const line of tops) console.log(line);
  }
  // V8's memory reducer runs after 8 s without allocation, the heap trimmer when the loop is quiet:
  // what the agents give back once idle after the load.
  if (SETTLE_SECONDS > 0) {
    await new Promise((resolve) => setTimeout(resolve, SETTLE_SECONDS * 1000));
    const settled = await Promise.all(mesh.pids.map(rssMb));
    console.log(
      `ztunnel RSS with no connections open, ${SETTLE_SECONDS} s idle after the load: ${settled.map((r, k) => `node${k} ${r.toFixed(0)} MB`).join(', ')}`,
    );
  }
}

type Metric = 'gbps' | 'p50' | 'p99' | 'cps';
interface Sample {
  gbps: number;
  p50: number;
  p99: number;
  cps: number;
  /** CPU seconds each tracked process spent in this mode's round (iperf3, latency and rate). */
  cpu: Record<string, number>;
  /** CPU seconds each tracked process spent per GB received during this mode's iperf3 run. */
  cpuPerGb: Record<string, number>;
  /** Of those, the seconds spent in the kernel (system time). */
  sysPerGb: Record<string, number>;
}
interface RssReading {
  /** Per node agent, MB: before the connections open, with them open, and their cost per 1,000. */
  idle: number[];
  rss: number[];
  held: number;
  per1000: number[];
}

/** "median (min..max)" of a figure across rounds. */
function spread(values: number[], digits: number): string {
  const ok = values.filter((v) => Number.isFinite(v));
  if (ok.length === 0) return 'n/a';
  const s = [...ok].sort((a, b) => a - b);
  return `${median(s).toFixed(digits)} (${(s[0] as number).toFixed(digits)}..${(s[s.length - 1] as number).toFixed(digits)})`;
}

function printTable(samples: Record<string, Sample[]>, fresh: RssReading, afterRounds: RssReading[]): void {
  const names = MODES;
  const of = (name: string, k: Metric) => (samples[name] ?? []).map((x) => x[k]);
  const med = (name: string, k: Metric) => median(of(name, k));
  /** Medians of direct, stunnel, node-tls and ztunnel. */
  const d = (k: Metric) => names.map((n) => med(n, k));
  const ratio = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(2)}x` : 'n/a');
  const pad = (v: string, n: number) => v.padStart(n);
  // Added latency per round: the same round's mode minus that round's direct.
  const added = (name: string, k: 'p50' | 'p99') =>
    of(name, k).map((v, i) => v - ((samples.direct ?? [])[i]?.[k] ?? Number.NaN));
  const addedMedians = (k: 'p50' | 'p99') => d(k).map((v) => v - (d(k)[0] as number));
  const rows: Array<[string, number[], number, boolean, Array<number[]>]> = [
    ['throughput, 1 stream (Gbit/s)', d('gbps'), 2, true, names.map((n) => of(n, 'gbps'))],
    ['64 B round trip p50 (us)', d('p50'), 0, true, names.map((n) => of(n, 'p50'))],
    ['64 B round trip p99 (us)', d('p99'), 0, true, names.map((n) => of(n, 'p99'))],
    ['added p50 over direct (us)', addedMedians('p50'), 0, false, names.map((n) => added(n, 'p50'))],
    ['added p99 over direct (us)', addedMedians('p99'), 0, false, names.map((n) => added(n, 'p99'))],
    ['new connections/s (x8)', d('cps'), 0, true, names.map((n) => of(n, 'cps'))],
  ];
  console.log(
    `\nztunnel benchmark: pod to pod across two lab nodes; medians of ${REPEAT} interleaved rounds of iperf3 ${SECONDS}s, ${ROUNDS} round trips, up to ${CONNS} connections`,
  );
  console.log(
    `${'metric'.padEnd(32)}${names.map((n) => pad(n, 10)).join('')}${pad('zt/direct', 11)}${pad('zt/stunnel', 12)}${pad('zt/node-tls', 13)}${pad('node-tls/stunnel', 18)}`,
  );
  for (const [name, medians, digits, ratios] of rows) {
    const [direct, st, nt, zt] = medians as [number, number, number, number];
    console.log(
      `${name.padEnd(32)}${[direct, st, nt, zt].map((v) => pad(v.toFixed(digits), 10)).join('')}${pad(ratios ? ratio(zt, direct) : '-', 11)}${pad(ratio(zt, st), 12)}${pad(ratio(zt, nt), 13)}${pad(ratio(nt, st), 18)}`,
    );
  }
  console.log(`\nspread across the ${REPEAT} rounds: median (min..max)`);
  console.log(`${'metric'.padEnd(32)}${names.map((n) => pad(n, 22)).join('')}`);
  for (const [name, , digits, , perMode] of rows) {
    console.log(`${name.padEnd(32)}${perMode.map((v) => pad(spread(v, digits), 22)).join('')}`);
  }

  // CPU seconds per process and mode, so that ratios can be read against the work each side did.
  const labels = [
    ...new Set(names.flatMap((n) => (samples[n] ?? []).flatMap((x) => Object.keys(x.cpu)))),
  ].sort();
  console.log(
    '\nCPU seconds per process and mode, per round (iperf3 + round trips + new connections): median (min..max)',
  );
  console.log(`${'process'.padEnd(32)}${names.map((n) => pad(n, 22)).join('')}`);
  for (const label of labels) {
    const cells = names.map((n) => (samples[n] ?? []).map((x) => x.cpu[label] ?? Number.NaN));
    if (cells.every((c) => c.every((v) => !Number.isFinite(v) || v < 0.005))) continue;
    console.log(`${label.padEnd(32)}${cells.map((v) => pad(spread(v, 2), 22)).join('')}`);
  }
  console.log('CPU seconds per GB received during iperf3: median (min..max)');
  for (const label of labels) {
    const cells = names.map((n) => (samples[n] ?? []).map((x) => x.cpuPerGb[label] ?? Number.NaN));
    if (cells.every((c) => c.every((v) => !Number.isFinite(v) || v < 0.005))) continue;
    console.log(`${label.padEnd(32)}${cells.map((v) => pad(spread(v, 2), 22)).join('')}`);
  }
  console.log('of which in the kernel (system time), per GB: median (min..max)');
  for (const label of labels) {
    const cells = names.map((n) => (samples[n] ?? []).map((x) => x.sysPerGb[label] ?? Number.NaN));
    if (cells.every((c) => c.every((v) => !Number.isFinite(v) || v < 0.005))) continue;
    console.log(`${label.padEnd(32)}${cells.map((v) => pad(spread(v, 2), 22)).join('')}`);
  }

  const mb = (xs: number[]) => xs.map((r, k) => `node${k} ${r.toFixed(0)} MB`).join(', ');
  const last = afterRounds[afterRounds.length - 1] ?? fresh;
  const held = fresh.held;
  const rss = fresh.rss;
  console.log(
    `\nztunnel RSS with ${EXTRA_WORKLOADS} extra workloads in config and ${held} open connections: ${mb(rss)} (fresh); ${mb(last.rss)} (after the load runs)`,
  );
  const perNode = (pick: (r: RssReading) => number[]) =>
    fresh.rss
      .map(
        (_, k) =>
          `node${k} ${spread(
            afterRounds.map((r) => pick(r)[k] as number),
            1,
          )}`,
      )
      .join(', ');
  console.log(
    `ztunnel RSS with no connections open: ${mb(fresh.idle)} (fresh); after each round, MB: ${perNode((r) => r.idle)}`,
  );
  console.log(`ztunnel RSS with ${held} connections open, after each round, MB: ${perNode((r) => r.rss)}`);
  console.log(
    `ztunnel RSS per 1000 connections (with ${held} open minus none, same agents), MB: fresh ${fresh.per1000.map((v, k) => `node${k} ${v.toFixed(1)}`).join(', ')}; after each round ${perNode((r) => r.per1000)}`,
  );
  const [, gs, , gz] = d('gbps') as [number, number, number, number];
  const [pd, ps, , pz] = d('p99') as [number, number, number, number];
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

/**
 * User plus system CPU seconds of each process (its threads included), or its system seconds alone,
 * by label; gone processes are left out.
 */
async function cpuOf(
  pids: ReadonlyMap<string, number>,
  which: 'all' | 'system' = 'all',
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const [label, pid] of pids) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = (which === 'all' ? Number(fields[11]) : 0) + Number(fields[12]);
    if (Number.isFinite(ticks)) out.set(label, ticks / CLOCK_TICKS);
  }
  return out;
}

/**
 * Starts counting syscalls of each process (perf tracepoints); the returned function stops and
 * resolves with the counts per label and syscall.
 */
async function countSyscalls(
  pids: ReadonlyMap<string, number>,
): Promise<() => Promise<Map<string, Record<string, number>>>> {
  const events = SYSCALL_EVENTS.map((e) => `syscalls:sys_enter_${e}`).join(',');
  const runs = [...pids].map(([label, pid]) => {
    const p = spawn('perf', ['stat', '-x,', '-e', events, '-p', String(pid)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let text = '';
    p.stderr.on('data', (d: Buffer) => {
      text += d;
    });
    const done = new Promise<string>((resolve) => p.once('exit', () => resolve(text)));
    return { label, p, done };
  });
  await new Promise((resolve) => setTimeout(resolve, 300)); // perf attaches
  return async () => {
    const out = new Map<string, Record<string, number>>();
    for (const r of runs) r.p.kill('SIGINT');
    for (const r of runs) {
      const counts: Record<string, number> = {};
      for (const line of (await r.done).split('\n')) {
        const [count, , event] = line.split(',');
        const name = event?.replace('syscalls:sys_enter_', '');
        if (name && Number.isFinite(Number(count))) counts[name] = Number(count);
      }
      out.set(r.label, counts);
    }
    return out;
  };
}

function printSyscalls(
  mode: string,
  round: number,
  counts: Map<string, Record<string, number>>,
  n: number,
): void {
  for (const [label, c] of counts) {
    const total = Object.values(c).reduce((a, b) => a + b, 0);
    if (total < n / 2) continue; // not on this mode's path
    const per = SYSCALL_EVENTS.filter((e) => (c[e] ?? 0) > 0)
      .map((e) => `${e} ${((c[e] ?? 0) / n).toFixed(2)}`)
      .join(', ');
    console.log(`syscalls per round trip ${mode} round ${round} ${label}: ${per}`);
  }
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

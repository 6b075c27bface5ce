/**
 * Control plane benchmark (default, `--source directory`): one control plane process (TLS gRPC on
 * loopback) with 10,000 workloads and 1,000 services from a manifest directory, and 50 real xDS
 * clients in two client processes, in two modes: count-only clients (count-clients.ts: the same
 * stream and ACKs, resources counted from the raw bytes, not decoded) and decoding clients
 * (clients.ts: ztunnel's DeltaAdsClient and decoders). Each of BENCH_ROUNDS rounds (default 3)
 * starts a fresh fleet per mode, modes alternating, and measures:
 *   - initial sync: from the clients being told to connect until each holds its full config;
 *   - convergence: from writing one pod change (its IP) to every client holding it, over
 *     BENCH_CHANGES changes (default 30), as p50/p99 of the all-clients time and of the
 *     per-client delivery times;
 *   - the CPU seconds of the control plane and of each client process in each phase, and the
 *     control plane's RSS after the sync.
 * Every figure is printed as min / median / max over the rounds. BENCH_MODES=count (or decode)
 * runs one mode only; BENCH_WORKLOADS, BENCH_SERVICES, BENCH_CLIENTS, BENCH_CLIENT_PROCESSES set
 * the sizes; BENCH_CP_NODE_ARGS and BENCH_CLIENT_NODE_ARGS pass Node flags (e.g. --cpu-prof).
 * Needs no root: everything is on 127.0.0.1.
 *
 * `--source kubernetes`: the enrolment benchmark (enrol-bench.ts) on a real Kubernetes API server,
 * after the same run over a manifest directory as its baseline (BENCH_BASELINE=0 skips it).
 * BENCH_PODS, BENCH_SERVICES, BENCH_CLIENTS, BENCH_ROUNDS and BENCH_WRITE_CONCURRENCY set the sizes.
 */
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalCa } from '@ambient/shared';
import { targetIp } from './bench-target.js';
import { ClientFleet, type ClientMode } from './client-fleet.js';
import { type ControlPlaneProcess, startControlPlaneProcess } from './control-plane-process.js';
import { type EnrolBenchOptions, type EnrolResult, runEnrolBench } from './enrol-bench.js';
import { directorySource, kubernetesSource } from './enrol-sources.js';
import { printEnrolTable } from './enrol-table.js';
import { freePort, now, pct, printTable, sleep, spread, usage } from './measure.js';
import { Teardown } from './teardown.js';

const WORKLOADS = Number(process.env.BENCH_WORKLOADS ?? 10_000);
const SERVICES = Number(process.env.BENCH_SERVICES ?? 1_000);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 50);
const CHANGES = Number(process.env.BENCH_CHANGES ?? 30);
const WARMUP = 3;
const NAMESPACES = 10;
const CLIENT_PROCESSES = Number(process.env.BENCH_CLIENT_PROCESSES ?? 2);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

async function writeManifests(dir: string): Promise<void> {
  const perNs = Math.ceil(WORKLOADS / NAMESPACES);
  const svcPerNs = Math.ceil(SERVICES / NAMESPACES);
  const items: object[] = [];
  for (let n = 0; n < NAMESPACES; n++) {
    items.push({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: `ns${n}`, labels: { 'istio.io/dataplane-mode': 'ambient' } },
    });
    for (let s = 0; s < svcPerNs; s++) {
      items.push({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: `svc${s}`, namespace: `ns${n}` },
        spec: {
          clusterIP: `10.96.${n}.${s + 1}`,
          selector: { app: `svc${s}` },
          ports: [{ name: 'http', port: 80, targetPort: 8080 }],
        },
      });
    }
  }
  for (let i = 0; i < WORKLOADS; i++) {
    const n = i % NAMESPACES;
    const k = Math.floor(i / NAMESPACES);
    items.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `pod${k}`, namespace: `ns${n}`, labels: { app: `svc${k % svcPerNs}` } },
      spec: { nodeName: `node${i % CLIENTS}`, serviceAccountName: `sa${k % 20}` },
      status: { podIP: `10.${64 + n}.${Math.floor(k / 250)}.${(k % 250) + 1}` },
    });
  }
  if (perNs * NAMESPACES < WORKLOADS) throw new Error('namespace split');
  await writeFile(join(dir, 'cluster.json'), JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
  items.length = 0;
  items.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bench' } });
  await writeFile(join(dir, 'bench-namespace.json'), JSON.stringify(items[0]));
  await writeTarget(dir, 0);
}

/** The pod the benchmark changes: its IP carries the change number (bench-target.ts). */
async function writeTarget(dir: string, k: number): Promise<void> {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'target', namespace: 'bench', labels: { app: 'target' } },
    spec: { nodeName: 'node0', serviceAccountName: 'target' },
    status: { podIP: targetIp(k) },
  };
  await writeFile(join(dir, '.target.json'), JSON.stringify(pod));
  await rename(join(dir, '.target.json'), join(dir, 'target.json'));
}

/** What one round (a fresh fleet of clients in one mode) measured. */
interface Round {
  readonly mode: ClientMode;
  readonly resources: number;
  /** The first Address response's size (count-only clients measure it). */
  readonly bytes?: number;
  readonly soloMs: number;
  /** Per client, from "start" to holding its full config. */
  readonly syncTimes: readonly number[];
  /** Per change: the slowest client's time; and every client's time. */
  readonly allClients: readonly number[];
  readonly perClient: readonly number[];
  /** CPU seconds per phase: the control plane's, and each client process's. */
  readonly cpSyncCpu: number;
  readonly clientSyncCpu: readonly number[];
  readonly cpChangeCpu: number;
  readonly clientChangeCpu: readonly number[];
  readonly cpRssAfterSyncMb: number;
}

interface RoundContext {
  readonly cpPid: number;
  readonly manifests: string;
  readonly port: number;
  readonly work: string;
  /** The next change number (changes of every round carry distinct numbers). */
  nextChange: number;
}

async function cpuOfEach(pids: readonly number[]): Promise<number[]> {
  return Promise.all(pids.map(async (pid) => (await usage(pid)).cpu));
}

const minus = (a: readonly number[], b: readonly number[]) => a.map((v, i) => v - (b[i] ?? 0));

async function runRound(ctx: RoundContext, mode: ClientMode, round: number): Promise<Round> {
  const fleet = ClientFleet.spawn({
    target: `127.0.0.1:${ctx.port}`,
    rootCertFile: join(ctx.work, 'ca', 'root-cert.pem'),
    tokensFile: join(ctx.work, 'tokens.json'),
    clients: CLIENTS,
    processes: CLIENT_PROCESSES,
    mode,
    nodeArgs: process.env.BENCH_CLIENT_NODE_ARGS?.split(' ').filter(Boolean) ?? [],
  });
  try {
    const { reports } = fleet;
    const pids = fleet.pids();
    const log = (what: string) => process.stderr.write(`bench: round ${round} (${mode}): ${what}\n`);
    // Client processes load their modules before anything is timed.
    await fleet.waitFor(
      () => reports.filter((r) => r.ready !== undefined).length >= pids.length,
      'client processes to load',
      60_000,
    );

    log('one client syncing alone');
    const soloStart = now();
    fleet.send('solo', 'first');
    await fleet.waitFor(() => reports.some((r) => r.solo !== undefined), 'solo sync', 60_000);
    const soloMs = (reports.find((r) => r.solo !== undefined)?.at ?? Number.NaN) - soloStart;
    await sleep(500);

    log(`${CLIENTS} clients connecting`);
    const cp0 = (await usage(ctx.cpPid)).cpu;
    const cl0 = await cpuOfEach(pids);
    const syncStart = now();
    fleet.send('start');
    await fleet.waitFor(
      () => reports.filter((r) => r.synced !== undefined).length >= CLIENTS,
      'initial sync',
      120_000,
    );
    const synced = reports.filter((r) => r.synced !== undefined);
    const syncTimes = synced.map((r) => r.at - syncStart);
    const afterSync = await usage(ctx.cpPid);
    const cl1 = await cpuOfEach(pids);

    log(`${CHANGES} one-pod changes (after ${WARMUP} warm-up changes)`);
    // Let the clients' heaps settle after taking in the snapshot, then warm up.
    await sleep(1000);
    const allClients: number[] = [];
    const perClient: number[] = [];
    let cp2 = 0;
    let cl2: number[] = [];
    for (let n = 1; n <= CHANGES + WARMUP; n++) {
      if (n === WARMUP + 1) {
        cp2 = (await usage(ctx.cpPid)).cpu;
        cl2 = await cpuOfEach(pids);
      }
      const k = ctx.nextChange++;
      const t0 = now();
      await writeTarget(ctx.manifests, k);
      await fleet.waitFor(
        () => reports.filter((r) => r.change === k).length >= CLIENTS,
        `change ${k} to reach all clients`,
        30_000,
      );
      const times = reports.filter((r) => r.change === k).map((r) => r.at - t0);
      if (n > WARMUP) {
        allClients.push(Math.max(...times));
        perClient.push(...times);
      }
      await sleep(100);
    }
    const cp3 = (await usage(ctx.cpPid)).cpu;
    const cl3 = await cpuOfEach(pids);
    if (process.env.BENCH_VERBOSE) log(`all-clients ms: ${allClients.map((v) => v.toFixed(0)).join(' ')}`);
    return {
      mode,
      resources: synced[0]?.resources ?? 0,
      ...(synced[0]?.bytes !== undefined && { bytes: synced[0].bytes }),
      soloMs,
      syncTimes,
      allClients,
      perClient,
      cpSyncCpu: afterSync.cpu - cp0,
      clientSyncCpu: minus(cl1, cl0),
      cpChangeCpu: cp3 - cp2,
      clientChangeCpu: minus(cl3, cl2),
      cpRssAfterSyncMb: afterSync.rssMb,
    };
  } finally {
    await fleet.stop();
  }
}

const MODES: readonly ClientMode[] = (process.env.BENCH_MODES ?? 'count,decode').split(',').map((m) => {
  if (m !== 'count' && m !== 'decode') throw new Error(`BENCH_MODES lists count and decode, not ${m}`);
  return m;
});

function printDirectoryTable(rounds: readonly Round[], loadMs: number, nacks: number, load: string): void {
  const f = (n: number, d = 0) => n.toFixed(d);
  const of = (mode: ClientMode) => rounds.filter((r) => r.mode === mode);
  const cell = (mode: ClientMode, pick: (r: Round) => number | undefined, d = 0) => {
    const values = of(mode)
      .map(pick)
      .filter((v): v is number => v !== undefined);
    if (values.length === 0) return '-';
    const s = spread(values);
    return `${f(s.min, d)} / ${f(s.median, d)} / ${f(s.max, d)}`;
  };
  const row = (label: string, pick: (r: Round) => number | undefined, d = 0): [string, string, string] => [
    label,
    cell('count', pick, d),
    cell('decode', pick, d),
  ];
  const processes = Math.max(...rounds.map((r) => r.clientSyncCpu.length));
  const perProcess = (label: string, pick: (r: Round) => readonly number[]) =>
    Array.from({ length: processes }, (_, p) => row(`${label} ${p + 1} (s)`, (r) => pick(r)[p] ?? 0, 2));
  console.log(
    `${WORKLOADS} workloads / ${SERVICES} services / ${CLIENTS} clients in ${CLIENT_PROCESSES} processes; ` +
      `${availableParallelism()} CPU cores shared by control plane and clients; ` +
      `${of('count').length} rounds per client mode; control plane load of the manifests ${f(loadMs)} ms; ` +
      `NACKs ${nacks}; load average ${load}`,
  );
  printTable(
    ['metric (min / median / max over rounds)', 'count-only clients', 'decoding clients'],
    [
      row('resources per client (Address)', (r) => r.resources),
      row('first Address response (MB)', (r) => (r.bytes === undefined ? undefined : r.bytes / 1e6), 2),
      row('initial sync, one client alone (ms)', (r) => r.soloMs),
      row('initial sync, all clients (ms)', (r) => Math.max(...r.syncTimes)),
      row('initial sync, per client p50 (ms)', (r) => pct(r.syncTimes, 50)),
      row('one-pod change to all clients p50 (ms)', (r) => pct(r.allClients, 50), 1),
      row('one-pod change to all clients p99 (ms)', (r) => pct(r.allClients, 99), 1),
      row('one-pod change per client p50 (ms)', (r) => pct(r.perClient, 50), 1),
      row('one-pod change per client p99 (ms)', (r) => pct(r.perClient, 99), 1),
      row('control plane CPU in initial sync (s)', (r) => r.cpSyncCpu, 2),
      ...perProcess('client process CPU in initial sync,', (r) => r.clientSyncCpu),
      row(`control plane CPU in ${CHANGES} changes (s)`, (r) => r.cpChangeCpu, 2),
      ...perProcess(`client process CPU in ${CHANGES} changes,`, (r) => r.clientChangeCpu),
      row('control plane RSS after sync (MB)', (r) => r.cpRssAfterSyncMb),
    ],
  );
  if (of('count').length === 0 || of('decode').length === 0) return; // the targets need both modes
  const sync = spread(of('count').map((r) => Math.max(...r.syncTimes)));
  const decodeSync = spread(of('decode').map((r) => Math.max(...r.syncTimes)));
  const conv = pct(
    of('decode').flatMap((r) => r.allClients),
    99,
  );
  const countConv = pct(
    of('count').flatMap((r) => r.allClients),
    99,
  );
  console.log(
    `target initial sync <= 2000 ms (count-only clients, median of rounds): ${sync.median <= 2000 ? 'met' : 'NOT met'} ` +
      `(${f(sync.median)} ms, rounds ${f(sync.min)}-${f(sync.max)}; decoding clients ${f(decodeSync.median)} ms, ` +
      `rounds ${f(decodeSync.min)}-${f(decodeSync.max)})`,
  );
  console.log(
    `target one-change convergence p99 <= 100 ms (decoding clients, all rounds): ${conv <= 100 ? 'met' : 'NOT met'} ` +
      `(${f(conv, 1)} ms; count-only clients ${f(countConv, 1)} ms)`,
  );
}

async function directoryBench(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'bench-xds-'));
  const manifests = join(work, 'manifests');
  await mkdir(manifests);
  let cp: ControlPlaneProcess | undefined;
  try {
    process.stderr.write(`bench: writing ${WORKLOADS} pods and ${SERVICES} services\n`);
    await writeManifests(manifests);
    await LocalCa.loadOrCreate(join(work, 'ca'), { trustDomain: 'cluster.local' });
    const tokens: Record<string, { node: string }> = {};
    for (let i = 0; i < CLIENTS; i++) tokens[`bench-token-node${i}-0123456789`] = { node: `node${i}` };
    await writeFile(join(work, 'tokens.json'), JSON.stringify(tokens));
    const port = await freePort();
    const monitor = await freePort();
    cp = await startControlPlaneProcess({
      env: {
        CP_MANIFEST_DIR: manifests,
        CP_CA_DIR: join(work, 'ca'),
        CP_TOKENS_FILE: join(work, 'tokens.json'),
        CP_GRPC_ADDRESS: '127.0.0.1',
        CP_GRPC_PORT: String(port),
        CP_MONITOR_ADDRESS: '127.0.0.1',
        CP_MONITOR_PORT: String(monitor),
        CP_LOG_LEVEL: 'warn',
      },
      monitorPort: monitor,
      nodeArgs: process.env.BENCH_CP_NODE_ARGS?.split(' ').filter(Boolean) ?? [],
    });
    const load = () =>
      loadavg()
        .map((v) => v.toFixed(2))
        .join(' ');
    const loadBefore = load();
    const ctx: RoundContext = { cpPid: cp.pid, manifests, port, work, nextChange: 1 };
    const rounds: Round[] = [];
    // Modes alternate round by round, so both see the same share of the machine's other load.
    for (let round = 1; round <= ROUNDS; round++)
      for (const mode of MODES) rounds.push(await runRound(ctx, mode, round));
    printDirectoryTable(rounds, cp.loadMs, await cp.nacks(), `${loadBefore} at start, ${load()} at end`);
  } finally {
    cp?.child.kill('SIGTERM');
    await rm(work, { recursive: true, force: true });
  }
}

async function kubernetesBench(): Promise<void> {
  const num = (name: string, dflt: number) => {
    const v = Number(process.env[name] ?? dflt);
    if (!Number.isInteger(v) || v < 1)
      throw new Error(`${name} must be a whole number from 1, not ${process.env[name]}`);
    return v;
  };
  const clients = num('BENCH_CLIENTS', 50);
  const opts: EnrolBenchOptions = {
    pods: num('BENCH_PODS', 10_000),
    services: num('BENCH_SERVICES', 1_000),
    nodes: clients,
    rounds: num('BENCH_ROUNDS', 3),
    clientProcesses: CLIENT_PROCESSES,
    phaseTimeoutMs: num('BENCH_PHASE_TIMEOUT_MS', 600_000),
    log: (line) => process.stderr.write(`bench: ${line}\n`),
    cpNodeArgs: process.env.BENCH_CP_NODE_ARGS?.split(' ').filter(Boolean) ?? [],
    clientNodeArgs: process.env.BENCH_CLIENT_NODE_ARGS?.split(' ').filter(Boolean) ?? [],
  };
  const concurrency = num('BENCH_WRITE_CONCURRENCY', 16);
  const results: EnrolResult[] = [];
  const once = async (make: Parameters<typeof runEnrolBench>[0]) => {
    const teardown = new Teardown();
    const stop = () => {
      process.stderr.write('bench: interrupted, cleaning up\n');
      void teardown.run().finally(() => process.exit(130));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      results.push(await runEnrolBench(make, opts, teardown));
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      await teardown.run();
    }
  };
  if (process.env.BENCH_BASELINE !== '0') await once((work) => directorySource(work, opts));
  await once((_work, teardown) => kubernetesSource(opts, teardown, { concurrency, log: opts.log }));
  printEnrolTable(results);
}

function sourceArg(argv: readonly string[]): string {
  const i = argv.indexOf('--source');
  const v = i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith('--source='))?.slice('--source='.length);
  return v ?? 'directory';
}

const source = sourceArg(process.argv.slice(2));
const main =
  source === 'kubernetes'
    ? kubernetesBench
    : source === 'directory'
      ? directoryBench
      : () => Promise.reject(new Error(`--source must be directory or kubernetes, not ${source}`));

main().catch((err: unknown) => {
  console.error(`bench/xds: ${(err as Error).stack ?? err}`);
  process.exitCode = 1;
});

/**
 * HBONE benchmark on loopback. The same workloads run, in one invocation, through
 *   (a) direct TCP,
 *   (b) a stunnel mutual-TLS pair (TLS 1.3, AES-GCM, ECDSA P-256 certificates from the same CA),
 *   (c) our HBONE client and server, each in its own process like two node agents,
 * and a table with ratios to (a) and (b) is printed: medians, then each figure's spread over the
 * rounds (min/median/max), then the CPU seconds each process spent per mode, read from /proc, with
 * CPU seconds per GB during the iperf3 runs (a figure the machine's other load barely moves).
 *   BENCH_SECONDS   iperf3 duration per mode and round (default 3)
 *   BENCH_ROUNDS    64-byte round trips for latency per mode and round (default 10000)
 *   BENCH_CONNS     connections for the connection-rate run per mode and round (default 3000)
 *   BENCH_REPEAT    interleaved rounds; the table shows medians (default 3)
 */
import { type ChildProcess, execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CertManager, LocalCa, SpiffeId } from '@ambient/shared';
import { spawnTracked, stopAll } from './bench-processes.js';
import { measureConnectionRate, measureLatency, startEcho } from './load.js';
import { freePorts, waitListening } from './loopback-ports.js';
import { cpuSeconds, formatSpread, loadAverage, median, setClockTicks, spread } from './report.js';
import { stunnelConfig } from './stunnel.js';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10_000);
const CONNS = Number(process.env.BENCH_CONNS ?? 3000);
const ROUNDS_OF_EACH = Number(process.env.BENCH_REPEAT ?? 3);
const CONCURRENCY = 8;
const TD = 'cluster.local';

const children: ChildProcess[] = [];
let workDir = '';

async function main(): Promise<void> {
  for (const tool of ['iperf3', 'stunnel4']) {
    await run('sh', ['-c', `command -v ${tool}`]).catch(() => {
      throw new Error(`${tool} not found: run scripts/setup.sh --bench`);
    });
  }
  setClockTicks(Number((await run('getconf', ['CLK_TCK']).catch(() => ({ stdout: '100' }))).stdout.trim()));
  workDir = await mkdtemp(join(tmpdir(), 'bench-hbone-'));
  const caDir = join(workDir, 'ca');
  const ca = await LocalCa.loadOrCreate(caDir, { trustDomain: TD });
  const certs = new CertManager({ ca });
  for (const [name, sa] of [
    ['client', 'client'],
    ['server', 'server'],
  ] as const) {
    const c = await certs.fetch(SpiffeId.of(TD, 'bench', sa));
    await writeFile(join(workDir, `${name}-key.pem`), c.keyPem, { mode: 0o600 });
    await writeFile(join(workDir, `${name}-cert.pem`), c.chainPem[0] as string);
  }
  await writeFile(join(workDir, 'root.pem'), ca.rootPem);
  certs.close();

  const [iperfPort, stIperf, stIperfSrv, stEcho, stEchoSrv, hbIperf, hbEcho, hbonePort] = (await freePorts(
    8,
  )) as [number, number, number, number, number, number, number, number];
  const echo = await startEcho();
  const iperfServer = spawnChild('iperf3', ['-s', '-p', String(iperfPort)]);
  await writeFile(
    join(workDir, 'stunnel-server.conf'),
    stunnelConfig(workDir, 'server', [
      [`127.0.0.1:${stIperfSrv}`, `127.0.0.1:${iperfPort}`],
      [`127.0.0.1:${stEchoSrv}`, `127.0.0.1:${echo.port}`],
    ]),
  );
  await writeFile(
    join(workDir, 'stunnel-client.conf'),
    stunnelConfig(workDir, 'client', [
      [`127.0.0.1:${stIperf}`, `127.0.0.1:${stIperfSrv}`],
      [`127.0.0.1:${stEcho}`, `127.0.0.1:${stEchoSrv}`],
    ]),
  );
  const stServer = spawnChild('stunnel4', [join(workDir, 'stunnel-server.conf')]);
  const stClient = spawnChild('stunnel4', [join(workDir, 'stunnel-client.conf')]);
  const pair = join(here, 'hbone-pair.js');
  const hbServer = spawnChild(process.execPath, [pair, 'server', caDir, String(hbonePort)]);
  const hbClient = spawnChild(process.execPath, [
    pair,
    'client',
    caDir,
    String(hbonePort),
    `${hbIperf}=${iperfPort}`,
    `${hbEcho}=${echo.port}`,
  ]);
  await Promise.all([hbServer, hbClient].map(waitReady));
  await Promise.all(
    [iperfPort, stIperf, stEcho, stIperfSrv, stEchoSrv, hbIperf, hbEcho].map((p) =>
      waitListening(p as number),
    ),
  );

  const modes: Mode[] = [
    { name: 'direct', iperf: iperfPort, echo: echo.port, procs: { 'iperf3 server': iperfServer.pid } },
    {
      name: 'stunnel',
      iperf: stIperf,
      echo: stEcho,
      procs: {
        'tunnel client': stClient.pid,
        'tunnel server': stServer.pid,
        'iperf3 server': iperfServer.pid,
      },
    },
    {
      name: 'hbone',
      iperf: hbIperf,
      echo: hbEcho,
      procs: {
        'tunnel client': hbClient.pid,
        'tunnel server': hbServer.pid,
        'iperf3 server': iperfServer.pid,
      },
    },
  ];
  const loadAtStart = await loadAverage();
  // Modes are interleaved over several rounds and medians reported, so that drift in the
  // machine's load affects every mode alike.
  const samples: Record<ModeName, Sample[]> = { direct: [], stunnel: [], hbone: [] };
  for (const m of modes) await measureConnectionRate(m.echo, 200, 2_000, CONCURRENCY); // warm pools
  for (let round = 1; round <= ROUNDS_OF_EACH; round++) {
    for (const m of modes) {
      process.stderr.write(
        `bench: round ${round}/${ROUNDS_OF_EACH} ${m.name}: iperf3 ${SECONDS}s, latency, connection rate\n`,
      );
      const before = await cpuOf(m.procs);
      const tput = await iperf(m.iperf);
      const mid = await cpuOf(m.procs);
      const self0 = process.cpuUsage();
      const lat = await measureLatency(m.echo, ROUNDS, 30_000);
      const rate = await measureConnectionRate(m.echo, CONNS, 10_000, CONCURRENCY);
      const self = process.cpuUsage(self0);
      const after = await cpuOf(m.procs);
      const iperfCpu: Record<string, number> = { 'iperf3 client': tput.clientCpuSeconds };
      const otherCpu: Record<string, number> = { 'bench (load, echo)': (self.user + self.system) / 1e6 };
      for (const name of Object.keys(m.procs)) {
        iperfCpu[name] = (mid[name] as number) - (before[name] as number);
        otherCpu[name] = (after[name] as number) - (mid[name] as number);
      }
      samples[m.name].push({
        gbps: tput.gbps,
        gb: tput.gb,
        p50: lat.p50Us,
        p99: lat.p99Us,
        cps: rate.perSecond,
        failed: rate.failed,
        iperfCpu,
        otherCpu,
      });
    }
  }
  const rss = await Promise.all([hbClient, hbServer].map((c) => rssMb(c.pid)));
  const loadAtEnd = await loadAverage();
  echo.close();
  printTable(samples, rss as [number, number], loadAtStart, loadAtEnd);
}

type ModeName = 'direct' | 'stunnel' | 'hbone';
interface Mode {
  name: ModeName;
  iperf: number;
  echo: number;
  /** The processes of this mode whose CPU time is read from /proc. */
  procs: Record<string, number | undefined>;
}
interface Sample {
  gbps: number;
  /** Gigabytes iperf3 received. */
  gb: number;
  p50: number;
  p99: number;
  cps: number;
  failed: number;
  /** CPU seconds per process during the iperf3 run. */
  iperfCpu: Record<string, number>;
  /** CPU seconds per process during the latency and connection-rate runs. */
  otherCpu: Record<string, number>;
}

async function cpuOf(procs: Record<string, number | undefined>): Promise<Record<string, number>> {
  const entries = await Promise.all(
    Object.entries(procs).map(async ([name, pid]) => [name, await cpuSeconds(pid)] as const),
  );
  return Object.fromEntries(entries);
}

async function iperf(port: number): Promise<{ gbps: number; gb: number; clientCpuSeconds: number }> {
  const { stdout } = await run(
    'iperf3',
    ['-c', '127.0.0.1', '-p', String(port), '-t', String(SECONDS), '-J'],
    {
      timeout: (SECONDS + 30) * 1000,
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  const report = JSON.parse(stdout) as {
    end: {
      sum_received: { bits_per_second: number; bytes: number; seconds: number };
      cpu_utilization_percent?: { host_total: number };
    };
  };
  const received = report.end.sum_received;
  // iperf3 reports its own CPU use as a share of the test's wall time.
  const hostPercent = report.end.cpu_utilization_percent?.host_total ?? Number.NaN;
  return {
    gbps: received.bits_per_second / 1e9,
    gb: received.bytes / 1e9,
    clientCpuSeconds: (hostPercent / 100) * received.seconds,
  };
}

function printTable(
  samples: Record<ModeName, Sample[]>,
  [clientRss, serverRss]: [number, number],
  loadAtStart: string,
  loadAtEnd: string,
): void {
  const names: ModeName[] = ['direct', 'stunnel', 'hbone'];
  const med = (name: ModeName, f: (x: Sample) => number) => median(samples[name].map(f));
  const r = Object.fromEntries(
    names.map((n) => [
      n,
      {
        gbps: med(n, (x) => x.gbps),
        p50: med(n, (x) => x.p50),
        p99: med(n, (x) => x.p99),
        cps: med(n, (x) => x.cps),
        failed: samples[n].reduce((sum, x) => sum + x.failed, 0),
      },
    ]),
  ) as Record<ModeName, { gbps: number; p50: number; p99: number; cps: number; failed: number }>;
  const { direct: d, stunnel: s, hbone: h } = r;
  const ratio = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(2)}x` : 'n/a');
  const rows: Array<[string, number, number, number, number]> = [
    ['throughput, 1 stream (Gbit/s)', d.gbps, s.gbps, h.gbps, 2],
    ['64 B round trip p50 (us)', d.p50, s.p50, h.p50, 0],
    ['64 B round trip p99 (us)', d.p99, s.p99, h.p99, 0],
    ['added p50 over direct (us)', 0, s.p50 - d.p50, h.p50 - d.p50, 0],
    ['added p99 over direct (us)', 0, s.p99 - d.p99, h.p99 - d.p99, 0],
    ['new connections/s (x8)', d.cps, s.cps, h.cps, 0],
  ];
  const pad = (v: string, n: number) => v.padStart(n);
  console.log(
    `\nHBONE benchmark: loopback; medians of ${ROUNDS_OF_EACH} interleaved rounds of iperf3 ${SECONDS}s, ${ROUNDS} round trips, up to ${CONNS} connections`,
  );
  console.log(`load average (1, 5, 15 min): ${loadAtStart} at the start, ${loadAtEnd} at the end`);
  console.log(
    `${'metric'.padEnd(32)}${pad('direct', 10)}${pad('stunnel', 10)}${pad('hbone', 10)}${pad('hbone/direct', 14)}${pad('hbone/stunnel', 15)}`,
  );
  for (const [name, a, b, c, digits] of rows) {
    console.log(
      `${name.padEnd(32)}${pad(a.toFixed(digits), 10)}${pad(b.toFixed(digits), 10)}${pad(c.toFixed(digits), 10)}` +
        `${pad(name.startsWith('added') ? '-' : ratio(c, a), 14)}${pad(ratio(c, b), 15)}`,
    );
  }

  // Per-round figures: added latency and ratios are taken within a round, where the modes ran
  // back to back under the same load.
  const perRound: Array<[string, (n: ModeName, i: number) => number, number]> = [
    ['throughput, 1 stream (Gbit/s)', (n, i) => at(n, i).gbps, 2],
    ['64 B round trip p50 (us)', (n, i) => at(n, i).p50, 0],
    ['64 B round trip p99 (us)', (n, i) => at(n, i).p99, 0],
    ['added p50 over direct (us)', (n, i) => at(n, i).p50 - at('direct', i).p50, 0],
    ['added p99 over direct (us)', (n, i) => at(n, i).p99 - at('direct', i).p99, 0],
    ['new connections/s (x8)', (n, i) => at(n, i).cps, 0],
  ];
  const at = (n: ModeName, i: number) => samples[n][i] as Sample;
  const rounds = samples.hbone.length;
  const idx = Array.from({ length: rounds }, (_, i) => i);
  console.log(`\nspread over the ${rounds} rounds, min/median/max (ratios taken within each round)`);
  console.log(
    `${'metric'.padEnd(32)}${pad('direct', 20)}${pad('stunnel', 20)}${pad('hbone', 20)}${pad('hbone/stunnel', 20)}`,
  );
  for (const [name, f, digits] of perRound) {
    const col = (n: ModeName) =>
      name.startsWith('added') && n === 'direct'
        ? '-'
        : formatSpread(spread(idx.map((i) => f(n, i))), digits);
    const ratios = spread(idx.map((i) => f('hbone', i) / f('stunnel', i)));
    console.log(
      `${name.padEnd(32)}${pad(col('direct'), 20)}${pad(col('stunnel'), 20)}${pad(col('hbone'), 20)}${pad(`${formatSpread(ratios, 2)}x`, 20)}`,
    );
  }

  // CPU time per process: seconds per GB during the iperf3 runs does not depend on how much CPU
  // the other work on the machine left over, so it compares the modes even on a loaded machine.
  const cpuRows = [...new Set(names.flatMap((n) => samples[n].flatMap((x) => Object.keys(x.iperfCpu))))];
  const order = ['tunnel client', 'tunnel server', 'iperf3 server', 'iperf3 client'];
  cpuRows.sort((a, b) => order.indexOf(a) - order.indexOf(b));
  const cpuCell = (n: ModeName, proc: string | undefined) => {
    const list = samples[n];
    const secs = (x: Sample) =>
      proc === undefined
        ? Object.values(x.iperfCpu).reduce((sum, v) => sum + (Number.isFinite(v) ? v : 0), 0)
        : (x.iperfCpu[proc] ?? Number.NaN);
    if (list.every((x) => !Number.isFinite(secs(x)))) return '-';
    const total = list.reduce((sum, x) => sum + secs(x), 0);
    return `${total.toFixed(1)} s, ${formatSpread(spread(list.map((x) => secs(x) / x.gb)), 2)}`;
  };
  console.log(
    `\nCPU during the iperf3 runs: seconds summed over the rounds, then CPU seconds per GB received, min/median/max`,
  );
  console.log(`${'process'.padEnd(32)}${pad('direct', 24)}${pad('stunnel', 24)}${pad('hbone', 24)}`);
  for (const proc of [...cpuRows, undefined]) {
    console.log(
      `${(proc ?? 'all of the above').padEnd(32)}${names.map((n) => pad(cpuCell(n, proc), 24)).join('')}`,
    );
  }
  const otherRows = [...new Set(names.flatMap((n) => samples[n].flatMap((x) => Object.keys(x.otherCpu))))];
  otherRows.sort((a, b) => order.indexOf(a) - order.indexOf(b));
  console.log('CPU seconds during the latency and connection-rate runs, summed over the rounds');
  for (const proc of otherRows) {
    const cell = (n: ModeName) => {
      const v = samples[n].reduce((sum, x) => sum + (x.otherCpu[proc] ?? Number.NaN), 0);
      return Number.isFinite(v) ? v.toFixed(1) : '-';
    };
    console.log(`${proc.padEnd(32)}${names.map((n) => pad(cell(n), 24)).join('')}`);
  }

  console.log(
    `\nhbone process RSS after the run: client ${clientRss.toFixed(0)} MB, server ${serverRss.toFixed(0)} MB`,
  );
  if (d.failed + s.failed + h.failed > 0) {
    console.log(`failed connections: direct ${d.failed}, stunnel ${s.failed}, hbone ${h.failed}`);
  }
  const tputOk = h.gbps >= s.gbps;
  const p50Ok = h.p50 - d.p50 <= 1.5 * (s.p50 - d.p50);
  const p99Ok = h.p99 - d.p99 <= 1.5 * (s.p99 - d.p99);
  console.log(
    `target throughput >= stunnel: ${tputOk ? 'met' : 'NOT met'} (${h.gbps.toFixed(2)} vs ${s.gbps.toFixed(2)} Gbit/s)`,
  );
  const latencyTarget = (q: 'p50' | 'p99', ok: boolean) => {
    const budget = 1.5 * (s[q] - d[q]);
    // A baseline that added nothing (or less than zero, from noise) leaves no budget to compare to.
    const verdict = s[q] - d[q] > 0 ? (ok ? 'met' : 'NOT met') : 'n/a (stunnel added nothing)';
    console.log(
      `target added ${q} <= 1.5x stunnel's: ${verdict} (${(h[q] - d[q]).toFixed(0)} vs ${budget.toFixed(0)} us)`,
    );
  };
  latencyTarget('p50', p50Ok);
  latencyTarget('p99', p99Ok);
}

function spawnChild(cmd: string, args: string[]): ChildProcess {
  return spawnTracked(children, cmd, args);
}

function waitReady(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('child did not become ready in 20 s')), 20_000);
    child.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`child exited with ${code}`)));
  });
}

async function rssMb(pid: number | undefined): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  return kb / 1024;
}

function cleanup(): Promise<void> {
  return stopAll(children, workDir);
}

main().then(
  async () => {
    await cleanup();
    process.exit(0);
  },
  async (err: unknown) => {
    console.error(`bench/hbone: ${(err as Error).message}`);
    await cleanup();
    process.exit(1);
  },
);

/**
 * What a Node.js TLS tunnel costs on this machine, against stunnel and HBONE: single-stream iperf3
 * through
 *   stunnel      a stunnel mutual-TLS pair (TLS 1.3, AES-GCM, P-256 certificates from one CA),
 *   node-tls     the same pair in Node.js: net and TLS sockets joined with pipe() (tls-pipe.ts),
 *   node-frames  node-tls writing HTTP/2-style DATA frames (header and payload, corked),
 *   hbone        our HBONE client and server (hbone-pair.ts),
 * each side in its own process. Printed per mode: throughput, and CPU seconds per GB and read/write
 * system calls per MB of each tunnel process (from /proc), as min/median/max over interleaved rounds.
 * CPU per GB barely depends on how busy the machine is, so it is the figure to compare. Then the
 * added latency of 64-byte round trips (p50, p99 over a direct connection to the same echo server)
 * through stunnel, node-tls and hbone: what the plainest Node.js TLS relay adds to a round trip.
 *   BENCH_SECONDS   iperf3 duration per mode and round (default 4)
 *   BENCH_REPEAT    interleaved rounds (default 5)
 *   BENCH_ROUNDS    64-byte round trips per mode and round (default 10000)
 *   BENCH_PERF=1    after the rounds, one more iperf3 run per mode with both tunnel processes sampled
 *                   by `perf record`: CPU seconds per GB by kind of work (perf-breakdown.ts)
 */
import { type ChildProcess, execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CertManager, LocalCa, SpiffeId } from '@ambient/shared';
import { spawnTracked, stopAll } from './bench-processes.js';
import { measureLatency, startEcho } from './load.js';
import { freePorts, waitListening } from './loopback-ports.js';
import { type BreakdownRow, formatBreakdown, profileDuring } from './perf-breakdown.js';
import { cpuSeconds, formatSpread, loadAverage, setClockTicks, spread } from './report.js';
import { stunnelConfig } from './stunnel.js';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 5);
const ROUND_TRIPS = Number(process.env.BENCH_ROUNDS ?? 10_000);
const PERF = process.env.BENCH_PERF === '1';
const TD = 'cluster.local';
const children: ChildProcess[] = [];
let workDir = '';

interface Mode {
  name: string;
  /** The port iperf3 connects to. */
  port: number;
  client: ChildProcess;
  server: ChildProcess;
}

interface Round {
  gbps: number;
  cpuPerGb: { client: number; server: number };
  callsPerMb: { client: [number, number]; server: [number, number] };
}

async function main(): Promise<void> {
  setClockTicks(Number((await run('getconf', ['CLK_TCK']).catch(() => ({ stdout: '100' }))).stdout.trim()));
  workDir = await mkdtemp(join(tmpdir(), 'bench-ceiling-'));
  const caDir = join(workDir, 'ca');
  const ca = await LocalCa.loadOrCreate(caDir, { trustDomain: TD });
  const certs = new CertManager({ ca });
  for (const name of ['client', 'server'] as const) {
    const c = await certs.fetch(SpiffeId.of(TD, 'bench', name));
    await writeFile(join(workDir, `${name}-key.pem`), c.keyPem, { mode: 0o600 });
    await writeFile(join(workDir, `${name}-cert.pem`), c.chainPem[0] as string);
  }
  await writeFile(join(workDir, 'root.pem'), ca.rootPem);
  certs.close();

  const p = (await freePorts(14)) as number[];
  const [iperfPort, stIn, stTls, tlsIn, tlsTls, frIn, frTls, hbIn, hbTls] = p as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  // The latency run's entry ports: each tunnel also relays to an echo server in this process.
  const [stEcho, stEchoTls, tlsEcho, tlsEchoTls, hbEcho] = p.slice(9) as [
    number,
    number,
    number,
    number,
    number,
  ];
  const echo = await startEcho();
  spawnChild('iperf3', ['-s', '-p', String(iperfPort)]);
  await writeFile(
    join(workDir, 'st-server.conf'),
    stunnelConfig(workDir, 'server', [
      [`127.0.0.1:${stTls}`, `127.0.0.1:${iperfPort}`],
      [`127.0.0.1:${stEchoTls}`, `127.0.0.1:${echo.port}`],
    ]),
  );
  await writeFile(
    join(workDir, 'st-client.conf'),
    stunnelConfig(workDir, 'client', [
      [`127.0.0.1:${stIn}`, `127.0.0.1:${stTls}`],
      [`127.0.0.1:${stEcho}`, `127.0.0.1:${stEchoTls}`],
    ]),
  );
  const node = process.execPath;
  const pipe = join(here, 'tls-pipe.js');
  const pair = join(here, 'hbone-pair.js');
  const modes: Mode[] = [
    {
      name: 'stunnel',
      port: stIn,
      server: spawnChild('stunnel4', [join(workDir, 'st-server.conf')]),
      client: spawnChild('stunnel4', [join(workDir, 'st-client.conf')]),
    },
    {
      name: 'node-tls',
      port: tlsIn,
      server: spawnChild(node, [pipe, 'server', caDir, String(tlsTls), String(iperfPort)]),
      client: spawnChild(node, [pipe, 'client', caDir, String(tlsTls), String(tlsIn)]),
    },
    {
      name: 'node-frames',
      port: frIn,
      server: spawnChild(node, [pipe, 'server', caDir, String(frTls), String(iperfPort), 'frames']),
      client: spawnChild(node, [pipe, 'client', caDir, String(frTls), String(frIn), 'frames']),
    },
    {
      name: 'hbone',
      port: hbIn,
      server: spawnChild(node, [pair, 'server', caDir, String(hbTls)]),
      client: spawnChild(node, [
        pair,
        'client',
        caDir,
        String(hbTls),
        `${hbIn}=${iperfPort}`,
        `${hbEcho}=${echo.port}`,
      ]),
    },
  ];
  // node-tls relays to one port per process pair: a second pair carries the round trips.
  spawnChild(node, [pipe, 'server', caDir, String(tlsEchoTls), String(echo.port)]);
  spawnChild(node, [pipe, 'client', caDir, String(tlsEchoTls), String(tlsEcho)]);
  const echoModes: Array<[string, number]> = [
    ['direct', echo.port],
    ['stunnel', stEcho],
    ['node-tls', tlsEcho],
    ['hbone', hbEcho],
  ];
  for (const port of p) await waitListening(port, 20);
  // One short run each first: connection pools, JIT and TLS read buffers settle before measuring.
  for (const m of modes) await iperf(m.port, 1);
  const rounds: Record<string, Round[]> = Object.fromEntries(modes.map((m) => [m.name, []]));
  const loadAtStart = await loadAverage();
  for (let i = 1; i <= REPEAT; i++) {
    for (const m of modes) {
      process.stderr.write(`ceiling: round ${i}/${REPEAT} ${m.name}\n`);
      const pids = { client: m.client.pid, server: m.server.pid };
      const cpu0 = { client: await cpuSeconds(pids.client), server: await cpuSeconds(pids.server) };
      const io0 = { client: await syscalls(pids.client), server: await syscalls(pids.server) };
      const { gbps, gb } = await iperf(m.port, SECONDS);
      const cpu1 = { client: await cpuSeconds(pids.client), server: await cpuSeconds(pids.server) };
      const io1 = { client: await syscalls(pids.client), server: await syscalls(pids.server) };
      const perMb = (a: [number, number], b: [number, number]): [number, number] => [
        (b[0] - a[0]) / (gb * 1000),
        (b[1] - a[1]) / (gb * 1000),
      ];
      rounds[m.name]?.push({
        gbps,
        cpuPerGb: { client: (cpu1.client - cpu0.client) / gb, server: (cpu1.server - cpu0.server) / gb },
        callsPerMb: { client: perMb(io0.client, io1.client), server: perMb(io0.server, io1.server) },
      });
    }
  }
  const profiles: BreakdownRow[] = [];
  for (const m of PERF ? modes : []) {
    process.stderr.write(`ceiling: profiling ${m.name}\n`);
    const pids = new Map([
      [`${m.name} client`, m.client.pid as number],
      [`${m.name} server`, m.server.pid as number],
    ]);
    const before = await Promise.all([...pids.values()].map(cpuSeconds));
    const { result, shares } = await profileDuring(pids, workDir, () => iperf(m.port, SECONDS));
    const after = await Promise.all([...pids.values()].map(cpuSeconds));
    [...pids.keys()].forEach((label, k) => {
      const cpu = ((after[k] as number) - (before[k] as number)) / result.gb;
      profiles.push({ label, cpu, shares: shares.get(label) ?? new Map() });
    });
  }
  // Round trips, modes interleaved per round; added latency is taken within a round.
  const latency: Record<string, Array<{ p50: number; p99: number }>> = Object.fromEntries(
    echoModes.map(([name]) => [name, []]),
  );
  for (const [, port] of echoModes) await measureLatency(port, 200, 5_000);
  for (let i = 1; i <= REPEAT; i++) {
    for (const [name, port] of echoModes) {
      process.stderr.write(`ceiling: round ${i}/${REPEAT} ${name} round trips\n`);
      const r = await measureLatency(port, ROUND_TRIPS, 30_000);
      latency[name]?.push({ p50: r.p50Us, p99: r.p99Us });
    }
  }
  echo.close();
  const loadAtEnd = await loadAverage();
  console.log(
    `\nTLS tunnel ceiling: loopback, iperf3 ${SECONDS}s, ${REPEAT} interleaved rounds, min/median/max; load average ${loadAtStart} at the start, ${loadAtEnd} at the end`,
  );
  const cols = [
    'Gbit/s',
    'client CPU s/GB',
    'server CPU s/GB',
    'both CPU s/GB',
    'client r/w per MB',
    'server r/w per MB',
  ];
  console.log(`${'mode'.padEnd(13)}${cols.map((c) => c.padStart(21)).join('')}`);
  for (const m of modes) {
    const list = rounds[m.name] as Round[];
    const f = (g: (r: Round) => number, digits: number) =>
      formatSpread(spread(list.map(g)), digits).padStart(21);
    const calls = (side: 'client' | 'server') =>
      `${spread(list.map((r) => r.callsPerMb[side][0])).median.toFixed(0)}/${spread(list.map((r) => r.callsPerMb[side][1])).median.toFixed(0)}`.padStart(
        21,
      );
    console.log(
      `${m.name.padEnd(13)}${f((r) => r.gbps, 2)}${f((r) => r.cpuPerGb.client, 2)}${f((r) => r.cpuPerGb.server, 2)}` +
        `${f((r) => r.cpuPerGb.client + r.cpuPerGb.server, 2)}${calls('client')}${calls('server')}`,
    );
  }
  if (profiles.length > 0) {
    console.log(
      '\nWhere the tunnel processes spend their CPU during iperf3 (perf record), CPU seconds per GB:',
    );
    for (const line of formatBreakdown(profiles)) console.log(line);
  }
  const direct = latency.direct ?? [];
  console.log(
    `\n64-byte round trips, ${ROUND_TRIPS} per mode and round; added over direct within each round (us), min/median/max`,
  );
  console.log(
    `${'mode'.padEnd(13)}${['p50', 'p99', 'added p50', 'added p99', 'added p99 / stunnel'].map((c) => c.padStart(21)).join('')}`,
  );
  const added = (name: string, q: 'p50' | 'p99') =>
    (latency[name] ?? []).map((r, i) => r[q] - (direct[i]?.[q] ?? Number.NaN));
  for (const [name] of echoModes) {
    const list = latency[name] ?? [];
    const ratio = added(name, 'p99').map((a, i) => a / (added('stunnel', 'p99')[i] ?? Number.NaN));
    console.log(
      `${name.padEnd(13)}${formatSpread(spread(list.map((r) => r.p50)), 0).padStart(21)}` +
        `${formatSpread(spread(list.map((r) => r.p99)), 0).padStart(21)}` +
        `${formatSpread(spread(added(name, 'p50')), 0).padStart(21)}` +
        `${formatSpread(spread(added(name, 'p99')), 0).padStart(21)}` +
        `${(name === 'direct' || name === 'stunnel' ? '-' : formatSpread(spread(ratio), 2)).padStart(21)}`,
    );
  }
}

/** read() and write() family calls a process has made so far (/proc/<pid>/io syscr, syscw). */
async function syscalls(pid: number | undefined): Promise<[number, number]> {
  const text = await readFile(`/proc/${pid}/io`, 'utf8').catch(() => '');
  return [
    Number(/syscr: (\d+)/.exec(text)?.[1] ?? Number.NaN),
    Number(/syscw: (\d+)/.exec(text)?.[1] ?? Number.NaN),
  ];
}

async function iperf(port: number, seconds: number): Promise<{ gbps: number; gb: number }> {
  const { stdout } = await run(
    'iperf3',
    ['-c', '127.0.0.1', '-p', String(port), '-t', String(seconds), '-J'],
    {
      timeout: (seconds + 30) * 1000,
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  const received = (
    JSON.parse(stdout) as { end: { sum_received: { bits_per_second: number; bytes: number } } }
  ).end.sum_received;
  return { gbps: received.bits_per_second / 1e9, gb: received.bytes / 1e9 };
}

function spawnChild(cmd: string, args: string[]): ChildProcess {
  return spawnTracked(children, cmd, args);
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
    console.error(`bench/hbone ceiling: ${(err as Error).message}`);
    await cleanup();
    process.exit(1);
  },
);

/**
 * HBONE benchmark on loopback. The same workloads run, in one invocation, through
 *   (a) direct TCP,
 *   (b) a stunnel mutual-TLS pair (TLS 1.3, AES-GCM, ECDSA P-256 certificates from the same CA),
 *   (c) our HBONE client and server, each in its own process like two node agents,
 * and a table with ratios to (a) and (b) is printed.
 *   BENCH_SECONDS   iperf3 duration per mode and round (default 3)
 *   BENCH_ROUNDS    64-byte round trips for latency per mode and round (default 3000)
 *   BENCH_CONNS     connections for the connection-rate run per mode and round (default 3000)
 *   BENCH_REPEAT    interleaved rounds; the table shows medians (default 3)
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CertManager, LocalCa, SpiffeId } from '@ambient/shared';
import { measureConnectionRate, measureLatency, startEcho } from './load.js';
import { stunnelConfig } from './stunnel.js';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3000);
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

  const [iperfPort, stIperf, stIperfSrv, stEcho, stEchoSrv, hbIperf, hbEcho, hbonePort] = await freePorts(8);
  const echo = await startEcho();
  spawnChild('iperf3', ['-s', '-p', String(iperfPort)]);
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
  spawnChild('stunnel4', [join(workDir, 'stunnel-server.conf')]);
  spawnChild('stunnel4', [join(workDir, 'stunnel-client.conf')]);
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

  const modes = [
    { name: 'direct', iperf: iperfPort, echo: echo.port },
    { name: 'stunnel', iperf: stIperf, echo: stEcho },
    { name: 'hbone', iperf: hbIperf, echo: hbEcho },
  ] as const;
  // Modes are interleaved over several rounds and medians reported, so that drift in the
  // machine's load affects every mode alike.
  type Sample = { gbps: number; p50: number; p99: number; cps: number; failed: number };
  const samples: Record<string, Sample[]> = { direct: [], stunnel: [], hbone: [] };
  for (const m of modes) await measureConnectionRate(m.echo as number, 200, 2_000, CONCURRENCY); // warm pools
  for (let round = 1; round <= ROUNDS_OF_EACH; round++) {
    for (const m of modes) {
      process.stderr.write(
        `bench: round ${round}/${ROUNDS_OF_EACH} ${m.name}: iperf3 ${SECONDS}s, latency, connection rate\n`,
      );
      const gbps = await iperf(m.iperf as number);
      const lat = await measureLatency(m.echo as number, ROUNDS, 30_000);
      const rate = await measureConnectionRate(m.echo as number, CONNS, 10_000, CONCURRENCY);
      samples[m.name]?.push({
        gbps,
        p50: lat.p50Us,
        p99: lat.p99Us,
        cps: rate.perSecond,
        failed: rate.failed,
      });
    }
  }
  const results: Record<string, Sample> = {};
  for (const [name, list] of Object.entries(samples)) {
    results[name] = {
      gbps: median(list.map((x) => x.gbps)),
      p50: median(list.map((x) => x.p50)),
      p99: median(list.map((x) => x.p99)),
      cps: median(list.map((x) => x.cps)),
      failed: list.reduce((n, x) => n + x.failed, 0),
    };
  }
  const rss = await Promise.all([hbClient, hbServer].map((c) => rssMb(c.pid)));
  echo.close();
  printTable(
    results as Record<'direct' | 'stunnel' | 'hbone', (typeof results)[string]>,
    rss as [number, number],
  );
}

async function iperf(port: number): Promise<number> {
  const { stdout } = await run(
    'iperf3',
    ['-c', '127.0.0.1', '-p', String(port), '-t', String(SECONDS), '-J'],
    {
      timeout: (SECONDS + 30) * 1000,
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  const report = JSON.parse(stdout) as { end: { sum_received: { bits_per_second: number } } };
  return report.end.sum_received.bits_per_second / 1e9;
}

function printTable(
  r: Record<
    'direct' | 'stunnel' | 'hbone',
    { gbps: number; p50: number; p99: number; cps: number; failed: number }
  >,
  [clientRss, serverRss]: [number, number],
): void {
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
  console.log(
    `${'metric'.padEnd(32)}${pad('direct', 10)}${pad('stunnel', 10)}${pad('hbone', 10)}${pad('hbone/direct', 14)}${pad('hbone/stunnel', 15)}`,
  );
  for (const [name, a, b, c, digits] of rows) {
    console.log(
      `${name.padEnd(32)}${pad(a.toFixed(digits), 10)}${pad(b.toFixed(digits), 10)}${pad(c.toFixed(digits), 10)}` +
        `${pad(name.startsWith('added') ? '-' : ratio(c, a), 14)}${pad(ratio(c, b), 15)}`,
    );
  }
  console.log(
    `hbone process RSS after the run: client ${clientRss.toFixed(0)} MB, server ${serverRss.toFixed(0)} MB`,
  );
  if (d.failed + s.failed + h.failed > 0) {
    console.log(`failed connections: direct ${d.failed}, stunnel ${s.failed}, hbone ${h.failed}`);
  }
  const tputOk = h.gbps >= s.gbps;
  const latOk = h.p50 - d.p50 <= 1.5 * (s.p50 - d.p50);
  console.log(
    `target throughput >= stunnel: ${tputOk ? 'met' : 'NOT met'} (${h.gbps.toFixed(2)} vs ${s.gbps.toFixed(2)} Gbit/s)`,
  );
  console.log(
    `target added p50 <= 1.5x stunnel's: ${latOk ? 'met' : 'NOT met'} (${(h.p50 - d.p50).toFixed(0)} vs ${(1.5 * (s.p50 - d.p50)).toFixed(0)} us)`,
  );
}

function spawnChild(cmd: string, args: string[]): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr?.on('data', (d: Buffer) => {
    if (cmd !== 'iperf3') process.stderr.write(`[${cmd.split('/').pop()}] ${d}`);
  });
  children.push(child);
  return child;
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

async function waitListening(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port} after 10 s`);
}

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Server>((r) => {
          const s = net.createServer();
          s.listen(0, '127.0.0.1', () => r(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

async function rssMb(pid: number | undefined): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  return kb / 1024;
}

async function cleanup(): Promise<void> {
  for (const c of children) c.kill('SIGTERM');
  if (workDir) await rm(workDir, { recursive: true, force: true });
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

/**
 * Where a node agent's RSS goes, without a lab (no root needed): a bare node, then each library the
 * agent loads, its own modules, the parsed xDS protos, and what it no longer loads; then the floor
 * of plain Node for 1,000 held connection pairs (TCP to TCP, TCP to TLS), the shape of a tunnel
 * end. Each figure is a fresh process, read after a GC, median of BENCH_REPEAT runs (default 3).
 *   node bench/ztunnel/dist/footprint.js
 */
import { execFileSync, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..', '..');
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
const PAIRS = Number(process.env.BENCH_HELD ?? 1000);
/** What the agent runs with (ZTUNNEL_NODE_OPTIONS in packages/lab). */
const V8_FLAGS = ['--max-semi-space-size=4', '--expose-gc'];

const rssMb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]) / 1024;

interface Step {
  readonly name: string;
  /** Run in the child, as an ES module body, after the previous steps' code. */
  readonly code: string;
}

const shared = join(repo, 'packages', 'shared');
const ztunnel = join(repo, 'packages', 'ztunnel');
const imp = (pkg: string, from: string) =>
  `await import(${JSON.stringify(createRequireResolve(pkg, from))});`;

function createRequireResolve(pkg: string, from: string): string {
  const out = execFileSync(
    process.execPath,
    [
      '-e',
      `process.stdout.write(require('url').pathToFileURL(require.resolve(${JSON.stringify(pkg)})).href)`,
    ],
    { cwd: from, encoding: 'utf8' },
  );
  return out;
}

const agentSteps: Step[] = [
  { name: 'bare node', code: '' },
  {
    name: '+ node:net, tls, http, crypto',
    code: "await import('node:net'); await import('node:tls'); await import('node:http'); await import('node:crypto');",
  },
  { name: '+ pino', code: imp('pino', ztunnel) },
  { name: '+ prom-client', code: imp('prom-client', ztunnel) },
  { name: '+ @grpc/grpc-js', code: imp('@grpc/grpc-js', ztunnel) },
  { name: '+ protobufjs', code: imp('protobufjs', shared) },
  {
    name: "+ the agent's modules (@ambient/shared, ztunnel)",
    code: `await import(${JSON.stringify(`file://${join(ztunnel, 'dist', 'app', 'ztunnel-app.js')}`)});`,
  },
  {
    name: '+ xDS protos parsed (meshProtos)',
    code: `(await import(${JSON.stringify(`file://${join(shared, 'dist', 'xds', 'xds-protos.js')}`)})).meshProtos();`,
  },
];
/** Libraries the agent used to load at start and no longer does, measured on top of all the above. */
const droppedSteps: Step[] = [
  {
    name: '+ reflect-metadata, @peculiar/x509 (CA only now)',
    code: `${imp('reflect-metadata', shared)} ${imp('@peculiar/x509', shared)}`,
  },
  { name: '+ yaml (local config file only now)', code: imp('yaml', ztunnel) },
];

function measure(code: string): number {
  const body = `${code}\nglobalThis.gc(); await new Promise((r) => setTimeout(r, 200)); globalThis.gc();\nprocess.stdout.write(String(Number(/VmRSS:\\s+(\\d+)/.exec((await import('node:fs')).readFileSync('/proc/self/status', 'utf8'))[1]) / 1024));`;
  const runs: number[] = [];
  for (let i = 0; i < REPEAT; i++) {
    runs.push(
      Number(
        execFileSync(process.execPath, [...V8_FLAGS, '--input-type=module', '-e', body], {
          cwd: ztunnel,
          encoding: 'utf8',
        }),
      ),
    );
  }
  return median(runs);
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

async function main(): Promise<void> {
  console.log(`node agent footprint: RSS after a GC, median of ${REPEAT} fresh processes (${V8_FLAGS[0]})`);
  console.log(`${'step'.padEnd(52)}${'RSS MB'.padStart(8)}${'added'.padStart(8)}`);
  let code = '';
  let prev = 0;
  for (const step of [...agentSteps, ...droppedSteps]) {
    code += `\n${step.code}`;
    const rss = measure(code);
    console.log(
      `${step.name.padEnd(52)}${rss.toFixed(1).padStart(8)}${(prev ? `+${(rss - prev).toFixed(1)}` : '-').padStart(8)}`,
    );
    prev = rss;
  }
  for (const mode of ['tcp', 'tls'] as const) {
    const runs: number[] = [];
    for (let i = 0; i < REPEAT; i++) runs.push(await floor(mode));
    console.log(
      `floor: plain Node holding ${PAIRS} accepted TCP connections, each piped to a ${mode.toUpperCase()} connection: ${median(runs).toFixed(1)} MB per 1000 pairs (runs ${runs.map((r) => r.toFixed(1)).join(', ')})`,
    );
  }
}

/**
 * RSS a process adds for PAIRS accepted TCP connections, each piped both ways to an outgoing TCP
 * or TLS connection (what one end of a tunnel holds without HTTP/2 multiplexing), per 1,000.
 */
async function floor(mode: 'tcp' | 'tls'): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'footprint-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-subj',
        '/CN=footprint',
        '-days',
        '1',
      ],
      { stdio: 'ignore' },
    );
    const out = execFileSync(
      process.execPath,
      [...V8_FLAGS, fileURLToPath(import.meta.url), 'floor-holder', mode, dir],
      { encoding: 'utf8' },
    );
    return Number(out.trim());
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The floor's process under test: accepts PAIRS connections from a child and pairs each. */
async function floorHolder(mode: 'tcp' | 'tls', dir: string): Promise<void> {
  const key = readFileSync(join(dir, 'key.pem'));
  const cert = readFileSync(join(dir, 'cert.pem'));
  const sinks: net.Socket[] = [];
  const plainSink = net.createServer((s) => sinks.push(s));
  const tlsSink = tls.createServer({ key, cert }, (s) => sinks.push(s));
  await new Promise<void>((r) => plainSink.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => tlsSink.listen(0, '127.0.0.1', r));
  const sinkPort = (s: net.Server) => (s.address() as net.AddressInfo).port;
  // The sinks live in this process too, so they are created before the baseline reading; the
  // clients are a child process.
  let pairs = 0;
  let allPaired: () => void = () => {};
  const paired = new Promise<void>((r) => {
    allPaired = r;
  });
  const held: net.Socket[] = [];
  const front = net.createServer((s) => {
    const out =
      mode === 'tls'
        ? tls.connect({
            port: sinkPort(tlsSink),
            host: '127.0.0.1',
            ca: cert,
            servername: 'footprint',
            checkServerIdentity: () => undefined,
          })
        : net.connect(sinkPort(plainSink), '127.0.0.1');
    s.pipe(out);
    out.pipe(s);
    held.push(s, out);
    out.once(mode === 'tls' ? 'secureConnect' : 'connect', () => {
      if (++pairs === PAIRS) allPaired();
    });
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  (globalThis as { gc?: () => void }).gc?.();
  const before = rssMb();
  const child = fork(fileURLToPath(import.meta.url), ['floor-clients', String(sinkPort(front))], {
    stdio: 'ignore',
  });
  await paired;
  await new Promise((r) => setTimeout(r, 500));
  (globalThis as { gc?: () => void }).gc?.();
  const after = rssMb();
  child.kill();
  process.stdout.write(`${((after - before) * 1000) / pairs}\n`);
  process.exit(0);
}

async function floorClients(port: number): Promise<void> {
  const sockets: net.Socket[] = [];
  for (let i = 0; i < PAIRS; i++) {
    sockets.push(
      await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => resolve(s));
        s.once('error', reject);
      }),
    );
  }
  await new Promise(() => {});
}

const [role, a = '', b = ''] = process.argv.slice(2);
if (role === 'floor-holder') await floorHolder(a as 'tcp' | 'tls', b);
else if (role === 'floor-clients') await floorClients(Number(a));
else await main();

/**
 * What the fault suites share: a lab with the mesh on it, requests from inside pods, apps started
 * in pods, a bystander that keeps requesting while a fault runs and reports latency percentiles
 * and failures, a process's RSS and CPU time from /proc, and kill/restart of lab processes.
 * Every loop here is bounded in count and in time.
 */
import type { ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { openSync } from 'node:fs';
import { mkdtemp, readFile, readlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, LabMesh, type LabMeshOptions, type LabPod, type LabSpec } from '@ambient/lab';

export const isRoot = process.getuid?.() === 0;

/** A lab prefix unique to this test process: a letter and the pid. */
export function labPrefix(letter: string): string {
  return `${letter}${process.pid % 100_000}`;
}

export const sleepMs = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface MeshLab {
  readonly lab: Lab;
  readonly mesh: LabMesh;
  readonly dir: string;
  /** Apps started with the lab, by pod name. */
  readonly apps: ReadonlyMap<string, App>;
  destroy(): Promise<void>;
}

/**
 * Builds a lab and starts the mesh on it (control plane, one node agent per node). `apps` are
 * started in their pods before the mesh, each awaited until it prints its first line.
 */
export async function createMeshLab(
  prefix: string,
  spec: LabSpec,
  options: {
    readonly enrolledNamespaces: readonly string[];
    readonly apps?: ReadonlyArray<{
      readonly pod: string;
      readonly namespace: string;
      readonly script: string;
    }>;
    /** More LabMesh options (settings another build may know; unknown ones are ignored). */
    readonly mesh?: Partial<LabMeshOptions>;
  },
): Promise<MeshLab> {
  const dir = await mkdtemp(join(tmpdir(), `fault-${prefix}-`));
  const lab = await Lab.create(prefix, spec);
  try {
    const apps = new Map<string, App>();
    for (const app of options.apps ?? [])
      apps.set(app.pod, await startApp(lab, lab.pod(app.namespace, app.pod), app.script));
    const mesh = new LabMesh(lab, {
      ...options.mesh,
      dir,
      enrolledNamespaces: options.enrolledNamespaces,
    });
    await mesh.start();
    return { lab, mesh, dir, apps, destroy: () => lab.destroy() };
  } catch (err) {
    await lab.destroy();
    throw err;
  }
}

export interface App {
  readonly child: ChildProcess;
  /** Every line the app printed so far. */
  readonly lines: string[];
}

/** Starts a node script in a pod and waits (bounded) for its first line of output. */
export async function startApp(lab: Lab, pod: LabPod, script: string, args: string[] = []): Promise<App> {
  const child = lab.start(pod.netns, [process.execPath, '-e', script, ...args]);
  const lines: string[] = [];
  let buf = '';
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const first = new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${pod.name}: app not up in 10 s: ${stderr}`)), 10_000);
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop() ?? '';
      lines.push(...parts);
      if (lines.length > 0) {
        clearTimeout(t);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`${pod.name}: app exited ${code}: ${stderr}`));
    });
  });
  first.catch(() => {});
  await first;
  return { child, lines };
}

/**
 * An HTTP app on port 8080: answers `<pod> <client address> <waypoint|direct>` ("waypoint" when
 * the request carries the x-request-id a waypoint adds), and prints one JSON line per request
 * (`{"t": epoch ms, "via": ...}`) so a test can see every request that reached it.
 */
/** An HTTP app on 8080 that answers `<name> saw <client address>`. */
export const ECHO_SAW = (name: string) =>
  `require('http').createServer((q,r)=>r.end('${name} saw '+q.socket.remoteAddress.replace('::ffff:',''))).listen(8080,'0.0.0.0',()=>console.log('ready'))`;

/**
 * Two nodes: demo/sleep on node0, demo/echo on node1 behind the service echo (80 -> 8080), each
 * with its own service account, plus any extra pods.
 */
export function sleepEchoSpec(extraPods: LabSpec['pods'] = []): LabSpec {
  return {
    nodes: 2,
    pods: [
      { name: 'sleep', namespace: 'demo', node: 0, serviceAccount: 'sleep', labels: { app: 'sleep' } },
      { name: 'echo', namespace: 'demo', node: 1, serviceAccount: 'echo', labels: { app: 'echo' } },
      ...extraPods,
    ],
    services: [
      { name: 'echo', namespace: 'demo', selector: { app: 'echo' }, ports: [{ port: 80, targetPort: 8080 }] },
    ],
  };
}

export const HTTP_APP = (name: string) => `
require('http').createServer((q, r) => {
  const via = q.headers['x-request-id'] ? 'waypoint' : 'direct';
  console.log(JSON.stringify({ t: Date.now(), via, url: q.url }));
  r.end('${name} ' + q.socket.remoteAddress.replace('::ffff:', '') + ' ' + via);
}).listen(8080, '0.0.0.0', () => console.log('ready'));`;

/** The requests an HTTP_APP has seen so far. */
export function requestLog(app: App): Array<{ t: number; via: string; url: string }> {
  return app.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
}

export interface CurlResult {
  /** curl's exit code (0 when a response came). */
  readonly code: number;
  /** HTTP status, 0 when none. */
  readonly status: number;
  readonly body: string;
  readonly ms: number;
}

/** One request from inside a pod, with curl, on a new connection. */
export async function curlFrom(
  lab: Lab,
  pod: LabPod,
  url: string,
  opts: { readonly timeoutS?: number; readonly extra?: readonly string[] } = {},
): Promise<CurlResult> {
  const started = performance.now();
  const r = await lab.exec(
    pod,
    [
      'curl',
      '-s',
      '--max-time',
      String(opts.timeoutS ?? 3),
      '-o',
      '-',
      '-w',
      '\n%{http_code}',
      ...(opts.extra ?? []),
      url,
    ],
    (opts.timeoutS ?? 3) * 1000 + 5_000,
  );
  const cut = r.stdout.lastIndexOf('\n');
  return {
    code: r.code,
    status: Number(r.stdout.slice(cut + 1)) || 0,
    body: r.stdout.slice(0, Math.max(cut, 0)),
    ms: performance.now() - started,
  };
}

/**
 * Polls `check` until it holds; resolves with the time it took. Bounded by `timeoutMs`, and by
 * the number of rounds that time allows.
 */
export async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  opts: { readonly timeoutMs?: number; readonly intervalMs?: number } = {},
): Promise<number> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 50;
  const started = Date.now();
  const rounds = Math.ceil(timeoutMs / intervalMs) + 1;
  for (let i = 0; i < rounds && Date.now() - started <= timeoutMs; i++) {
    if (await check()) return Date.now() - started;
    await sleepMs(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

// ---- bystander ----------------------------------------------------------------------------

/** One request of a bystander: start (epoch ms), latency (ms), status or error code, body start. */
export interface Sample {
  readonly t: number;
  readonly ms: number;
  readonly status: number;
  readonly error?: string;
  readonly body: string;
}

const BYSTANDER = `
const http = require('http');
const [url, intervalMs, maxRequests, maxMs, timeoutMs] = process.argv.slice(1);
const samples = [];
let stop = false;
process.on('SIGTERM', () => { stop = true; });
const deadline = Date.now() + Number(maxMs);
console.log('ready');
(async () => {
  for (let i = 0; i < Number(maxRequests) && !stop && Date.now() < deadline; i++) {
    const t = Date.now();
    const h0 = process.hrtime.bigint();
    const r = await new Promise((resolve) => {
      const req = http.get(url, { agent: false, timeout: Number(timeoutMs) }, (res) => {
        let b = '';
        res.on('data', (c) => { b += c; });
        res.on('end', () => resolve({ status: res.statusCode, body: b.slice(0, 80) }));
        res.on('error', (e) => resolve({ status: 0, error: e.code || e.message, body: '' }));
      });
      req.on('error', (e) => resolve({ status: 0, error: e.code || e.message, body: '' }));
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    });
    samples.push({ t, ms: Math.round(Number(process.hrtime.bigint() - h0) / 1e4) / 100, ...r });
    await new Promise((resolve) => setTimeout(resolve, Number(intervalMs)));
  }
  process.stdout.write('RESULT ' + JSON.stringify(samples) + '\\n');
})();`;

export interface BystanderReport {
  readonly requests: number;
  readonly ok: number;
  readonly failed: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  /** Failures by status or error code. */
  readonly failures: Readonly<Record<string, number>>;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

/** Latency percentiles of the successful samples, and the failures counted by reason. */
export function summarize(
  samples: readonly Sample[],
  ok: (s: Sample) => boolean = (s) => s.status === 200,
): BystanderReport {
  const good = samples.filter(ok);
  const lat = good.map((s) => s.ms).sort((a, b) => a - b);
  const failures: Record<string, number> = {};
  for (const s of samples) {
    if (ok(s)) continue;
    const key = s.error ?? String(s.status);
    failures[key] = (failures[key] ?? 0) + 1;
  }
  return {
    requests: samples.length,
    ok: good.length,
    failed: samples.length - good.length,
    p50: percentile(lat, 50),
    p90: percentile(lat, 90),
    p99: percentile(lat, 99),
    max: lat.at(-1) ?? Number.NaN,
    failures,
  };
}

export function formatReport(r: BystanderReport): string {
  const f = (n: number) => (Number.isNaN(n) ? '-' : n.toFixed(1));
  return `${r.requests} requests, ${r.ok} ok, ${r.failed} failed ${JSON.stringify(r.failures)}, latency ms p50 ${f(r.p50)} p90 ${f(r.p90)} p99 ${f(r.p99)} max ${f(r.max)}`;
}

/**
 * A client inside a pod that requests `url` on a new connection every `intervalMs`, until
 * stopped, `maxRequests` or `maxMs`; `stop()` returns every sample.
 */
export class Bystander {
  private constructor(
    private readonly child: ChildProcess,
    private readonly result: Promise<Sample[]>,
  ) {}

  static async start(
    lab: Lab,
    pod: LabPod,
    url: string,
    opts: {
      readonly intervalMs?: number;
      readonly maxRequests?: number;
      readonly maxMs?: number;
      readonly timeoutMs?: number;
    } = {},
  ): Promise<Bystander> {
    const child = lab.start(pod.netns, [
      process.execPath,
      '-e',
      BYSTANDER,
      url,
      String(opts.intervalMs ?? 20),
      String(opts.maxRequests ?? 2_000),
      String(opts.maxMs ?? 60_000),
      String(opts.timeoutMs ?? 2_000),
    ]);
    let out = '';
    let err = '';
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const started = new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`bystander not up in 10 s: ${err}`)), 10_000);
      child.stdout?.once('data', () => {
        clearTimeout(t);
        resolve();
      });
    });
    const result = new Promise<Sample[]>((resolve, reject) => {
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
      });
      child.once('exit', () => {
        const line = out.split('\n').find((l) => l.startsWith('RESULT '));
        if (line) resolve(JSON.parse(line.slice(7)) as Sample[]);
        else reject(new Error(`bystander printed no result: ${err}`));
      });
    });
    result.catch(() => {});
    await started;
    return new Bystander(child, result);
  }

  /** Stops after the request in flight and returns the samples. */
  async stop(): Promise<Sample[]> {
    if (this.child.exitCode === null) this.child.kill('SIGTERM');
    return this.result;
  }
}

// ---- processes --------------------------------------------------------------------------

export interface ProcStats {
  readonly rssBytes: number;
  /** User plus system CPU time. */
  readonly cpuSeconds: number;
}

let clockTicks: number | undefined;

async function ticksPerSecond(): Promise<number> {
  if (clockTicks === undefined) {
    clockTicks = await new Promise<number>((resolve) =>
      execFile('getconf', ['CLK_TCK'], (err, out) => resolve(err ? 100 : Number(out.trim()) || 100)),
    );
  }
  return clockTicks;
}

/** A process's resident memory and CPU seconds so far, from /proc. */
export async function procStats(pid: number): Promise<ProcStats> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? Number.NaN);
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): utime and stime are the 14th and 15th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { rssBytes: rssKb * 1024, cpuSeconds: ticks / (await ticksPerSecond()) };
}

export function formatStats(name: string, s: ProcStats): string {
  return `${name}: RSS ${(s.rssBytes / 2 ** 20).toFixed(1)} MiB, CPU ${s.cpuSeconds.toFixed(2)} s`;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Sends `signal` to a process and waits (bounded) until it is gone; resolves with the time of
 * the signal (epoch ms).
 */
export async function killProcess(
  pid: number,
  signal: NodeJS.Signals = 'SIGKILL',
  timeoutMs = 10_000,
): Promise<number> {
  const at = Date.now();
  process.kill(pid, signal);
  await waitFor(`process ${pid} to exit after ${signal}`, () => !alive(pid), { timeoutMs, intervalMs: 10 });
  return at;
}

/** How a process was started: its command line, environment and log file, from /proc. */
export interface ProcessImage {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** Where its stdout went (a lab process's log file). */
  readonly stdout: string;
}

export async function processImage(pid: number): Promise<ProcessImage> {
  const split = (b: Buffer) =>
    b
      .toString()
      .split('\0')
      .filter((x) => x !== '');
  const argv = split(await readFile(`/proc/${pid}/cmdline`));
  const env = Object.fromEntries(
    split(await readFile(`/proc/${pid}/environ`)).map((kv) => {
      const i = kv.indexOf('=');
      return [kv.slice(0, i), kv.slice(i + 1)];
    }),
  );
  return { argv, env, stdout: await readlink(`/proc/${pid}/fd/1`) };
}

/**
 * Starts a process again as it was (see processImage) inside `netns`, with the descriptor limit
 * raised as the lab does, appending to the same log. Returns the new pid.
 */
export function respawn(lab: Lab, netns: string, image: ProcessImage): number {
  const child = lab.start(
    netns,
    ['sh', '-c', 'ulimit -n "$(ulimit -Hn)" && exec "$0" "$@"', ...image.argv],
    image.env,
    openSync(image.stdout, 'a'),
  );
  if (child.pid === undefined) throw new Error(`could not start ${image.argv.join(' ')}`);
  return child.pid;
}

/** GET from inside a namespace with curl; the status line and body. */
export function httpGet(netns: string, url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    execFile(
      'ip',
      ['netns', 'exec', netns, 'curl', '-s', '--max-time', '2', '-o', '-', '-w', '\n%{http_code}', url],
      (_err, stdout) => {
        const cut = stdout.lastIndexOf('\n');
        resolve({ status: Number(stdout.slice(cut + 1)) || 0, body: stdout.slice(0, Math.max(cut, 0)) });
      },
    );
  });
}

/**
 * Waypoint benchmark: 1 KB HTTP/1.1 GETs pod to pod across two lab nodes, in one run, through
 *   (a) direct: a client and a server pod that are not enrolled,
 *   (b) L4: enrolled pods, through the client's and the server's ztunnels (HBONE), no waypoint,
 *   (c) L7: an enrolled client to a service whose service account has a waypoint: client ztunnel,
 *       waypoint, server's ztunnel, server,
 *   (d) haproxy: an HTTP-mode haproxy in its own plain pod between the plain client and server.
 * Each gets wrk's maximum requests/s over keep-alive connections, and p50/p99 at a fixed rate from
 * an open-loop generator (latency from each request's scheduled start, so queueing counts).
 * Modes are interleaved over rounds and medians printed. The lab is torn down on exit, on failure
 * and on SIGINT/SIGTERM; after a failure its logs are kept and their directory printed.
 * Needs root, wrk and haproxy (scripts/setup.sh --bench).
 *   BENCH_SECONDS          wrk run, and open-loop schedule, per mode and round (default 5)
 *   BENCH_REPEAT           interleaved rounds (default 3)
 *   BENCH_CONNS            wrk connections (default 32)
 *   BENCH_THREADS          wrk threads (default 1)
 *   BENCH_RATE             open-loop requests per second (default 1000)
 *   BENCH_POOL             open-loop keep-alive connections (default 8)
 *   BENCH_HAPROXY_THREADS  haproxy nbthread (default 1: one core, as the waypoint's one process)
 *   BENCH_CEILINGS         1: also (e) wp tcp chain: the same waypoint and path as (c) for a
 *                          service port it treats as TCP (HBONE in, HBONE out, no HTTP: the floor
 *                          of its HBONE engine), (f) node hbone wp: min-waypoint.ts, HBONE in
 *                          and out with an HTTP/1.1 relay on the tunnel's bytes, in place of a
 *                          waypoint, and (g) node http, (h) node raw: the cheapest Node.js
 *                          HTTP/1.1 proxies (min-proxy.ts) in haproxy's place
 *   BENCH_MODES            a comma-separated subset of the modes to run (direct, l4, l7, haproxy,
 *                          l7-tcp, node-wp, node-http, node-raw), e.g. to compare builds quickly
 *   BENCH_WAYPOINT_NODE_OPTIONS  Node.js options for the waypoint process only (e.g. V8 heap
 *                          sizes), to measure their effect
 *   BENCH_WAYPOINT_CPU_PROF  a directory: the waypoint (and min-waypoint.ts) run V8's CPU profiler
 *                          (cpu-profile-hook.ts) and write their profiles there after the rounds
 *                          (their CPU figures then include the profiler's cost)
 *   BENCH_PERF             1: after the rounds, one more wrk run per mode with the proxy and both
 *                          node agents sampled by `perf record`: their CPU per 1,000 requests split
 *                          into the kernel's share, OpenSSL, V8's GC, JavaScript, Node's C++ and libc
 *   BENCH_PERF_TOP=N       with BENCH_PERF, also each process's N most sampled symbols (JavaScript
 *                          functions are named with --perf-basic-prof in BENCH_WAYPOINT_NODE_OPTIONS)
 *   BENCH_AGENT_ENV        JSON object of more environment for the node agents, e.g.
 *                          '{"NODE_OPTIONS":"--max-semi-space-size=16"}' (docs/benchmarks.md: their
 *                          V8 profiles through cpu-profile-hook.js; Node refuses --cpu-prof there)
 */
import { type ChildProcess, execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  type BreakdownRow,
  formatBreakdown,
  formatTopSymbols,
  profileDuring,
} from '@ambient/bench-hbone/perf-breakdown';
import { Lab, LabMesh, type LabPod } from '@ambient/lab';
import { haproxyConfig } from './haproxy.js';
import type { OpenLoopResult } from './open-loop.js';
import { parseWrk } from './wrk.js';

const here = dirname(fileURLToPath(import.meta.url));
const run = promisify(execFile);

function positiveInt(env: NodeJS.ProcessEnv, key: string, fallback: number): number {
  const raw = env[key];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${key} must be a positive integer, got ${raw}`);
  return n;
}

function parseSettings(env: NodeJS.ProcessEnv) {
  const s = {
    seconds: positiveInt(env, 'BENCH_SECONDS', 5),
    repeat: positiveInt(env, 'BENCH_REPEAT', 3),
    conns: positiveInt(env, 'BENCH_CONNS', 32),
    threads: positiveInt(env, 'BENCH_THREADS', 1),
    rate: positiveInt(env, 'BENCH_RATE', 1000),
    pool: positiveInt(env, 'BENCH_POOL', 8),
    haproxyThreads: positiveInt(env, 'BENCH_HAPROXY_THREADS', 1),
    cpuProfDir: env.BENCH_WAYPOINT_CPU_PROF || undefined,
    waypointNodeOptions: env.BENCH_WAYPOINT_NODE_OPTIONS ?? '',
    ceilings: env.BENCH_CEILINGS === '1',
    perf: env.BENCH_PERF === '1',
    perfTop: positiveInt(env, 'BENCH_PERF_TOP', 0),
    only: (env.BENCH_MODES ?? '').split(',').filter((m) => m !== ''),
  };
  if (s.threads > s.conns) throw new Error('BENCH_THREADS must not exceed BENCH_CONNS (wrk)');
  const unknown = s.only.filter((m) => !(ALL_MODES as readonly string[]).includes(m));
  if (unknown.length > 0) throw new Error(`BENCH_MODES: unknown mode(s) ${unknown.join(', ')}`);
  return Object.freeze(s);
}
type Settings = ReturnType<typeof parseSettings>;

/** Unique per run, so that runs side by side do not remove each other's namespaces. */
const PREFIX = `bw${process.pid % 10000}`;
const BODY_BYTES = 1024;
const APP_PORT = 8080;
const WAYPOINT = 'server-l7-waypoint';
const WAYPOINT_VIP = '198.19.250.1';
const MIN_WAYPOINT = 'server-nw-waypoint';
const MIN_WAYPOINT_VIP = '198.19.250.2';
const REQUEST_TIMEOUT_MS = 2000;
/** More failed requests than this share of a run makes the run a failure, not a sample. */
const MAX_ERROR_SHARE = 0.01;
const ALL_MODES = ['direct', 'l4', 'l7', 'haproxy', 'l7-tcp', 'node-wp', 'node-http', 'node-raw'] as const;
type Mode = (typeof ALL_MODES)[number];
/** The modes of a run: the ceilings (waypoint TCP chain, min-proxy.ts) only when asked for. */
let MODES: readonly Mode[] = ['direct', 'l4', 'l7', 'haproxy'];
const TITLES: Record<Mode, string> = {
  direct: 'direct',
  l4: 'L4',
  l7: 'L7',
  haproxy: 'haproxy',
  'l7-tcp': 'wp tcp chain',
  'node-wp': 'node hbone wp',
  'node-http': 'node http',
  'node-raw': 'node raw',
};
/** Ports of the Node.js ceilings, in the haproxy pod. */
const MIN_PROXY_PORTS = { 'node-http': 8081, 'node-raw': 8082 } as const;

interface Sample {
  rps: number;
  p50: number;
  p99: number;
  lagP99: number;
  /** Failed requests in this round (wrk non-2xx and socket errors, open-loop failures). */
  errors: number;
  /** CPU seconds per 1,000 requests of the L7 proxy on the path (waypoint or haproxy) during wrk. */
  proxyCpu: number;
  /** CPU seconds per 1,000 requests of both ztunnels together during wrk (NaN off the mesh). */
  ztunnelCpu: number;
  /** The L7 proxy's resident memory right after wrk, in MB. */
  proxyRss: number;
  /** Write system calls per request of the L7 proxy during wrk (syscw of /proc/<pid>/io). */
  proxyWrites: number;
  /** Write system calls per request of both ztunnels together during wrk (NaN off the mesh). */
  ztunnelWrites: number;
  /** CPU seconds per 1,000 requests of the proxy during the open loop (a fixed request rate). */
  proxyCpuAtRate: number;
}
type Figure = keyof Sample;

let lab: Lab | undefined;
let work = '';

async function main(settings: Settings): Promise<number> {
  if (process.getuid?.() !== 0) throw new Error('needs root (network namespaces)');
  for (const tool of ['wrk', 'haproxy', 'curl']) {
    await run('sh', ['-c', `command -v ${tool}`]).catch(() => {
      throw new Error(`${tool} not found: run scripts/setup.sh --bench`);
    });
  }
  work = await mkdtemp(join(tmpdir(), 'bench-waypoint-'));
  // Clients on node0; servers and both L7 proxies on node1, so (c) and (d) cross the nodes alike.
  // (b) and (c) have servers of their own: a waypoint serves every workload of its service account.
  lab = await Lab.create(PREFIX, {
    nodes: 2,
    pods: [
      { name: 'client', namespace: 'plain', node: 0 },
      { name: 'client', namespace: 'mesh', node: 0, serviceAccount: 'client' },
      { name: 'server', namespace: 'plain', node: 1, labels: { app: 'server' } },
      { name: 'haproxy', namespace: 'plain', node: 1 },
      {
        name: 'server-l4',
        namespace: 'mesh',
        node: 1,
        serviceAccount: 'server-l4',
        labels: { app: 'server-l4' },
      },
      {
        name: 'server-l7',
        namespace: 'mesh',
        node: 1,
        serviceAccount: 'server-l7',
        labels: { app: 'server-l7' },
      },
      // Served by min-waypoint.ts in a waypoint's place (BENCH_CEILINGS=1).
      {
        name: 'server-nw',
        namespace: 'mesh',
        node: 1,
        serviceAccount: 'server-nw',
        labels: { app: 'server-nw' },
      },
    ],
    services: [
      {
        name: 'server-l4',
        namespace: 'mesh',
        selector: { app: 'server-l4' },
        ports: [{ name: 'http', port: 80, targetPort: APP_PORT }],
      },
      {
        name: 'server-l7',
        namespace: 'mesh',
        selector: { app: 'server-l7' },
        ports: [{ name: 'http', port: 80, targetPort: APP_PORT }],
      },
      // The same pods through the same waypoint, on a port named as TCP: a TCP filter chain.
      {
        name: 'server-l7-tcp',
        namespace: 'mesh',
        selector: { app: 'server-l7' },
        ports: [{ name: 'tcp', port: 80, targetPort: APP_PORT }],
      },
      {
        name: 'server-nw',
        namespace: 'mesh',
        selector: { app: 'server-nw' },
        ports: [{ name: 'http', port: 80, targetPort: APP_PORT }],
      },
    ],
  });
  const L = lab;
  const pod = (ns: string, name: string) => L.pod(ns, name);
  const podHttp = join(here, 'pod-http.js');

  for (const [ns, name] of [
    ['plain', 'server'],
    ['mesh', 'server-l4'],
    ['mesh', 'server-l7'],
    ['mesh', 'server-nw'],
  ] as const) {
    const server = L.start(pod(ns, name).netns, [
      process.execPath,
      podHttp,
      'serve',
      String(APP_PORT),
      String(BODY_BYTES),
    ]);
    await waitLine(server, `${ns}/${name} server`);
  }
  const haproxyPod = pod('plain', 'haproxy');
  const haproxyFile = join(work, 'haproxy.cfg');
  await writeFile(
    haproxyFile,
    haproxyConfig(`0.0.0.0:${APP_PORT}`, `${pod('plain', 'server').ip}:${APP_PORT}`, settings.haproxyThreads),
  );
  const haproxy = L.start(haproxyPod.netns, ['haproxy', '-db', '-f', haproxyFile]);
  if (settings.ceilings) MODES = ALL_MODES;
  if (settings.only.length > 0) MODES = MODES.filter((m) => settings.only.includes(m));
  const minProxies: Partial<Record<Mode, ChildProcess>> = {};
  for (const m of ['node-http', 'node-raw'] as const) {
    if (!MODES.includes(m)) continue;
    const kind = m === 'node-http' ? 'http' : 'raw';
    const args = [String(MIN_PROXY_PORTS[m]), pod('plain', 'server').ip, String(APP_PORT)];
    minProxies[m] = L.start(haproxyPod.netns, [process.execPath, join(here, 'min-proxy.js'), kind, ...args]);
    await waitLine(minProxies[m] as ChildProcess, `${m} proxy`);
  }
  haproxy.stderr?.on('data', (d: Buffer) => process.stderr.write(`[haproxy] ${d}`));

  const meshDir = join(work, 'mesh');
  const agentEnv = JSON.parse(process.env.BENCH_AGENT_ENV ?? '{}') as Record<string, string>;
  const mesh = new LabMesh(L, { dir: meshDir, enrolledNamespaces: ['mesh'], agentEnv });
  await mesh.start();

  const urls: Record<Mode, { client: LabPod; url: string }> = {
    direct: { client: pod('plain', 'client'), url: `http://${pod('plain', 'server').ip}:${APP_PORT}/` },
    l4: { client: pod('mesh', 'client'), url: 'http://server-l4/' },
    l7: { client: pod('mesh', 'client'), url: 'http://server-l7/' },
    'l7-tcp': { client: pod('mesh', 'client'), url: 'http://server-l7-tcp/' },
    'node-wp': { client: pod('mesh', 'client'), url: 'http://server-nw/' },
    haproxy: { client: pod('plain', 'client'), url: `http://${haproxyPod.ip}:${APP_PORT}/` },
    'node-http': {
      client: pod('plain', 'client'),
      url: `http://${haproxyPod.ip}:${MIN_PROXY_PORTS['node-http']}/`,
    },
    'node-raw': {
      client: pod('plain', 'client'),
      url: `http://${haproxyPod.ip}:${MIN_PROXY_PORTS['node-raw']}/`,
    },
  };
  const failures: Partial<Record<Mode, string>> = {};
  for (const m of MODES.filter((x) => x !== 'l7' && x !== 'l7-tcp' && x !== 'node-wp')) {
    const got = await waitGet(L, urls[m].client, urls[m].url, 15_000);
    if (got !== `200 ${BODY_BYTES}`) failures[m] = `GET ${urls[m].url} answered "${got}" for 15 s`;
  }

  // The waypoint: the control plane puts it on server-l7's service account; the client's ztunnel
  // then sends that service's traffic to it. The run goes on without (c) if this fails.
  let waypoint: { pod: LabPod; pid?: number } | undefined;
  let waypointRestarts: string[] = [];
  const waypointLog = join(meshDir, `waypoint-mesh-${WAYPOINT}.log`);
  // The lab's processes inherit this process's environment: the profiler reaches the waypoint only.
  const nodeOptions = process.env.NODE_OPTIONS;
  const profileHook = settings.cpuProfDir ? ` --import=${join(here, 'cpu-profile-hook.js')}` : '';
  // The profiled processes write into it at exit, where a missing directory would fail unseen.
  if (settings.cpuProfDir) await mkdir(settings.cpuProfDir, { recursive: true });
  if (profileHook || settings.waypointNodeOptions)
    process.env.NODE_OPTIONS = `${nodeOptions ?? ''}${profileHook} ${settings.waypointNodeOptions}`;
  try {
    waypoint = await mesh.deployWaypoint(
      { namespace: 'mesh', name: WAYPOINT, forServiceAccount: 'server-l7', node: 1 },
      WAYPOINT_VIP,
    );
    waypointRestarts = await waitWaypointUp(mesh, waypoint, meshDir, waypointLog);
    const got = await waitGet(L, urls.l7.client, urls.l7.url, 20_000);
    if (got !== `200 ${BODY_BYTES}`) throw new Error(`GET ${urls.l7.url} answered "${got}" for 20 s`);
    // Only a count on the waypoint proves the requests went through it and not around it.
    const seen = waypointRequests(await mesh.waypointMetrics(waypoint.pod)).get('200') ?? 0;
    if (seen < 1)
      throw new Error(
        `GET ${urls.l7.url} succeeded but the waypoint counted no requests to server-l7: it was bypassed`,
      );
  } catch (err) {
    failures.l7 = `waypoint path: ${(err as Error).message}`;
  } finally {
    if (MODES.includes('l7-tcp')) {
      const got = await waitGet(L, urls['l7-tcp'].client, urls['l7-tcp'].url, 20_000);
      if (got !== `200 ${BODY_BYTES}`)
        failures['l7-tcp'] = `GET ${urls['l7-tcp'].url} answered "${got}" for 20 s`;
    }
    if (nodeOptions === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = nodeOptions;
  }

  // min-waypoint.ts in the place of a waypoint the control plane assigned to server-nw: the
  // waypoint process is stopped, and the program serves its address with its identity.
  let minWaypointPid: number | undefined;
  if (MODES.includes('node-wp')) {
    try {
      const wp = await mesh.deployWaypoint(
        { namespace: 'mesh', name: MIN_WAYPOINT, forServiceAccount: 'server-nw', node: 1 },
        MIN_WAYPOINT_VIP,
      );
      if (wp.pid) {
        process.kill(wp.pid, 'SIGTERM');
        while (alive(wp.pid)) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      if (profileHook) process.env.NODE_OPTIONS = `${nodeOptions ?? ''}${profileHook}`;
      const child = L.start(wp.pod.netns, [
        process.execPath,
        join(here, 'min-waypoint.js'),
        join(meshDir, 'ca'),
        'cluster.local',
        'mesh',
        MIN_WAYPOINT,
        pod('mesh', 'server-nw').ip,
        String(APP_PORT),
        'server-nw',
      ]);
      if (nodeOptions === undefined) delete process.env.NODE_OPTIONS;
      else process.env.NODE_OPTIONS = nodeOptions;
      await waitLine(child, 'min-waypoint');
      minWaypointPid = child.pid;
      const got = await waitGet(L, urls['node-wp'].client, urls['node-wp'].url, 20_000);
      if (got !== `200 ${BODY_BYTES}`)
        throw new Error(`GET ${urls['node-wp'].url} answered "${got}" for 20 s`);
    } catch (err) {
      failures['node-wp'] = `min-waypoint path: ${(err as Error).message}`;
    }
  }

  const live = () => MODES.filter((m) => failures[m] === undefined);
  const samples = Object.fromEntries(ALL_MODES.map((m) => [m, [] as Sample[]])) as Record<Mode, Sample[]>;
  const count = settings.rate * settings.seconds;
  const warmup = Math.ceil(settings.rate / 2);
  /** The L7 proxy process on a mode's path, if any. */
  const proxyPid = (m: Mode) =>
    m === 'l7' || m === 'l7-tcp'
      ? waypoint?.pid
      : m === 'haproxy'
        ? haproxy.pid
        : m === 'node-wp'
          ? minWaypointPid
          : minProxies[m]?.pid;
  const wrk = async (m: Mode, seconds: number) => {
    const { client, url } = urls[m];
    const pid = proxyPid(m);
    const onMesh = m === 'l4' || m === 'l7' || m === 'l7-tcp' || m === 'node-wp';
    const proxyBefore = pid ? await cpuSeconds(pid) : Number.NaN;
    const ztBefore = onMesh ? await cpuSecondsOf(mesh.pids) : Number.NaN;
    const proxyWritesBefore = pid ? await writeCalls(pid) : Number.NaN;
    const ztWritesBefore = onMesh ? await writeCallsOf(mesh.pids) : Number.NaN;
    const r = await L.exec(
      client,
      [
        'wrk',
        '-t',
        String(settings.threads),
        '-c',
        String(settings.conns),
        '-d',
        `${seconds}s`,
        '--timeout',
        `${REQUEST_TIMEOUT_MS / 1000}s`,
        url,
      ],
      (seconds + 30) * 1000,
    );
    if (r.code !== 0) throw new Error(`wrk ${url}: exit ${r.code} ${r.stderr.trim()}`);
    const w = parseWrk(r.stdout);
    const perK = w.requests / 1000;
    const proxyCpu = pid ? ((await cpuSeconds(pid)) - proxyBefore) / perK : Number.NaN;
    const ztunnelCpu = onMesh ? ((await cpuSecondsOf(mesh.pids)) - ztBefore) / perK : Number.NaN;
    const proxyRss = pid ? await rssMb(pid) : Number.NaN;
    const proxyWrites = pid ? ((await writeCalls(pid)) - proxyWritesBefore) / w.requests : Number.NaN;
    const ztunnelWrites = onMesh
      ? ((await writeCallsOf(mesh.pids)) - ztWritesBefore) / w.requests
      : Number.NaN;
    const errors = w.non2xx + w.socketErrors;
    if (w.requests === 0 || errors > MAX_ERROR_SHARE * w.requests)
      throw new Error(
        `wrk ${url}: ${w.requests} requests, ${w.non2xx} not 2xx, ${w.socketErrors} socket errors`,
      );
    return {
      rps: w.rps,
      requests: w.requests,
      errors,
      proxyCpu,
      ztunnelCpu,
      proxyRss,
      proxyWrites,
      ztunnelWrites,
    };
  };
  const openLoop = async (m: Mode, n: number, warm: number): Promise<OpenLoopResult> => {
    const { client, url } = urls[m];
    const args = [url, settings.rate, n, warm, settings.pool, REQUEST_TIMEOUT_MS, BODY_BYTES].map(String);
    const budgetMs = ((n + warm) / settings.rate) * 1000 + REQUEST_TIMEOUT_MS + 20_000;
    const r = await L.exec(client, [process.execPath, podHttp, 'load', ...args], budgetMs);
    if (r.code !== 0) throw new Error(`open loop ${url}: exit ${r.code} ${r.stderr.trim()}`);
    const result = JSON.parse(r.stdout.trim().split('\n').pop() as string) as OpenLoopResult;
    if (result.failed > MAX_ERROR_SHARE * n)
      throw new Error(
        `open loop ${url}: ${result.failed} of ${n} requests failed ${JSON.stringify(result.failures)}`,
      );
    return result;
  };
  const latencyFailures: Partial<Record<Mode, string[]>> = {};
  const attempt = async (m: Mode, what: () => Promise<void>) => {
    try {
      await what();
    } catch (err) {
      failures[m] = (err as Error).message;
    }
  };

  // Warm every path (JIT, pools, connection setup) before anything is measured.
  for (const m of live()) {
    await attempt(m, async () => {
      await wrk(m, 1);
      await openLoop(m, warmup, 0);
    });
  }
  for (let round = 1; round <= settings.repeat && !exiting; round++) {
    for (const m of live()) {
      if (exiting) break;
      process.stderr.write(`bench: round ${round}/${settings.repeat} ${TITLES[m]}\n`);
      await attempt(m, async () => {
        const max = await wrk(m, settings.seconds);
        const pid = proxyPid(m);
        const before = pid ? await cpuSeconds(pid) : Number.NaN;
        // A fixed-rate phase the path cannot keep up with (a busy machine) fails only that
        // round's latency figures: the maximum rate and CPU of the round still count.
        let lat: OpenLoopResult | undefined;
        try {
          lat = await openLoop(m, count, warmup);
        } catch (err) {
          latencyFailures[m] = [...(latencyFailures[m] ?? []), `round ${round}: ${(err as Error).message}`];
        }
        const proxyCpuAtRate =
          pid && lat ? ((await cpuSeconds(pid)) - before) / ((count + warmup) / 1000) : Number.NaN;
        samples[m].push({
          rps: max.rps,
          p50: lat?.p50Us ?? Number.NaN,
          p99: lat?.p99Us ?? Number.NaN,
          lagP99: lat?.lagP99Us ?? Number.NaN,
          errors: max.errors + (lat?.failed ?? 0),
          proxyCpu: max.proxyCpu,
          ztunnelCpu: max.ztunnelCpu,
          proxyRss: max.proxyRss,
          proxyWrites: max.proxyWrites,
          ztunnelWrites: max.ztunnelWrites,
          proxyCpuAtRate,
        });
      });
    }
  }

  if (exiting) return 130; // a signal: the lab is going, and these numbers would mean nothing
  const profiles: BreakdownRow[] = [];
  const tops: string[] = [];
  for (const m of settings.perf ? live() : []) {
    const pids = new Map<string, number>();
    const proxy = proxyPid(m);
    if (proxy) pids.set(`${TITLES[m]}: proxy`, proxy);
    if (m === 'l4' || m === 'l7' || m === 'l7-tcp' || m === 'node-wp')
      for (const [k, pid] of mesh.pids.entries()) pids.set(`${TITLES[m]}: ztunnel node${k}`, pid);
    if (pids.size === 0) continue;
    process.stderr.write(`bench: profiling ${TITLES[m]}\n`);
    const before = await Promise.all([...pids.values()].map(cpuSeconds));
    // A profile that cannot be taken is reported; the rounds' figures stand.
    const profiled = await profileDuring(pids, work, () => wrk(m, settings.seconds)).catch((err: Error) => {
      process.stderr.write(`bench: profiling ${TITLES[m]} failed: ${err.message}\n`);
      return undefined;
    });
    if (!profiled) continue;
    const after = await Promise.all([...pids.values()].map(cpuSeconds));
    [...pids.keys()].forEach((label, k) => {
      const cpu = ((after[k] as number) - (before[k] as number)) / (profiled.result.requests / 1000);
      profiles.push({ label, cpu, shares: profiled.shares.get(label) ?? new Map() });
      if (settings.perfTop > 0)
        tops.push(
          ...formatTopSymbols(
            label,
            profiled.symbols.get(label) ?? [],
            cpu,
            settings.perfTop,
            '1,000 requests',
            4,
          ),
        );
    });
  }
  if (settings.cpuProfDir) {
    for (const pid of [waypoint?.pid, minWaypointPid]) if (pid) process.kill(pid, 'SIGUSR2');
    console.log(`CPU profiles (waypoint-<pid>.cpuprofile) written to ${settings.cpuProfDir}`);
  }
  const waypointSeen = waypoint
    ? waypointRequests(await mesh.waypointMetrics(waypoint.pod).catch(() => ''))
    : new Map<string, number>();
  const rss = {
    waypoint: waypoint?.pid ? await rssMb(waypoint.pid) : Number.NaN,
    haproxy: haproxy.pid ? await rssMb(haproxy.pid) : Number.NaN,
    ztunnels: await Promise.all(mesh.pids.map(rssMb)),
  };
  const spread = (m: Mode, k: Figure): Spread =>
    failures[m] === undefined ? spreadOf(samples[m].map((x) => x[k])) : NO_SPREAD;
  // Rounds are interleaved, so a mode's round k is compared with direct's round k.
  const overDirect = (m: Mode, k: Figure): Spread =>
    failures[m] === undefined && failures.direct === undefined
      ? spreadOf(samples[m].map((x, i) => x[k] - (samples.direct[i]?.[k] ?? Number.NaN)))
      : NO_SPREAD;
  printTable(settings, count, spread, overDirect, failures, latencyFailures, waypointSeen, rss);
  if (profiles.length > 0) {
    console.log(
      '\nWhere the proxies and node agents spend their CPU during wrk (perf record, all threads), CPU seconds per 1,000 requests:',
    );
    for (const line of formatBreakdown(profiles, 4)) console.log(line);
    for (const line of tops) console.log(line);
  }
  if (waypointRestarts.length > 0)
    console.log(
      `the waypoint exited ${waypointRestarts.length} time(s) before it was ready and was restarted, as a kubelet would: ${waypointRestarts.join(' | ')}`,
    );

  if (failures.l7 !== undefined) {
    const log = await readFile(waypointLog, 'utf8').catch((e: Error) => `(no log: ${e.message})`);
    const tail = log.trimEnd().split('\n').slice(-40).join('\n');
    console.log(`\nL7 path failed: ${failures.l7}\nwaypoint log (${waypointLog}), last 40 lines:\n${tail}`);
  }
  if (Object.keys(failures).length > 0 || Object.keys(latencyFailures).length > 0) {
    console.log(`lab directory kept for the logs: ${work}`);
    return 1;
  }
  return 0;
}

interface Spread {
  readonly min: number;
  readonly med: number;
  readonly max: number;
}
const NO_SPREAD: Spread = { min: Number.NaN, med: Number.NaN, max: Number.NaN };

/** Min, median and max of a figure over the rounds; rounds without it (NaN) are left out. */
function spreadOf(values: number[]): Spread {
  const xs = values.filter((v) => Number.isFinite(v));
  if (xs.length === 0) return NO_SPREAD;
  return { min: Math.min(...xs), med: median(xs), max: Math.max(...xs) };
}

function printTable(
  s: Settings,
  count: number,
  spread: (m: Mode, k: Figure) => Spread,
  overDirect: (m: Mode, k: Figure) => Spread,
  failures: Partial<Record<Mode, string>>,
  latencyFailures: Partial<Record<Mode, string[]>>,
  waypointSeen: ReadonlyMap<string, number>,
  rss: { waypoint: number; haproxy: number; ztunnels: number[] },
): void {
  const med = (m: Mode, k: Figure) => spread(m, k).med;
  const num = (v: number, digits: number) => (Number.isFinite(v) ? v.toFixed(digits) : 'failed');
  const ratio = (a: number, b: number) =>
    Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}x` : 'n/a';
  const pad = (v: string, n: number) => v.padStart(n);
  const l7Rps = med('l7', 'rps');
  const hRps = med('haproxy', 'rps');
  const l7P99 = med('l7', 'p99');
  const l4P99 = med('l4', 'p99');
  // A cell: the median, then min..max over the rounds; '-' where the figure does not apply.
  const cell = (x: Spread, digits: number) =>
    !Number.isFinite(x.med)
      ? '-'
      : `${x.med.toFixed(digits)} (${x.min.toFixed(digits)}..${x.max.toFixed(digits)})`;
  const rows: Array<[string, (m: Mode) => Spread, number, boolean]> = [
    ['max requests/s (wrk)', (m) => spread(m, 'rps'), 0, true],
    [`p50 at ${s.rate} rps (us)`, (m) => spread(m, 'p50'), 0, true],
    [`p99 at ${s.rate} rps (us)`, (m) => spread(m, 'p99'), 0, true],
    ['added p50 over direct (us)', (m) => overDirect(m, 'p50'), 0, false],
    ['added p99 over direct (us)', (m) => overDirect(m, 'p99'), 0, false],
    ['load generator lag p99 (us)', (m) => spread(m, 'lagP99'), 0, false],
    ['failed requests (per round)', (m) => spread(m, 'errors'), 0, false],
    ['proxy CPU s/1k req (wrk)', (m) => spread(m, 'proxyCpu'), 4, true],
    [`proxy CPU s/1k req (${s.rate} rps)`, (m) => spread(m, 'proxyCpuAtRate'), 4, true],
    ['ztunnels CPU s/1k req (wrk)', (m) => spread(m, 'ztunnelCpu'), 4, false],
    ['proxy RSS MB (after wrk)', (m) => spread(m, 'proxyRss'), 0, false],
    ['proxy write syscalls/req (wrk)', (m) => spread(m, 'proxyWrites'), 2, false],
    ['ztunnels write syscalls/req (wrk)', (m) => spread(m, 'ztunnelWrites'), 2, false],
  ];
  const W = 24;
  console.log(
    `\nwaypoint benchmark: 1 KB HTTP/1.1 GETs pod to pod across two lab nodes; ${s.repeat} interleaved rounds of` +
      ` wrk ${s.seconds}s (${s.threads} thread(s), ${s.conns} keep-alive connections) and ${count} GETs at ${s.rate} rps` +
      ` (open loop, ${s.pool} keep-alive connections, latency from each scheduled start); haproxy nbthread ${s.haproxyThreads}.` +
      " Each cell: median (min..max over rounds). CPU is the process's user+system time from /proc during wrk, over" +
      " the requests wrk completed: the proxy is the waypoint (L7), haproxy or the Node.js program; ztunnels are both nodes' agents." +
      (s.waypointNodeOptions ? ` Waypoint Node.js options: ${s.waypointNodeOptions}.` : ''),
  );
  console.log(
    `${'metric'.padEnd(30)}${MODES.map((m) => pad(TITLES[m], W)).join('')}${pad('L7/haproxy', 12)}${pad('L7/L4', 9)}`,
  );
  for (const [name, get, digits, ratios] of rows) {
    const b = get('l4').med;
    const c = get('l7').med;
    const d = get('haproxy').med;
    console.log(
      `${name.padEnd(30)}${MODES.map((m) => pad(cell(get(m), digits), W)).join('')}` +
        `${pad(ratios ? ratio(c, d) : '-', 12)}${pad(ratios && name.startsWith('max') ? ratio(c, b) : '-', 9)}`,
    );
  }
  const addedP99 = l7P99 - l4P99;
  console.log(`added p99 of L7 over L4 at ${s.rate} rps: ${num(addedP99, 0)} us (target <= 2000 us)`);
  console.log(
    `requests the waypoint counted to server-l7, by response code and flags: ${
      waypointSeen.size > 0 ? [...waypointSeen].map(([k, n]) => `${k}: ${n}`).join(', ') : 'n/a'
    }`,
  );
  console.log(
    `RSS after the run: waypoint ${num(rss.waypoint, 0)} MB, haproxy ${num(rss.haproxy, 0)} MB, ` +
      rss.ztunnels.map((r, k) => `ztunnel node${k} ${num(r, 0)} MB`).join(', '),
  );
  for (const m of MODES) {
    const f = failures[m];
    if (f !== undefined) console.log(`${TITLES[m]} path failed: ${f}`);
    const lf = latencyFailures[m];
    if (lf)
      console.log(
        `${TITLES[m]}: the ${s.rate} rps phase failed in ${lf.length} of ${s.repeat} rounds (latency from the others): ${lf.join(' | ')}`,
      );
  }
  const share = l7Rps / hRps;
  const tputMet = Number.isFinite(share) && share >= 0.5;
  const l7 = spread('l7', 'rps');
  const hp = spread('haproxy', 'rps');
  console.log(
    `target waypoint max throughput >= 0.5x haproxy: ${tputMet ? 'met' : 'NOT met'} (` +
      (Number.isFinite(share)
        ? `${l7Rps.toFixed(0)} vs ${hRps.toFixed(0)} requests/s, ${share.toFixed(2)}x; per round` +
          ` L7 ${l7.min.toFixed(0)}..${l7.max.toFixed(0)}, haproxy ${hp.min.toFixed(0)}..${hp.max.toFixed(0)})`
        : `${failures.l7 ?? failures.haproxy ?? 'no measurement'})`),
  );
  const wCpu = spread('l7', 'proxyCpu');
  const hCpu = spread('haproxy', 'proxyCpu');
  console.log(
    `CPU per 1,000 requests: waypoint ${cell(wCpu, 4)} s, haproxy ${cell(hCpu, 4)} s, ` +
      `waypoint/haproxy ${ratio(wCpu.med, hCpu.med)} (the throughput ratio one core would allow: ${ratio(hCpu.med, wCpu.med)})`,
  );
  for (const m of MODES.filter((x) => x === 'l7-tcp' || x.startsWith('node-'))) {
    const c = spread(m, 'proxyCpu');
    const what =
      m === 'l7-tcp'
        ? 'the waypoint relaying HBONE to HBONE with no HTTP (TCP chain)'
        : m === 'node-wp'
          ? 'min-waypoint.ts: HBONE in and out, HTTP/1.1 relayed on the tunnel bytes'
          : 'min-proxy.ts, plain TCP like haproxy';
    console.log(
      `ceiling ${TITLES[m]} (${what}): ${spread(m, 'rps').med.toFixed(0)} requests/s,` +
        ` ${ratio(spread(m, 'rps').med, hRps)} haproxy's; CPU per 1,000 requests ${cell(c, 4)} s, ${ratio(c.med, hCpu.med)} haproxy's`,
    );
  }
  const latFailed = [...(latencyFailures.l7 ?? []), ...(latencyFailures.l4 ?? [])];
  const latMet = Number.isFinite(addedP99) && addedP99 <= 2000 && latFailed.length === 0;
  console.log(
    `target added p99 at ${s.rate} rps <= 2 ms over L4: ${latMet ? 'met' : 'NOT met'} (` +
      (latFailed.length > 0
        ? `the L4 or L7 path did not keep ${s.rate} rps in ${latFailed.length} round(s)` +
          (Number.isFinite(addedP99) ? `; ${(addedP99 / 1000).toFixed(2)} ms in the others)` : ')')
        : Number.isFinite(addedP99)
          ? `${(addedP99 / 1000).toFixed(2)} ms: L7 p99 ${num(l7P99, 0)} us, L4 p99 ${num(l4P99, 0)} us)`
          : `${failures.l7 ?? failures.l4 ?? 'no measurement'})`),
  );
}

/**
 * Waits for the waypoint to report ready. A waypoint process that exits first is started again
 * after a second, up to three times, as a kubelet restarts a crashed container; returns why each
 * run exited (the log's last fatal line).
 */
async function waitWaypointUp(
  mesh: LabMesh,
  waypoint: { pod: LabPod; pid?: number },
  meshDir: string,
  log: string,
): Promise<string[]> {
  const exits: string[] = [];
  const tokenFile = join(meshDir, `token-waypoint-${waypoint.pod.namespace}-${WAYPOINT}`);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (await mesh.waypointReady(waypoint.pod)) return exits;
    if (waypoint.pid !== undefined && !alive(waypoint.pid)) {
      const text = await readFile(log, 'utf8').catch(() => '');
      const fatal = text
        .trimEnd()
        .split('\n')
        .filter((l) => l.includes('"level":60'))
        .pop();
      exits.push(
        fatal ? ((JSON.parse(fatal) as { msg?: string }).msg ?? fatal) : 'exited, no fatal line logged',
      );
      if (exits.length > 3)
        throw new Error(`the waypoint exited ${exits.length} times: ${exits.join(' | ')}`);
      process.stderr.write(`bench: the waypoint exited before ready (${exits.at(-1)}); restarting it\n`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      waypoint.pid = mesh.startWaypoint(waypoint.pod, WAYPOINT, tokenFile);
      continue;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(
    `the waypoint did not report ready in 60 s${exits.length ? ` (exits: ${exits.join(' | ')})` : ''}`,
  );
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Requests the waypoint counted for server-l7, by response code (and flags, when any), summed over its label sets. */
function waypointRequests(exposition: string): Map<string, number> {
  const byOutcome = new Map<string, number>();
  for (const line of exposition.split('\n')) {
    if (
      !line.startsWith('istio_requests_total{') ||
      !line.includes('destination_service="server-l7.mesh.svc.cluster.local"')
    )
      continue;
    const code = /response_code="([^"]*)"/.exec(line)?.[1] ?? '?';
    const flags = /response_flags="([^"]*)"/.exec(line)?.[1] ?? '-';
    const key = flags === '-' ? code : `${code} ${flags}`;
    byOutcome.set(key, (byOutcome.get(key) ?? 0) + (Number(line.slice(line.lastIndexOf(' ') + 1)) || 0));
  }
  return byOutcome;
}

/** Polls a URL with curl inside a pod until it answers 200 with the full body, or time runs out. */
async function waitGet(L: Lab, client: LabPod, url: string, ms: number): Promise<string> {
  const deadline = Date.now() + ms;
  let last = '';
  while (Date.now() < deadline) {
    const r = await L.exec(client, [
      'curl',
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code} %{size_download}',
      '--max-time',
      '2',
      url,
    ]);
    last = r.code === 0 ? r.stdout.trim() : `curl exit ${r.code}`;
    if (last === `200 ${BODY_BYTES}`) return last;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return last;
}

function waitLine(c: ChildProcess, what: string, ms = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} printed nothing in ${ms} ms`)), ms);
    c.stdout?.once('data', () => {
      clearTimeout(timer);
      resolve();
    });
    c.stderr?.on('data', (d: Buffer) => process.stderr.write(`[${what}] ${d}`));
    c.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code} before it was ready`));
    });
  });
}

function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** User plus system CPU seconds a process has used so far (fields 14 and 15 of /proc/<pid>/stat). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // The command name (field 2) may hold spaces: count fields from after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return stat === '' ? Number.NaN : ticks / CLOCK_TICKS;
}

/** Write system calls a process has made so far (syscw of /proc/<pid>/io). */
async function writeCalls(pid: number): Promise<number> {
  const io = await readFile(`/proc/${pid}/io`, 'utf8').catch(() => '');
  return Number(/syscw:\s+(\d+)/.exec(io)?.[1] ?? Number.NaN);
}

async function writeCallsOf(pids: readonly number[]): Promise<number> {
  let total = 0;
  for (const pid of pids) total += await writeCalls(pid);
  return total;
}

async function cpuSecondsOf(pids: readonly number[]): Promise<number> {
  let total = 0;
  for (const pid of pids) total += await cpuSeconds(pid);
  return total;
}

/** USER_HZ: the unit of /proc/<pid>/stat times; 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS = 100;

async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN) / 1024;
}

let exiting: Promise<never> | undefined;
/** Tears the lab down once, whoever asks first (the run's end or a signal), then exits. */
function exit(code: number, keepWork: boolean): Promise<never> {
  exiting ??= (async () => {
    // The lab's detached children are unref'd and its wait for them uses an unref'd timer: hold
    // the event loop open, or Node exits (with 0) before the namespaces are deleted.
    const hold = setInterval(() => {}, 1000);
    await lab?.destroy().catch(() => {});
    if (work && !keepWork) await rm(work, { recursive: true, force: true });
    clearInterval(hold);
    process.exit(code);
  })();
  return exiting;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`bench/waypoint: ${signal}, tearing the lab down`);
    void exit(130, false);
  });
}

let settings: Settings;
try {
  settings = parseSettings(process.env);
} catch (err) {
  console.error(`bench/waypoint: ${(err as Error).message}`);
  process.exit(2);
}
main(settings).then(
  (code) => exit(code, code !== 0),
  (err: unknown) => {
    console.error(`bench/waypoint: ${(err as Error).message}`);
    if (work) console.error(`bench/waypoint: logs kept in ${work}`);
    return exit(1, true);
  },
);

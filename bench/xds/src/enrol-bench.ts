/**
 * The enrolment benchmark: a namespace of N running pods and M services, not enrolled, served by
 * the real control plane process to one xDS client per node (ztunnel's client and decoders, as
 * node agents with file tokens). Each round labels the namespace istio.io/dataplane-mode=ambient
 * and times, from the label's start, until every client has ACKed a response after which it holds
 * all N workloads carried over HBONE (what enrolment changes in an Address: the workload's
 * tunnel_protocol); then removes the label and times the way back to all N without HBONE.
 * The same run over a manifest directory or a real Kubernetes API server (see enrol-sources.ts).
 * Every wait is bounded; everything started is ended, and every directory removed, by `teardown`.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalCa } from '@ambient/shared';
import { ClientFleet, type Report } from './client-fleet.js';
import { startControlPlaneProcess } from './control-plane-process.js';
import { BENCH_NAMESPACE, checkSizes, type EnrolSizes } from './enrol-objects.js';
import type { EnrolSource } from './enrol-sources.js';
import { cpuOf, freePort, now, sleep, usage } from './measure.js';
import { endProcess, type Teardown } from './teardown.js';

export interface EnrolBenchOptions extends EnrolSizes {
  /** One client per node: `nodes` clients. */
  readonly rounds: number;
  readonly clientProcesses: number;
  /** Bound of every wait for the clients (initial sync, one label or unlabel). */
  readonly phaseTimeoutMs: number;
  readonly log: (line: string) => void;
  readonly cpNodeArgs?: readonly string[];
  readonly clientNodeArgs?: readonly string[];
}

/** What one client held when a phase ended. */
export interface ClientView {
  readonly client: number;
  readonly workloads: number;
  readonly hbone: number;
  readonly acked: boolean;
}

export interface EnrolResult {
  readonly source: EnrolSource['name'];
  readonly sizes: EnrolSizes;
  readonly writeMs: number;
  /** Control plane spawn to /ready. */
  readonly loadMs: number;
  /** All clients connecting at once until each holds the namespace's N workloads. */
  readonly syncMs: number;
  /** Address resources a client held after the initial sync. */
  readonly resources: number;
  /** Per round: label start until every client has ACKed all N workloads over HBONE. */
  readonly labelMs: readonly number[];
  /** Per round: label removal start until every client has ACKed all N without HBONE. */
  readonly unlabelMs: readonly number[];
  /** Responses touching the namespace a client took in to get there (mean over clients, last round). */
  readonly labelResponses: number;
  /** Each client's view at the end of the last label and unlabel phases. */
  readonly afterLabel: readonly ClientView[];
  readonly afterUnlabel: readonly ClientView[];
  readonly cpRssAfterSyncMb: number;
  readonly cpPeakMb: number;
  /** CPU seconds per process during the writes, the load + initial sync, and each round. */
  readonly cpu: {
    readonly writes: Readonly<Record<string, number>>;
    readonly sync: Readonly<Record<string, number>>;
    readonly rounds: ReadonlyArray<Readonly<Record<string, number>>>;
  };
  readonly nacks: number;
}

/**
 * Waits until every client's latest report since `from` shows the namespace's `workloads` with
 * `hbone` of them over HBONE, ACKed; returns when the last client got there and each one's view.
 */
async function phase(
  fleet: ClientFleet,
  from: number,
  t0: number,
  clients: number,
  want: { workloads: number; hbone: number },
  what: string,
  timeoutMs: number,
): Promise<{ ms: number; views: ClientView[]; responses: number }> {
  const latest = new Map<number, Report>();
  let seen = from;
  let responses = 0;
  const done = () => {
    for (; seen < fleet.reports.length; seen++) {
      const r = fleet.reports[seen];
      if (r?.ns !== undefined) {
        latest.set(r.ns, r);
        responses++;
      }
    }
    if (latest.size < clients) return false;
    for (const r of latest.values())
      if (r.workloads !== want.workloads || r.hbone !== want.hbone || r.acked !== true) return false;
    return true;
  };
  await fleet.waitFor(done, what, timeoutMs);
  const views = [...latest.values()]
    .map((r) => ({
      client: r.ns as number,
      workloads: r.workloads ?? 0,
      hbone: r.hbone ?? 0,
      acked: r.acked === true,
    }))
    .sort((a, b) => a.client - b.client);
  return {
    ms: Math.max(...[...latest.values()].map((r) => r.at)) - t0,
    views,
    responses: responses / clients,
  };
}

/** CPU seconds of the control plane, the source's processes and the client processes. */
async function cpuNow(
  cpPid: number | undefined,
  source: EnrolSource,
  fleet?: ClientFleet,
): Promise<Record<string, number>> {
  const out: Record<string, number> = { 'control plane': cpPid === undefined ? 0 : await cpuOf([cpPid]) };
  for (const [name, pid] of Object.entries(source.processes())) out[name] = await cpuOf([pid]);
  if (fleet) out.clients = await cpuOf(fleet.pids());
  return out;
}

const minus = (a: Record<string, number>, b: Record<string, number>) =>
  Object.fromEntries(Object.entries(a).map(([k, v]) => [k, v - (b[k] ?? 0)]));

/**
 * One run over one source. `makeSource` writes the objects (its processes and files are undone by
 * `teardown`, as is everything this starts); the caller runs `teardown` when the run ends.
 */
export async function runEnrolBench(
  makeSource: (work: string, teardown: Teardown) => Promise<EnrolSource>,
  opts: EnrolBenchOptions,
  teardown: Teardown,
): Promise<EnrolResult> {
  checkSizes(opts);
  if (!(opts.rounds >= 1 && opts.rounds <= 100)) throw new Error(`rounds: 1 to 100, not ${opts.rounds}`);
  const clients = opts.nodes;
  const work = await mkdtemp(join(tmpdir(), 'bench-xds-enrol-'));
  teardown.add(() => rm(work, { recursive: true, force: true }));
  const source = await makeSource(work, teardown);
  opts.log(`${source.name}: objects written in ${source.writeMs.toFixed(0)} ms`);

  await LocalCa.loadOrCreate(join(work, 'ca'), { trustDomain: 'cluster.local' });
  const tokens: Record<string, { node: string }> = {};
  for (let i = 0; i < clients; i++) tokens[`bench-token-node${i}-0123456789`] = { node: `node${i}` };
  await writeFile(join(work, 'tokens.json'), JSON.stringify(tokens));
  const port = await freePort();
  const monitor = await freePort();
  const beforeCp = await cpuNow(undefined, source);
  const cp = await startControlPlaneProcess({
    env: {
      ...source.env,
      CP_AUTHENTICATION: 'file',
      CP_CA_DIR: join(work, 'ca'),
      CP_TOKENS_FILE: join(work, 'tokens.json'),
      CP_GRPC_ADDRESS: '127.0.0.1',
      CP_GRPC_PORT: String(port),
      CP_MONITOR_ADDRESS: '127.0.0.1',
      CP_MONITOR_PORT: String(monitor),
      // The Istio and Gateway API kinds are not installed: reported once at warn, not needed here.
      CP_LOG_LEVEL: 'error',
    },
    monitorPort: monitor,
    nodeArgs: opts.cpNodeArgs ?? [],
    readyTimeoutMs: opts.phaseTimeoutMs,
    onSpawn: (child) => teardown.add(() => endProcess(child)),
  });
  opts.log(`${source.name}: control plane ready in ${cp.loadMs.toFixed(0)} ms`);

  const fleet = ClientFleet.spawn({
    target: `127.0.0.1:${port}`,
    rootCertFile: join(work, 'ca', 'root-cert.pem'),
    tokensFile: join(work, 'tokens.json'),
    clients,
    processes: Math.min(opts.clientProcesses, clients),
    nodeArgs: opts.clientNodeArgs ?? [],
    watchNamespace: BENCH_NAMESPACE,
  });
  teardown.add(() => fleet.stop());
  await sleep(500); // client processes load their modules
  const clientsBeforeSync = await cpuOf(fleet.pids());
  const syncStart = now();
  fleet.send('start');
  const none = { workloads: opts.pods, hbone: 0 };
  const sync = await phase(fleet, 0, syncStart, clients, none, 'initial sync', opts.phaseTimeoutMs);
  await fleet.waitFor(
    () => fleet.reports.filter((r) => r.synced !== undefined).length >= clients,
    'every client synced',
    opts.phaseTimeoutMs,
  );
  const resources = fleet.reports.find((r) => r.synced !== undefined)?.resources ?? 0;
  const cpuAfterSync = await cpuNow(cp.pid, source, fleet);
  // From the control plane's start: its load, and the clients' sync.
  const syncCpu = minus(cpuAfterSync, { ...beforeCp, clients: clientsBeforeSync });
  const cpRssAfterSyncMb = (await usage(cp.pid)).rssMb;
  opts.log(`${source.name}: ${clients} clients synced in ${sync.ms.toFixed(0)} ms`);

  const labelMs: number[] = [];
  const unlabelMs: number[] = [];
  const roundsCpu: Array<Record<string, number>> = [];
  let afterLabel: ClientView[] = [];
  let labelResponses = 0;
  let afterUnlabel: ClientView[] = [];
  const all = { workloads: opts.pods, hbone: opts.pods };
  for (let round = 1; round <= opts.rounds; round++) {
    await sleep(1000); // the clients' heaps settle
    const cpu0 = await cpuNow(cp.pid, source, fleet);
    let from = fleet.reports.length;
    let t0 = now();
    await source.setEnrolled(true);
    const on = await phase(fleet, from, t0, clients, all, `round ${round}: label`, opts.phaseTimeoutMs);
    labelMs.push(on.ms);
    afterLabel = on.views;
    labelResponses = on.responses;
    await sleep(1000);
    from = fleet.reports.length;
    t0 = now();
    await source.setEnrolled(false);
    const off = await phase(fleet, from, t0, clients, none, `round ${round}: unlabel`, opts.phaseTimeoutMs);
    unlabelMs.push(off.ms);
    afterUnlabel = off.views;
    roundsCpu.push(minus(await cpuNow(cp.pid, source, fleet), cpu0));
    opts.log(`${source.name}: round ${round}: label ${on.ms.toFixed(0)} ms, unlabel ${off.ms.toFixed(0)} ms`);
  }
  const end = await usage(cp.pid);
  return {
    source: source.name,
    sizes: { pods: opts.pods, services: opts.services, nodes: opts.nodes },
    writeMs: source.writeMs,
    loadMs: cp.loadMs,
    syncMs: sync.ms,
    resources,
    labelMs,
    unlabelMs,
    labelResponses,
    afterLabel,
    afterUnlabel,
    cpRssAfterSyncMb,
    cpPeakMb: end.peakMb,
    cpu: { writes: source.writeCpu, sync: syncCpu, rounds: roundsCpu },
    nacks: await cp.nacks(),
  };
}

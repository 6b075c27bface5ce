/**
 * The enrolment benchmark's table: one column per source run, and the Kubernetes source's ratio
 * to the manifest directory's where both ran (on medians for the per-round figures).
 */
import { availableParallelism } from 'node:os';
import type { EnrolResult } from './enrol-bench.js';
import { pct, printTable, spread } from './measure.js';

export function printEnrolTable(results: readonly EnrolResult[]): void {
  const dir = results.find((r) => r.source === 'directory');
  const kube = results.find((r) => r.source === 'kubernetes');
  const cols = [dir, kube].filter((r): r is EnrolResult => r !== undefined);
  const first = cols[0];
  if (!first) return;
  const f = (n: number | undefined, d = 0) => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(d));
  const ratio = (get: (r: EnrolResult) => number | undefined) => {
    if (!dir || !kube) return [];
    const a = get(dir);
    const b = get(kube);
    return [a === undefined || b === undefined || a === 0 ? '-' : `${(b / a).toFixed(2)}x`];
  };
  const row = (name: string, get: (r: EnrolResult) => number | undefined, d = 0, withRatio = true) => [
    name,
    ...cols.map((r) => f(get(r), d)),
    ...(withRatio ? ratio(get) : dir && kube ? ['-'] : []),
  ];
  const spreadRow = (name: string, get: (r: EnrolResult) => readonly number[]) => [
    name,
    ...cols.map((r) => {
      const s = spread(get(r));
      return `${f(s.min)} / ${f(s.median)} / ${f(s.max)}`;
    }),
    ...ratio((r) => pct(get(r), 50)),
  ];
  const median = (vs: readonly number[]) => pct(vs, 50);
  const roundCpu = (who: string) => (r: EnrolResult) =>
    r.cpu.rounds.some((c) => c[who] !== undefined) ? median(r.cpu.rounds.map((c) => c[who] ?? 0)) : undefined;
  const { pods, services, nodes } = first.sizes;
  const header = ['metric', ...cols.map((r) => r.source), ...(dir && kube ? ['kube/dir'] : [])];
  const rows: string[][] = [
    [
      'pods / services / clients',
      ...cols.map(() => `${pods} / ${services} / ${nodes}`),
      ...(dir && kube ? ['-'] : []),
    ],
    row('resources per client (Address)', (r) => r.resources, 0, false),
    row('CPU cores shared by every process', () => availableParallelism(), 0, false),
    row('objects written: files / API requests (ms)', (r) => r.writeMs, 0, false),
    row('API server CPU in the writes (s)', (r) => r.cpu.writes['API server'], 2, false),
    row('etcd CPU in the writes (s)', (r) => r.cpu.writes.etcd, 2, false),
    row('control plane start to ready (ms)', (r) => r.loadMs),
    row('initial sync, all clients (ms)', (r) => r.syncMs),
    spreadRow(`label -> all clients ACKed ${pods} HBONE, min / median / max (ms)`, (r) => r.labelMs),
    spreadRow(`unlabel -> all clients ACKed ${pods} plain, min / median / max (ms)`, (r) => r.unlabelMs),
    row('responses per client in a label (mean)', (r) => r.labelResponses, 1, false),
    row('control plane RSS after sync (MB)', (r) => r.cpRssAfterSyncMb),
    row('control plane peak RSS, VmHWM (MB)', (r) => r.cpPeakMb),
    row('control plane CPU, load + initial sync (s)', (r) => r.cpu.sync['control plane'], 2),
    row('clients CPU, initial sync (s)', (r) => r.cpu.sync.clients, 2),
    row('control plane CPU per round, median (s)', roundCpu('control plane'), 2),
    row('API server CPU per round, median (s)', roundCpu('API server'), 2, false),
    row('etcd CPU per round, median (s)', roundCpu('etcd'), 2, false),
    row('clients CPU per round, median (s)', roundCpu('clients'), 2),
    row('NACKs', (r) => r.nacks, 0, false),
  ];
  const rounds = Math.max(...cols.map((r) => r.labelMs.length));
  console.log(
    `xDS enrolment benchmark: ${pods} pods and ${services} services in one namespace, ${nodes} node clients, ` +
      `${rounds} rounds of label + unlabel (a round's CPU covers both)`,
  );
  printTable(header, rows);
}

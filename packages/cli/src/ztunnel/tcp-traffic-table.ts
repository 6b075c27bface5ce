/**
 * `ambientctl metrics`: each node agent's TCP traffic by source and destination workload, from
 * Istio's standard TCP metrics in its Prometheus exposition (istio_tcp_connections_opened_total,
 * _closed_total, istio_tcp_sent_bytes_total, istio_tcp_received_bytes_total). Series are summed
 * over the labels not shown (services, principals, flags), per reporter.
 */
import { formatTable } from '../tab-writer.js';

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/**
 * The samples of a text exposition (format 0.0.4 and the OpenMetrics subset Prometheus clients
 * write): `name{l="v",...} value [timestamp]`; comments and malformed lines are skipped.
 */
export function parsePrometheusText(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(\s+\S+)?\s*$/.exec(line);
    if (!m) continue;
    const labels = m[2] ? parseLabels(m[2]) : {};
    const value = Number(m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : m[3]);
    if (labels && !Number.isNaN(value)) out.push({ name: m[1] as string, labels, value });
  }
  return out;
}

/** `{a="x",b="y\"z"}` to its map; undefined when malformed. */
function parseLabels(block: string): Record<string, string> | undefined {
  const labels: Record<string, string> = {};
  const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|\})/y;
  re.lastIndex = 1;
  if (block === '{}') return labels;
  while (re.lastIndex < block.length) {
    const m = re.exec(block);
    if (!m) return undefined;
    labels[m[1] as string] = (m[2] as string).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    if (m[3] === '}') return re.lastIndex === block.length ? labels : undefined;
  }
  return undefined;
}

export interface TrafficRow {
  readonly reporter: string;
  readonly source: string;
  readonly destination: string;
  opened: number;
  closed: number;
  sent: number;
  received: number;
}

const FIELDS = {
  istio_tcp_connections_opened_total: 'opened',
  istio_tcp_connections_closed_total: 'closed',
  istio_tcp_sent_bytes_total: 'sent',
  istio_tcp_received_bytes_total: 'received',
} as const;

/** `namespace/workload`, or `unknown` as the metric says when the workload is not known. */
function party(labels: Readonly<Record<string, string>>, side: 'source' | 'destination'): string {
  const w = labels[`${side}_workload`] || 'unknown';
  const ns = labels[`${side}_workload_namespace`];
  return ns && ns !== 'unknown' ? `${ns}/${w}` : w;
}

/** One row per reporter, source and destination workload, in that order. */
export function tcpTrafficRows(samples: readonly Sample[]): TrafficRow[] {
  const rows = new Map<string, TrafficRow>();
  for (const s of samples) {
    const field = FIELDS[s.name as keyof typeof FIELDS];
    if (!field) continue;
    const reporter = s.labels.reporter ?? '';
    const source = party(s.labels, 'source');
    const destination = party(s.labels, 'destination');
    const key = `${reporter}\0${source}\0${destination}`;
    let row = rows.get(key);
    if (!row) {
      row = { reporter, source, destination, opened: 0, closed: 0, sent: 0, received: 0 };
      rows.set(key, row);
    }
    row[field] += s.value;
  }
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return [...rows.values()].sort(
    (a, b) => cmp(a.reporter, b.reporter) || cmp(a.source, b.source) || cmp(a.destination, b.destination),
  );
}

/** The table over every node read; a node with no TCP traffic yet shows one row saying so. */
export function tcpTrafficTable(nodes: ReadonlyArray<{ node: string; rows: readonly TrafficRow[] }>): string {
  const table = [
    ['NODE', 'REPORTER', 'SOURCE', 'DESTINATION', 'OPENED', 'CLOSED', 'BYTES SENT', 'BYTES RECEIVED'],
  ];
  for (const { node, rows } of nodes) {
    if (rows.length === 0) table.push([node, '-', '-', '-', '0', '0', '0', '0']);
    for (const r of rows)
      table.push([
        node,
        r.reporter,
        r.source,
        r.destination,
        String(r.opened),
        String(r.closed),
        String(r.sent),
        String(r.received),
      ]);
  }
  return formatTable(table, 3);
}

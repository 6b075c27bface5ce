/**
 * `ztunnel-config` tables from a node agent's `/config_dump`, column for column as istioctl's
 * writer prints them (istio/istio istioctl/pkg/writer/ztunnel/configdump: workload.go,
 * services.go, policies.go, certificates.go). The dump is read loosely, as istioctl reads it
 * (lists or maps, unknown fields ignored), so an upstream ztunnel's dump prints the same way.
 */
import { stringify } from 'yaml';
import { CliError } from '../cli-error.js';
import { formatTable } from '../tab-writer.js';

export const ZTUNNEL_CONFIG_KINDS = ['workloads', 'services', 'policies', 'certificates'] as const;
export type ZtunnelConfigKind = (typeof ZTUNNEL_CONFIG_KINDS)[number];
export const OUTPUT_FORMATS = ['short', 'json', 'yaml'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

type Json = Record<string, unknown>;

interface Workload extends Json {
  uid?: string;
  name?: string;
  namespace?: string;
  workloadIps?: string[];
  hostname?: string;
  node?: string;
  protocol?: string;
  status?: string;
  waypoint?: { destination?: string };
}
interface Service extends Json {
  name?: string;
  namespace?: string;
  hostname?: string;
  vips?: string[];
  endpoints?: Record<string, { workloadUid?: string }>;
  waypoint?: { destination?: string };
}
interface Policy extends Json {
  name?: string;
  namespace?: string;
  action?: string;
  scope?: string;
}
interface Cert {
  serialNumber?: string;
  validFrom?: string;
  expirationTime?: string;
}
interface Certs extends Json {
  identity?: string;
  state?: string;
  certChain?: Cert[];
  rootCerts?: Cert[];
}

export interface ZtunnelDump {
  readonly workloads: Workload[];
  readonly services: Service[];
  readonly policies: Policy[];
  readonly certificates: Certs[];
}

/** Parses a config dump; a body that is not one is refused with what it was. */
export function parseZtunnelDump(text: string, from: string): ZtunnelDump {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CliError(
      'CLI_ERR_ZTUNNEL',
      `error unmarshalling config dump response from ztunnel ${from}: ${(err as Error).message}`,
    );
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new CliError('CLI_ERR_ZTUNNEL', `config dump from ztunnel ${from} is not a JSON object`);
  const o = raw as Json;
  // istioctl's unmarshalListOrMap: upstream ztunnels have written both forms.
  const listOrMap = <T>(v: unknown): T[] =>
    Array.isArray(v)
      ? (v.filter((x) => typeof x === 'object' && x !== null) as T[])
      : typeof v === 'object' && v !== null
        ? (Object.values(v).filter((x) => typeof x === 'object' && x !== null) as T[])
        : [];
  return {
    workloads: listOrMap<Workload>(o.workloads),
    services: listOrMap<Service>(o.services),
    policies: listOrMap<Policy>(o.policies),
    certificates: listOrMap<Certs>(o.certificates),
  };
}

const str = (v: unknown) => (v === undefined || v === null ? '' : String(v));
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The waypoint's service name, `None` without one, `NA` when no service matches (as istioctl). */
function waypointName(dest: { destination?: string } | undefined, services: readonly Service[]): string {
  if (!dest) return 'None';
  for (const s of services) {
    if (`${str(s.namespace)}/${str(s.hostname)}` === dest.destination) return str(s.name);
    if ((s.vips ?? []).includes(str(dest.destination))) return str(s.name);
  }
  return 'NA';
}

export function workloadsTable(d: ZtunnelDump): string {
  const sorted = [...d.workloads].sort(
    (a, b) =>
      cmp(`${str(a.namespace)}.${str(a.name)}`, `${str(b.namespace)}.${str(b.name)}`) ||
      cmp(str(a.node), str(b.node)),
  );
  const rows = [['NAMESPACE', 'POD NAME', 'ADDRESS', 'NODE', 'WAYPOINT', 'PROTOCOL']];
  for (const w of sorted) {
    const address = (w.workloadIps ?? []).join(',') || str(w.hostname);
    rows.push([
      str(w.namespace),
      str(w.name),
      address,
      str(w.node),
      waypointName(w.waypoint, d.services),
      str(w.protocol),
    ]);
  }
  return formatTable(rows, 1);
}

function sortedServices(d: ZtunnelDump): Service[] {
  return [...d.services].sort(
    (a, b) =>
      cmp(str(a.namespace), str(b.namespace)) ||
      cmp(str(a.name), str(b.name)) ||
      cmp(str(a.hostname), str(b.hostname)),
  );
}

export function servicesTable(d: ZtunnelDump): string {
  const byUid = new Map(d.workloads.map((w) => [str(w.uid), w]));
  const rows = [['NAMESPACE', 'SERVICE NAME', 'SERVICE VIP', 'WAYPOINT', 'ENDPOINTS']];
  for (const s of sortedServices(d)) {
    // `network/ip`: istioctl shows the part after the first slash.
    const ips = (s.vips ?? []).map((v) => (v.includes('/') ? v.slice(v.indexOf('/') + 1) : ''));
    const endpoints = Object.values(s.endpoints ?? {});
    const healthy = endpoints.filter((e) => byUid.get(str(e.workloadUid))?.status === 'Healthy').length;
    rows.push([
      str(s.namespace),
      str(s.name),
      ips.join(','),
      waypointName(s.waypoint, d.services),
      `${healthy}/${endpoints.length}`,
    ]);
  }
  return formatTable(rows, 1);
}

function sortedPolicies(d: ZtunnelDump): Policy[] {
  return [...d.policies].sort(
    (a, b) => cmp(str(a.namespace), str(b.namespace)) || cmp(str(a.name), str(b.name)),
  );
}

export function policiesTable(d: ZtunnelDump): string {
  const rows = [['NAMESPACE', 'POLICY NAME', 'ACTION', 'SCOPE']];
  for (const p of sortedPolicies(d)) rows.push([str(p.namespace), str(p.name), str(p.action), str(p.scope)]);
  return formatTable(rows, 1);
}

/** Whether `now` is inside the certificate's validity (false when it has none, as istioctl). */
function certValid(c: Cert, now: Date): boolean {
  if (!c.expirationTime && !c.validFrom) return false;
  const from = Date.parse(str(c.validFrom));
  const to = Date.parse(str(c.expirationTime));
  if (Number.isNaN(from) || Number.isNaN(to)) return false;
  return now.getTime() > from && now.getTime() < to;
}

/** The decimal serial in lowercase hex, as istioctl's `%x` of a big.Int (`0` when unparsable). */
function serialHex(serial: string | undefined): string {
  try {
    return /^\d+$/.test(str(serial)) ? BigInt(str(serial)).toString(16) : '0';
  } catch {
    return '0';
  }
}

export function certificatesTable(d: ZtunnelDump, now: Date): string {
  const na = (v: string | undefined) => (v ? v : 'NA');
  const rows = [
    ['CERTIFICATE NAME', 'TYPE', 'STATUS', 'VALID CERT', 'SERIAL NUMBER', 'NOT AFTER', 'NOT BEFORE'],
  ];
  for (const c of d.certificates) {
    const state = str(c.state).includes('Unavailable') ? 'Unavailable' : str(c.state);
    const chain = c.certChain ?? [];
    const roots = c.rootCerts ?? [];
    if (chain.length === 0) {
      rows.push([str(c.identity), 'NA', state, 'false', 'NA', 'NA', 'NA']);
      continue;
    }
    // Older dumps kept the root at the end of the chain.
    const legacy = roots.length === 0;
    const row = (type: string, cert: Cert) => [
      str(c.identity),
      type,
      state,
      String(certValid(cert, now)),
      serialHex(cert.serialNumber),
      na(cert.expirationTime),
      na(cert.validFrom),
    ];
    for (const [i, cert] of chain.entries())
      rows.push(row(i === 0 ? 'Leaf' : i === chain.length - 1 && legacy ? 'Root' : 'Intermediate', cert));
    for (const cert of roots) rows.push(row('Root', cert));
  }
  return formatTable(rows, 5);
}

/** The selected part of the dump as JSON (4-space indent, as istioctl) or YAML. */
export function dumpSection(d: ZtunnelDump, kind: ZtunnelConfigKind, format: 'json' | 'yaml'): string {
  const items: unknown[] =
    kind === 'workloads'
      ? d.workloads
      : kind === 'services'
        ? sortedServices(d)
        : kind === 'policies'
          ? sortedPolicies(d)
          : d.certificates;
  return format === 'json' ? `${JSON.stringify(items, null, 4)}\n` : stringify(items);
}

/** What `ztunnel-config <kind> -o <format>` prints for one dump. */
export function renderZtunnelConfig(
  d: ZtunnelDump,
  kind: ZtunnelConfigKind,
  format: OutputFormat,
  now: Date,
): string {
  if (format !== 'short') return dumpSection(d, kind, format);
  switch (kind) {
    case 'workloads':
      return workloadsTable(d);
    case 'services':
      return servicesTable(d);
    case 'policies':
      return policiesTable(d);
    case 'certificates':
      return certificatesTable(d, now);
  }
}

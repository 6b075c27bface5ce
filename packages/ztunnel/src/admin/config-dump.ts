/**
 * `/config_dump` in upstream ztunnel's JSON shape (src/admin.rs ConfigDump, the serde forms of
 * src/state/{workload,service}.rs and src/rbac.rs), so istioctl's `ztunnel-config` reads it. Pure:
 * it renders domain state handed to it and never reads the network or the clock. What we know
 * beyond upstream goes under one key of our own, `agentState`.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { CertManager, Problem, XdsClientDump } from '@ambient/shared';
import type { LocalConfig } from '../config/local-config.js';
import type { AuthorizationPolicy, PolicyMatch, StringMatch } from '../state/policy.js';
import type { Service } from '../state/service.js';
import type { GatewayAddress, Workload } from '../state/workload.js';

/** A waypoint or gateway: `namespace/hostname` or `network/ip`, and its HBONE port. */
export interface GatewayAddressDump {
  readonly destination: string;
  readonly hboneMtlsPort: number;
}

export interface LocalityDump {
  readonly region: string;
  readonly zone: string;
  readonly subzone: string;
}

/** Upstream `Workload`: fields that serde skips when empty are absent here too. */
export interface WorkloadDump {
  readonly workloadIps: readonly string[];
  readonly waypoint?: GatewayAddressDump;
  readonly networkGateway?: GatewayAddressDump;
  readonly nativeTunnel?: true;
  readonly applicationTunnel?: { readonly protocol: 'NONE' | 'PROXY'; readonly port: number | null };
  readonly protocol: 'HBONE' | 'TCP';
  readonly networkMode: 'Standard' | 'HostNetwork';
  readonly uid?: string;
  readonly name: string;
  readonly namespace: string;
  readonly trustDomain?: string;
  readonly serviceAccount?: string;
  readonly network?: string;
  readonly workloadName?: string;
  readonly workloadType?: string;
  readonly canonicalName?: string;
  readonly canonicalRevision?: string;
  readonly hostname?: string;
  readonly node?: string;
  readonly authorizationPolicies?: readonly string[];
  readonly status: 'Healthy' | 'Unhealthy';
  readonly clusterId: string;
  readonly locality?: LocalityDump;
  /** `namespace/hostname` of the services the workload backs. */
  readonly services?: readonly string[];
  readonly capacity: number;
}

export interface EndpointDump {
  readonly workloadUid: string;
  /** Service port to target port, keys as strings (JSON object keys). */
  readonly port: Readonly<Record<string, number>>;
  readonly status: 'Healthy' | 'Unhealthy';
}

export interface WeightedWaypointDump {
  readonly destination: GatewayAddressDump;
  readonly weight: number;
}

/** Upstream `Service`. */
export interface ServiceDump {
  readonly name: string;
  readonly namespace: string;
  readonly hostname: string;
  /** `network/ip`. */
  readonly vips: readonly string[];
  readonly cidrVips?: ReadonlyArray<{ readonly network: string; readonly cidr: string }>;
  readonly ports: Readonly<Record<string, number>>;
  /** By workload uid. */
  readonly endpoints: Readonly<Record<string, EndpointDump>>;
  readonly subjectAltNames: readonly string[];
  readonly waypoint?: GatewayAddressDump;
  readonly weightedWaypoints?: readonly WeightedWaypointDump[];
  readonly loadBalancer?: {
    readonly routingPreferences: readonly string[];
    readonly mode: string;
    readonly healthPolicy: string;
  };
  readonly ipFamilies?: 'IPv4' | 'IPv6' | 'Dual';
  readonly canonical: boolean;
  readonly visibility: 'Public' | 'Namespace';
}

/** Upstream's `StringMatch` enum as serde writes it: `{"Exact": "x"}`, `{"Presence": []}`. */
export type StringMatchDump =
  | { readonly Exact: string }
  | { readonly Prefix: string }
  | { readonly Suffix: string }
  | { readonly Presence: readonly never[] };

export interface ServiceAccountMatchDump {
  readonly namespace: string;
  readonly serviceAccount: string;
}

/** Upstream `RbacMatch`: empty lists are absent. */
export interface MatchDump {
  readonly namespaces?: readonly StringMatchDump[];
  readonly notNamespaces?: readonly StringMatchDump[];
  readonly serviceAccounts?: readonly ServiceAccountMatchDump[];
  readonly notServiceAccounts?: readonly ServiceAccountMatchDump[];
  readonly principals?: readonly StringMatchDump[];
  readonly notPrincipals?: readonly StringMatchDump[];
  /** CIDRs, always with a prefix length (`10.0.0.1/32`). */
  readonly sourceIps?: readonly string[];
  readonly notSourceIps?: readonly string[];
  readonly destinationIps?: readonly string[];
  readonly notDestinationIps?: readonly string[];
  readonly destinationPorts?: readonly number[];
  readonly notDestinationPorts?: readonly number[];
}

/** Upstream `Authorization`: rules OR, clauses AND, matches OR. */
export interface PolicyDump {
  readonly name: string;
  readonly namespace: string;
  readonly scope: 'Global' | 'Namespace' | 'WorkloadSelector';
  readonly action: 'Allow' | 'Deny';
  readonly rules: ReadonlyArray<ReadonlyArray<readonly MatchDump[]>>;
  readonly dryRun: boolean;
}

/** Upstream `CertDump`: the PEM is base64-encoded, the serial decimal, times RFC 3339 in seconds. */
export interface CertDump {
  readonly pem: string;
  readonly serialNumber: string;
  readonly validFrom: string;
  readonly expirationTime: string;
}

/** Upstream `CertsDump`; state `Initializing`, `Available` or `Unavailable: <error>`. */
export interface CertsDump {
  readonly identity: string;
  readonly state: string;
  /** Leaf, then intermediates; the roots are in `rootCerts`. */
  readonly certChain: readonly CertDump[];
  readonly rootCerts: readonly CertDump[];
}

/** Upstream inpod `ProxyState` (the `workloadState` handler). */
export interface WorkloadStateDump {
  readonly state: 'Pending' | 'Up';
  readonly info: { readonly name: string; readonly namespace: string; readonly serviceAccount: string };
}

/** What we report beyond upstream's dump. */
export interface AgentStateDump {
  readonly nodeName: string;
  /** Local config file updates rejected since start (the previous config kept serving). */
  readonly configRejections: number;
  /** Problems of the last rejected local config file, with field paths. */
  readonly lastConfigProblems: readonly Problem[];
  /** The Delta ADS client: connection, streams, ACK/NACK counts per type, rejections. */
  readonly xds?: XdsClientDump;
  /** Rotation state per identity: when it arrived, next rotation, CA failures, last error. */
  readonly certificates: readonly CertificateDump[];
}

export interface ConfigDump {
  readonly workloads: readonly WorkloadDump[];
  readonly services: readonly ServiceDump[];
  readonly policies: readonly PolicyDump[];
  /** Upstream holds endpoints of services not yet received here; ours are never staged. */
  readonly stagedServices: Readonly<Record<string, never>>;
  readonly staticConfig: {
    readonly workloads: readonly unknown[];
    readonly policies: readonly PolicyDump[];
    readonly services: readonly ServiceDump[];
  };
  readonly version: Readonly<Record<string, string>>;
  readonly config: unknown;
  readonly certificates: readonly CertsDump[];
  readonly workloadState: Readonly<Record<string, WorkloadStateDump>>;
  readonly agentState: AgentStateDump;
}

type CertificateDump = ReturnType<CertManager['dump']>[number];
type WorkloadCertificate = NonNullable<ReturnType<CertManager['current']>>;

/** Where the certificates come from: the manager's dump, and the valid chain of an identity. */
export interface CertSource {
  dump(): CertificateDump[];
  current(identity: string): WorkloadCertificate | undefined;
}

export interface ConfigDumpInputs {
  readonly nodeName: string;
  /** The config in force, if any yet. */
  readonly config?: LocalConfig;
  /** The node agent's trust domain: a workload naming none is in it. */
  readonly trustDomain: string;
  /** The local config file's content, when that is the source (upstream's `staticConfig`). */
  readonly staticConfig?: LocalConfig;
  /** The node agent's settings (upstream's `config`). */
  readonly settings: unknown;
  readonly certs?: CertSource;
  /** Pods served now. */
  readonly enrolled: readonly Workload[];
  /** Pods to serve whose proxy is not up yet (upstream's `Pending`). */
  readonly pending?: readonly Workload[];
  readonly configRejections: number;
  readonly lastConfigProblems: readonly Problem[];
  readonly xds?: XdsClientDump;
}

export function buildConfigDump(inputs: ConfigDumpInputs): ConfigDump {
  const { config, trustDomain } = inputs;
  const workloads = config?.workloads ?? [];
  const byKey = <T>(items: readonly T[], key: (t: T) => string) =>
    [...items].sort((a, b) => compare(key(a), key(b)));
  const rawCerts = inputs.certs?.dump() ?? [];
  const sorted = byKey(workloads, (w) => w.uid);
  // One pass over the workloads, not one per service: dumps of large configs stay linear.
  const backing = new Map<string, Workload[]>();
  for (const w of sorted) {
    for (const key of w.services.keys()) {
      const list = backing.get(key);
      if (list) list.push(w);
      else backing.set(key, [w]);
    }
  }
  return {
    workloads: sorted.map((w) => dumpWorkload(w, trustDomain)),
    services: byKey(config?.services ?? [], serviceKey).map((s) =>
      dumpService(s, backing.get(serviceKey(s)) ?? []),
    ),
    policies: byKey(config?.policies ?? [], (p) => `${p.namespace}/${p.name}`).map(dumpPolicy),
    stagedServices: {},
    staticConfig: inputs.staticConfig
      ? {
          workloads: inputs.staticConfig.workloads.map((w) => ({
            ...dumpWorkload(w, trustDomain),
            services: Object.fromEntries([...w.services].map(([k, v]) => [k, portMap(v)])),
          })),
          policies: inputs.staticConfig.policies.map(dumpPolicy),
          services: inputs.staticConfig.services.map((s) => dumpService(s, [])),
        }
      : { workloads: [], policies: [], services: [] },
    version: buildInfo(),
    config: inputs.settings,
    certificates: byKey(rawCerts, (c) => c.identity).map((c) => dumpCerts(c, inputs.certs)),
    workloadState: workloadState(inputs.enrolled, inputs.pending ?? []),
    agentState: {
      nodeName: inputs.nodeName,
      configRejections: inputs.configRejections,
      lastConfigProblems: inputs.lastConfigProblems,
      ...(inputs.xds && { xds: inputs.xds }),
      certificates: rawCerts,
    },
  };
}

function workloadState(
  up: readonly Workload[],
  pending: readonly Workload[],
): Record<string, WorkloadStateDump> {
  const info = (w: Workload) => ({ name: w.name, namespace: w.namespace, serviceAccount: w.serviceAccount });
  const byUid = new Map<string, WorkloadStateDump>();
  for (const w of pending) byUid.set(w.uid, { state: 'Pending', info: info(w) });
  for (const w of up) byUid.set(w.uid, { state: 'Up', info: info(w) });
  return Object.fromEntries([...byUid].sort(([a], [b]) => compare(a, b)));
}

/** Byte order, as Rust's `sorted_by_key` on strings: the same on every machine and locale. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function serviceKey(s: Service): string {
  return `${s.namespace}/${s.hostname}`;
}

function portMap(ports: ReadonlyMap<number, number>): Record<string, number> {
  return Object.fromEntries([...ports].map(([k, v]) => [String(k), v]));
}

export function dumpGateway(gw: GatewayAddress): GatewayAddressDump {
  const destination =
    gw.hostname !== undefined
      ? `${gw.namespace ?? ''}/${gw.hostname}`
      : `${gw.network ?? ''}/${gw.address ?? ''}`;
  return { destination, hboneMtlsPort: gw.port };
}

export function dumpWorkload(w: Workload, trustDomain: string): WorkloadDump {
  const m = w.meta;
  const str = (v: string | undefined) => (v ? v : undefined);
  const locality = m?.locality;
  const services = [...w.services.keys()].sort(compare);
  return omitUndefined({
    workloadIps: [...w.ips],
    waypoint: w.waypoint && dumpGateway(w.waypoint),
    networkGateway: w.networkGateway && dumpGateway(w.networkGateway),
    protocol: w.protocol,
    networkMode: m?.networkMode ?? 'Standard',
    uid: str(w.uid),
    name: w.name,
    namespace: w.namespace,
    trustDomain: str(w.trustDomain || trustDomain),
    serviceAccount: str(w.serviceAccount),
    network: str(w.network),
    workloadName: str(m?.workloadName),
    workloadType: str(m?.workloadType),
    canonicalName: str(m?.canonicalName),
    canonicalRevision: str(m?.canonicalRevision),
    hostname: str(m?.hostname),
    node: str(w.node),
    nativeTunnel: w.nativeTunnel === true ? true : undefined,
    applicationTunnel: w.applicationTunnel && {
      protocol: w.applicationTunnel.protocol,
      port: w.applicationTunnel.port ?? null,
    },
    authorizationPolicies: w.authorizationPolicies.length > 0 ? [...w.authorizationPolicies] : undefined,
    status: m?.status ?? 'Healthy',
    clusterId: m?.clusterId ?? '',
    locality:
      locality && (locality.region || locality.zone || locality.subzone) ? { ...locality } : undefined,
    services: services.length > 0 ? services : undefined,
    capacity: w.capacity ?? 1,
  }) as WorkloadDump;
}

/** `backing`: the workloads that name this service, in uid order (they make its endpoints). */
export function dumpService(s: Service, backing: readonly Workload[]): ServiceDump {
  const vips = s.vips.map((v) => `${v.network}/${v.address}`);
  const cidrVips = (s.cidrVips ?? []).map((v) => ({ network: v.network, cidr: `${v.address}/${v.length}` }));
  const key = serviceKey(s);
  const endpoints: Record<string, EndpointDump> = {};
  for (const w of backing) {
    const ports = w.services.get(key);
    if (ports)
      endpoints[w.uid] = { workloadUid: w.uid, port: portMap(ports), status: w.meta?.status ?? 'Healthy' };
  }
  const weighted = (s.weightedWaypoints ?? []).map((ww) => ({
    destination: dumpGateway(ww.destination),
    weight: ww.weight,
  }));
  return omitUndefined({
    name: s.name,
    namespace: s.namespace,
    hostname: s.hostname,
    vips,
    cidrVips: cidrVips.length > 0 ? cidrVips : undefined,
    ports: portMap(s.ports),
    endpoints,
    subjectAltNames: [...s.subjectAltNames],
    waypoint: s.waypoint && dumpGateway(s.waypoint),
    weightedWaypoints: weighted.length > 0 ? weighted : undefined,
    loadBalancer: s.loadBalancer && {
      routingPreferences: [...s.loadBalancer.routingPreferences],
      mode: s.loadBalancer.mode,
      healthPolicy: s.loadBalancer.healthPolicy,
    },
    ipFamilies: s.ipFamilies,
    canonical: s.canonical === true,
    visibility: s.visibility === 'Namespace' ? 'Namespace' : 'Public',
  }) as ServiceDump;
}

const SCOPES = { global: 'Global', namespace: 'Namespace', workload: 'WorkloadSelector' } as const;
const ACTIONS = { allow: 'Allow', deny: 'Deny' } as const;

function dumpStringMatch(m: StringMatch): StringMatchDump {
  if (m.exact !== undefined) return { Exact: m.exact };
  if (m.prefix !== undefined) return { Prefix: m.prefix };
  if (m.suffix !== undefined) return { Suffix: m.suffix };
  return { Presence: [] };
}

/** Upstream keeps IP matches as `IpNet`, which always prints a prefix length. */
function cidr(ip: string): string {
  if (ip.includes('/')) return ip;
  return `${ip}/${isIP(ip) === 6 ? 128 : 32}`;
}

function dumpMatch(m: PolicyMatch): MatchDump {
  const strings = (l: readonly StringMatch[] | undefined) => (l?.length ? l.map(dumpStringMatch) : undefined);
  const ips = (l: readonly string[] | undefined) => (l?.length ? l.map(cidr) : undefined);
  const ports = (l: readonly number[] | undefined) => (l?.length ? [...l] : undefined);
  const accounts = (l: readonly ServiceAccountMatchDump[] | undefined) =>
    l?.length ? l.map((a) => ({ namespace: a.namespace, serviceAccount: a.serviceAccount })) : undefined;
  return omitUndefined({
    namespaces: strings(m.namespaces),
    notNamespaces: strings(m.notNamespaces),
    serviceAccounts: accounts(m.serviceAccounts),
    notServiceAccounts: accounts(m.notServiceAccounts),
    principals: strings(m.principals),
    notPrincipals: strings(m.notPrincipals),
    sourceIps: ips(m.sourceIps),
    notSourceIps: ips(m.notSourceIps),
    destinationIps: ips(m.destinationIps),
    notDestinationIps: ips(m.notDestinationIps),
    destinationPorts: ports(m.destinationPorts),
    notDestinationPorts: ports(m.notDestinationPorts),
  }) as MatchDump;
}

export function dumpPolicy(p: AuthorizationPolicy): PolicyDump {
  return {
    name: p.name,
    namespace: p.namespace,
    scope: SCOPES[p.scope],
    action: ACTIONS[p.action],
    rules: p.rules.map((r) => r.clauses.map((c) => c.matches.map(dumpMatch))),
    dryRun: p.dryRun ?? false,
  };
}

/** RFC 3339 in whole seconds, UTC, as upstream's `rfc3339` (chrono `SecondsFormat::Secs`). */
function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}

export function dumpCert(pem: string): CertDump {
  const x = new X509Certificate(pem);
  return {
    pem: Buffer.from(pem).toString('base64'),
    // Node gives the serial in hex; upstream prints the integer in decimal (istioctl parses base 10).
    serialNumber: BigInt(`0x${x.serialNumber}`).toString(10),
    validFrom: rfc3339(new Date(x.validFrom)),
    expirationTime: rfc3339(new Date(x.validTo)),
  };
}

function dumpCerts(c: CertificateDump, certs: CertSource | undefined): CertsDump {
  const current = c.state === 'available' ? certs?.current(c.identity) : undefined;
  if (!current) {
    const state =
      c.state === 'unavailable' ? `Unavailable: ${c.lastError ?? 'unknown error'}` : 'Initializing';
    return { identity: c.identity, state, certChain: [], rootCerts: [] };
  }
  const roots = new Set(current.rootsPem.map((p) => p.trim()));
  return {
    identity: c.identity,
    state: 'Available',
    certChain: current.chainPem.filter((p) => !roots.has(p.trim())).map(dumpCert),
    rootCerts: current.rootsPem.map(dumpCert),
  };
}

let cachedBuildInfo: Record<string, string> | undefined;

/** Upstream's `BuildInfo` keys where they apply; the runtime in place of Rust's version. */
function buildInfo(): Record<string, string> {
  if (!cachedBuildInfo) {
    let version = 'unknown';
    try {
      // src/admin and dist/admin both sit two levels under the package root.
      const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
        version?: unknown;
      };
      if (typeof pkg.version === 'string') version = pkg.version;
    } catch {
      // An image without the package manifest still answers, with the version unknown.
    }
    cachedBuildInfo = {
      version,
      nodeVersion: process.version,
      cryptoProvider: 'openssl',
    };
  }
  return cachedBuildInfo;
}

/** serde's `skip_serializing_if`: the fields left undefined are not keys at all. */
function omitUndefined<T extends Record<string, unknown>>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const k in o) if (o[k] !== undefined) out[k] = o[k];
  return out as T;
}

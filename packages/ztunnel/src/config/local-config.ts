/**
 * ztunnel's local config file, in the shape of Istio ztunnel's (`LocalConfig` in upstream
 * src/xds.rs, with the serde shapes of src/state/workload.rs, src/state/service.rs and
 * src/rbac.rs; example: examples/localhost.yaml):
 *   workloads: [{ uid, name, namespace, serviceAccount, trustDomain, workloadIps, protocol: HBONE|TCP,
 *                 networkMode, node, network, hostname, services: { "ns/hostname": { port: targetPort } },
 *                 authorizationPolicies, waypoint, networkGateway, nativeTunnel, applicationTunnel,
 *                 workloadName, workloadType, canonicalName, canonicalRevision, status, clusterId,
 *                 locality, capacity, netns }]
 *   services:  [{ name, namespace, hostname, vips: ["network/ip"], cidrVips, ports: { port: targetPort },
 *                 endpoints, subjectAltNames, waypoint, weightedWaypoints, loadBalancer, ipFamilies,
 *                 canonical, visibility }]
 *   policies:  [{ name, namespace, scope: Global|Namespace|WorkloadSelector, action: Allow|Deny,
 *                 rules: [ [ [ match ] ] ], dryRun }]   (rules OR, clauses AND, matches OR)
 * `netns` is ours (the pod's network namespace for local runs). docs/ztunnel.md lists every field.
 * Decoding returns every problem with its field path; nothing is thrown for bad input.
 */
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { fail, ok, type Problem, type Result, SpiffeId } from '@ambient/shared';
import type {
  AuthorizationPolicy,
  PolicyMatch,
  PolicyRule,
  ServiceAccountMatch,
  StringMatch,
} from '../state/policy.js';
import type {
  CidrVip,
  LoadBalancer,
  LoadBalancerScope,
  Service,
  WeightedWaypoint,
} from '../state/service.js';
import type {
  ApplicationTunnel,
  GatewayAddress,
  TunnelProtocol,
  Workload,
  WorkloadMeta,
  WorkloadType,
} from '../state/workload.js';

export interface LocalConfig {
  readonly workloads: readonly Workload[];
  readonly services: readonly Service[];
  readonly policies: readonly AuthorizationPolicy[];
}

type Obj = Record<string, unknown>;

class Decoder {
  readonly problems: Problem[] = [];

  add(path: string, message: string): void {
    this.problems.push({ path, message });
  }

  obj(v: unknown, path: string): Obj | undefined {
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Obj;
    this.add(path, 'must be a map');
    return undefined;
  }

  list(v: unknown, path: string, optional = true): unknown[] {
    if (v === undefined || v === null) {
      if (!optional) this.add(path, 'is required');
      return [];
    }
    if (Array.isArray(v)) return v;
    this.add(path, 'must be a list');
    return [];
  }

  str(o: Obj, key: string, path: string, required = true): string {
    const v = o[key];
    if (v === undefined || v === null) {
      if (required) this.add(`${path}.${key}`, 'is required');
      return '';
    }
    if (typeof v !== 'string') {
      this.add(`${path}.${key}`, 'must be a string');
      return '';
    }
    return v;
  }

  port(v: unknown, path: string): number | undefined {
    const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
    if (typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65535) return n;
    this.add(path, `${JSON.stringify(v)} is not a port from 1 to 65535`);
    return undefined;
  }

  portMap(v: unknown, path: string): Map<number, number> {
    const out = new Map<number, number>();
    if (v === undefined || v === null) return out;
    const o = this.obj(v, path);
    for (const [k, target] of Object.entries(o ?? {})) {
      const from = this.port(k, `${path}.${k}`);
      const to = this.port(target, `${path}.${k}`);
      if (from !== undefined && to !== undefined) out.set(from, to);
    }
    return out;
  }

  unknownKeys(o: Obj, allowed: readonly string[], path: string): void {
    for (const k of Object.keys(o)) if (!allowed.includes(k)) this.add(`${path}.${k}`, 'unknown field');
  }

  /** One of `values` (upstream's serde enum spellings); `fallback` when absent, or required if none. */
  oneOf<T extends string>(
    o: Obj,
    key: string,
    path: string,
    values: readonly T[],
    fallback?: T,
  ): T | undefined {
    const v = o[key];
    if (v === undefined || v === null) {
      if (fallback === undefined) this.add(`${path}.${key}`, 'is required');
      return fallback;
    }
    if (typeof v === 'string' && (values as readonly string[]).includes(v)) return v as T;
    this.add(`${path}.${key}`, `must be ${values.slice(0, -1).join(', ')} or ${values.at(-1)}`);
    return undefined;
  }

  bool(o: Obj, key: string, path: string, required = false): boolean {
    const v = o[key];
    if (v === undefined || v === null) {
      if (required) this.add(`${path}.${key}`, 'is required');
      return false;
    }
    if (typeof v === 'boolean') return v;
    this.add(`${path}.${key}`, 'must be true or false');
    return false;
  }

  /** An unsigned 32-bit integer. */
  uint(o: Obj, key: string, path: string): number | undefined {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff) return v;
    this.add(`${path}.${key}`, `${JSON.stringify(v)} is not an integer from 0 to 4294967295`);
    return undefined;
  }
}

/** `network/ip` (upstream's NetworkAddress string); the network may be empty. */
function networkAddress(text: string): { network: string; address: string } | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const address = text.slice(slash + 1);
  return isIP(address) ? { network: text.slice(0, slash), address } : undefined;
}

/**
 * A waypoint or network gateway: `{ destination, hboneMtlsPort }`, both required as upstream's
 * GatewayAddress. The destination is `network/ip` when the part after the slash is an IP
 * address, else `namespace/hostname` (upstream's untagged enum tries the address first).
 */
function decodeGateway(d: Decoder, v: unknown, path: string): GatewayAddress | undefined {
  if (v === undefined || v === null) return undefined;
  const o = d.obj(v, path);
  if (!o) return undefined;
  d.unknownKeys(o, ['destination', 'hboneMtlsPort'], path);
  const destination = d.str(o, 'destination', path);
  const rawPort = o.hboneMtlsPort;
  let port: number | undefined;
  if (rawPort === undefined || rawPort === null) d.add(`${path}.hboneMtlsPort`, 'is required');
  // 0 means the default HBONE port, as on the wire.
  else port = rawPort === 0 ? 15008 : d.port(rawPort, `${path}.hboneMtlsPort`);
  if (!destination) return undefined;
  const address = networkAddress(destination);
  const slash = destination.indexOf('/');
  if (!address && (slash <= 0 || slash === destination.length - 1)) {
    d.add(`${path}.destination`, `${JSON.stringify(destination)} is not network/ip or namespace/hostname`);
    return undefined;
  }
  if (port === undefined) return undefined;
  return address
    ? { network: address.network, address: address.address, port }
    : { namespace: destination.slice(0, slash), hostname: destination.slice(slash + 1), port };
}

function decodeApplicationTunnel(d: Decoder, v: unknown, path: string): ApplicationTunnel | undefined {
  if (v === undefined || v === null) return undefined;
  const o = d.obj(v, path);
  if (!o) return undefined;
  d.unknownKeys(o, ['protocol', 'port'], path);
  const protocol = d.oneOf(o, 'protocol', path, ['NONE', 'PROXY'] as const);
  const port = o.port === undefined || o.port === null ? undefined : d.port(o.port, `${path}.port`);
  return protocol ? { protocol, ...(port !== undefined && { port }) } : undefined;
}

const WORKLOAD_KEYS = [
  'uid',
  'name',
  'namespace',
  'serviceAccount',
  'trustDomain',
  'workloadIps',
  'protocol',
  'networkMode',
  'node',
  'network',
  'hostname',
  'services',
  'authorizationPolicies',
  'waypoint',
  'networkGateway',
  'nativeTunnel',
  'applicationTunnel',
  'workloadName',
  'workloadType',
  'canonicalName',
  'canonicalRevision',
  'status',
  'clusterId',
  'locality',
  'capacity',
  // Ours: the pod's network namespace for local runs.
  'netns',
];
const SERVICE_KEYS = [
  'name',
  'namespace',
  'hostname',
  'vips',
  'cidrVips',
  'ports',
  'endpoints',
  'subjectAltNames',
  'waypoint',
  'weightedWaypoints',
  'loadBalancer',
  'ipFamilies',
  'canonical',
  'visibility',
];
const POLICY_KEYS = ['name', 'namespace', 'scope', 'action', 'rules', 'dryRun'];
const MATCH_KEYS = [
  'namespaces',
  'notNamespaces',
  'principals',
  'notPrincipals',
  'sourceIps',
  'notSourceIps',
  'destinationIps',
  'notDestinationIps',
  'destinationPorts',
  'notDestinationPorts',
  'serviceAccounts',
  'notServiceAccounts',
];

function decodeWorkload(d: Decoder, v: unknown, path: string): Workload | undefined {
  const o = d.obj(v, path);
  if (!o) return undefined;
  d.unknownKeys(o, WORKLOAD_KEYS, path);
  const ips: string[] = [];
  d.list(o.workloadIps, `${path}.workloadIps`, false).forEach((ip, i) => {
    if (typeof ip === 'string' && isIP(ip)) ips.push(ip);
    else d.add(`${path}.workloadIps[${i}]`, `${JSON.stringify(ip)} is not an IP address`);
  });
  const protocol = d.oneOf<TunnelProtocol>(o, 'protocol', path, ['TCP', 'HBONE'], 'TCP');
  const services = new Map<string, Map<number, number>>();
  // Upstream requires `services`; a workload that backs none may leave it out here.
  const svcObj = o.services === undefined ? {} : d.obj(o.services, `${path}.services`);
  for (const [key, ports] of Object.entries(svcObj ?? {})) {
    if (!/^[^/]+\/[^/]+$/.test(key)) d.add(`${path}.services.${key}`, 'key must be namespace/hostname');
    services.set(key, d.portMap(ports, `${path}.services.${key}`));
  }
  const policies = d.list(o.authorizationPolicies, `${path}.authorizationPolicies`).map((p, i) => {
    if (typeof p !== 'string' || !p.includes('/'))
      d.add(`${path}.authorizationPolicies[${i}]`, 'must be namespace/name');
    return String(p);
  });
  const uid = d.str(o, 'uid', path, false);
  // Upstream defaults the name to ""; ours names the uid after it, so one of the two is needed.
  const name = d.str(o, 'name', path, !uid);
  const namespace = d.str(o, 'namespace', path);
  const trustDomain = d.str(o, 'trustDomain', path, false);
  if (trustDomain && !SpiffeId.isTrustDomain(trustDomain))
    d.add(`${path}.trustDomain`, `${JSON.stringify(trustDomain)} has characters outside [a-z0-9._-]`);
  const workloadType = d.str(o, 'workloadType', path, false);
  if (workloadType && !['deployment', 'cronjob', 'pod', 'job'].includes(workloadType))
    d.add(`${path}.workloadType`, 'must be deployment, cronjob, pod or job');
  const status = d.oneOf(o, 'status', path, ['Healthy', 'Unhealthy'] as const, 'Healthy');
  const networkMode = d.oneOf(o, 'networkMode', path, ['Standard', 'HostNetwork'] as const, 'Standard');
  const text = (key: string) => d.str(o, key, path, false);
  let locality: WorkloadMeta['locality'];
  if (o.locality !== undefined && o.locality !== null) {
    const l = d.obj(o.locality, `${path}.locality`);
    if (l) {
      const lp = `${path}.locality`;
      d.unknownKeys(l, ['region', 'zone', 'subzone'], lp);
      locality = {
        region: d.str(l, 'region', lp),
        zone: d.str(l, 'zone', lp),
        subzone: d.str(l, 'subzone', lp),
      };
    }
  }
  const waypoint = decodeGateway(d, o.waypoint, `${path}.waypoint`);
  const networkGateway = decodeGateway(d, o.networkGateway, `${path}.networkGateway`);
  const applicationTunnel = decodeApplicationTunnel(d, o.applicationTunnel, `${path}.applicationTunnel`);
  const nativeTunnel = d.bool(o, 'nativeTunnel', path);
  const capacity = d.uint(o, 'capacity', path);
  const meta: WorkloadMeta = {
    ...(text('workloadName') && { workloadName: text('workloadName') }),
    ...(workloadType && { workloadType: workloadType as WorkloadType }),
    ...(text('canonicalName') && { canonicalName: text('canonicalName') }),
    ...(text('canonicalRevision') && { canonicalRevision: text('canonicalRevision') }),
    ...(text('clusterId') && { clusterId: text('clusterId') }),
    ...(text('hostname') && { hostname: text('hostname') }),
    status: status ?? 'Healthy',
    ...(locality && { locality }),
    networkMode: networkMode ?? 'Standard',
  };
  return {
    uid: uid || `//v1/Pod/${namespace}/${name}`,
    name,
    namespace,
    serviceAccount: d.str(o, 'serviceAccount', path, false) || 'default',
    ips,
    protocol: protocol ?? 'TCP',
    node: d.str(o, 'node', path, false),
    network: d.str(o, 'network', path, false),
    services,
    authorizationPolicies: policies,
    ...(typeof o.netns === 'string' && o.netns !== '' && { netns: o.netns }),
    ...(trustDomain && { trustDomain }),
    ...(waypoint && { waypoint }),
    ...(networkGateway && { networkGateway }),
    ...(nativeTunnel && { nativeTunnel }),
    ...(applicationTunnel && { applicationTunnel }),
    ...(capacity !== undefined && { capacity }),
    meta,
  };
}

const LB_SCOPES: readonly LoadBalancerScope[] = ['Region', 'Zone', 'Subzone', 'Node', 'Cluster', 'Network'];

/** `{ routingPreferences, mode, healthPolicy }`, every field required as upstream's LoadBalancer. */
function decodeLoadBalancer(d: Decoder, v: unknown, path: string): LoadBalancer | undefined {
  if (v === undefined || v === null) return undefined;
  const o = d.obj(v, path);
  if (!o) return undefined;
  d.unknownKeys(o, ['routingPreferences', 'mode', 'healthPolicy'], path);
  const routingPreferences = d
    .list(o.routingPreferences, `${path}.routingPreferences`, false)
    .flatMap((scope, i): LoadBalancerScope[] => {
      if (typeof scope === 'string' && (LB_SCOPES as readonly string[]).includes(scope))
        return [scope as LoadBalancerScope];
      d.add(`${path}.routingPreferences[${i}]`, `must be ${LB_SCOPES.slice(0, -1).join(', ')} or Network`);
      return [];
    });
  const mode = d.oneOf(o, 'mode', path, ['Standard', 'Strict', 'Failover', 'Passthrough'] as const);
  const healthPolicy = d.oneOf(o, 'healthPolicy', path, ['OnlyHealthy', 'AllowAll'] as const);
  return mode && healthPolicy ? { routingPreferences, mode, healthPolicy } : undefined;
}

/** An upstream service endpoint: `{ workloadUid, port: { servicePort: targetPort }, status }`. */
interface LocalEndpoint {
  readonly workloadUid: string;
  readonly ports: Map<number, number>;
  readonly path: string;
}

function decodeEndpoints(d: Decoder, v: unknown, path: string): LocalEndpoint[] {
  if (v === undefined || v === null) return [];
  const o = d.obj(v, path);
  return Object.entries(o ?? {}).flatMap(([key, ep]) => {
    const p = `${path}.${key}`;
    const e = d.obj(ep, p);
    if (!e) return [];
    d.unknownKeys(e, ['workloadUid', 'port', 'status'], p);
    const workloadUid = d.str(e, 'workloadUid', p);
    if (e.port === undefined) d.add(`${p}.port`, 'is required');
    const ports = d.portMap(e.port, `${p}.port`);
    d.oneOf(e, 'status', p, ['Healthy', 'Unhealthy'] as const);
    return workloadUid ? [{ workloadUid, ports, path: p }] : [];
  });
}

function decodeService(
  d: Decoder,
  v: unknown,
  path: string,
): { service: Service; endpoints: LocalEndpoint[] } | undefined {
  const o = d.obj(v, path);
  if (!o) return undefined;
  d.unknownKeys(o, SERVICE_KEYS, path);
  const vips = d.list(o.vips, `${path}.vips`, false).flatMap((vip, i) => {
    // Ours also takes a bare IP, on the default network.
    const address =
      typeof vip === 'string' ? (isIP(vip) ? { network: '', address: vip } : networkAddress(vip)) : undefined;
    if (!address) d.add(`${path}.vips[${i}]`, `${JSON.stringify(vip)} is not network/ip`);
    return address ?? [];
  });
  const cidrVips = d.list(o.cidrVips, `${path}.cidrVips`).flatMap((entry, i): CidrVip[] => {
    const p = `${path}.cidrVips[${i}]`;
    const c = d.obj(entry, p);
    if (!c) return [];
    d.unknownKeys(c, ['network', 'cidr'], p);
    const network = d.str(c, 'network', p);
    const cidr = d.str(c, 'cidr', p);
    const [address = '', len = ''] = cidr.split('/');
    const max = isIP(address) === 6 ? 128 : 32;
    if (!isIP(address) || !/^\d+$/.test(len) || Number(len) > max) {
      if (cidr) d.add(`${p}.cidr`, `${JSON.stringify(cidr)} is not a CIDR (ip/length)`);
      return [];
    }
    return [{ network, address, length: Number(len) }];
  });
  if (o.ports === undefined || o.ports === null) d.add(`${path}.ports`, 'is required');
  const waypoint = decodeGateway(d, o.waypoint, `${path}.waypoint`);
  const weightedWaypoints = d
    .list(o.weightedWaypoints, `${path}.weightedWaypoints`)
    .flatMap((entry, i): WeightedWaypoint[] => {
      const p = `${path}.weightedWaypoints[${i}]`;
      const w = d.obj(entry, p);
      if (!w) return [];
      d.unknownKeys(w, ['destination', 'weight'], p);
      if (w.destination === undefined || w.destination === null) d.add(`${p}.destination`, 'is required');
      const destination = decodeGateway(d, w.destination, `${p}.destination`);
      const weight = d.uint(w, 'weight', p);
      if (w.weight === undefined || w.weight === null) d.add(`${p}.weight`, 'is required');
      return destination && weight !== undefined ? [{ destination, weight }] : [];
    });
  const loadBalancer = decodeLoadBalancer(d, o.loadBalancer, `${path}.loadBalancer`);
  const ipFamilies =
    o.ipFamilies === undefined || o.ipFamilies === null
      ? undefined
      : d.oneOf(o, 'ipFamilies', path, ['Dual', 'IPv4', 'IPv6'] as const);
  const canonical = d.bool(o, 'canonical', path);
  const visibility = d.oneOf(o, 'visibility', path, ['Public', 'Namespace'] as const, 'Public');
  const service: Service = {
    name: d.str(o, 'name', path),
    namespace: d.str(o, 'namespace', path),
    hostname: d.str(o, 'hostname', path),
    vips,
    ...(cidrVips.length > 0 && { cidrVips }),
    ports: d.portMap(o.ports, `${path}.ports`),
    subjectAltNames: d.list(o.subjectAltNames, `${path}.subjectAltNames`).map(String),
    ...(waypoint && { waypoint }),
    ...(weightedWaypoints.length > 0 && { weightedWaypoints }),
    ...(loadBalancer && { loadBalancer }),
    ...(ipFamilies && { ipFamilies }),
    ...(canonical && { canonical }),
    ...(visibility === 'Namespace' && { visibility }),
  };
  return { service, endpoints: decodeEndpoints(d, o.endpoints, `${path}.endpoints`) };
}

function decodeStringMatch(d: Decoder, v: unknown, path: string): StringMatch | undefined {
  const o = d.obj(v, path);
  if (!o) return undefined;
  const [kind, ...rest] = Object.keys(o);
  if (!kind || rest.length > 0) {
    d.add(path, 'must have exactly one of Exact, Prefix, Suffix, Presence');
    return undefined;
  }
  const value = o[kind];
  switch (kind) {
    case 'Exact':
      return { exact: String(value) };
    case 'Prefix':
      return { prefix: String(value) };
    case 'Suffix':
      return { suffix: String(value) };
    case 'Presence':
      return { presence: true };
    default:
      d.add(`${path}.${kind}`, 'must be one of Exact, Prefix, Suffix, Presence');
      return undefined;
  }
}

function decodeMatch(d: Decoder, v: unknown, path: string): PolicyMatch {
  const o = d.obj(v, path) ?? {};
  d.unknownKeys(o, MATCH_KEYS, path);
  const strings = (key: string) =>
    d.list(o[key], `${path}.${key}`).flatMap((m, i) => decodeStringMatch(d, m, `${path}.${key}[${i}]`) ?? []);
  const ips = (key: string) =>
    d.list(o[key], `${path}.${key}`).flatMap((ip, i) => {
      const [addr = '', len] = String(ip).split('/');
      const family = isIP(addr);
      const max = family === 6 ? 128 : 32;
      if (!family || (len !== undefined && !(/^\d+$/.test(len) && Number(len) <= max))) {
        d.add(`${path}.${key}[${i}]`, `${JSON.stringify(ip)} is not an IP or CIDR`);
        return [];
      }
      return [String(ip)];
    });
  const ports = (key: string) =>
    d.list(o[key], `${path}.${key}`).flatMap((p, i) => d.port(p, `${path}.${key}[${i}]`) ?? []);
  const serviceAccounts = (key: string): ServiceAccountMatch[] =>
    d.list(o[key], `${path}.${key}`).flatMap((entry, i) => {
      const p = `${path}.${key}[${i}]`;
      const sa = d.obj(entry, p);
      if (!sa) return [];
      d.unknownKeys(sa, ['namespace', 'serviceAccount'], p);
      const namespace = d.str(sa, 'namespace', p);
      const account = d.str(sa, 'serviceAccount', p);
      return namespace && account ? [{ namespace, serviceAccount: account }] : [];
    });
  return {
    namespaces: strings('namespaces'),
    notNamespaces: strings('notNamespaces'),
    serviceAccounts: serviceAccounts('serviceAccounts'),
    notServiceAccounts: serviceAccounts('notServiceAccounts'),
    principals: strings('principals'),
    notPrincipals: strings('notPrincipals'),
    sourceIps: ips('sourceIps'),
    notSourceIps: ips('notSourceIps'),
    destinationIps: ips('destinationIps'),
    notDestinationIps: ips('notDestinationIps'),
    destinationPorts: ports('destinationPorts'),
    notDestinationPorts: ports('notDestinationPorts'),
  };
}

function decodePolicy(d: Decoder, v: unknown, path: string): AuthorizationPolicy | undefined {
  const o = d.obj(v, path);
  if (!o) return undefined;
  d.unknownKeys(o, POLICY_KEYS, path);
  const scopes: Record<string, AuthorizationPolicy['scope']> = {
    Global: 'global',
    Namespace: 'namespace',
    WorkloadSelector: 'workload',
  };
  // Every field is required, as upstream's Authorization (src/rbac.rs) has no serde defaults.
  const scopeName = d.oneOf(o, 'scope', path, ['Global', 'Namespace', 'WorkloadSelector'] as const);
  const scope = scopeName && scopes[scopeName];
  const actionName = d.oneOf(o, 'action', path, ['Allow', 'Deny'] as const);
  const action = actionName === 'Allow' ? 'allow' : actionName === 'Deny' ? 'deny' : undefined;
  const rules: PolicyRule[] = d.list(o.rules, `${path}.rules`, false).map((rule, r) => ({
    clauses: d.list(rule, `${path}.rules[${r}]`).map((clause, c) => ({
      matches: d
        .list(clause, `${path}.rules[${r}][${c}]`)
        .map((m, i) => decodeMatch(d, m, `${path}.rules[${r}][${c}][${i}]`)),
    })),
  }));
  const dryRun = d.bool(o, 'dryRun', path, true);
  return {
    name: d.str(o, 'name', path),
    namespace: d.str(o, 'namespace', path),
    scope: scope ?? 'workload',
    action: action ?? 'deny',
    rules,
    ...(dryRun && { dryRun: true }),
  };
}

/** Decodes a parsed config document. */
export function decodeLocalConfig(doc: unknown): Result<LocalConfig> {
  const d = new Decoder();
  const root = doc === null || doc === undefined ? {} : d.obj(doc, '');
  if (!root) return fail(d.problems);
  d.unknownKeys(root, ['workloads', 'services', 'policies'], '');
  const workloads = d
    .list(root.workloads, 'workloads')
    .flatMap((w, i) => decodeWorkload(d, w, `workloads[${i}]`) ?? []);
  const decodedServices = d
    .list(root.services, 'services')
    .flatMap((s, i) => decodeService(d, s, `services[${i}]`) ?? []);
  const services = decodedServices.map((s) => s.service);
  const policies = d
    .list(root.policies, 'policies')
    .flatMap((p, i) => decodePolicy(d, p, `policies[${i}]`) ?? []);
  const seenIps = new Map<string, string>();
  workloads.forEach((w, i) => {
    for (const ip of w.ips) {
      const other = seenIps.get(`${w.network}/${ip}`);
      if (other) d.add(`workloads[${i}].workloadIps`, `${ip} is already used by ${other}`);
      seenIps.set(`${w.network}/${ip}`, `${w.namespace}/${w.name}`);
    }
  });
  // A service's endpoints, as upstream's, name workloads by uid: each is the same as the workload
  // listing the service with those ports.
  const byUid = new Map(workloads.map((w, i) => [w.uid, i]));
  const extraServices = new Map<number, Map<string, ReadonlyMap<number, number>>>();
  for (const { service, endpoints } of decodedServices) {
    for (const ep of endpoints) {
      const i = byUid.get(ep.workloadUid);
      if (i === undefined) {
        d.add(`${ep.path}.workloadUid`, `${ep.workloadUid} is not the uid of a workload in this file`);
        continue;
      }
      const extra = extraServices.get(i) ?? new Map<string, ReadonlyMap<number, number>>();
      extra.set(`${service.namespace}/${service.hostname}`, ep.ports);
      extraServices.set(i, extra);
    }
  }
  for (const [i, extra] of extraServices) {
    const w = workloads[i];
    if (w) workloads[i] = { ...w, services: new Map([...extra, ...w.services]) };
  }
  // Problems lose their leading dot when they sit on the root.
  const problems = d.problems.map((p) => (p.path.startsWith('.') ? { ...p, path: p.path.slice(1) } : p));
  return problems.length ? fail(problems) : ok({ workloads, services, policies });
}

/**
 * The YAML parser, required on first use: most node agents take their config from xDS and never
 * read a file, and the parser costs about 2 MB of RSS once loaded.
 */
const yaml = (): typeof import('yaml') => createRequire(import.meta.url)('yaml');

/** Parses YAML text and decodes it; YAML syntax errors are reported with their line. */
export function parseLocalConfig(text: string): Result<LocalConfig> {
  let doc: unknown;
  try {
    doc = yaml().parse(text);
  } catch (err) {
    return fail({ path: '', message: `YAML: ${(err as Error).message.split('\n')[0]}` });
  }
  return decodeLocalConfig(doc);
}

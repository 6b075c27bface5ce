/**
 * ztunnel's local config file, in the shape of Istio ztunnel's (examples/localhost.yaml):
 *   workloads: [{ uid, name, namespace, serviceAccount, workloadIps, protocol: HBONE|TCP, node,
 *                 network, services: { "ns/hostname": { port: targetPort } }, authorizationPolicies }]
 *   services:  [{ name, namespace, hostname, vips: ["network/ip"], ports: { port: targetPort },
 *                 subjectAltNames }]
 *   policies:  [{ name, namespace, scope: Global|Namespace|WorkloadSelector, action: Allow|Deny,
 *                 rules: [ [ [ match ] ] ], dryRun }]   (rules OR, clauses AND, matches OR)
 * Decoding returns every problem with its field path; nothing is thrown for bad input.
 */
import { isIP } from 'node:net';
import { fail, ok, type Problem, type Result, SpiffeId } from '@ambient/shared';
import { parse as parseYaml } from 'yaml';
import type { AuthorizationPolicy, PolicyMatch, PolicyRule, StringMatch } from '../state/policy.js';
import type { Service } from '../state/service.js';
import type { TunnelProtocol, Workload, WorkloadMeta, WorkloadType } from '../state/workload.js';

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
}

const WORKLOAD_KEYS = [
  'uid',
  'name',
  'namespace',
  'serviceAccount',
  'workloadIps',
  'protocol',
  'node',
  'network',
  'services',
  'authorizationPolicies',
  'netns',
  'trustDomain',
  'canonicalName',
  'canonicalRevision',
  'workloadName',
  'workloadType',
  'status',
  'clusterId',
];
const SERVICE_KEYS = ['name', 'namespace', 'hostname', 'vips', 'ports', 'subjectAltNames', 'endpoints'];
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
  const protocol = o.protocol ?? 'TCP';
  if (protocol !== 'HBONE' && protocol !== 'TCP') d.add(`${path}.protocol`, 'must be HBONE or TCP');
  const services = new Map<string, Map<number, number>>();
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
  const name = d.str(o, 'name', path);
  const namespace = d.str(o, 'namespace', path);
  const trustDomain = d.str(o, 'trustDomain', path, false);
  if (trustDomain && !SpiffeId.isTrustDomain(trustDomain))
    d.add(`${path}.trustDomain`, `${JSON.stringify(trustDomain)} has characters outside [a-z0-9._-]`);
  const workloadType = d.str(o, 'workloadType', path, false);
  if (workloadType && !['deployment', 'cronjob', 'pod', 'job'].includes(workloadType))
    d.add(`${path}.workloadType`, 'must be deployment, cronjob, pod or job');
  const status = d.str(o, 'status', path, false);
  if (status && status !== 'Healthy' && status !== 'Unhealthy')
    d.add(`${path}.status`, 'must be Healthy or Unhealthy');
  const text = (key: string) => d.str(o, key, path, false);
  const meta: WorkloadMeta = {
    ...(text('workloadName') && { workloadName: text('workloadName') }),
    ...(workloadType && { workloadType: workloadType as WorkloadType }),
    ...(text('canonicalName') && { canonicalName: text('canonicalName') }),
    ...(text('canonicalRevision') && { canonicalRevision: text('canonicalRevision') }),
    ...(text('clusterId') && { clusterId: text('clusterId') }),
    status: status === 'Unhealthy' ? 'Unhealthy' : 'Healthy',
    networkMode: 'Standard',
  };
  return {
    uid: d.str(o, 'uid', path, false) || `//v1/Pod/${namespace}/${name}`,
    name,
    namespace,
    serviceAccount: d.str(o, 'serviceAccount', path, false) || 'default',
    ips,
    protocol: protocol as TunnelProtocol,
    node: d.str(o, 'node', path, false),
    network: d.str(o, 'network', path, false),
    services,
    authorizationPolicies: policies,
    ...(typeof o.netns === 'string' && o.netns !== '' && { netns: o.netns }),
    ...(trustDomain && { trustDomain }),
    meta,
  };
}

function decodeService(d: Decoder, v: unknown, path: string): Service | undefined {
  const o = d.obj(v, path);
  if (!o) return undefined;
  d.unknownKeys(o, SERVICE_KEYS, path);
  const vips = d.list(o.vips, `${path}.vips`).flatMap((vip, i) => {
    const text = typeof vip === 'string' ? vip : '';
    const slash = text.indexOf('/');
    const address = slash >= 0 ? text.slice(slash + 1) : text;
    if (!isIP(address)) {
      d.add(`${path}.vips[${i}]`, `${JSON.stringify(vip)} is not network/ip`);
      return [];
    }
    return [{ network: slash >= 0 ? text.slice(0, slash) : '', address }];
  });
  return {
    name: d.str(o, 'name', path),
    namespace: d.str(o, 'namespace', path),
    hostname: d.str(o, 'hostname', path),
    vips,
    ports: d.portMap(o.ports, `${path}.ports`),
    subjectAltNames: d.list(o.subjectAltNames, `${path}.subjectAltNames`).map(String),
  };
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
  return {
    namespaces: strings('namespaces'),
    notNamespaces: strings('notNamespaces'),
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
  const scope = scopes[String(o.scope ?? 'WorkloadSelector')];
  if (!scope) d.add(`${path}.scope`, 'must be Global, Namespace or WorkloadSelector');
  const action = o.action === 'Allow' ? 'allow' : o.action === 'Deny' ? 'deny' : undefined;
  if (!action) d.add(`${path}.action`, 'must be Allow or Deny');
  const rules: PolicyRule[] = d.list(o.rules, `${path}.rules`).map((rule, r) => ({
    clauses: d.list(rule, `${path}.rules[${r}]`).map((clause, c) => ({
      matches: d
        .list(clause, `${path}.rules[${r}][${c}]`)
        .map((m, i) => decodeMatch(d, m, `${path}.rules[${r}][${c}][${i}]`)),
    })),
  }));
  if (o.dryRun !== undefined && typeof o.dryRun !== 'boolean')
    d.add(`${path}.dryRun`, 'must be true or false');
  return {
    name: d.str(o, 'name', path),
    namespace: d.str(o, 'namespace', path),
    scope: scope ?? 'workload',
    action: action ?? 'deny',
    rules,
    ...(o.dryRun === true && { dryRun: true }),
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
  const services = d
    .list(root.services, 'services')
    .flatMap((s, i) => decodeService(d, s, `services[${i}]`) ?? []);
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
  // Problems lose their leading dot when they sit on the root.
  const problems = d.problems.map((p) => (p.path.startsWith('.') ? { ...p, path: p.path.slice(1) } : p));
  return problems.length ? fail(problems) : ok({ workloads, services, policies });
}

/** Parses YAML text and decodes it; YAML syntax errors are reported with their line. */
export function parseLocalConfig(text: string): Result<LocalConfig> {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    return fail({ path: '', message: `YAML: ${(err as Error).message.split('\n')[0]}` });
  }
  return decodeLocalConfig(doc);
}

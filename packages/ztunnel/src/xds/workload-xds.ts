/**
 * Istio's workload discovery types for the xDS client: `istio.workload.Address` (a Workload or a
 * Service) and `istio.security.Authorization`, decoded from the wire and validated into the same
 * domain types the local config file produces. Nothing behind this module sees a wire type.
 */
import { isIPv4, isIPv6 } from 'node:net';
import {
  ADDRESS_TYPE_URL,
  AUTHORIZATION_TYPE_URL,
  fail,
  meshProtos,
  ok,
  type Problem,
  type Result,
  type XdsResourceType,
} from '@ambient/shared';
import type { AuthorizationPolicy, PolicyMatch, StringMatch } from '../state/policy.js';
import type { Service } from '../state/service.js';
import type { GatewayAddress, Workload } from '../state/workload.js';

export type AddressValue = { readonly workload: Workload } | { readonly service: Service };

interface WireNetworkAddress {
  network: string;
  address: Uint8Array;
}
interface WireGatewayAddress {
  hostname?: { namespace: string; hostname: string };
  address?: WireNetworkAddress;
  hboneMtlsPort: number;
}
interface WirePort {
  servicePort: number;
  targetPort: number;
}
interface WireWorkload {
  uid: string;
  name: string;
  namespace: string;
  addresses: Uint8Array[];
  network: string;
  tunnelProtocol: number;
  trustDomain: string;
  serviceAccount: string;
  waypoint?: WireGatewayAddress;
  node: string;
  services: Record<string, { ports: WirePort[] }>;
  authorizationPolicies: string[];
}
interface WireService {
  name: string;
  namespace: string;
  hostname: string;
  addresses: WireNetworkAddress[];
  ports: WirePort[];
  subjectAltNames: string[];
  waypoint?: WireGatewayAddress;
}
interface WireStringMatch {
  /** The oneof's set member. */
  matchType?: 'exact' | 'prefix' | 'suffix' | 'presence';
  exact?: string;
  prefix?: string;
  suffix?: string;
  presence?: object;
}
interface WireMatch {
  namespaces: WireStringMatch[];
  notNamespaces: WireStringMatch[];
  serviceAccounts: Array<{ namespace: string; serviceAccount: string }>;
  notServiceAccounts: Array<{ namespace: string; serviceAccount: string }>;
  principals: WireStringMatch[];
  notPrincipals: WireStringMatch[];
  sourceIps: Array<{ address: Uint8Array; length: number }>;
  notSourceIps: Array<{ address: Uint8Array; length: number }>;
  destinationIps: Array<{ address: Uint8Array; length: number }>;
  notDestinationIps: Array<{ address: Uint8Array; length: number }>;
  destinationPorts: number[];
  notDestinationPorts: number[];
}
interface WireAuthorization {
  name: string;
  namespace: string;
  scope: number;
  action: number;
  rules: Array<{ clauses: Array<{ matches: WireMatch[] }> }>;
  dryRun: boolean;
}

/** Bytes to an IP string: 4 bytes IPv4, 16 bytes IPv6; anything else is a problem. */
function ipFromBytes(bytes: Uint8Array, path: string, problems: Problem[]): string | undefined {
  if (bytes.length === 4) return bytes.join('.');
  if (bytes.length === 16) {
    const parts: string[] = [];
    for (let i = 0; i < 16; i += 2) parts.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
    const ip = parts.join(':');
    if (isIPv6(ip)) return ip;
  }
  problems.push({ path, message: `${bytes.length} bytes is not an IPv4 (4) or IPv6 (16) address` });
  return undefined;
}

function port(n: number, path: string, problems: Problem[]): number | undefined {
  if (Number.isInteger(n) && n >= 1 && n <= 65535) return n;
  problems.push({ path, message: `${n} is not a port from 1 to 65535` });
  return undefined;
}

function required(v: string, path: string, problems: Problem[]): string {
  if (!v) problems.push({ path, message: 'is required' });
  return v;
}

function gateway(
  w: WireGatewayAddress | undefined,
  path: string,
  problems: Problem[],
): GatewayAddress | undefined {
  if (!w) return undefined;
  const p = port(w.hboneMtlsPort || 15008, `${path}.hbone_mtls_port`, problems) ?? 15008;
  if (w.hostname) return { namespace: w.hostname.namespace, hostname: w.hostname.hostname, port: p };
  if (w.address) {
    const address = ipFromBytes(w.address.address, `${path}.address.address`, problems);
    return address ? { network: w.address.network, address, port: p } : undefined;
  }
  problems.push({ path, message: 'must have a hostname or an address' });
  return undefined;
}

function portMap(ports: WirePort[], path: string, problems: Problem[]): Map<number, number> {
  const out = new Map<number, number>();
  ports.forEach((p, i) => {
    const from = port(p.servicePort, `${path}[${i}].service_port`, problems);
    // target_port 0 means "same as the service port".
    const to = p.targetPort === 0 ? from : port(p.targetPort, `${path}[${i}].target_port`, problems);
    if (from !== undefined && to !== undefined) out.set(from, to);
  });
  return out;
}

function decodeWorkload(w: WireWorkload, problems: Problem[]): Workload {
  const ips = w.addresses.flatMap((a, i) => ipFromBytes(a, `workload.addresses[${i}]`, problems) ?? []);
  if (w.tunnelProtocol !== 0 && w.tunnelProtocol !== 1)
    problems.push({ path: 'workload.tunnel_protocol', message: `${w.tunnelProtocol} is not NONE or HBONE` });
  const services = new Map<string, ReadonlyMap<number, number>>();
  for (const [key, list] of Object.entries(w.services)) {
    if (!/^[^/]+\/[^/]+$/.test(key))
      problems.push({ path: `workload.services[${key}]`, message: 'key must be namespace/hostname' });
    services.set(key, portMap(list.ports, `workload.services[${key}].ports`, problems));
  }
  const waypoint = gateway(w.waypoint, 'workload.waypoint', problems);
  return {
    uid: required(w.uid, 'workload.uid', problems),
    name: required(w.name, 'workload.name', problems),
    namespace: required(w.namespace, 'workload.namespace', problems),
    serviceAccount: w.serviceAccount || 'default',
    ips,
    protocol: w.tunnelProtocol === 1 ? 'HBONE' : 'TCP',
    node: w.node,
    network: w.network,
    services,
    authorizationPolicies: w.authorizationPolicies,
    ...(w.trustDomain && { trustDomain: w.trustDomain }),
    ...(waypoint && { waypoint }),
  };
}

function decodeService(s: WireService, problems: Problem[]): Service {
  const vips = s.addresses.flatMap((a, i) => {
    const address = ipFromBytes(a.address, `service.addresses[${i}].address`, problems);
    return address ? [{ network: a.network, address }] : [];
  });
  const waypoint = gateway(s.waypoint, 'service.waypoint', problems);
  return {
    name: required(s.name, 'service.name', problems),
    namespace: required(s.namespace, 'service.namespace', problems),
    hostname: required(s.hostname, 'service.hostname', problems),
    vips,
    ports: portMap(s.ports, 'service.ports', problems),
    subjectAltNames: s.subjectAltNames,
    ...(waypoint && { waypoint }),
  };
}

/** Decodes an Address resource; the resource name must be the workload uid or `namespace/hostname`. */
export function addressResourceType(): XdsResourceType<AddressValue> {
  const type = meshProtos().lookupType('istio.workload.Address');
  return {
    typeUrl: ADDRESS_TYPE_URL,
    decode(value, name): Result<AddressValue> {
      let msg: { type?: 'workload' | 'service'; workload?: WireWorkload; service?: WireService };
      try {
        // Decoded messages are read in place (unset fields read as their defaults from the
        // prototype): no copy of tens of thousands of resources per sync.
        msg = type.decode(value) as unknown as typeof msg;
      } catch (err) {
        return fail({ path: '', message: `decode: ${(err as Error).message}` });
      }
      const problems: Problem[] = [];
      let result: AddressValue | undefined;
      if (msg.type === 'workload' && msg.workload) {
        const workload = decodeWorkload(msg.workload, problems);
        if (workload.uid && workload.uid !== name)
          problems.push({
            path: 'workload.uid',
            message: `${workload.uid} does not match the resource name`,
          });
        result = { workload };
      } else if (msg.type === 'service' && msg.service) {
        const service = decodeService(msg.service, problems);
        const expected = `${service.namespace}/${service.hostname}`;
        if (expected !== name)
          problems.push({ path: 'service', message: `${expected} does not match the resource name` });
        result = { service };
      } else {
        problems.push({ path: 'type', message: 'must be a workload or a service' });
      }
      return problems.length || !result ? fail(problems) : ok(result);
    },
  };
}

function stringMatches(list: WireStringMatch[], path: string, problems: Problem[]): StringMatch[] {
  return list.flatMap((m, i): StringMatch[] => {
    if (m.matchType === 'exact') return [{ exact: m.exact ?? '' }];
    if (m.matchType === 'prefix') return [{ prefix: m.prefix ?? '' }];
    if (m.matchType === 'suffix') return [{ suffix: m.suffix ?? '' }];
    if (m.matchType === 'presence') return [{ presence: true }];
    problems.push({ path: `${path}[${i}]`, message: 'must set exact, prefix, suffix or presence' });
    return [];
  });
}

/** A service account match is a principal whose path ends with `/ns/<ns>/sa/<sa>` in any trust domain. */
function serviceAccountPrincipals(list: Array<{ namespace: string; serviceAccount: string }>): StringMatch[] {
  return list.map((sa) => ({ suffix: `/ns/${sa.namespace}/sa/${sa.serviceAccount}` }));
}

function cidrs(
  list: Array<{ address: Uint8Array; length: number }>,
  path: string,
  problems: Problem[],
): string[] {
  return list.flatMap((a, i) => {
    const ip = ipFromBytes(a.address, `${path}[${i}].address`, problems);
    if (!ip) return [];
    const max = isIPv4(ip) ? 32 : 128;
    if (a.length > max) {
      problems.push({ path: `${path}[${i}].length`, message: `${a.length} is longer than ${max}` });
      return [];
    }
    return [`${ip}/${a.length}`];
  });
}

function decodeMatch(m: WireMatch, path: string, problems: Problem[]): PolicyMatch {
  const ports = (list: number[], p: string) => list.flatMap((n, i) => port(n, `${p}[${i}]`, problems) ?? []);
  return {
    namespaces: stringMatches(m.namespaces, `${path}.namespaces`, problems),
    notNamespaces: stringMatches(m.notNamespaces, `${path}.not_namespaces`, problems),
    principals: [
      ...stringMatches(m.principals, `${path}.principals`, problems),
      ...serviceAccountPrincipals(m.serviceAccounts),
    ],
    notPrincipals: [
      ...stringMatches(m.notPrincipals, `${path}.not_principals`, problems),
      ...serviceAccountPrincipals(m.notServiceAccounts),
    ],
    sourceIps: cidrs(m.sourceIps, `${path}.source_ips`, problems),
    notSourceIps: cidrs(m.notSourceIps, `${path}.not_source_ips`, problems),
    destinationIps: cidrs(m.destinationIps, `${path}.destination_ips`, problems),
    notDestinationIps: cidrs(m.notDestinationIps, `${path}.not_destination_ips`, problems),
    destinationPorts: ports(m.destinationPorts, `${path}.destination_ports`),
    notDestinationPorts: ports(m.notDestinationPorts, `${path}.not_destination_ports`),
  };
}

const SCOPES = ['global', 'namespace', 'workload'] as const;
const ACTIONS = ['allow', 'deny'] as const;

/** Decodes an Authorization resource; the resource name must be `namespace/name`. */
export function authorizationResourceType(): XdsResourceType<AuthorizationPolicy> {
  const type = meshProtos().lookupType('istio.security.Authorization');
  return {
    typeUrl: AUTHORIZATION_TYPE_URL,
    decode(value, name): Result<AuthorizationPolicy> {
      let a: WireAuthorization;
      try {
        a = type.decode(value) as unknown as WireAuthorization;
      } catch (err) {
        return fail({ path: '', message: `decode: ${(err as Error).message}` });
      }
      const problems: Problem[] = [];
      const scope = SCOPES[a.scope];
      const action = ACTIONS[a.action];
      if (!scope)
        problems.push({ path: 'scope', message: `${a.scope} is not GLOBAL, NAMESPACE or WORKLOAD_SELECTOR` });
      if (!action) problems.push({ path: 'action', message: `${a.action} is not ALLOW or DENY` });
      required(a.name, 'name', problems);
      if (a.name && `${a.namespace}/${a.name}` !== name)
        problems.push({ path: 'name', message: `${a.namespace}/${a.name} does not match the resource name` });
      const rules = a.rules.map((r, i) => ({
        clauses: r.clauses.map((c, j) => ({
          matches: c.matches.map((m, k) =>
            decodeMatch(m, `rules[${i}].clauses[${j}].matches[${k}]`, problems),
          ),
        })),
      }));
      if (problems.length) return fail(problems);
      return ok({
        name: a.name,
        namespace: a.namespace,
        scope: scope ?? 'workload',
        action: action ?? 'deny',
        rules,
        ...(a.dryRun && { dryRun: true }),
      });
    },
  };
}

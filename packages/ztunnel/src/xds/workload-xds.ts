/**
 * Istio's workload discovery types for the xDS client: `istio.workload.Address` (a Workload or a
 * Service) and `istio.security.Authorization`, decoded from the wire and validated into the same
 * domain types the local config file produces. Nothing behind this module sees a wire type.
 * The wire types are the shared ones the control plane encodes; every decoder names each field of
 * its message (read or ignored), so a field added to the contract fails to compile here.
 */
import { isIPv4, isIPv6 } from 'node:net';
import {
  ADDRESS_CODEC,
  AUTHORIZATION_CODEC,
  allFieldsHandled,
  fail,
  ok,
  type Problem,
  type Result,
  SpiffeId,
  securityapi,
  workloadapi,
  type XdsResourceType,
} from '@ambient/shared';
import type { AuthorizationPolicy, PolicyMatch, ServiceAccountMatch, StringMatch } from '../state/policy.js';
import type {
  AppProtocol,
  CidrVip,
  LoadBalancer,
  LoadBalancerScope,
  Service,
  WeightedWaypoint,
} from '../state/service.js';
import type {
  ApplicationTunnel,
  GatewayAddress,
  Workload,
  WorkloadMeta,
  WorkloadType,
} from '../state/workload.js';

export type AddressValue = { readonly workload: Workload } | { readonly service: Service };

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
  w: workloadapi.GatewayAddress | null,
  path: string,
  problems: Problem[],
): GatewayAddress | undefined {
  if (!w) return undefined;
  const { destination: _oneofCase, hostname, address, hboneMtlsPort, ...rest } = w;
  allFieldsHandled(rest);
  const p = port(hboneMtlsPort || 15008, `${path}.hbone_mtls_port`, problems) ?? 15008;
  if (hostname) return { namespace: hostname.namespace, hostname: hostname.hostname, port: p };
  if (address) {
    const ip = ipFromBytes(address.address, `${path}.address.address`, problems);
    return ip ? { network: address.network, address: ip, port: p } : undefined;
  }
  problems.push({ path, message: 'must have a hostname or an address' });
  return undefined;
}

function portMap(ports: readonly workloadapi.Port[], path: string, problems: Problem[]): Map<number, number> {
  const out = new Map<number, number>();
  ports.forEach((p, i) => {
    const from = port(p.servicePort, `${path}[${i}].service_port`, problems);
    // target_port 0 means "same as the service port".
    const to = p.targetPort === 0 ? from : port(p.targetPort, `${path}[${i}].target_port`, problems);
    if (from !== undefined && to !== undefined) out.set(from, to);
  });
  return out;
}

const APP_PROTOCOLS: Record<number, AppProtocol | undefined> = {
  [workloadapi.AppProtocol.HTTP11]: 'HTTP11',
  [workloadapi.AppProtocol.HTTP2]: 'HTTP2',
  [workloadapi.AppProtocol.GRPC]: 'GRPC',
  [workloadapi.AppProtocol.TCP]: 'TCP',
  [workloadapi.AppProtocol.TLS]: 'TLS',
};

/** Service port to app protocol, for ports that name one (UNKNOWN is no entry). */
function appProtocols(
  ports: readonly workloadapi.Port[],
  path: string,
  problems: Problem[],
): Map<number, AppProtocol> {
  const out = new Map<number, AppProtocol>();
  ports.forEach((p, i) => {
    if (p.appProtocol === workloadapi.AppProtocol.UNKNOWN) return;
    const protocol = APP_PROTOCOLS[p.appProtocol];
    if (protocol) out.set(p.servicePort, protocol);
    else
      problems.push({
        path: `${path}[${i}].app_protocol`,
        message: `${p.appProtocol} is not an AppProtocol`,
      });
  });
  return out;
}

function applicationTunnel(
  t: workloadapi.ApplicationTunnel | null,
  problems: Problem[],
): ApplicationTunnel | undefined {
  if (!t) return undefined;
  const { protocol, port: tunnelPort, ...rest } = t;
  allFieldsHandled(rest);
  const name =
    protocol === workloadapi.ApplicationTunnelProtocol.PROXY
      ? 'PROXY'
      : protocol === workloadapi.ApplicationTunnelProtocol.NONE
        ? 'NONE'
        : undefined;
  if (!name)
    problems.push({
      path: 'workload.application_tunnel.protocol',
      message: `${protocol} is not NONE or PROXY`,
    });
  // port 0 means "the original port", as upstream ztunnel's ApplicationTunnel.
  const p = tunnelPort === 0 ? undefined : port(tunnelPort, 'workload.application_tunnel.port', problems);
  return name ? { protocol: name, ...(p !== undefined && { port: p }) } : undefined;
}

function decodeWorkload(w: workloadapi.Workload, problems: Problem[]): Workload {
  const {
    uid,
    name,
    namespace,
    addresses,
    network,
    tunnelProtocol,
    trustDomain,
    serviceAccount,
    waypoint: wireWaypoint,
    node,
    services: wireServices,
    authorizationPolicies,
    hostname,
    canonicalName,
    canonicalRevision,
    workloadType,
    workloadName,
    status,
    clusterId,
    locality,
    networkMode,
    networkGateway: wireNetworkGateway,
    nativeTunnel,
    applicationTunnel: wireApplicationTunnel,
    capacity,
    // Opaque configuration; upstream ztunnel reads none of it either.
    extensions: _extensions,
    ...rest
  } = w;
  allFieldsHandled(rest);
  const ips = addresses.flatMap((a, i) => ipFromBytes(a, `workload.addresses[${i}]`, problems) ?? []);
  // As upstream ztunnel (src/state/workload.rs, InboundProtocol): a ztunnel cannot send legacy
  // Istio mTLS, so such a workload is refused rather than sent plain TCP it would not accept.
  if (tunnelProtocol === workloadapi.TunnelProtocol.LEGACY_ISTIO_MTLS)
    problems.push({
      path: 'workload.tunnel_protocol',
      message: 'LEGACY_ISTIO_MTLS is not supported: ztunnel sends only NONE or HBONE',
    });
  else if (tunnelProtocol !== 0 && tunnelProtocol !== 1)
    problems.push({ path: 'workload.tunnel_protocol', message: `${tunnelProtocol} is not NONE or HBONE` });
  const services = new Map<string, ReadonlyMap<number, number>>();
  for (const [key, list] of Object.entries(wireServices)) {
    if (!/^[^/]+\/[^/]+$/.test(key))
      problems.push({ path: `workload.services[${key}]`, message: 'key must be namespace/hostname' });
    services.set(key, portMap(list.ports, `workload.services[${key}].ports`, problems));
  }
  // An identity in this trust domain must be expressible as a SPIFFE ID; empty means the node's.
  if (trustDomain && !SpiffeId.isTrustDomain(trustDomain))
    problems.push({
      path: 'workload.trust_domain',
      message: `${JSON.stringify(trustDomain)} has characters outside [a-z0-9._-]`,
    });
  const waypoint = gateway(wireWaypoint, 'workload.waypoint', problems);
  const networkGateway = gateway(wireNetworkGateway, 'workload.network_gateway', problems);
  const appTunnel = applicationTunnel(wireApplicationTunnel, problems);
  const type = WORKLOAD_TYPES[workloadType];
  if (!type)
    problems.push({ path: 'workload.workload_type', message: `${workloadType} is not a WorkloadType` });
  if (status !== 0 && status !== 1)
    problems.push({ path: 'workload.status', message: `${status} is not HEALTHY or UNHEALTHY` });
  if (networkMode !== 0 && networkMode !== 1)
    problems.push({
      path: 'workload.network_mode',
      message: `${networkMode} is not STANDARD or HOST_NETWORK`,
    });
  const meta: WorkloadMeta = {
    ...(workloadName && { workloadName }),
    ...(type && { workloadType: type }),
    ...(canonicalName && { canonicalName }),
    ...(canonicalRevision && { canonicalRevision }),
    ...(clusterId && { clusterId }),
    ...(hostname && { hostname }),
    status: status === 1 ? 'Unhealthy' : 'Healthy',
    ...(locality && {
      locality: { region: locality.region, zone: locality.zone, subzone: locality.subzone },
    }),
    networkMode: networkMode === 1 ? 'HostNetwork' : 'Standard',
  };
  return {
    uid: required(uid, 'workload.uid', problems),
    name: required(name, 'workload.name', problems),
    namespace: required(namespace, 'workload.namespace', problems),
    serviceAccount: serviceAccount || 'default',
    ips,
    protocol: tunnelProtocol === 1 ? 'HBONE' : 'TCP',
    node,
    network,
    services,
    authorizationPolicies,
    ...(trustDomain && { trustDomain }),
    ...(waypoint && { waypoint }),
    ...(networkGateway && { networkGateway }),
    ...(nativeTunnel && { nativeTunnel }),
    ...(appTunnel && { applicationTunnel: appTunnel }),
    // Unset means 1 (google.protobuf.UInt32Value); an explicit 0 is kept.
    ...(capacity && { capacity: capacity.value }),
    meta,
  };
}

const WORKLOAD_TYPES: Record<number, WorkloadType | undefined> = {
  [workloadapi.WorkloadType.DEPLOYMENT]: 'deployment',
  [workloadapi.WorkloadType.CRONJOB]: 'cronjob',
  [workloadapi.WorkloadType.POD]: 'pod',
  [workloadapi.WorkloadType.JOB]: 'job',
};

function decodeService(s: workloadapi.Service, problems: Problem[]): Service {
  const {
    name,
    namespace,
    hostname,
    addresses,
    ports,
    subjectAltNames,
    waypoint: wireWaypoint,
    loadBalancing,
    ipFamilies: wireIpFamilies,
    canonical,
    ingressUseWaypoint,
    weightedWaypoints: wireWeighted,
    visibility,
    // Opaque configuration; upstream ztunnel reads none of it either.
    extensions: _extensions,
    ...rest
  } = s;
  allFieldsHandled(rest);
  const vips: Array<{ network: string; address: string }> = [];
  const cidrVips: CidrVip[] = [];
  addresses.forEach((a, i) => {
    const { network, address: bytes, length, ...addressRest } = a;
    allFieldsHandled(addressRest);
    const address = ipFromBytes(bytes, `service.addresses[${i}].address`, problems);
    if (!address) return;
    const max = bytes.length * 8;
    // As upstream ztunnel (src/state/service.rs): no length, or the full length, is one address.
    if (length === null || length === max) vips.push({ network, address });
    else if (length > max)
      problems.push({ path: `service.addresses[${i}].length`, message: `${length} is longer than ${max}` });
    else cidrVips.push({ network, address, length });
  });
  const waypoint = gateway(wireWaypoint, 'service.waypoint', problems);
  const weightedWaypoints = wireWeighted.flatMap((ww, i): WeightedWaypoint[] => {
    const { destination, weight, ...wwRest } = ww;
    allFieldsHandled(wwRest);
    const path = `service.weighted_waypoints[${i}]`;
    if (!destination) {
      problems.push({ path: `${path}.destination`, message: 'is required' });
      return [];
    }
    const gw = gateway(destination, `${path}.destination`, problems);
    return gw ? [{ destination: gw, weight }] : [];
  });
  const lb = loadBalancer(loadBalancing, problems);
  const ipFamilies = IP_FAMILIES[wireIpFamilies];
  if (!Object.hasOwn(IP_FAMILIES, wireIpFamilies))
    problems.push({ path: 'service.ip_families', message: `${wireIpFamilies} is not an IPFamilies value` });
  const appProtocolMap = appProtocols(ports, 'service.ports', problems);
  return {
    name: required(name, 'service.name', problems),
    namespace: required(namespace, 'service.namespace', problems),
    hostname: required(hostname, 'service.hostname', problems),
    vips,
    ...(cidrVips.length > 0 && { cidrVips }),
    ports: portMap(ports, 'service.ports', problems),
    ...(appProtocolMap.size > 0 && { appProtocols: appProtocolMap }),
    subjectAltNames,
    ...(waypoint && { waypoint }),
    ...(weightedWaypoints.length > 0 && { weightedWaypoints }),
    ...(lb && { loadBalancer: lb }),
    ...(ipFamilies && { ipFamilies }),
    ...(canonical && { canonical }),
    ...(ingressUseWaypoint && { ingressUseWaypoint }),
    // As upstream ztunnel (src/state/service.rs): a value this version does not know is PUBLIC,
    // rather than the service being dropped.
    ...(visibility === workloadapi.ServiceVisibility.NAMESPACE && { visibility: 'Namespace' as const }),
  };
}

const IP_FAMILIES: Record<number, Service['ipFamilies']> = {
  [workloadapi.IPFamilies.AUTOMATIC]: undefined,
  [workloadapi.IPFamilies.IPV4_ONLY]: 'IPv4',
  [workloadapi.IPFamilies.IPV6_ONLY]: 'IPv6',
  [workloadapi.IPFamilies.DUAL]: 'Dual',
};

const LB_SCOPES: Record<number, LoadBalancerScope | undefined> = {
  [workloadapi.LoadBalancingScope.REGION]: 'Region',
  [workloadapi.LoadBalancingScope.ZONE]: 'Zone',
  [workloadapi.LoadBalancingScope.SUBZONE]: 'Subzone',
  [workloadapi.LoadBalancingScope.NODE]: 'Node',
  [workloadapi.LoadBalancingScope.CLUSTER]: 'Cluster',
  [workloadapi.LoadBalancingScope.NETWORK]: 'Network',
};
const LB_MODES: Record<number, LoadBalancer['mode'] | undefined> = {
  [workloadapi.LoadBalancingMode.UNSPECIFIED_MODE]: 'Standard',
  [workloadapi.LoadBalancingMode.STRICT]: 'Strict',
  [workloadapi.LoadBalancingMode.FAILOVER]: 'Failover',
  [workloadapi.LoadBalancingMode.PASSTHROUGH]: 'Passthrough',
};
const LB_HEALTH: Record<number, LoadBalancer['healthPolicy'] | undefined> = {
  [workloadapi.LoadBalancingHealthPolicy.ONLY_HEALTHY]: 'OnlyHealthy',
  [workloadapi.LoadBalancingHealthPolicy.ALLOW_ALL]: 'AllowAll',
};

/** As upstream ztunnel's `LoadBalancer` (src/state/service.rs): an UNSPECIFIED scope is an error. */
function loadBalancer(lb: workloadapi.LoadBalancing | null, problems: Problem[]): LoadBalancer | undefined {
  if (!lb) return undefined;
  const { routingPreference, mode: wireMode, healthPolicy: wireHealth, ...rest } = lb;
  allFieldsHandled(rest);
  const routingPreferences = routingPreference.flatMap((scope, i) => {
    const name = LB_SCOPES[scope];
    if (!name)
      problems.push({
        path: `service.load_balancing.routing_preference[${i}]`,
        message: `${scope} is not REGION, ZONE, SUBZONE, NODE, CLUSTER or NETWORK`,
      });
    return name ?? [];
  });
  const mode = LB_MODES[wireMode];
  if (!mode) problems.push({ path: 'service.load_balancing.mode', message: `${wireMode} is not a Mode` });
  const healthPolicy = LB_HEALTH[wireHealth];
  if (!healthPolicy)
    problems.push({
      path: 'service.load_balancing.health_policy',
      message: `${wireHealth} is not a HealthPolicy`,
    });
  return mode && healthPolicy ? { routingPreferences, mode, healthPolicy } : undefined;
}

/** Decodes an Address resource; the resource name must be the workload uid or `namespace/hostname`. */
export function addressResourceType(): XdsResourceType<AddressValue> {
  return {
    typeUrl: ADDRESS_CODEC.typeUrl,
    decode(value, name): Result<AddressValue> {
      let msg: workloadapi.Address;
      try {
        msg = ADDRESS_CODEC.decode(value);
      } catch (err) {
        return fail({ path: '', message: `decode: ${(err as Error).message}` });
      }
      const problems: Problem[] = [];
      let result: AddressValue | undefined;
      const type = msg.type;
      if (type === 'workload' && msg.workload) {
        const workload = decodeWorkload(msg.workload, problems);
        if (workload.uid && workload.uid !== name)
          problems.push({
            path: 'workload.uid',
            message: `${workload.uid} does not match the resource name`,
          });
        result = { workload };
      } else if (type === 'service' && msg.service) {
        const service = decodeService(msg.service, problems);
        const expected = `${service.namespace}/${service.hostname}`;
        if (expected !== name)
          problems.push({ path: 'service', message: `${expected} does not match the resource name` });
        result = { service };
      } else {
        // A member added to the oneof fails to compile here until it is decoded above.
        const _unset: undefined | 'workload' | 'service' = type;
        problems.push({ path: 'type', message: 'must be a workload or a service' });
      }
      return problems.length || !result ? fail(problems) : ok(result);
    },
  };
}

function stringMatches(
  list: readonly securityapi.StringMatch[],
  path: string,
  problems: Problem[],
): StringMatch[] {
  return list.flatMap((m, i): StringMatch[] => {
    const matchType = m.matchType;
    switch (matchType) {
      case 'exact':
        return [{ exact: m.exact }];
      case 'prefix':
        return [{ prefix: m.prefix }];
      case 'suffix':
        return [{ suffix: m.suffix }];
      case 'presence':
        return [{ presence: true }];
      case undefined:
        problems.push({ path: `${path}[${i}]`, message: 'must set exact, prefix, suffix or presence' });
        return [];
      default: {
        // A member added to the oneof fails to compile here until it is decoded above.
        const unknown: never = matchType;
        return unknown;
      }
    }
  });
}

/** A service account match is a principal whose path ends with `/ns/<ns>/sa/<sa>` in any trust domain. */
function serviceAccountMatches(list: readonly securityapi.ServiceAccountMatch[]): ServiceAccountMatch[] {
  return list.map((sa) => ({ namespace: sa.namespace, serviceAccount: sa.serviceAccount }));
}

function cidrs(list: readonly securityapi.Address[], path: string, problems: Problem[]): string[] {
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

function decodeMatch(m: securityapi.Match, path: string, problems: Problem[]): PolicyMatch {
  const {
    namespaces,
    notNamespaces,
    serviceAccounts,
    notServiceAccounts,
    principals,
    notPrincipals,
    sourceIps,
    notSourceIps,
    destinationIps,
    notDestinationIps,
    destinationPorts,
    notDestinationPorts,
    extensions: _extensions,
    ...rest
  } = m;
  allFieldsHandled(rest);
  const ports = (list: readonly number[], p: string) =>
    list.flatMap((n, i) => port(n, `${p}[${i}]`, problems) ?? []);
  return {
    namespaces: stringMatches(namespaces, `${path}.namespaces`, problems),
    notNamespaces: stringMatches(notNamespaces, `${path}.not_namespaces`, problems),
    serviceAccounts: serviceAccountMatches(serviceAccounts),
    notServiceAccounts: serviceAccountMatches(notServiceAccounts),
    principals: stringMatches(principals, `${path}.principals`, problems),
    notPrincipals: stringMatches(notPrincipals, `${path}.not_principals`, problems),
    sourceIps: cidrs(sourceIps, `${path}.source_ips`, problems),
    notSourceIps: cidrs(notSourceIps, `${path}.not_source_ips`, problems),
    destinationIps: cidrs(destinationIps, `${path}.destination_ips`, problems),
    notDestinationIps: cidrs(notDestinationIps, `${path}.not_destination_ips`, problems),
    destinationPorts: ports(destinationPorts, `${path}.destination_ports`),
    notDestinationPorts: ports(notDestinationPorts, `${path}.not_destination_ports`),
  };
}

const SCOPES: Record<securityapi.Scope, AuthorizationPolicy['scope']> = {
  [securityapi.Scope.GLOBAL]: 'global',
  [securityapi.Scope.NAMESPACE]: 'namespace',
  [securityapi.Scope.WORKLOAD_SELECTOR]: 'workload',
};
const ACTIONS: Record<securityapi.Action, AuthorizationPolicy['action']> = {
  [securityapi.Action.ALLOW]: 'allow',
  [securityapi.Action.DENY]: 'deny',
};

/** Decodes an Authorization resource; the resource name must be `namespace/name`. */
export function authorizationResourceType(): XdsResourceType<AuthorizationPolicy> {
  return {
    typeUrl: AUTHORIZATION_CODEC.typeUrl,
    decode(value, name): Result<AuthorizationPolicy> {
      let a: securityapi.Authorization;
      try {
        a = AUTHORIZATION_CODEC.decode(value);
      } catch (err) {
        return fail({ path: '', message: `decode: ${(err as Error).message}` });
      }
      const {
        name: policyName,
        namespace,
        scope: wireScope,
        action: wireAction,
        rules: wireRules,
        dryRun,
        // Opaque configuration; upstream ztunnel reads none of it either.
        extensions: _extensions,
        ...rest
      } = a;
      allFieldsHandled(rest);
      const problems: Problem[] = [];
      // Decoded enums may hold numbers a newer control plane knows and this one does not.
      const scope = Object.hasOwn(SCOPES, wireScope) ? SCOPES[wireScope] : undefined;
      const action = Object.hasOwn(ACTIONS, wireAction) ? ACTIONS[wireAction] : undefined;
      if (!scope)
        problems.push({
          path: 'scope',
          message: `${wireScope} is not GLOBAL, NAMESPACE or WORKLOAD_SELECTOR`,
        });
      if (!action) problems.push({ path: 'action', message: `${wireAction} is not ALLOW or DENY` });
      required(policyName, 'name', problems);
      if (policyName && `${namespace}/${policyName}` !== name)
        problems.push({
          path: 'name',
          message: `${namespace}/${policyName} does not match the resource name`,
        });
      const rules = wireRules.map(({ clauses, ...ruleRest }, i) => {
        allFieldsHandled(ruleRest);
        return {
          clauses: clauses.map(({ matches, ...clauseRest }, j) => {
            allFieldsHandled(clauseRest);
            return {
              matches: matches.map((m, k) =>
                decodeMatch(m, `rules[${i}].clauses[${j}].matches[${k}]`, problems),
              ),
            };
          }),
        };
      });
      if (problems.length) return fail(problems);
      return ok({
        name: policyName,
        namespace,
        scope: scope ?? 'workload',
        action: action ?? 'deny',
        rules,
        ...(dryRun && { dryRun: true }),
      });
    },
  };
}

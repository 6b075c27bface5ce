/**
 * ClusterLoadAssignment to the cluster's endpoints, each carrying the workload identity and tunnel
 * the waypoint needs to reach it, and the workload its telemetry names
 * (metadata.filter_metadata.istio).
 */
import { isIP } from 'node:net';
import {
  allFieldsHandled,
  type EndpointWorkload,
  parseEndpointWorkload,
  SpiffeId,
  type WireClusterLoadAssignment,
  type WireLbEndpoint,
  type WireSocketAddress,
} from '@ambient/shared';
import type { UpstreamEndpoint } from '../config/waypoint-config.js';
import { at, type DecodeContext, isPort, istioMetadata, structToJson } from './decode-context.js';

export interface ClusterEndpoints {
  readonly cluster: string;
  readonly endpoints: readonly UpstreamEndpoint[];
}

/** Envoy sends no traffic to endpoints reported UNHEALTHY (2), DRAINING (3) or TIMEOUT (4). */
const NOT_SERVING = new Set([2, 3, 4]);

function str(meta: Record<string, unknown>, key: string, path: string, ctx: DecodeContext): string {
  const v = meta[key];
  if (v === undefined) return '';
  if (typeof v !== 'string') {
    ctx.problem(`${path}.${key}`, 'must be a string');
    return '';
  }
  return v;
}

/**
 * The endpoint's identity, parsed once here so that a malformed one is refused with the update
 * (a NACK) instead of failing every connect to it later. An HBONE endpoint must have one.
 */
function parseIdentity(
  raw: string,
  required: boolean,
  path: string,
  ctx: DecodeContext,
): SpiffeId | undefined {
  if (raw === '') {
    if (required) ctx.problem(path, 'must be a spiffe:// identity for an hbone endpoint');
    return undefined;
  }
  const parsed = SpiffeId.parse(raw);
  if (parsed.ok) return parsed.value;
  ctx.problem(path, parsed.problems[0]?.message ?? 'is not a SPIFFE ID');
  return undefined;
}

/**
 * The `workload` key: istiod's `name;namespace;canonical_name;canonical_revision;cluster_id`, or a
 * bare workload name (no telemetry fields). A malformed value is refused, as is one naming another
 * namespace than the endpoint's: labels must not shift or contradict the identity metadata.
 */
function workloadOf(
  raw: string,
  namespace: string,
  path: string,
  ctx: DecodeContext,
): Partial<EndpointWorkload> & { readonly workloadName: string } {
  if (!raw.includes(';')) return { workloadName: raw };
  const parsed = parseEndpointWorkload(raw);
  if (!parsed.ok) {
    ctx.problem(path, parsed.problems[0]?.message ?? 'is malformed');
    return { workloadName: '' };
  }
  if (namespace !== '' && parsed.value.namespace !== namespace)
    ctx.problem(
      path,
      `names namespace ${JSON.stringify(parsed.value.namespace)}, not ${JSON.stringify(namespace)}`,
    );
  return parsed.value;
}

function endpoint(e: WireLbEndpoint, path: string, ctx: DecodeContext): UpstreamEndpoint | undefined {
  const {
    hostIdentifier,
    endpoint: wireEndpoint,
    // Read by decodeClusterLoadAssignment, which drops endpoints that are not serving.
    healthStatus: _healthStatus,
    metadata,
    ...rest
  } = e;
  allFieldsHandled(rest);
  if (hostIdentifier === 'endpointName') {
    ctx.problem(at(path, 'endpoint_name'), 'is not supported: use endpoint');
    return undefined;
  }
  let sa: WireSocketAddress | null = null;
  if (wireEndpoint) {
    const { address, ...endpointRest } = wireEndpoint;
    allFieldsHandled(endpointRest);
    if (address) {
      // A pipe or internal address leaves socket_address unset, which is refused below.
      const { address: _addressCase, socketAddress, ...addressRest } = address;
      allFieldsHandled(addressRest);
      sa = socketAddress;
    }
  }
  const ap = at(path, 'endpoint.address.socket_address');
  if (!sa) {
    ctx.problem(ap, 'is required');
    return undefined;
  }
  const {
    // Not checked: the waypoint reaches every endpoint over TCP (HBONE or plain).
    protocol: _protocol,
    address: ip,
    portSpecifier,
    portValue,
    // Refused through its oneof case.
    namedPort: _namedPort,
    ...socketRest
  } = sa;
  allFieldsHandled(socketRest);
  if (!isIP(ip)) ctx.problem(at(ap, 'address'), `${JSON.stringify(ip)} is not an IP address`);
  if (portSpecifier === 'namedPort') ctx.problem(at(ap, 'named_port'), 'is not supported');
  else if (!isPort(portValue))
    ctx.problem(at(ap, 'port_value'), `${portValue} is not a port from 1 to 65535`);

  const mp = at(path, 'metadata.filter_metadata.istio');
  const struct = istioMetadata(metadata);
  const meta = struct ? structToJson(struct) : {};
  const tunnel = meta.tunnel ?? 'none';
  if (tunnel !== 'hbone' && tunnel !== 'none')
    ctx.problem(`${mp}.tunnel`, `${JSON.stringify(tunnel)} is not hbone or none`);
  const identity = parseIdentity(str(meta, 'identity', mp, ctx), tunnel === 'hbone', `${mp}.identity`, ctx);
  const namespaceKey = str(meta, 'namespace', mp, ctx);
  const w = workloadOf(str(meta, 'workload', mp, ctx), namespaceKey, `${mp}.workload`, ctx);
  return {
    address: ip,
    port: portValue,
    workload: w.workloadName,
    namespace: namespaceKey || (w.namespace ?? ''),
    ...(w.canonicalName && { canonicalName: w.canonicalName }),
    ...(w.canonicalRevision && { canonicalRevision: w.canonicalRevision }),
    ...(w.clusterId && { clusterId: w.clusterId }),
    serviceAccount: str(meta, 'service_account', mp, ctx),
    ...(identity && { identity }),
    tunnel: tunnel === 'hbone' ? 'hbone' : 'none',
  };
}

export function decodeClusterLoadAssignment(
  cla: WireClusterLoadAssignment,
  name: string,
  ctx: DecodeContext,
): ClusterEndpoints {
  const { clusterName, endpoints: localities, ...rest } = cla;
  allFieldsHandled(rest);
  if (clusterName !== name)
    ctx.problem('cluster_name', `${JSON.stringify(clusterName)} does not match the resource name`);
  const endpoints: UpstreamEndpoint[] = [];
  localities.forEach((locality, l) => {
    const { lbEndpoints, lbConfig, priority, ...localityRest } = locality;
    allFieldsHandled(localityRest);
    const lp = `endpoints[${l}]`;
    // Priorities are failover tiers; mixing them into one set would send traffic where Envoy would not.
    if (priority !== 0) ctx.problem(at(lp, 'priority'), 'priorities other than 0 are not supported');
    if (lbConfig)
      ctx.problem(
        at(
          lp,
          lbConfig === 'ledsClusterLocalityConfig'
            ? 'leds_cluster_locality_config'
            : 'load_balancer_endpoints',
        ),
        'is not supported: use lb_endpoints',
      );
    lbEndpoints.forEach((e, i) => {
      const ep = endpoint(e, `${at(lp, 'lb_endpoints')}[${i}]`, ctx);
      if (ep && !NOT_SERVING.has(e.healthStatus)) endpoints.push(ep);
    });
  });
  return { cluster: clusterName, endpoints };
}

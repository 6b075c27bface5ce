/**
 * Listener to WaypointListener: one FilterChain per chain, matched on destination prefix and
 * port, ending in an HTTP connection manager (RDS, RBAC, fault, router) or a TCP proxy.
 */

import type {
  WireFilterChain,
  WireFilterChainMatch,
  WireHttpConnectionManager,
  WireListener,
  WireNetworkFilter,
  WireTcpProxy,
} from '@ambient/shared';
import { allFieldsHandled } from '@ambient/shared';
import type {
  CodecType,
  FilterChain,
  HttpChain,
  RbacRules,
  TcpChain,
  WaypointListener,
} from '../config/waypoint-config.js';
import { adsConfigSource, anyTypeName, at, cidr, type DecodeContext } from './decode-context.js';
import { decodeRbacFilter } from './decode-rbac.js';
import { FAULT_TYPE, HCM_TYPE, RBAC_TYPE, ROUTER_TYPE, TCP_PROXY_TYPE } from './envoy-protos.js';

const CODECS: Record<number, CodecType> = { 0: 'auto', 1: 'http1', 2: 'http2' };

function httpChain(hcm: WireHttpConnectionManager, path: string, ctx: DecodeContext): HttpChain {
  const {
    codecType,
    statPrefix,
    routeSpecifier,
    rds,
    httpFilters: filters,
    commonHttpProtocolOptions,
    ...rest
  } = hcm;
  allFieldsHandled(rest);
  const codec = CODECS[codecType];
  if (!codec) ctx.problem(at(path, 'codec_type'), `${codecType} is not AUTO, HTTP1 or HTTP2`);
  if (!statPrefix) ctx.problem(at(path, 'stat_prefix'), 'is required');
  let routeConfigName = '';
  if (routeSpecifier === 'rds' && rds) {
    const { configSource, routeConfigName: rdsName, ...rdsRest } = rds;
    allFieldsHandled(rdsRest);
    routeConfigName = rdsName;
    if (!routeConfigName) ctx.problem(at(path, 'rds.route_config_name'), 'is required');
    adsConfigSource(configSource, at(path, 'rds.config_source'), ctx);
  } else if (routeSpecifier === 'routeConfig') {
    ctx.problem(at(path, 'route_config'), 'inline route configs are not supported: use rds');
  } else if (routeSpecifier === 'scopedRoutes') {
    ctx.problem(at(path, 'scoped_routes'), 'is not supported: use rds');
  } else {
    ctx.problem(at(path, 'rds'), 'is required');
  }

  const rbac: RbacRules[] = [];
  if (!filters.length) ctx.problem(at(path, 'http_filters'), `must end with ${ROUTER_TYPE}`);
  filters.forEach((f, i) => {
    const { name: filterName, configType, typedConfig, isOptional, disabled, ...filterRest } = f;
    allFieldsHandled(filterRest);
    const p = `${at(path, 'http_filters')}[${i}]`;
    const last = i === filters.length - 1;
    if (configType === 'configDiscovery') {
      ctx.problem(at(p, 'config_discovery'), 'is not supported: use typed_config');
      return;
    }
    if (!typedConfig) {
      // Envoy v3 resolves filters by the type of their typed_config, not by name.
      ctx.problem(p, `${filterName || 'unnamed filter'} has no typed_config`);
      return;
    }
    const type = anyTypeName(typedConfig);
    // A disabled filter runs only on routes that enable it; skipping an RBAC filter a route
    // enables would drop its policies there, so disabling is refused rather than approximated.
    if (disabled) {
      ctx.problem(at(p, 'disabled'), 'is not supported: routes cannot enable filters here');
      return;
    }
    if (type === ROUTER_TYPE) {
      if (!last) ctx.problem(p, 'the router must be the last HTTP filter');
      return;
    }
    if (last) ctx.problem(p, `${filterName || type} is not a router: the chain must end with ${ROUTER_TYPE}`);
    if (type === RBAC_TYPE) {
      const cfg = ctx.decodeAny(typedConfig, RBAC_TYPE, at(p, 'typed_config'));
      const rules = cfg && decodeRbacFilter(cfg, at(p, 'typed_config'), ctx);
      if (rules) rbac.push(rules);
    } else if (type === FAULT_TYPE) {
      const cfg = ctx.decodeAny(typedConfig, FAULT_TYPE, at(p, 'typed_config'));
      if (cfg) {
        const {
          delay,
          abort,
          responseRateLimit,
          // These narrow which requests a fault applies to: a fault that injects nothing needs none.
          upstreamCluster: _upstreamCluster,
          headers: _headers,
          downstreamNodes: _downstreamNodes,
          ...faultRest
        } = cfg;
        allFieldsHandled(faultRest);
        // Faults come from routes (typed_per_filter_config); a filter-wide fault would apply to
        // routes that set none, which the domain model cannot say.
        if (delay || abort || responseRateLimit)
          ctx.problem(
            at(p, 'typed_config'),
            'filter-level faults are not supported: configure them per route',
          );
      }
    } else if (!isOptional) {
      ctx.problem(p, `${filterName || 'filter'} of type ${type} is not supported`);
    }
  });
  // Envoy's limit on request header fields; absent, the waypoint's own default applies.
  let maxHeadersCount: number | undefined;
  if (commonHttpProtocolOptions) {
    const { maxHeadersCount: wireMaxHeadersCount, ...optionsRest } = commonHttpProtocolOptions;
    allFieldsHandled(optionsRest);
    maxHeadersCount = wireMaxHeadersCount?.value;
  }
  if (maxHeadersCount !== undefined && maxHeadersCount < 1)
    ctx.problem(at(path, 'common_http_protocol_options.max_headers_count'), 'must be at least 1');
  return {
    kind: 'http',
    codec: codec ?? 'auto',
    routeConfigName,
    rbac,
    statPrefix,
    ...(maxHeadersCount !== undefined && maxHeadersCount >= 1 && { maxHeadersCount }),
  };
}

function tcpChain(tcp: WireTcpProxy, path: string, ctx: DecodeContext): TcpChain {
  const { statPrefix, clusterSpecifier, cluster, tunnelingConfig, ...rest } = tcp;
  allFieldsHandled(rest);
  if (!statPrefix) ctx.problem(at(path, 'stat_prefix'), 'is required');
  if (clusterSpecifier === 'weightedClusters')
    ctx.problem(at(path, 'weighted_clusters'), 'is not supported: use cluster');
  else if (!cluster) ctx.problem(at(path, 'cluster'), 'is required');
  if (tunnelingConfig) ctx.problem(at(path, 'tunneling_config'), 'is not supported');
  return { kind: 'tcp', cluster: cluster ?? '', statPrefix };
}

function networkFilter(
  f: WireNetworkFilter,
  last: boolean,
  path: string,
  ctx: DecodeContext,
): HttpChain | TcpChain | undefined {
  const { name: filterName, configType, typedConfig, ...rest } = f;
  allFieldsHandled(rest);
  if (configType === 'configDiscovery') {
    ctx.problem(at(path, 'config_discovery'), 'is not supported: use typed_config');
    return undefined;
  }
  if (!typedConfig) {
    ctx.problem(at(path, 'typed_config'), 'is required');
    return undefined;
  }
  const type = anyTypeName(typedConfig);
  const p = at(path, 'typed_config');
  if (type !== HCM_TYPE && type !== TCP_PROXY_TYPE) {
    ctx.problem(path, `${filterName || 'filter'} of type ${type} is not supported`);
    return undefined;
  }
  if (!last) ctx.problem(path, `${type} is terminal and must be the last filter`);
  if (type === HCM_TYPE) {
    const hcm = ctx.decodeAny(typedConfig, HCM_TYPE, p);
    return hcm && httpChain(hcm, p, ctx);
  }
  const tcp = ctx.decodeAny(typedConfig, TCP_PROXY_TYPE, p);
  return tcp && tcpChain(tcp, p, ctx);
}

/** Match criteria the waypoint does not evaluate; ignoring them would widen a chain's match. */
function unsupportedMatch(m: WireFilterChainMatch, path: string, ctx: DecodeContext): void {
  const {
    // Evaluated by filterChain.
    destinationPort: _destinationPort,
    prefixRanges: _prefixRanges,
    serverNames,
    transportProtocol,
    applicationProtocols,
    sourcePrefixRanges,
    directSourcePrefixRanges,
    sourcePorts,
    sourceType,
    addressSuffix,
    suffixLen,
    ...rest
  } = m;
  allFieldsHandled(rest);
  const set: Array<[boolean, string]> = [
    [serverNames.length > 0, 'server_names'],
    [!!transportProtocol, 'transport_protocol'],
    [applicationProtocols.length > 0, 'application_protocols'],
    [sourcePrefixRanges.length > 0, 'source_prefix_ranges'],
    [directSourcePrefixRanges.length > 0, 'direct_source_prefix_ranges'],
    [sourcePorts.length > 0, 'source_ports'],
    [sourceType !== 0, 'source_type'],
    [!!addressSuffix || !!suffixLen, 'address_suffix'],
  ];
  for (const [isSet, field] of set) if (isSet) ctx.problem(at(path, field), 'is not supported');
}

function filterChain(c: WireFilterChain, path: string, ctx: DecodeContext): FilterChain | undefined {
  const { name, filterChainMatch: m, filters, useProxyProto, transportSocket, ...rest } = c;
  allFieldsHandled(rest);
  const mp = at(path, 'filter_chain_match');
  let port = 0;
  const prefixes: Array<{ address: string; prefixLen: number }> = [];
  if (m) {
    unsupportedMatch(m, mp, ctx);
    if (m.destinationPort) {
      port = m.destinationPort.value;
      if (port < 1 || port > 65535)
        ctx.problem(at(mp, 'destination_port'), `${port} is not a port from 1 to 65535`);
    }
    m.prefixRanges.forEach((r, i) => {
      const range = cidr(r, `${at(mp, 'prefix_ranges')}[${i}]`, ctx);
      if (range) prefixes.push(range);
    });
  }
  if (transportSocket) ctx.problem(at(path, 'transport_socket'), 'is not supported: HBONE carries TLS');
  if (useProxyProto?.value) ctx.problem(at(path, 'use_proxy_proto'), 'is not supported');
  if (!filters.length) {
    ctx.problem(at(path, 'filters'), 'must hold an http_connection_manager or a tcp_proxy');
    return undefined;
  }
  let handler: HttpChain | TcpChain | undefined;
  filters.forEach((f, i) => {
    const h = networkFilter(f, i === filters.length - 1, `${at(path, 'filters')}[${i}]`, ctx);
    if (h && i === filters.length - 1) handler = h;
  });
  return handler && { name, prefixes, port, handler };
}

export function decodeListener(l: WireListener, name: string, ctx: DecodeContext): WaypointListener {
  const {
    name: listenerName,
    address,
    filterChains,
    filterChainMatcher,
    defaultFilterChain,
    apiListener,
    internalListener,
    ...rest
  } = l;
  allFieldsHandled(rest);
  if (listenerName !== name)
    ctx.problem('name', `${JSON.stringify(listenerName)} does not match the resource name`);
  // Only the kind of address is checked: the waypoint binds where its own settings say, and the
  // address a listener names is where istiod would have Envoy bind.
  if (address) {
    const { address: addressCase, socketAddress: _socketAddress, ...addressRest } = address;
    allFieldsHandled(addressRest);
    if (addressCase !== 'socketAddress') ctx.problem('address', 'must be a socket_address');
  }
  if (filterChainMatcher) ctx.problem('filter_chain_matcher', 'is not supported: use filter_chain_match');
  if (defaultFilterChain) ctx.problem('default_filter_chain', 'is not supported');
  if (apiListener) ctx.problem('api_listener', 'is not supported');
  if (internalListener) ctx.problem('internal_listener', 'is not supported');

  const chains: FilterChain[] = [];
  // Envoy rejects two chains with the same match: which one serves would be arbitrary.
  const seen = new Map<string, number>();
  filterChains.forEach((c, i) => {
    const path = `filter_chains[${i}]`;
    const chain = filterChain(c, path, ctx);
    if (!chain) return;
    const key = `${chain.prefixes
      .map((p) => `${p.address}/${p.prefixLen}`)
      .sort()
      .join(',')}|${chain.port}`;
    const first = seen.get(key);
    if (first !== undefined) ctx.problem(path, `has the same filter_chain_match as filter_chains[${first}]`);
    else seen.set(key, i);
    chains.push(chain);
  });
  return { name: listenerName, chains };
}

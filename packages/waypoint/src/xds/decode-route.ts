/**
 * RouteConfiguration to RouteTable: the routes of its single virtual host, each with its match,
 * action, header mutations and fault. Defaults are Envoy's (a 15 s route timeout when `timeout` is
 * unset, one retry when `num_retries` is unset, 25 ms / 250 ms retry backoff); policies a route does
 * not set fall back to the virtual host's, then the route configuration's, as Envoy resolves them.
 */

import type {
  WireAny,
  WireHashPolicy,
  WireHttpFault,
  WireRedirectAction,
  WireRequestMirrorPolicy,
  WireRetryPolicy,
  WireRoute,
  WireRouteAction,
  WireRouteConfiguration,
  WireRouteMatch,
} from '@ambient/shared';
import { ENVOY_RETRY_ON } from '@ambient/shared';
import type {
  DirectResponseAction,
  FaultPolicy,
  HashPolicy,
  PathMatch,
  RedirectAction,
  RetryOn,
  RetryPolicy,
  Route,
  RouteAction,
  RouteMatch,
  RouteTable,
  WeightedCluster,
} from '../config/waypoint-config.js';
import {
  anyTypeName,
  at,
  type DecodeContext,
  fractionalPercent,
  optionalMs,
  positiveMs,
} from './decode-context.js';
import { headerMatch, headerMutation, queryMatch, regex, regexRewrite } from './decode-matchers.js';
import { FAULT_TYPE, FILTER_CONFIG_TYPE } from './envoy-protos.js';

/** Envoy's route timeout when `timeout` is unset. */
export const DEFAULT_ROUTE_TIMEOUT_MS = 15_000;
/** Envoy's retry backoff when `retry_back_off` is unset: 25 ms base, ten times that at most. */
export const DEFAULT_RETRY_BASE_MS = 25;

const RETRY_ON = new Set<string>(ENVOY_RETRY_ON);
const REDIRECT_CODES = [301, 302, 303, 307, 308];
const MAX_DIRECT_RESPONSE_BODY = 4096;

export function retryPolicy(r: WireRetryPolicy, path: string, ctx: DecodeContext): RetryPolicy {
  const retryOn = new Set<RetryOn>();
  for (const raw of r.retryOn.split(',')) {
    const token = raw.trim();
    if (!token) continue;
    if (RETRY_ON.has(token)) retryOn.add(token as RetryOn);
    else ctx.problem(at(path, 'retry_on'), `${token} is not supported`);
  }
  for (const code of r.retriableStatusCodes)
    if (code < 100 || code > 599)
      ctx.problem(at(path, 'retriable_status_codes'), `${code} is not an HTTP status`);
  if (r.retriableHeaders.length) ctx.problem(at(path, 'retriable_headers'), 'is not supported');
  if (r.retriableRequestHeaders.length)
    ctx.problem(at(path, 'retriable_request_headers'), 'is not supported');
  let backoffBaseMs = DEFAULT_RETRY_BASE_MS;
  let backoffMaxMs = DEFAULT_RETRY_BASE_MS * 10;
  if (r.retryBackOff) {
    const bp = at(path, 'retry_back_off');
    if (!r.retryBackOff.baseInterval) ctx.problem(at(bp, 'base_interval'), 'is required');
    backoffBaseMs = positiveMs(
      r.retryBackOff.baseInterval,
      DEFAULT_RETRY_BASE_MS,
      at(bp, 'base_interval'),
      ctx,
    );
    backoffMaxMs = positiveMs(r.retryBackOff.maxInterval, backoffBaseMs * 10, at(bp, 'max_interval'), ctx);
    if (r.retryBackOff.baseInterval && backoffMaxMs < backoffBaseMs)
      ctx.problem(at(bp, 'max_interval'), 'must be greater than or equal to the base_interval');
  }
  return {
    retryOn,
    numRetries: r.numRetries ? r.numRetries.value : 1,
    perTryTimeoutMs: optionalMs(r.perTryTimeout, 0, at(path, 'per_try_timeout'), ctx),
    retriableStatusCodes: new Set(r.retriableStatusCodes),
    backoffBaseMs,
    backoffMaxMs,
  };
}

export function faultPolicy(f: WireHttpFault, path: string, ctx: DecodeContext): FaultPolicy {
  const out: { delay?: FaultPolicy['delay']; abort?: FaultPolicy['abort'] } = {};
  if (f.delay) {
    const p = at(path, 'delay');
    const percent = fractionalPercent(f.delay.percentage, 0, at(p, 'percentage'), ctx);
    if (f.delay.faultDelaySecifier === 'fixedDelay' && f.delay.fixedDelay)
      out.delay = { ms: optionalMs(f.delay.fixedDelay, 0, at(p, 'fixed_delay'), ctx), percent };
    else if (f.delay.faultDelaySecifier === 'headerDelay')
      ctx.problem(at(p, 'header_delay'), 'is not supported');
    else ctx.problem(at(p, 'fixed_delay'), 'is required');
  }
  if (f.abort) {
    const p = at(path, 'abort');
    const percent = fractionalPercent(f.abort.percentage, 0, at(p, 'percentage'), ctx);
    const kind = f.abort.errorType;
    if (kind === 'httpStatus') {
      const status = f.abort.httpStatus ?? 0;
      if (status < 200 || status > 599) ctx.problem(at(p, 'http_status'), `${status} is not from 200 to 599`);
      out.abort = { httpStatus: status, percent };
    } else if (kind === 'grpcStatus') {
      out.abort = { grpcStatus: f.abort.grpcStatus ?? 0, percent };
    } else if (kind === 'headerAbort') {
      ctx.problem(at(p, 'header_abort'), 'is not supported');
    } else {
      ctx.problem(p, 'must set http_status or grpc_status');
    }
  }
  if (f.headers.length) ctx.problem(at(path, 'headers'), 'is not supported');
  if (f.upstreamCluster) ctx.problem(at(path, 'upstream_cluster'), 'is not supported');
  if (f.downstreamNodes.length) ctx.problem(at(path, 'downstream_nodes'), 'is not supported');
  if (f.responseRateLimit) ctx.problem(at(path, 'response_rate_limit'), 'is not supported');
  return out;
}

/**
 * typed_per_filter_config: the fault filter's config, decoded by type URL. Other types are
 * problems (Envoy rejects per-route configs it has no factory for) unless wrapped optional.
 */
function perFilterFault(
  map: Record<string, WireAny>,
  path: string,
  ctx: DecodeContext,
): FaultPolicy | undefined {
  let fault: FaultPolicy | undefined;
  for (const [key, any] of Object.entries(map)) {
    const p = `${path}[${key}]`;
    let config: WireAny | null = any;
    let optional = false;
    if (anyTypeName(any) === FILTER_CONFIG_TYPE) {
      const wrapper = ctx.decodeAny(any, FILTER_CONFIG_TYPE, p);
      if (!wrapper) continue;
      if (wrapper.disabled) ctx.problem(at(p, 'disabled'), 'disabling a filter per route is not supported');
      config = wrapper.config;
      optional = wrapper.isOptional;
      if (!config) continue;
    }
    const type = anyTypeName(config);
    if (type === FAULT_TYPE) {
      const f = ctx.decodeAny(config, FAULT_TYPE, p);
      if (f) fault = faultPolicy(f, p, ctx);
    } else if (!optional) {
      ctx.problem(p, `per-route config of type ${type} is not supported`);
    }
  }
  return fault;
}

function mirrors(
  list: readonly WireRequestMirrorPolicy[],
  path: string,
  ctx: DecodeContext,
): Array<{ cluster: string; percent: number }> {
  return list.flatMap((m, i) => {
    const p = `${path}[${i}]`;
    if (m.clusterHeader) {
      ctx.problem(at(p, 'cluster_header'), 'is not supported: use cluster');
      return [];
    }
    if (!m.cluster) {
      ctx.problem(at(p, 'cluster'), 'is required');
      return [];
    }
    // Without runtime_fraction Envoy mirrors every request.
    const percent = m.runtimeFraction
      ? fractionalPercent(m.runtimeFraction.defaultValue, 0, at(p, 'runtime_fraction.default_value'), ctx)
      : 100;
    return [{ cluster: m.cluster, percent }];
  });
}

function hashPolicies(list: readonly WireHashPolicy[], path: string, ctx: DecodeContext): HashPolicy[] {
  return list.flatMap((h, i): HashPolicy[] => {
    const p = `${path}[${i}]`;
    if (h.terminal) ctx.problem(at(p, 'terminal'), 'is not supported');
    if (h.policySpecifier === 'header' && h.header) {
      if (!h.header.headerName) ctx.problem(at(p, 'header.header_name'), 'is required');
      if (h.header.regexRewrite) ctx.problem(at(p, 'header.regex_rewrite'), 'is not supported');
      return [{ header: h.header.headerName.toLowerCase() }];
    }
    if (h.policySpecifier === 'connectionProperties') {
      // source_ip: false hashes nothing, as in Envoy.
      return h.connectionProperties?.sourceIp ? [{ sourceIp: true }] : [];
    }
    const field =
      h.policySpecifier === 'queryParameter'
        ? 'query_parameter'
        : h.policySpecifier === 'filterState'
          ? 'filter_state'
          : h.policySpecifier;
    ctx.problem(
      field ? at(p, field) : p,
      field ? 'is not supported: use header or connection_properties' : 'must set a policy',
    );
    return [];
  });
}

function weightedClusters(a: WireRouteAction, path: string, ctx: DecodeContext): WeightedCluster[] {
  const wc = a.weightedClusters;
  const p = at(path, 'weighted_clusters');
  if (!wc) return [];
  if (wc.headerName) ctx.problem(at(p, 'header_name'), 'is not supported');
  if (!wc.clusters.length) ctx.problem(at(p, 'clusters'), 'must not be empty');
  const out = wc.clusters.flatMap((c, i) => {
    const cp = `${at(p, 'clusters')}[${i}]`;
    if (c.clusterHeader) ctx.problem(at(cp, 'cluster_header'), 'is not supported: use name');
    else if (!c.name) ctx.problem(at(cp, 'name'), 'is required');
    const unsupported: Array<[boolean, string]> = [
      [c.requestHeadersToAdd.length > 0, 'request_headers_to_add'],
      [c.requestHeadersToRemove.length > 0, 'request_headers_to_remove'],
      [c.responseHeadersToAdd.length > 0, 'response_headers_to_add'],
      [c.responseHeadersToRemove.length > 0, 'response_headers_to_remove'],
      [Object.keys(c.typedPerFilterConfig).length > 0, 'typed_per_filter_config'],
      [c.hostRewriteSpecifier === 'hostRewriteLiteral', 'host_rewrite_literal'],
    ];
    for (const [isSet, field] of unsupported)
      if (isSet) ctx.problem(at(cp, field), 'is not supported per cluster');
    return c.name ? [{ cluster: c.name, weight: c.weight?.value ?? 0 }] : [];
  });
  const total = out.reduce((s, c) => s + c.weight, 0);
  if (wc.clusters.length && total <= 0)
    ctx.problem(at(p, 'clusters'), 'the sum of weights must be greater than 0');
  if (wc.totalWeight && wc.totalWeight.value !== total)
    ctx.problem(at(p, 'total_weight'), `${wc.totalWeight.value} is not the sum of the weights (${total})`);
  return out;
}

/** What a route falls back to when it sets none, decoded once per virtual host. */
interface Inherited {
  readonly retry?: RetryPolicy;
  readonly mirrors: ReadonlyArray<{ cluster: string; percent: number }>;
  readonly fault?: FaultPolicy;
  readonly maxBody: number;
}

function routeAction(
  a: WireRouteAction,
  path: string,
  inherited: Inherited,
  ctx: DecodeContext,
): RouteAction {
  let clusters: WeightedCluster[] = [];
  switch (a.clusterSpecifier) {
    case 'cluster':
      if (!a.cluster) ctx.problem(at(path, 'cluster'), 'must not be empty');
      else clusters = [{ cluster: a.cluster, weight: 1 }];
      break;
    case 'weightedClusters':
      clusters = weightedClusters(a, path, ctx);
      break;
    case 'clusterHeader':
      ctx.problem(at(path, 'cluster_header'), 'is not supported');
      break;
    case 'clusterSpecifierPlugin':
    case 'inlineClusterSpecifierPlugin':
      ctx.problem(
        at(
          path,
          a.clusterSpecifier === 'clusterSpecifierPlugin'
            ? 'cluster_specifier_plugin'
            : 'inline_cluster_specifier_plugin',
        ),
        'is not supported',
      );
      break;
    default:
      ctx.problem(path, 'must set cluster or weighted_clusters');
  }
  if (a.prefixRewrite && a.regexRewrite)
    ctx.problem(path, 'specify only one of prefix_rewrite and regex_rewrite');
  if (a.pathRewritePolicy) ctx.problem(at(path, 'path_rewrite_policy'), 'is not supported');
  if (a.hostRewriteSpecifier && a.hostRewriteSpecifier !== 'hostRewriteLiteral') {
    const field = {
      autoHostRewrite: 'auto_host_rewrite',
      hostRewriteHeader: 'host_rewrite_header',
      hostRewritePathRegex: 'host_rewrite_path_regex',
    }[a.hostRewriteSpecifier];
    // auto_host_rewrite: false is the default and asks for nothing.
    if (a.hostRewriteSpecifier !== 'autoHostRewrite' || a.autoHostRewrite?.value)
      ctx.problem(at(path, field), 'is not supported: use host_rewrite_literal');
  }
  if (a.retryPolicyTypedConfig) ctx.problem(at(path, 'retry_policy_typed_config'), 'is not supported');
  const rewrite = a.regexRewrite ? regexRewrite(a.regexRewrite, at(path, 'regex_rewrite'), ctx) : undefined;
  const retry = a.retryPolicy ? retryPolicy(a.retryPolicy, at(path, 'retry_policy'), ctx) : inherited.retry;
  const mirrorList = a.requestMirrorPolicies.length
    ? mirrors(a.requestMirrorPolicies, at(path, 'request_mirror_policies'), ctx)
    : inherited.mirrors;
  return {
    kind: 'route',
    clusters,
    timeoutMs: optionalMs(a.timeout, DEFAULT_ROUTE_TIMEOUT_MS, at(path, 'timeout'), ctx),
    ...(retry && { retry }),
    ...(a.prefixRewrite && { prefixRewrite: a.prefixRewrite }),
    ...(rewrite && { regexRewrite: rewrite }),
    ...(a.hostRewriteSpecifier === 'hostRewriteLiteral' &&
      a.hostRewriteLiteral && { hostRewrite: a.hostRewriteLiteral }),
    mirrors: mirrorList,
    hashPolicies: hashPolicies(a.hashPolicy, at(path, 'hash_policy'), ctx),
  };
}

function redirectAction(r: WireRedirectAction, path: string, ctx: DecodeContext): RedirectAction {
  const status = REDIRECT_CODES[r.responseCode];
  if (status === undefined)
    ctx.problem(at(path, 'response_code'), `${r.responseCode} is not a redirect code`);
  if (r.portRedirect > 65535) ctx.problem(at(path, 'port_redirect'), `${r.portRedirect} is not a port`);
  const scheme =
    r.schemeRewriteSpecifier === 'httpsRedirect' ? (r.httpsRedirect ? 'https' : undefined) : r.schemeRedirect;
  const rewrite =
    r.pathRewriteSpecifier === 'regexRewrite' && r.regexRewrite
      ? regexRewrite(r.regexRewrite, at(path, 'regex_rewrite'), ctx)
      : undefined;
  return {
    kind: 'redirect',
    ...(scheme && { scheme: scheme.toLowerCase() }),
    ...(r.hostRedirect && { host: r.hostRedirect }),
    ...(r.portRedirect && { port: r.portRedirect }),
    ...(r.pathRewriteSpecifier === 'pathRedirect' && r.pathRedirect && { path: r.pathRedirect }),
    ...(r.pathRewriteSpecifier === 'prefixRewrite' && r.prefixRewrite && { prefixRewrite: r.prefixRewrite }),
    ...(rewrite && { regexRewrite: rewrite }),
    ...(r.stripQuery && { stripQuery: true }),
    status: status ?? 301,
  };
}

function directResponse(
  d: NonNullable<WireRoute['directResponse']>,
  path: string,
  maxBody: number,
  ctx: DecodeContext,
): DirectResponseAction {
  if (d.status < 200 || d.status > 599) ctx.problem(at(path, 'status'), `${d.status} is not from 200 to 599`);
  let body: string | undefined;
  if (d.body) {
    const s = d.body.specifier;
    if (s === 'inlineString') body = d.body.inlineString ?? '';
    else if (s === 'inlineBytes') body = Buffer.from(d.body.inlineBytes ?? []).toString();
    else
      ctx.problem(
        at(path, 'body'),
        `${s ?? 'an empty data source'} is not supported: use inline_string or inline_bytes`,
      );
    if (body !== undefined && Buffer.byteLength(body) > maxBody)
      ctx.problem(at(path, 'body'), `is longer than ${maxBody} bytes`);
  }
  return { kind: 'direct', status: d.status, ...(body !== undefined && { body }) };
}

function routeMatch(m: WireRouteMatch | null, path: string, ctx: DecodeContext): RouteMatch | undefined {
  if (!m) {
    ctx.problem(path, 'is required');
    return undefined;
  }
  const ignoreCase = m.caseSensitive?.value === false ? { ignoreCase: true } : {};
  let pm: PathMatch | undefined;
  switch (m.pathSpecifier) {
    case 'prefix':
      pm = { prefix: m.prefix ?? '', ...ignoreCase };
      break;
    case 'path':
      pm = { exact: m.path ?? '', ...ignoreCase };
      break;
    case 'safeRegex': {
      const r = regex(m.safeRegex, 'full', at(path, 'safe_regex'), ctx);
      if (r) pm = { regex: r };
      break;
    }
    case undefined:
      ctx.problem(path, 'must set prefix, path or safe_regex');
      break;
    default: {
      const field = {
        connectMatcher: 'connect_matcher',
        pathSeparatedPrefix: 'path_separated_prefix',
        pathMatchPolicy: 'path_match_policy',
      }[m.pathSpecifier];
      ctx.problem(at(path, field), 'is not supported: use prefix, path or safe_regex');
    }
  }
  if (m.runtimeFraction) ctx.problem(at(path, 'runtime_fraction'), 'is not supported');
  if (m.grpc) ctx.problem(at(path, 'grpc'), 'is not supported');
  if (m.tlsContext) ctx.problem(at(path, 'tls_context'), 'is not supported');
  if (m.dynamicMetadata.length) ctx.problem(at(path, 'dynamic_metadata'), 'is not supported');
  const headers = m.headers.flatMap((h, i) => headerMatch(h, `${at(path, 'headers')}[${i}]`, ctx) ?? []);
  const query = m.queryParameters.flatMap(
    (q, i) => queryMatch(q, `${at(path, 'query_parameters')}[${i}]`, ctx) ?? [],
  );
  return pm && { path: pm, headers, query };
}

function route(r: WireRoute, path: string, inherited: Inherited, ctx: DecodeContext): Route | undefined {
  const match = routeMatch(r.match, at(path, 'match'), ctx);
  let action: Route['action'] | undefined;
  if (r.action === 'route' && r.route) action = routeAction(r.route, at(path, 'route'), inherited, ctx);
  else if (r.action === 'redirect' && r.redirect)
    action = redirectAction(r.redirect, at(path, 'redirect'), ctx);
  else if (r.action === 'directResponse' && r.directResponse)
    action = directResponse(r.directResponse, at(path, 'direct_response'), inherited.maxBody, ctx);
  else if (r.action)
    ctx.problem(
      at(path, r.action === 'filterAction' ? 'filter_action' : 'non_forwarding_action'),
      'is not supported',
    );
  else ctx.problem(path, 'must set route, redirect or direct_response');
  const requestHeaders = headerMutation(
    r.requestHeadersToAdd,
    r.requestHeadersToRemove,
    at(path, 'request_headers_to_add'),
    at(path, 'request_headers_to_remove'),
    ctx,
  );
  const responseHeaders = headerMutation(
    r.responseHeadersToAdd,
    r.responseHeadersToRemove,
    at(path, 'response_headers_to_add'),
    at(path, 'response_headers_to_remove'),
    ctx,
  );
  const fault =
    perFilterFault(r.typedPerFilterConfig, at(path, 'typed_per_filter_config'), ctx) ?? inherited.fault;
  if (!match || !action) return undefined;
  return { name: r.name, match, action, requestHeaders, responseHeaders, ...(fault && { fault }) };
}

/** Header mutations above the route cannot be folded into the route's without changing their order. */
function noMutations(
  o: {
    requestHeadersToAdd: unknown[];
    requestHeadersToRemove: unknown[];
    responseHeadersToAdd: unknown[];
    responseHeadersToRemove: unknown[];
  },
  path: string,
  ctx: DecodeContext,
): void {
  const fields: Array<[unknown[], string]> = [
    [o.requestHeadersToAdd, 'request_headers_to_add'],
    [o.requestHeadersToRemove, 'request_headers_to_remove'],
    [o.responseHeadersToAdd, 'response_headers_to_add'],
    [o.responseHeadersToRemove, 'response_headers_to_remove'],
  ];
  for (const [list, field] of fields)
    if (list.length) ctx.problem(at(path, field), 'is only supported on routes');
}

export function decodeRouteConfiguration(
  rc: WireRouteConfiguration & { maxDirectResponseBodySizeBytes?: { value: number } | null },
  name: string,
  ctx: DecodeContext,
): RouteTable {
  if (rc.name !== name) ctx.problem('name', `${JSON.stringify(rc.name)} does not match the resource name`);
  if (rc.vhds) ctx.problem('vhds', 'is not supported');
  noMutations(rc, '', ctx);
  if (rc.virtualHosts.length > 1)
    ctx.problem(
      'virtual_hosts',
      `has ${rc.virtualHosts.length} virtual hosts: the waypoint serves one per route configuration`,
    );
  const maxBody = rc.maxDirectResponseBodySizeBytes?.value ?? MAX_DIRECT_RESPONSE_BODY;
  const rcFault = perFilterFault(rc.typedPerFilterConfig, 'typed_per_filter_config', ctx);
  const rcMirrors = mirrors(rc.requestMirrorPolicies, 'request_mirror_policies', ctx);
  const routes: Route[] = [];
  rc.virtualHosts.forEach((vh, v) => {
    const vp = `virtual_hosts[${v}]`;
    if (!vh.domains.includes('*'))
      ctx.problem(
        at(vp, 'domains'),
        'must contain "*": the waypoint does not select virtual hosts by authority',
      );
    if (vh.matcher) ctx.problem(at(vp, 'matcher'), 'is not supported: use routes');
    if (vh.requireTls) ctx.problem(at(vp, 'require_tls'), 'is not supported');
    noMutations(vh, vp, ctx);
    const vhFault = perFilterFault(vh.typedPerFilterConfig, at(vp, 'typed_per_filter_config'), ctx);
    const fault = vhFault ?? rcFault;
    const retry = vh.retryPolicy ? retryPolicy(vh.retryPolicy, at(vp, 'retry_policy'), ctx) : undefined;
    const inherited: Inherited = {
      ...(retry && { retry }),
      mirrors: vh.requestMirrorPolicies.length
        ? mirrors(vh.requestMirrorPolicies, at(vp, 'request_mirror_policies'), ctx)
        : rcMirrors,
      ...(fault && { fault }),
      maxBody,
    };
    vh.routes.forEach((r, i) => {
      const decoded = route(r, `${at(vp, 'routes')}[${i}]`, inherited, ctx);
      if (decoded) routes.push(decoded);
    });
  });
  return { name: rc.name, routes };
}

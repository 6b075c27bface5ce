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
  WireVirtualHost,
} from '@ambient/shared';
import { allFieldsHandled, ENVOY_RETRY_ON } from '@ambient/shared';
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
  const {
    retryOn: wireRetryOn,
    numRetries,
    perTryTimeout,
    retriableStatusCodes,
    retryBackOff,
    retriableHeaders,
    retriableRequestHeaders,
    ...rest
  } = r;
  allFieldsHandled(rest);
  const retryOn = new Set<RetryOn>();
  for (const raw of wireRetryOn.split(',')) {
    const token = raw.trim();
    if (!token) continue;
    if (RETRY_ON.has(token)) retryOn.add(token as RetryOn);
    else ctx.problem(at(path, 'retry_on'), `${token} is not supported`);
  }
  for (const code of retriableStatusCodes)
    if (code < 100 || code > 599)
      ctx.problem(at(path, 'retriable_status_codes'), `${code} is not an HTTP status`);
  if (retriableHeaders.length) ctx.problem(at(path, 'retriable_headers'), 'is not supported');
  if (retriableRequestHeaders.length) ctx.problem(at(path, 'retriable_request_headers'), 'is not supported');
  let backoffBaseMs = DEFAULT_RETRY_BASE_MS;
  let backoffMaxMs = DEFAULT_RETRY_BASE_MS * 10;
  if (retryBackOff) {
    const { baseInterval, maxInterval, ...backOffRest } = retryBackOff;
    allFieldsHandled(backOffRest);
    const bp = at(path, 'retry_back_off');
    if (!baseInterval) ctx.problem(at(bp, 'base_interval'), 'is required');
    backoffBaseMs = positiveMs(baseInterval, DEFAULT_RETRY_BASE_MS, at(bp, 'base_interval'), ctx);
    backoffMaxMs = positiveMs(maxInterval, backoffBaseMs * 10, at(bp, 'max_interval'), ctx);
    if (baseInterval && backoffMaxMs < backoffBaseMs)
      ctx.problem(at(bp, 'max_interval'), 'must be greater than or equal to the base_interval');
  }
  return {
    retryOn,
    numRetries: numRetries ? numRetries.value : 1,
    perTryTimeoutMs: optionalMs(perTryTimeout, 0, at(path, 'per_try_timeout'), ctx),
    retriableStatusCodes: new Set(retriableStatusCodes),
    backoffBaseMs,
    backoffMaxMs,
  };
}

export function faultPolicy(f: WireHttpFault, path: string, ctx: DecodeContext): FaultPolicy {
  const { delay, abort, upstreamCluster, headers, downstreamNodes, responseRateLimit, ...rest } = f;
  allFieldsHandled(rest);
  const out: { delay?: FaultPolicy['delay']; abort?: FaultPolicy['abort'] } = {};
  if (delay) {
    const { faultDelaySecifier, fixedDelay, percentage, ...delayRest } = delay;
    allFieldsHandled(delayRest);
    const p = at(path, 'delay');
    const percent = fractionalPercent(percentage, 0, at(p, 'percentage'), ctx);
    if (faultDelaySecifier === 'fixedDelay' && fixedDelay)
      out.delay = { ms: optionalMs(fixedDelay, 0, at(p, 'fixed_delay'), ctx), percent };
    else if (faultDelaySecifier === 'headerDelay') ctx.problem(at(p, 'header_delay'), 'is not supported');
    else ctx.problem(at(p, 'fixed_delay'), 'is required');
  }
  if (abort) {
    const { errorType: kind, httpStatus, grpcStatus, percentage, ...abortRest } = abort;
    allFieldsHandled(abortRest);
    const p = at(path, 'abort');
    const percent = fractionalPercent(percentage, 0, at(p, 'percentage'), ctx);
    if (kind === 'httpStatus') {
      const status = httpStatus ?? 0;
      if (status < 200 || status > 599) ctx.problem(at(p, 'http_status'), `${status} is not from 200 to 599`);
      out.abort = { httpStatus: status, percent };
    } else if (kind === 'grpcStatus') {
      out.abort = { grpcStatus: grpcStatus ?? 0, percent };
    } else if (kind === 'headerAbort') {
      ctx.problem(at(p, 'header_abort'), 'is not supported');
    } else {
      ctx.problem(p, 'must set http_status or grpc_status');
    }
  }
  if (headers.length) ctx.problem(at(path, 'headers'), 'is not supported');
  if (upstreamCluster) ctx.problem(at(path, 'upstream_cluster'), 'is not supported');
  if (downstreamNodes.length) ctx.problem(at(path, 'downstream_nodes'), 'is not supported');
  if (responseRateLimit) ctx.problem(at(path, 'response_rate_limit'), 'is not supported');
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
      const { config: wrapped, isOptional, disabled, ...wrapperRest } = wrapper;
      allFieldsHandled(wrapperRest);
      if (disabled) ctx.problem(at(p, 'disabled'), 'disabling a filter per route is not supported');
      config = wrapped;
      optional = isOptional;
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
    const { cluster, clusterHeader, runtimeFraction, ...rest } = m;
    allFieldsHandled(rest);
    const p = `${path}[${i}]`;
    if (clusterHeader) {
      ctx.problem(at(p, 'cluster_header'), 'is not supported: use cluster');
      return [];
    }
    if (!cluster) {
      ctx.problem(at(p, 'cluster'), 'is required');
      return [];
    }
    let percent = 100;
    // Without runtime_fraction Envoy mirrors every request.
    if (runtimeFraction) {
      const { defaultValue, ...fractionRest } = runtimeFraction;
      allFieldsHandled(fractionRest);
      percent = fractionalPercent(defaultValue, 0, at(p, 'runtime_fraction.default_value'), ctx);
    }
    return [{ cluster, percent }];
  });
}

function hashPolicies(list: readonly WireHashPolicy[], path: string, ctx: DecodeContext): HashPolicy[] {
  return list.flatMap((h, i): HashPolicy[] => {
    const { policySpecifier, header, connectionProperties, terminal, ...rest } = h;
    allFieldsHandled(rest);
    const p = `${path}[${i}]`;
    if (terminal) ctx.problem(at(p, 'terminal'), 'is not supported');
    if (policySpecifier === 'header' && header) {
      const { headerName, regexRewrite: headerRewrite, ...headerRest } = header;
      allFieldsHandled(headerRest);
      if (!headerName) ctx.problem(at(p, 'header.header_name'), 'is required');
      if (headerRewrite) ctx.problem(at(p, 'header.regex_rewrite'), 'is not supported');
      return [{ header: headerName.toLowerCase() }];
    }
    if (policySpecifier === 'connectionProperties') {
      const { sourceIp, ...propertiesRest } = connectionProperties ?? { sourceIp: false };
      allFieldsHandled(propertiesRest);
      // source_ip: false hashes nothing, as in Envoy.
      return sourceIp ? [{ sourceIp: true }] : [];
    }
    const field =
      policySpecifier === 'queryParameter'
        ? 'query_parameter'
        : policySpecifier === 'filterState'
          ? 'filter_state'
          : policySpecifier;
    ctx.problem(
      field ? at(p, field) : p,
      field ? 'is not supported: use header or connection_properties' : 'must set a policy',
    );
    return [];
  });
}

function weightedClusters(
  wc: NonNullable<WireRouteAction['weightedClusters']>,
  path: string,
  ctx: DecodeContext,
): WeightedCluster[] {
  const { clusters, totalWeight, headerName, ...rest } = wc;
  allFieldsHandled(rest);
  const p = at(path, 'weighted_clusters');
  if (headerName) ctx.problem(at(p, 'header_name'), 'is not supported');
  if (!clusters.length) ctx.problem(at(p, 'clusters'), 'must not be empty');
  const out = clusters.flatMap((c, i) => {
    const {
      name,
      clusterHeader,
      weight,
      requestHeadersToAdd,
      requestHeadersToRemove,
      responseHeadersToAdd,
      responseHeadersToRemove,
      typedPerFilterConfig,
      hostRewriteSpecifier,
      // Refused through its oneof case above.
      hostRewriteLiteral: _hostRewriteLiteral,
      ...clusterRest
    } = c;
    allFieldsHandled(clusterRest);
    const cp = `${at(p, 'clusters')}[${i}]`;
    if (clusterHeader) ctx.problem(at(cp, 'cluster_header'), 'is not supported: use name');
    else if (!name) ctx.problem(at(cp, 'name'), 'is required');
    const unsupported: Array<[boolean, string]> = [
      [requestHeadersToAdd.length > 0, 'request_headers_to_add'],
      [requestHeadersToRemove.length > 0, 'request_headers_to_remove'],
      [responseHeadersToAdd.length > 0, 'response_headers_to_add'],
      [responseHeadersToRemove.length > 0, 'response_headers_to_remove'],
      [Object.keys(typedPerFilterConfig).length > 0, 'typed_per_filter_config'],
      [hostRewriteSpecifier === 'hostRewriteLiteral', 'host_rewrite_literal'],
    ];
    for (const [isSet, field] of unsupported)
      if (isSet) ctx.problem(at(cp, field), 'is not supported per cluster');
    return name ? [{ cluster: name, weight: weight?.value ?? 0 }] : [];
  });
  const total = out.reduce((s, c) => s + c.weight, 0);
  if (clusters.length && total <= 0)
    ctx.problem(at(p, 'clusters'), 'the sum of weights must be greater than 0');
  if (totalWeight && totalWeight.value !== total)
    ctx.problem(at(p, 'total_weight'), `${totalWeight.value} is not the sum of the weights (${total})`);
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
  const {
    clusterSpecifier,
    cluster,
    weightedClusters: wireWeightedClusters,
    prefixRewrite,
    regexRewrite: wireRegexRewrite,
    pathRewritePolicy,
    hostRewriteSpecifier,
    hostRewriteLiteral,
    autoHostRewrite,
    timeout,
    retryPolicy: wireRetryPolicy,
    retryPolicyTypedConfig,
    requestMirrorPolicies,
    hashPolicy,
    ...rest
  } = a;
  allFieldsHandled(rest);
  let clusters: WeightedCluster[] = [];
  switch (clusterSpecifier) {
    case 'cluster':
      if (!cluster) ctx.problem(at(path, 'cluster'), 'must not be empty');
      else clusters = [{ cluster, weight: 1 }];
      break;
    case 'weightedClusters':
      clusters = wireWeightedClusters ? weightedClusters(wireWeightedClusters, path, ctx) : [];
      break;
    case 'clusterHeader':
      ctx.problem(at(path, 'cluster_header'), 'is not supported');
      break;
    case 'clusterSpecifierPlugin':
    case 'inlineClusterSpecifierPlugin':
      ctx.problem(
        at(
          path,
          clusterSpecifier === 'clusterSpecifierPlugin'
            ? 'cluster_specifier_plugin'
            : 'inline_cluster_specifier_plugin',
        ),
        'is not supported',
      );
      break;
    default:
      ctx.problem(path, 'must set cluster or weighted_clusters');
  }
  if (prefixRewrite && wireRegexRewrite)
    ctx.problem(path, 'specify only one of prefix_rewrite and regex_rewrite');
  if (pathRewritePolicy) ctx.problem(at(path, 'path_rewrite_policy'), 'is not supported');
  if (hostRewriteSpecifier && hostRewriteSpecifier !== 'hostRewriteLiteral') {
    const field = {
      autoHostRewrite: 'auto_host_rewrite',
      hostRewriteHeader: 'host_rewrite_header',
      hostRewritePathRegex: 'host_rewrite_path_regex',
    }[hostRewriteSpecifier];
    // auto_host_rewrite: false is the default and asks for nothing.
    if (hostRewriteSpecifier !== 'autoHostRewrite' || autoHostRewrite?.value)
      ctx.problem(at(path, field), 'is not supported: use host_rewrite_literal');
  }
  if (retryPolicyTypedConfig) ctx.problem(at(path, 'retry_policy_typed_config'), 'is not supported');
  const rewrite = wireRegexRewrite
    ? regexRewrite(wireRegexRewrite, at(path, 'regex_rewrite'), ctx)
    : undefined;
  const retry = wireRetryPolicy
    ? retryPolicy(wireRetryPolicy, at(path, 'retry_policy'), ctx)
    : inherited.retry;
  const mirrorList = requestMirrorPolicies.length
    ? mirrors(requestMirrorPolicies, at(path, 'request_mirror_policies'), ctx)
    : inherited.mirrors;
  return {
    kind: 'route',
    clusters,
    timeoutMs: optionalMs(timeout, DEFAULT_ROUTE_TIMEOUT_MS, at(path, 'timeout'), ctx),
    ...(retry && { retry }),
    ...(prefixRewrite && { prefixRewrite }),
    ...(rewrite && { regexRewrite: rewrite }),
    ...(hostRewriteSpecifier === 'hostRewriteLiteral' &&
      hostRewriteLiteral && { hostRewrite: hostRewriteLiteral }),
    mirrors: mirrorList,
    hashPolicies: hashPolicies(hashPolicy, at(path, 'hash_policy'), ctx),
  };
}

function redirectAction(r: WireRedirectAction, path: string, ctx: DecodeContext): RedirectAction {
  const {
    schemeRewriteSpecifier,
    httpsRedirect,
    schemeRedirect,
    hostRedirect,
    portRedirect,
    pathRewriteSpecifier,
    pathRedirect,
    prefixRewrite,
    regexRewrite: wireRegexRewrite,
    responseCode,
    stripQuery,
    ...rest
  } = r;
  allFieldsHandled(rest);
  const status = REDIRECT_CODES[responseCode];
  if (status === undefined) ctx.problem(at(path, 'response_code'), `${responseCode} is not a redirect code`);
  if (portRedirect > 65535) ctx.problem(at(path, 'port_redirect'), `${portRedirect} is not a port`);
  const scheme =
    schemeRewriteSpecifier === 'httpsRedirect' ? (httpsRedirect ? 'https' : undefined) : schemeRedirect;
  const rewrite =
    pathRewriteSpecifier === 'regexRewrite' && wireRegexRewrite
      ? regexRewrite(wireRegexRewrite, at(path, 'regex_rewrite'), ctx)
      : undefined;
  return {
    kind: 'redirect',
    ...(scheme && { scheme: scheme.toLowerCase() }),
    ...(hostRedirect && { host: hostRedirect }),
    ...(portRedirect && { port: portRedirect }),
    ...(pathRewriteSpecifier === 'pathRedirect' && pathRedirect && { path: pathRedirect }),
    ...(pathRewriteSpecifier === 'prefixRewrite' && prefixRewrite && { prefixRewrite }),
    ...(rewrite && { regexRewrite: rewrite }),
    ...(stripQuery && { stripQuery: true }),
    status: status ?? 301,
  };
}

function directResponse(
  d: NonNullable<WireRoute['directResponse']>,
  path: string,
  maxBody: number,
  ctx: DecodeContext,
): DirectResponseAction {
  const { status, body: wireBody, ...rest } = d;
  allFieldsHandled(rest);
  if (status < 200 || status > 599) ctx.problem(at(path, 'status'), `${status} is not from 200 to 599`);
  let body: string | undefined;
  if (wireBody) {
    const { specifier: s, inlineString, inlineBytes, ...bodyRest } = wireBody;
    allFieldsHandled(bodyRest);
    if (s === 'inlineString') body = inlineString ?? '';
    else if (s === 'inlineBytes') body = Buffer.from(inlineBytes ?? []).toString();
    else
      ctx.problem(
        at(path, 'body'),
        `${s ?? 'an empty data source'} is not supported: use inline_string or inline_bytes`,
      );
    if (body !== undefined && Buffer.byteLength(body) > maxBody)
      ctx.problem(at(path, 'body'), `is longer than ${maxBody} bytes`);
  }
  return { kind: 'direct', status, ...(body !== undefined && { body }) };
}

function routeMatch(m: WireRouteMatch | null, path: string, ctx: DecodeContext): RouteMatch | undefined {
  if (!m) {
    ctx.problem(path, 'is required');
    return undefined;
  }
  const {
    pathSpecifier,
    prefix,
    path: exactPath,
    safeRegex,
    caseSensitive,
    runtimeFraction,
    headers: wireHeaders,
    queryParameters,
    grpc,
    tlsContext,
    dynamicMetadata,
    ...rest
  } = m;
  allFieldsHandled(rest);
  const ignoreCase = caseSensitive?.value === false ? { ignoreCase: true } : {};
  let pm: PathMatch | undefined;
  switch (pathSpecifier) {
    case 'prefix':
      pm = { prefix: prefix ?? '', ...ignoreCase };
      break;
    case 'path':
      pm = { exact: exactPath ?? '', ...ignoreCase };
      break;
    case 'safeRegex': {
      const r = regex(safeRegex, 'full', at(path, 'safe_regex'), ctx);
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
      }[pathSpecifier];
      ctx.problem(at(path, field), 'is not supported: use prefix, path or safe_regex');
    }
  }
  if (runtimeFraction) ctx.problem(at(path, 'runtime_fraction'), 'is not supported');
  if (grpc) ctx.problem(at(path, 'grpc'), 'is not supported');
  if (tlsContext) ctx.problem(at(path, 'tls_context'), 'is not supported');
  if (dynamicMetadata.length) ctx.problem(at(path, 'dynamic_metadata'), 'is not supported');
  const headers = wireHeaders.flatMap((h, i) => headerMatch(h, `${at(path, 'headers')}[${i}]`, ctx) ?? []);
  const query = queryParameters.flatMap(
    (q, i) => queryMatch(q, `${at(path, 'query_parameters')}[${i}]`, ctx) ?? [],
  );
  return pm && { path: pm, headers, query };
}

function route(r: WireRoute, path: string, inherited: Inherited, ctx: DecodeContext): Route | undefined {
  const {
    name,
    match: wireMatch,
    action: actionCase,
    route: wireRoute,
    redirect,
    directResponse: wireDirect,
    typedPerFilterConfig,
    requestHeadersToAdd,
    requestHeadersToRemove,
    responseHeadersToAdd,
    responseHeadersToRemove,
    ...rest
  } = r;
  allFieldsHandled(rest);
  const match = routeMatch(wireMatch, at(path, 'match'), ctx);
  let action: Route['action'] | undefined;
  if (actionCase === 'route' && wireRoute) action = routeAction(wireRoute, at(path, 'route'), inherited, ctx);
  else if (actionCase === 'redirect' && redirect)
    action = redirectAction(redirect, at(path, 'redirect'), ctx);
  else if (actionCase === 'directResponse' && wireDirect)
    action = directResponse(wireDirect, at(path, 'direct_response'), inherited.maxBody, ctx);
  else if (actionCase)
    ctx.problem(
      at(path, actionCase === 'filterAction' ? 'filter_action' : 'non_forwarding_action'),
      'is not supported',
    );
  else ctx.problem(path, 'must set route, redirect or direct_response');
  const requestHeaders = headerMutation(
    requestHeadersToAdd,
    requestHeadersToRemove,
    at(path, 'request_headers_to_add'),
    at(path, 'request_headers_to_remove'),
    ctx,
  );
  const responseHeaders = headerMutation(
    responseHeadersToAdd,
    responseHeadersToRemove,
    at(path, 'response_headers_to_add'),
    at(path, 'response_headers_to_remove'),
    ctx,
  );
  const fault =
    perFilterFault(typedPerFilterConfig, at(path, 'typed_per_filter_config'), ctx) ?? inherited.fault;
  if (!match || !action) return undefined;
  return { name, match, action, requestHeaders, responseHeaders, ...(fault && { fault }) };
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

function virtualHost(
  vh: WireVirtualHost,
  vp: string,
  above: { fault?: FaultPolicy; mirrors: Inherited['mirrors']; maxBody: number },
  routes: Route[],
  ctx: DecodeContext,
): void {
  const {
    // Only the one virtual host is served (see below): its name selects nothing.
    name: _name,
    domains,
    routes: wireRoutes,
    matcher,
    requireTls,
    requestHeadersToAdd,
    requestHeadersToRemove,
    responseHeadersToAdd,
    responseHeadersToRemove,
    typedPerFilterConfig,
    retryPolicy: wireRetryPolicy,
    requestMirrorPolicies,
    ...rest
  } = vh;
  allFieldsHandled(rest);
  if (!domains.includes('*'))
    ctx.problem(
      at(vp, 'domains'),
      'must contain "*": the waypoint does not select virtual hosts by authority',
    );
  if (matcher) ctx.problem(at(vp, 'matcher'), 'is not supported: use routes');
  if (requireTls) ctx.problem(at(vp, 'require_tls'), 'is not supported');
  noMutations(
    { requestHeadersToAdd, requestHeadersToRemove, responseHeadersToAdd, responseHeadersToRemove },
    vp,
    ctx,
  );
  const vhFault = perFilterFault(typedPerFilterConfig, at(vp, 'typed_per_filter_config'), ctx);
  const fault = vhFault ?? above.fault;
  const retry = wireRetryPolicy ? retryPolicy(wireRetryPolicy, at(vp, 'retry_policy'), ctx) : undefined;
  const inherited: Inherited = {
    ...(retry && { retry }),
    mirrors: requestMirrorPolicies.length
      ? mirrors(requestMirrorPolicies, at(vp, 'request_mirror_policies'), ctx)
      : above.mirrors,
    ...(fault && { fault }),
    maxBody: above.maxBody,
  };
  wireRoutes.forEach((r, i) => {
    const decoded = route(r, `${at(vp, 'routes')}[${i}]`, inherited, ctx);
    if (decoded) routes.push(decoded);
  });
}

export function decodeRouteConfiguration(
  rc: WireRouteConfiguration & { maxDirectResponseBodySizeBytes?: { value: number } | null },
  name: string,
  ctx: DecodeContext,
): RouteTable {
  const {
    name: rcName,
    virtualHosts,
    vhds,
    requestHeadersToAdd,
    requestHeadersToRemove,
    responseHeadersToAdd,
    responseHeadersToRemove,
    typedPerFilterConfig,
    requestMirrorPolicies,
    // Plugins are only reached from a route's cluster_specifier_plugin, which is refused there.
    clusterSpecifierPlugins: _clusterSpecifierPlugins,
    maxDirectResponseBodySizeBytes,
    ...rest
  } = rc;
  allFieldsHandled(rest);
  if (rcName !== name) ctx.problem('name', `${JSON.stringify(rcName)} does not match the resource name`);
  if (vhds) ctx.problem('vhds', 'is not supported');
  noMutations(
    { requestHeadersToAdd, requestHeadersToRemove, responseHeadersToAdd, responseHeadersToRemove },
    '',
    ctx,
  );
  if (virtualHosts.length > 1)
    ctx.problem(
      'virtual_hosts',
      `has ${virtualHosts.length} virtual hosts: the waypoint serves one per route configuration`,
    );
  const maxBody = maxDirectResponseBodySizeBytes?.value ?? MAX_DIRECT_RESPONSE_BODY;
  const rcFault = perFilterFault(typedPerFilterConfig, 'typed_per_filter_config', ctx);
  const rcMirrors = mirrors(requestMirrorPolicies, 'request_mirror_policies', ctx);
  const routes: Route[] = [];
  virtualHosts.forEach((vh, v) => {
    virtualHost(
      vh,
      `virtual_hosts[${v}]`,
      { ...(rcFault && { fault: rcFault }), mirrors: rcMirrors, maxBody },
      routes,
      ctx,
    );
  });
  return { name: rcName, routes };
}

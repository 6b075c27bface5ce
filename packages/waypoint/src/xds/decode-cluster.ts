/**
 * Cluster to UpstreamCluster. Unset fields take Envoy's defaults (5 s connect timeout; circuit
 * breakers 1024 connections, pending and active requests, 3 retries; outlier detection 5
 * consecutive 5xx, 10 s interval, 30 s base ejection, 10%), so the control plane must send the
 * values it means, as istiod does.
 */

import type {
  WireAny,
  WireCluster,
  WireCommonHttpProtocolOptions,
  WireDuration,
  WireMetadata,
  WireOutlierDetection,
  WireThresholds,
} from '@ambient/shared';
import { allFieldsHandled } from '@ambient/shared';
import type {
  CircuitBreakers,
  LbPolicy,
  OutlierDetection,
  ServiceRef,
  UpstreamCluster,
} from '../config/waypoint-config.js';
import {
  adsConfigSource,
  anyTypeName,
  at,
  type DecodeContext,
  durationMs,
  istioMetadata,
  positiveMs,
  structToJson,
} from './decode-context.js';
import { HTTP_PROTOCOL_OPTIONS_TYPE } from './envoy-protos.js';

const EDS = 3;
const DISCOVERY_TYPES = ['STATIC', 'STRICT_DNS', 'LOGICAL_DNS', 'EDS', 'ORIGINAL_DST'];
const LB_POLICIES: Record<number, LbPolicy> = {
  0: 'ROUND_ROBIN',
  1: 'LEAST_REQUEST',
  2: 'RING_HASH',
  3: 'RANDOM',
};
const LB_NAMES: Record<number, string> = {
  5: 'MAGLEV',
  6: 'CLUSTER_PROVIDED',
  7: 'LOAD_BALANCING_POLICY_CONFIG',
};
const DEFAULT_PRIORITY = 0;
const USE_DOWNSTREAM_PROTOCOL = 1;

export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** Envoy's circuit breaker defaults for unset thresholds. */
export const DEFAULT_CIRCUIT_BREAKERS: CircuitBreakers = Object.freeze({
  maxConnections: 1024,
  maxPendingRequests: 1024,
  maxRequests: 1024,
  maxRetries: 3,
});

function circuitBreakers(thresholds: readonly WireThresholds[], ctx: DecodeContext): CircuitBreakers {
  // Envoy keeps the last thresholds given for a priority; the waypoint routes at DEFAULT only.
  const index = thresholds.findLastIndex((t) => t.priority === DEFAULT_PRIORITY);
  const t = thresholds[index];
  if (!t) return DEFAULT_CIRCUIT_BREAKERS;
  // Thresholds of other priorities are skipped above; this one must be read in full.
  const {
    priority: _priority,
    maxConnections,
    maxPendingRequests,
    maxRequests,
    maxRetries,
    retryBudget: wireRetryBudget,
    ...rest
  } = t;
  allFieldsHandled(rest);
  const path = `circuit_breakers.thresholds[${index}]`;
  const d = DEFAULT_CIRCUIT_BREAKERS;
  let retryBudget: CircuitBreakers['retryBudget'];
  if (wireRetryBudget) {
    const { budgetPercent, minRetryConcurrency, ...budgetRest } = wireRetryBudget;
    allFieldsHandled(budgetRest);
    // Envoy's defaults when the budget is present but its fields are not: 20% and 3.
    const percent = budgetPercent?.value ?? 20;
    if (!(percent >= 0 && percent <= 100))
      ctx.problem(`${path}.retry_budget.budget_percent`, `${percent} is not from 0 to 100`);
    retryBudget = { percent, minRetryConcurrency: minRetryConcurrency?.value ?? 3 };
  }
  return {
    maxConnections: maxConnections?.value ?? d.maxConnections,
    maxPendingRequests: maxPendingRequests?.value ?? d.maxPendingRequests,
    maxRequests: maxRequests?.value ?? d.maxRequests,
    maxRetries: maxRetries?.value ?? d.maxRetries,
    ...(retryBudget && { retryBudget }),
  };
}

function outlierDetection(o: WireOutlierDetection, path: string, ctx: DecodeContext): OutlierDetection {
  const {
    consecutive_5xx,
    interval,
    baseEjectionTime,
    maxEjectionPercent: wireMaxEjectionPercent,
    enforcingConsecutive_5xx,
    enforcingConsecutiveGatewayFailure,
    enforcingFailurePercentage,
    // Local-origin errors count only when split_external_local_origin_errors is set, which is refused.
    enforcingConsecutiveLocalOriginFailure: _enforcingConsecutiveLocalOriginFailure,
    enforcingLocalOriginSuccessRate: _enforcingLocalOriginSuccessRate,
    enforcingFailurePercentageLocalOrigin,
    splitExternalLocalOriginErrors,
    maxEjectionTime,
    alwaysEjectOneHost,
    ...rest
  } = o;
  allFieldsHandled(rest);
  const enforcing5xx = enforcingConsecutive_5xx?.value ?? 100;
  if (enforcing5xx !== 0 && enforcing5xx !== 100)
    ctx.problem(at(path, 'enforcing_consecutive_5xx'), `${enforcing5xx} is not supported: use 0 or 100`);
  // Detectors that Envoy enforces only when asked to (their enforcing_* default to 0). Success-rate
  // ejection (enforced by default) needs 5 hosts and 100 requests per interval and is not run here.
  const unsupported: Array<[number | undefined, string]> = [
    [enforcingConsecutiveGatewayFailure?.value, 'enforcing_consecutive_gateway_failure'],
    [enforcingFailurePercentage?.value, 'enforcing_failure_percentage'],
    [enforcingFailurePercentageLocalOrigin?.value, 'enforcing_failure_percentage_local_origin'],
  ];
  for (const [v, field] of unsupported) if (v) ctx.problem(at(path, field), 'is not supported');
  if (splitExternalLocalOriginErrors)
    ctx.problem(at(path, 'split_external_local_origin_errors'), 'is not supported');
  const maxEjectionPercent = wireMaxEjectionPercent?.value ?? 10;
  if (maxEjectionPercent > 100)
    ctx.problem(at(path, 'max_ejection_percent'), `${maxEjectionPercent} is above 100`);
  const baseEjectionTimeMs = positiveMs(baseEjectionTime, 30_000, at(path, 'base_ejection_time'), ctx);
  return {
    // Not enforcing consecutive 5xx is the same as never counting them.
    consecutive5xx: enforcing5xx === 0 ? 0 : (consecutive_5xx?.value ?? 5),
    intervalMs: positiveMs(interval, 10_000, at(path, 'interval'), ctx),
    baseEjectionTimeMs,
    maxEjectionPercent: Math.min(maxEjectionPercent, 100),
    maxEjectionTimeMs: Math.max(
      positiveMs(maxEjectionTime, 300_000, at(path, 'max_ejection_time'), ctx),
      baseEjectionTimeMs,
    ),
    ...(alwaysEjectOneHost?.value && { alwaysEjectOneHost: true }),
  };
}

/** What a cluster's HttpProtocolOptions set besides the protocol. */
type ConnectionOptions = Pick<
  UpstreamCluster,
  'idleTimeoutMs' | 'maxRequestsPerConnection' | 'maxConnectionDurationMs'
>;

/**
 * `common_http_protocol_options` of a cluster's HttpProtocolOptions, as istiod fills it from a
 * DestinationRule's connectionPool (pilot/pkg/networking/core/cluster_traffic_policy.go,
 * applyConnectionPool): idle_timeout, max_requests_per_connection, max_connection_duration.
 */
function connectionOptions(
  o: WireCommonHttpProtocolOptions,
  path: string,
  ctx: DecodeContext,
): ConnectionOptions {
  const {
    idleTimeout,
    maxConnectionDuration,
    maxRequestsPerConnection,
    maxHeadersCount,
    maxResponseHeadersKb,
    maxStreamDuration,
    headersWithUnderscoresAction,
    ...rest
  } = o;
  allFieldsHandled(rest);
  for (const [field, set] of [
    ['max_headers_count', maxHeadersCount],
    ['max_response_headers_kb', maxResponseHeadersKb],
    ['max_stream_duration', maxStreamDuration],
    ['headers_with_underscores_action', headersWithUnderscoresAction],
  ] as const)
    if (set) ctx.problem(at(path, field), 'is not supported on a cluster');
  const out: { -readonly [K in keyof ConnectionOptions]: ConnectionOptions[K] } = {};
  // Zero disables the idle timeout (Envoy's documented meaning); unset keeps the one-hour default.
  const idleMs = idleTimeout && wholeMs(idleTimeout, at(path, 'idle_timeout'), ctx);
  if (idleMs !== null && idleMs !== undefined) out.idleTimeoutMs = idleMs;
  // Zero is no limit, as unset.
  if (maxRequestsPerConnection?.value) out.maxRequestsPerConnection = maxRequestsPerConnection.value;
  const ageMs =
    maxConnectionDuration && wholeMs(maxConnectionDuration, at(path, 'max_connection_duration'), ctx);
  if (ageMs !== null && ageMs !== undefined) out.maxConnectionDurationMs = ageMs;
  return out;
}

/** A duration in ms, a positive one below 1 ms rounded up to 1 (not to 0, which means never). */
function wholeMs(d: WireDuration, path: string, ctx: DecodeContext): number | undefined {
  const ms = durationMs(d, path, ctx);
  if (ms === undefined) return undefined;
  // 0 ms with validated, non-negative fields: seconds are 0, so only nanos can make it positive.
  return ms === 0 && d.nanos > 0 ? 1 : ms;
}

function protocolOptions(
  c: Pick<WireCluster, 'http2ProtocolOptions' | 'protocolSelection'>,
  typedExtensionProtocolOptions: Record<string, WireAny>,
  ctx: DecodeContext,
): { protocol: 'http1' | 'http2' } & ConnectionOptions {
  let proto: 'http1' | 'http2' = c.http2ProtocolOptions ? 'http2' : 'http1';
  let connection: ConnectionOptions = {};
  if (c.protocolSelection === USE_DOWNSTREAM_PROTOCOL)
    ctx.problem('protocol_selection', 'USE_DOWNSTREAM_PROTOCOL is not supported');
  for (const [key, any] of Object.entries(typedExtensionProtocolOptions)) {
    const p = `typed_extension_protocol_options[${key}]`;
    const type = anyTypeName(any);
    if (type !== HTTP_PROTOCOL_OPTIONS_TYPE) {
      ctx.problem(p, `${type} is not supported`);
      continue;
    }
    const o = ctx.decodeAny(any, HTTP_PROTOCOL_OPTIONS_TYPE, p);
    if (!o) continue;
    const { upstreamProtocolOptions, explicitHttpConfig, httpFilters, commonHttpProtocolOptions, ...rest } =
      o;
    allFieldsHandled(rest);
    if (commonHttpProtocolOptions)
      connection = connectionOptions(commonHttpProtocolOptions, at(p, 'common_http_protocol_options'), ctx);
    if (httpFilters.length) ctx.problem(at(p, 'http_filters'), 'upstream HTTP filters are not supported');
    if (upstreamProtocolOptions === 'explicitHttpConfig') {
      // The chosen protocol's options are empty messages here: only which one is set matters.
      const {
        protocolConfig: which,
        httpProtocolOptions: _http1,
        http2ProtocolOptions: _http2,
        ...explicitRest
      } = explicitHttpConfig ?? {};
      allFieldsHandled(explicitRest);
      if (which === 'http2ProtocolOptions') proto = 'http2';
      else if (which === 'httpProtocolOptions') proto = 'http1';
      else if (which === 'http3ProtocolOptions')
        ctx.problem(at(p, 'explicit_http_config.http3_protocol_options'), 'HTTP/3 is not supported');
      else ctx.problem(at(p, 'explicit_http_config'), 'must set a protocol');
    } else if (upstreamProtocolOptions === 'useDownstreamProtocolConfig') {
      ctx.problem(at(p, 'use_downstream_protocol_config'), 'is not supported: use explicit_http_config');
    } else if (upstreamProtocolOptions === 'autoConfig') {
      ctx.problem(at(p, 'auto_config'), 'is not supported: use explicit_http_config');
    }
  }
  return { protocol: proto, ...connection };
}

/** metadata.filter_metadata.istio.services[0]: the destination service for telemetry labels. */
function service(metadata: WireMetadata | null, ctx: DecodeContext): ServiceRef | undefined {
  const istio = istioMetadata(metadata);
  if (!istio) return undefined;
  const services = structToJson(istio).services;
  if (services === undefined) return undefined;
  const path = 'metadata.filter_metadata.istio.services';
  const first = Array.isArray(services) ? services[0] : undefined;
  if (!first || typeof first !== 'object') {
    ctx.problem(path, 'must be a non-empty list of {host, namespace, name}');
    return undefined;
  }
  const s = first as Record<string, unknown>;
  const fields = ['host', 'namespace', 'name'] as const;
  for (const f of fields)
    if (typeof s[f] !== 'string' || !s[f]) ctx.problem(`${path}[0].${f}`, 'must be a non-empty string');
  if (fields.some((f) => typeof s[f] !== 'string' || !s[f])) return undefined;
  return { host: s.host as string, namespace: s.namespace as string, name: s.name as string };
}

export function decodeCluster(c: WireCluster, name: string, ctx: DecodeContext): UpstreamCluster {
  const {
    name: clusterName,
    clusterDiscoveryType,
    type,
    edsClusterConfig,
    connectTimeout,
    lbPolicy: wireLbPolicy,
    loadBalancingPolicy,
    lbSubsetConfig,
    circuitBreakers: wireCircuitBreakers,
    outlierDetection: wireOutlierDetection,
    healthChecks,
    http2ProtocolOptions,
    typedExtensionProtocolOptions,
    protocolSelection,
    transportSocket,
    transportSocketMatches,
    filters,
    metadata,
    ...rest
  } = c;
  allFieldsHandled(rest);
  if (clusterName !== name)
    ctx.problem('name', `${JSON.stringify(clusterName)} does not match the resource name`);
  if (clusterDiscoveryType === 'clusterType')
    ctx.problem('cluster_type', 'custom cluster types are not supported: use EDS');
  else if (type !== EDS) ctx.problem('type', `${DISCOVERY_TYPES[type] ?? type} is not supported: use EDS`);
  if (!edsClusterConfig) {
    ctx.problem('eds_cluster_config', 'is required');
  } else {
    const { edsConfig, serviceName, ...edsRest } = edsClusterConfig;
    allFieldsHandled(edsRest);
    adsConfigSource(edsConfig, 'eds_cluster_config.eds_config', ctx);
    // Endpoints are looked up by cluster name: a different service_name would find none.
    if (serviceName && serviceName !== clusterName)
      ctx.problem('eds_cluster_config.service_name', 'must be empty or the cluster name');
  }
  const lbPolicy = LB_POLICIES[wireLbPolicy];
  if (!lbPolicy) ctx.problem('lb_policy', `${LB_NAMES[wireLbPolicy] ?? wireLbPolicy} is not supported`);
  if (loadBalancingPolicy) ctx.problem('load_balancing_policy', 'is not supported: use lb_policy');
  if (lbSubsetConfig) ctx.problem('lb_subset_config', 'is not supported: send one cluster per subset');
  if (healthChecks.length) ctx.problem('health_checks', 'active health checking is not supported');
  if (transportSocket || transportSocketMatches.length)
    ctx.problem('transport_socket', 'is not supported: endpoints are reached over HBONE per their metadata');
  if (filters.length) ctx.problem('filters', 'upstream network filters are not supported');
  const { thresholds, perHostThresholds, ...breakersRest } = wireCircuitBreakers ?? {
    thresholds: [],
    perHostThresholds: [],
  };
  allFieldsHandled(breakersRest);
  if (perHostThresholds.length) ctx.problem('circuit_breakers.per_host_thresholds', 'is not supported');
  const outlier = wireOutlierDetection && outlierDetection(wireOutlierDetection, 'outlier_detection', ctx);
  const svc = service(metadata, ctx);
  return {
    name: clusterName,
    connectTimeoutMs: positiveMs(connectTimeout, DEFAULT_CONNECT_TIMEOUT_MS, 'connect_timeout', ctx),
    lbPolicy: lbPolicy ?? 'ROUND_ROBIN',
    circuitBreakers: circuitBreakers(thresholds, ctx),
    ...(outlier && { outlierDetection: outlier }),
    ...protocolOptions({ http2ProtocolOptions, protocolSelection }, typedExtensionProtocolOptions, ctx),
    ...(svc && { service: svc }),
  };
}

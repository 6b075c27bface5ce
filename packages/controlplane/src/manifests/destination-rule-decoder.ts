/**
 * Istio DestinationRule (networking.istio.io), decoded from a parsed manifest. Durations become
 * milliseconds, and every problem is reported with its field path.
 *
 * Keys the waypoint cannot honour (port-level settings, ...) are refused rather than ignored: a
 * policy applied only in part would do something its author did not write.
 */
import type { ManifestFields, Obj, ObjectMeta } from './manifest-fields.js';
import { HEADER_NAME } from './traffic-fields.js';

export type LoadBalancerSetting =
  | { readonly simple: 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' }
  | { readonly consistentHash: { readonly httpHeaderName: string } | { readonly useSourceIp: true } };

export interface TrafficPolicy {
  readonly loadBalancer?: LoadBalancerSetting;
  readonly connectionPool?: {
    readonly tcp?: {
      readonly maxConnections?: number;
      readonly connectTimeoutMs?: number;
      readonly idleTimeoutMs?: number;
      readonly maxConnectionDurationMs?: number;
    };
    readonly http?: {
      readonly http1MaxPendingRequests?: number;
      readonly http2MaxRequests?: number;
      readonly maxRetries?: number;
      readonly idleTimeoutMs?: number;
      readonly maxRequestsPerConnection?: number;
    };
  };
  readonly outlierDetection?: {
    readonly consecutive5xxErrors?: number;
    readonly intervalMs?: number;
    readonly baseEjectionTimeMs?: number;
    readonly maxEjectionPercent?: number;
  };
}

export interface DestinationSubset {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly trafficPolicy?: TrafficPolicy;
}

export interface DestinationRuleObject {
  readonly kind: 'DestinationRule';
  readonly metadata: ObjectMeta;
  readonly host: string;
  readonly trafficPolicy?: TrafficPolicy;
  readonly subsets: readonly DestinationSubset[];
}

const INT32 = 2 ** 31 - 1;
const SUBSET_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Drops undefined values so an absent setting stays absent. */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function decodeTrafficPolicy(f: ManifestFields, v: unknown, path: string): TrafficPolicy | undefined {
  const o = f.obj(v, path);
  if (!o) return undefined;
  // tls is accepted and ignored: between waypoint and workload it is always HBONE mTLS.
  f.only(
    o,
    path,
    ['loadBalancer', 'connectionPool', 'outlierDetection', 'tls'],
    ['portLevelSettings', 'tunnel', 'proxyProtocol'],
  );
  let loadBalancer: LoadBalancerSetting | undefined;
  const lb = f.obj(o.loadBalancer, `${path}.loadBalancer`);
  if (lb) {
    const lp = `${path}.loadBalancer`;
    f.only(lb, lp, ['simple', 'consistentHash'], ['localityLbSetting', 'warmupDurationSecs', 'warmup']);
    if ((lb.simple === undefined) === (lb.consistentHash === undefined))
      f.add(lp, 'must have exactly one of simple or consistentHash');
    if (lb.simple !== undefined) {
      const simple = f.oneOf(lb.simple, `${lp}.simple`, [
        'UNSPECIFIED',
        'ROUND_ROBIN',
        'LEAST_REQUEST',
        'LEAST_CONN',
        'RANDOM',
      ] as const);
      // LEAST_CONN is the deprecated name of LEAST_REQUEST; UNSPECIFIED is the default.
      if (simple)
        loadBalancer = {
          simple:
            simple === 'LEAST_CONN' ? 'LEAST_REQUEST' : simple === 'UNSPECIFIED' ? 'ROUND_ROBIN' : simple,
        };
    }
    const ch = f.obj(lb.consistentHash, `${lp}.consistentHash`);
    if (ch) {
      const cp = `${lp}.consistentHash`;
      f.only(
        ch,
        cp,
        ['httpHeaderName', 'useSourceIp'],
        ['httpCookie', 'httpQueryParameterName', 'ringHash', 'maglev', 'minimumRingSize'],
      );
      const header = f.optStr(ch.httpHeaderName, `${cp}.httpHeaderName`);
      const sourceIp = f.bool(ch.useSourceIp, `${cp}.useSourceIp`);
      if (header && sourceIp) f.add(cp, 'must have only one of httpHeaderName or useSourceIp');
      if (header) {
        if (!HEADER_NAME.test(header))
          f.add(`${cp}.httpHeaderName`, `${JSON.stringify(header)} is not a valid header name`);
        loadBalancer = { consistentHash: { httpHeaderName: header } };
      } else if (sourceIp) loadBalancer = { consistentHash: { useSourceIp: true } };
      else f.add(cp, 'must have httpHeaderName or useSourceIp: true');
    }
  }
  let connectionPool: TrafficPolicy['connectionPool'];
  const cpo = f.obj(o.connectionPool, `${path}.connectionPool`);
  if (cpo) {
    const pp = `${path}.connectionPool`;
    f.only(cpo, pp, ['tcp', 'http']);
    const tcp = f.obj(cpo.tcp, `${pp}.tcp`);
    f.only(
      tcp,
      `${pp}.tcp`,
      ['maxConnections', 'connectTimeout', 'maxConnectionDuration', 'idleTimeout'],
      ['tcpKeepalive'],
    );
    const http = f.obj(cpo.http, `${pp}.http`);
    f.only(
      http,
      `${pp}.http`,
      [
        'http1MaxPendingRequests',
        'http2MaxRequests',
        'maxRetries',
        'maxRequestsPerConnection',
        'idleTimeout',
      ],
      ['h2UpgradePolicy', 'useClientProtocol', 'maxConcurrentStreams'],
    );
    const maxConnectionDurationMs = f.duration(tcp?.maxConnectionDuration, `${pp}.tcp.maxConnectionDuration`);
    // Istio's validation: at least 1 ms.
    if (maxConnectionDurationMs !== undefined && maxConnectionDurationMs < 1)
      f.add(`${pp}.tcp.maxConnectionDuration`, 'must be at least 1ms');
    connectionPool = defined({
      tcp:
        tcp &&
        defined({
          maxConnections: f.int(tcp.maxConnections, `${pp}.tcp.maxConnections`, 1, INT32),
          connectTimeoutMs: f.duration(tcp.connectTimeout, `${pp}.tcp.connectTimeout`),
          idleTimeoutMs: f.duration(tcp.idleTimeout, `${pp}.tcp.idleTimeout`),
          maxConnectionDurationMs,
        }),
      http:
        http &&
        defined({
          http1MaxPendingRequests: f.int(
            http.http1MaxPendingRequests,
            `${pp}.http.http1MaxPendingRequests`,
            1,
            INT32,
          ),
          http2MaxRequests: f.int(http.http2MaxRequests, `${pp}.http.http2MaxRequests`, 1, INT32),
          maxRetries: f.int(http.maxRetries, `${pp}.http.maxRetries`, 0, INT32),
          idleTimeoutMs: f.duration(http.idleTimeout, `${pp}.http.idleTimeout`),
          // 0 (the default) is no limit.
          maxRequestsPerConnection: f.int(
            http.maxRequestsPerConnection,
            `${pp}.http.maxRequestsPerConnection`,
            0,
            INT32,
          ),
        }),
    });
  }
  let outlierDetection: TrafficPolicy['outlierDetection'];
  const od = f.obj(o.outlierDetection, `${path}.outlierDetection`);
  if (od) {
    const op = `${path}.outlierDetection`;
    f.only(
      od,
      op,
      ['consecutive5xxErrors', 'interval', 'baseEjectionTime', 'maxEjectionPercent'],
      [
        'consecutiveErrors',
        'consecutiveGatewayErrors',
        'consecutiveLocalOriginFailures',
        'splitExternalLocalOriginErrors',
        'minHealthPercent',
      ],
    );
    outlierDetection = defined({
      consecutive5xxErrors: f.int(od.consecutive5xxErrors, `${op}.consecutive5xxErrors`, 0, INT32),
      intervalMs: f.duration(od.interval, `${op}.interval`),
      baseEjectionTimeMs: f.duration(od.baseEjectionTime, `${op}.baseEjectionTime`),
      maxEjectionPercent: f.int(od.maxEjectionPercent, `${op}.maxEjectionPercent`, 0, 100),
    });
  }
  return defined({ loadBalancer, connectionPool, outlierDetection });
}

export function decodeDestinationRule(
  f: ManifestFields,
  o: Obj,
  metadata: ObjectMeta,
): DestinationRuleObject {
  const spec = f.obj(o.spec, 'spec', false) ?? {};
  f.only(spec, 'spec', ['host', 'trafficPolicy', 'subsets', 'exportTo'], ['workloadSelector']);
  const trafficPolicy = decodeTrafficPolicy(f, spec.trafficPolicy, 'spec.trafficPolicy');
  const seen = new Set<string>();
  const subsets = (f.list(spec.subsets, 'spec.subsets') ?? []).flatMap((s, i): DestinationSubset[] => {
    const p = `spec.subsets[${i}]`;
    const so = f.obj(s, p);
    if (!so) return [];
    f.only(so, p, ['name', 'labels', 'trafficPolicy']);
    const name = f.str(so.name, `${p}.name`);
    if (name && !SUBSET_NAME.test(name))
      f.add(`${p}.name`, `${JSON.stringify(name)} is not a valid subset name`);
    if (seen.has(name)) f.add(`${p}.name`, `${JSON.stringify(name)} is defined twice`);
    seen.add(name);
    const tp = decodeTrafficPolicy(f, so.trafficPolicy, `${p}.trafficPolicy`);
    return [{ name, labels: f.labels(so.labels, `${p}.labels`), ...(tp && { trafficPolicy: tp }) }];
  });
  return {
    kind: 'DestinationRule',
    metadata,
    host: f.str(spec.host, 'spec.host'),
    ...(trafficPolicy && { trafficPolicy }),
    subsets,
  };
}

/**
 * The waypoint's domain config: what its Envoy resources (docs/waypoint-xds.md) decode into.
 * Nothing behind the xDS boundary sees a wire type. All values are frozen once decoded.
 */
import type { EnvoyRetryOn, SpiffeId } from '@ambient/shared';

/**
 * A regex from config, compiled by RE2 (linear time, never a backtracking JavaScript RegExp):
 * `test` is true when the whole input matches, as Envoy's matchers.
 */
export interface ConfigRegex {
  readonly source: string;
  test(input: string): boolean;
}

/** A regex_rewrite pattern: every match replaced by an RE2 substitution (`\1`, `\\`). */
export interface RewriteRegex {
  readonly source: string;
  replaceAll(input: string, substitution: string): string;
}

export type StringMatch =
  | { readonly exact: string; readonly ignoreCase?: boolean }
  | { readonly prefix: string; readonly ignoreCase?: boolean }
  | { readonly suffix: string; readonly ignoreCase?: boolean }
  | { readonly contains: string; readonly ignoreCase?: boolean }
  | { readonly regex: ConfigRegex };

export interface HeaderMatch {
  /** Lower-case; `:method`, `:authority` and `:path` are the pseudo-headers. */
  readonly name: string;
  /** Absent: the header must be present (Envoy's present_match). */
  readonly match?: StringMatch;
  readonly invert: boolean;
}

export interface QueryMatch {
  readonly name: string;
  /** Absent: the parameter must be present. */
  readonly match?: StringMatch;
}

export type PathMatch =
  /** `ignoreCase`: Envoy's `case_sensitive: false` (it does not apply to regexes). */
  | { readonly prefix: string; readonly ignoreCase?: boolean }
  | { readonly exact: string; readonly ignoreCase?: boolean }
  | { readonly regex: ConfigRegex };

export interface RouteMatch {
  readonly path: PathMatch;
  readonly headers: readonly HeaderMatch[];
  readonly query: readonly QueryMatch[];
}

export interface HeaderMutation {
  /** Lower-case header names with values to add (append) or set (overwrite). */
  readonly add: ReadonlyArray<{ readonly name: string; readonly value: string; readonly append: boolean }>;
  readonly remove: readonly string[];
}

export type RetryOn = EnvoyRetryOn;

export interface RetryPolicy {
  readonly retryOn: ReadonlySet<RetryOn>;
  readonly numRetries: number;
  /** 0: no per-try timeout. */
  readonly perTryTimeoutMs: number;
  readonly retriableStatusCodes: ReadonlySet<number>;
  /** Jittered exponential backoff: base 25 ms and max 10 x base unless configured, as Envoy. */
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
}

export interface FractionalPercent {
  /** 0..100, fractional allowed. */
  readonly percent: number;
}

export interface FaultPolicy {
  readonly delay?: { readonly ms: number; readonly percent: number };
  readonly abort?: { readonly httpStatus?: number; readonly grpcStatus?: number; readonly percent: number };
}

export type HashPolicy = { readonly header: string } | { readonly sourceIp: true };

export interface WeightedCluster {
  readonly cluster: string;
  readonly weight: number;
}

export interface RouteAction {
  readonly kind: 'route';
  /** One entry with weight 1 for a single cluster. */
  readonly clusters: readonly WeightedCluster[];
  /** 0: no timeout. */
  readonly timeoutMs: number;
  readonly retry?: RetryPolicy;
  readonly prefixRewrite?: string;
  /** Replaces every match of `pattern` in the path without its query; `substitution` is RE2's (`\1`). */
  readonly regexRewrite?: { readonly pattern: RewriteRegex; readonly substitution: string };
  readonly hostRewrite?: string;
  readonly mirrors: ReadonlyArray<{ readonly cluster: string; readonly percent: number }>;
  readonly hashPolicies: readonly HashPolicy[];
}

export interface RedirectAction {
  readonly kind: 'redirect';
  readonly scheme?: string;
  readonly host?: string;
  readonly port?: number;
  readonly path?: string;
  readonly prefixRewrite?: string;
  /** As RouteAction.regexRewrite. */
  readonly regexRewrite?: { readonly pattern: RewriteRegex; readonly substitution: string };
  /** Drop the request's query (a query in `path` is kept regardless, as Envoy). */
  readonly stripQuery?: boolean;
  /** 301, 302, 303, 307 or 308. */
  readonly status: number;
}

export interface DirectResponseAction {
  readonly kind: 'direct';
  readonly status: number;
  readonly body?: string;
}

export interface Route {
  readonly name: string;
  readonly match: RouteMatch;
  readonly action: RouteAction | RedirectAction | DirectResponseAction;
  readonly requestHeaders: HeaderMutation;
  readonly responseHeaders: HeaderMutation;
  readonly fault?: FaultPolicy;
}

export interface RouteTable {
  /** The RouteConfiguration name: `inbound-vip|<port>|<proto>|<host>`. */
  readonly name: string;
  /** Routes of the single virtual host, in order: the first match wins. */
  readonly routes: readonly Route[];
}

/** RBAC, as Envoy evaluates it: a policy matches when any principal and any permission match. */
export type RbacPrincipal =
  | { readonly any: true }
  | { readonly principalName: StringMatch }
  | { readonly header: HeaderMatch }
  | { readonly sourceIp: { readonly address: string; readonly prefixLen: number } }
  | { readonly andIds: readonly RbacPrincipal[] }
  | { readonly orIds: readonly RbacPrincipal[] }
  | { readonly notId: RbacPrincipal };

export type RbacPermission =
  | { readonly any: true }
  | { readonly header: HeaderMatch }
  | { readonly urlPath: StringMatch }
  | { readonly destinationPort: number }
  | { readonly andRules: readonly RbacPermission[] }
  | { readonly orRules: readonly RbacPermission[] }
  | { readonly notRule: RbacPermission };

export interface RbacPolicy {
  readonly name: string;
  readonly permissions: readonly RbacPermission[];
  readonly principals: readonly RbacPrincipal[];
}

export interface RbacRules {
  readonly action: 'ALLOW' | 'DENY';
  readonly policies: readonly RbacPolicy[];
}

export type CodecType = 'auto' | 'http1' | 'http2';

export interface HttpChain {
  readonly kind: 'http';
  readonly codec: CodecType;
  /** RouteConfiguration name (RDS). */
  readonly routeConfigName: string;
  /** RBAC filters in filter order (DENY before ALLOW as istiod writes them). */
  readonly rbac: readonly RbacRules[];
  readonly statPrefix: string;
  /** Envoy's `common_http_protocol_options.max_headers_count`; absent, the waypoint's setting. */
  readonly maxHeadersCount?: number;
}

export interface TcpChain {
  readonly kind: 'tcp';
  readonly cluster: string;
  readonly statPrefix: string;
}

export interface FilterChain {
  readonly name: string;
  /** Destination prefixes; empty matches any address. */
  readonly prefixes: ReadonlyArray<{ readonly address: string; readonly prefixLen: number }>;
  /** 0 matches any port. */
  readonly port: number;
  readonly handler: HttpChain | TcpChain;
}

export interface WaypointListener {
  readonly name: string;
  readonly chains: readonly FilterChain[];
}

export type LbPolicy = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'RING_HASH';

export interface CircuitBreakers {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  readonly maxRetries: number;
  /** Retries allowed as a share of active requests (0..100), with a floor of concurrent retries. */
  readonly retryBudget?: { readonly percent: number; readonly minRetryConcurrency: number };
}

export interface OutlierDetection {
  readonly consecutive5xx: number;
  readonly intervalMs: number;
  readonly baseEjectionTimeMs: number;
  readonly maxEjectionPercent: number;
  /** Cap on base x times ejected; absent: Envoy's 300 s (or the base, if larger). */
  readonly maxEjectionTimeMs?: number;
  /** Eject one endpoint even when maxEjectionPercent would not allow it. */
  readonly alwaysEjectOneHost?: boolean;
}

export interface ServiceRef {
  readonly host: string;
  readonly namespace: string;
  readonly name: string;
}

export interface UpstreamCluster {
  readonly name: string;
  readonly connectTimeoutMs: number;
  readonly lbPolicy: LbPolicy;
  readonly circuitBreakers: CircuitBreakers;
  readonly outlierDetection?: OutlierDetection;
  readonly protocol: 'http1' | 'http2';
  /** The destination service, for telemetry labels. */
  readonly service?: ServiceRef;
  /**
   * From the cluster's `common_http_protocol_options`: an upstream connection with no request for
   * this long is closed (0: never; unset: Envoy's default, one hour).
   */
  readonly idleTimeoutMs?: number;
  /** An upstream connection is closed after this many requests (unset: no limit). */
  readonly maxRequestsPerConnection?: number;
  /** An upstream connection older than this takes no new request and closes when idle (unset: no limit). */
  readonly maxConnectionDurationMs?: number;
}

export interface UpstreamEndpoint {
  readonly address: string;
  readonly port: number;
  /** The workload (the pod's owner, e.g. a Deployment), as the control plane names it. */
  readonly workload: string;
  readonly namespace: string;
  /** Telemetry labels from istiod's endpoint `workload` metadata; absent when not sent. */
  readonly canonicalName?: string;
  readonly canonicalRevision?: string;
  readonly clusterId?: string;
  readonly serviceAccount: string;
  /** Parsed by the decoder; absent only for an endpoint outside the mesh (`tunnel: none`). */
  readonly identity?: SpiffeId;
  readonly tunnel: 'hbone' | 'none';
}

export interface WaypointConfig {
  readonly listener?: WaypointListener;
  readonly routes: ReadonlyMap<string, RouteTable>;
  readonly clusters: ReadonlyMap<string, UpstreamCluster>;
  /** By cluster name. */
  readonly endpoints: ReadonlyMap<string, readonly UpstreamEndpoint[]>;
}

/** Limits Envoy treats as unlimited. */
export const UNLIMITED = 0xffffffff;

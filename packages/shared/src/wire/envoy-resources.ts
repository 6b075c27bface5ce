/**
 * The Envoy v3 resources a waypoint receives, typed once for both sides: the waypoint's decoders
 * read them in the shape protobufjs decodes into (camelCase fields; `google.protobuf.Any` keeps
 * `type_url`; unset message fields read as null, unset scalars as their defaults; a oneof's
 * discriminator names its set member), and the control plane writes them as `EnvoyInput<T>` of the
 * same types (every field optional, enums by name, no discriminators) for Envoy's own protos to
 * encode. Only the fields in use are listed, so a field one side starts to use is added here and
 * the other side sees it. These types stop at the xDS boundary on both sides.
 */
import {
  CLUSTER_LOAD_ASSIGNMENT_TYPE,
  CLUSTER_TYPE,
  FAULT_TYPE,
  FILTER_CONFIG_TYPE,
  HCM_TYPE,
  HTTP_PROTOCOL_OPTIONS_TYPE,
  LISTENER_TYPE,
  RBAC_TYPE,
  ROUTE_CONFIGURATION_TYPE,
  ROUTER_TYPE,
  TCP_PROXY_TYPE,
} from './envoy-names.js';

declare const enumNames: unique symbol;

/** An enum field: decodes as its number, is written by name (or number). */
export type WireEnum<Names extends string> = number & { readonly [enumNames]: Names };
/**
 * A oneof's discriminator: names the member that is set when decoding; never written. Recognised
 * by naming fields of its own message.
 */
export type WireOneofCase<Members extends string> = Members;

/**
 * What an encoder writes for a decoded type `T`: every field optional, enums as names or numbers,
 * oneof discriminators left out (the member that is set says it), null not allowed. Fields stay
 * writable so a builder can fill in a message step by step.
 */
export type EnvoyInput<T> = T extends Uint8Array
  ? T
  : T extends { readonly [enumNames]: infer Names }
    ? Names | number
    : T extends string | number | boolean
      ? T
      : T extends readonly (infer E)[]
        ? readonly EnvoyInput<E>[]
        : T extends object
          ? {
              [K in keyof T as [Extract<T[K], keyof T>] extends [never] ? K : never]?: EnvoyInput<
                Exclude<T[K], null | undefined>
              >;
            }
          : T;

/** int64 fields decode as Long (long.js is installed) or number. */
export type WireInt64 = number | { toString(): string };

export interface WireAny {
  type_url: string;
  value: Uint8Array;
}
export interface WireDuration {
  seconds: WireInt64;
  nanos: number;
}
export interface WireUInt32Value {
  value: number;
}
export interface WireBoolValue {
  value: boolean;
}
export interface WireFractionalPercent {
  numerator: number;
  denominator: WireEnum<'HUNDRED' | 'TEN_THOUSAND' | 'MILLION'>;
}
export interface WireValue {
  kind?: WireOneofCase<
    'nullValue' | 'numberValue' | 'stringValue' | 'boolValue' | 'structValue' | 'listValue'
  >;
  nullValue?: WireEnum<'NULL_VALUE'>;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: WireStruct;
  listValue?: { values: WireValue[] };
}
export interface WireStruct {
  fields: Record<string, WireValue>;
}
export interface WireMetadata {
  filterMetadata: Record<string, WireStruct>;
}
export interface WireConfigSource {
  configSourceSpecifier?: WireOneofCase<'path' | 'pathConfigSource' | 'apiConfigSource' | 'ads' | 'self'>;
  /** AggregatedConfigSource: an empty message. */
  ads?: object;
  resourceApiVersion: WireEnum<'AUTO' | 'V2' | 'V3'>;
}
export interface WireCidrRange {
  addressPrefix: string;
  prefixLen: WireUInt32Value | null;
}
export interface WireSocketAddress {
  protocol: WireEnum<'TCP' | 'UDP'>;
  address: string;
  portSpecifier?: WireOneofCase<'portValue' | 'namedPort'>;
  portValue: number;
  namedPort: string;
}
export interface WireAddress {
  address?: WireOneofCase<'socketAddress' | 'pipe' | 'envoyInternalAddress'>;
  socketAddress: WireSocketAddress | null;
}

// Matchers.
export interface WireRegexMatcher {
  regex: string;
}
export interface WireStringMatcher {
  matchPattern?: WireOneofCase<'exact' | 'prefix' | 'suffix' | 'safeRegex' | 'contains' | 'custom'>;
  exact?: string;
  prefix?: string;
  suffix?: string;
  safeRegex?: WireRegexMatcher;
  contains?: string;
  ignoreCase: boolean;
}
export interface WireHeaderMatcher {
  name: string;
  headerMatchSpecifier?: WireOneofCase<
    | 'exactMatch'
    | 'safeRegexMatch'
    | 'rangeMatch'
    | 'presentMatch'
    | 'prefixMatch'
    | 'suffixMatch'
    | 'containsMatch'
    | 'stringMatch'
  >;
  exactMatch?: string;
  safeRegexMatch?: WireRegexMatcher;
  presentMatch?: boolean;
  prefixMatch?: string;
  suffixMatch?: string;
  containsMatch?: string;
  stringMatch?: WireStringMatcher;
  invertMatch: boolean;
  treatMissingHeaderAsEmpty: boolean;
}
export interface WireQueryParameterMatcher {
  name: string;
  queryParameterMatchSpecifier?: WireOneofCase<'stringMatch' | 'presentMatch'>;
  stringMatch?: WireStringMatcher;
  presentMatch?: boolean;
}
export interface WireRegexMatchAndSubstitute {
  pattern: WireRegexMatcher | null;
  substitution: string;
}
export interface WireHeaderValueOption {
  header: { key: string; value: string; rawValue: Uint8Array } | null;
  append: WireBoolValue | null;
  appendAction: WireEnum<
    'APPEND_IF_EXISTS_OR_ADD' | 'ADD_IF_ABSENT' | 'OVERWRITE_IF_EXISTS_OR_ADD' | 'OVERWRITE_IF_EXISTS'
  >;
  keepEmptyValue: boolean;
}

// Listener.
export interface WireFilterChainMatch {
  destinationPort: WireUInt32Value | null;
  prefixRanges: WireCidrRange[];
  addressSuffix: string;
  suffixLen: WireUInt32Value | null;
  directSourcePrefixRanges: WireCidrRange[];
  sourceType: WireEnum<'ANY' | 'SAME_IP_OR_LOOPBACK' | 'EXTERNAL'>;
  sourcePrefixRanges: WireCidrRange[];
  sourcePorts: number[];
  serverNames: string[];
  transportProtocol: string;
  applicationProtocols: string[];
}
export interface WireNetworkFilter {
  name: string;
  configType?: WireOneofCase<'typedConfig' | 'configDiscovery'>;
  typedConfig: WireAny | null;
}
export interface WireFilterChain {
  name: string;
  filterChainMatch: WireFilterChainMatch | null;
  filters: WireNetworkFilter[];
  useProxyProto: WireBoolValue | null;
  transportSocket: unknown;
}
export interface WireListener {
  name: string;
  address: WireAddress | null;
  filterChains: WireFilterChain[];
  filterChainMatcher: unknown;
  defaultFilterChain: unknown;
  apiListener: unknown;
  internalListener?: unknown;
}
export interface WireHttpFilter {
  name: string;
  configType?: WireOneofCase<'typedConfig' | 'configDiscovery'>;
  typedConfig: WireAny | null;
  isOptional: boolean;
  disabled: boolean;
}
export interface WireHttpConnectionManager {
  codecType: WireEnum<'AUTO' | 'HTTP1' | 'HTTP2' | 'HTTP3'>;
  statPrefix: string;
  routeSpecifier?: WireOneofCase<'rds' | 'routeConfig' | 'scopedRoutes'>;
  rds: { configSource: WireConfigSource | null; routeConfigName: string } | null;
  httpFilters: WireHttpFilter[];
  commonHttpProtocolOptions: { maxHeadersCount: { value: number } | null } | null;
}
export interface WireTcpProxy {
  statPrefix: string;
  clusterSpecifier?: WireOneofCase<'cluster' | 'weightedClusters'>;
  cluster?: string;
  tunnelingConfig: unknown;
}

// RBAC.
export interface WirePermission {
  rule?: WireOneofCase<
    | 'andRules'
    | 'orRules'
    | 'any'
    | 'header'
    | 'urlPath'
    | 'destinationIp'
    | 'destinationPort'
    | 'destinationPortRange'
    | 'metadata'
    | 'notRule'
    | 'requestedServerName'
    | 'matcher'
    | 'uriTemplate'
  >;
  andRules?: { rules: WirePermission[] };
  orRules?: { rules: WirePermission[] };
  any?: boolean;
  header?: WireHeaderMatcher;
  urlPath?: { rule?: 'path'; path?: WireStringMatcher };
  destinationPort?: number;
  notRule?: WirePermission;
}
export interface WirePrincipal {
  identifier?: WireOneofCase<
    | 'andIds'
    | 'orIds'
    | 'any'
    | 'authenticated'
    | 'sourceIp'
    | 'directRemoteIp'
    | 'remoteIp'
    | 'header'
    | 'urlPath'
    | 'metadata'
    | 'filterState'
    | 'notId'
  >;
  andIds?: { ids: WirePrincipal[] };
  orIds?: { ids: WirePrincipal[] };
  any?: boolean;
  authenticated?: { principalName: WireStringMatcher | null };
  sourceIp?: WireCidrRange;
  directRemoteIp?: WireCidrRange;
  remoteIp?: WireCidrRange;
  header?: WireHeaderMatcher;
  notId?: WirePrincipal;
}
export interface WireRbacPolicy {
  permissions: WirePermission[];
  principals: WirePrincipal[];
  condition: unknown;
  checkedCondition: unknown;
}
export interface WireRbacFilter {
  rules: { action: WireEnum<'ALLOW' | 'DENY' | 'LOG'>; policies: Record<string, WireRbacPolicy> } | null;
  matcher: unknown;
}

/** envoy.config.route.v3.FilterConfig: a per-route filter config wrapped to mark it optional. */
export interface WireFilterConfig {
  config: WireAny | null;
  isOptional: boolean;
  disabled: boolean;
}

/** envoy.extensions.filters.http.router.v3.Router: the waypoint sets none of its fields. */
export type WireRouter = Record<string, never>;

// Fault.
export interface WireHttpFault {
  delay: {
    faultDelaySecifier?: WireOneofCase<'fixedDelay' | 'headerDelay'>;
    fixedDelay?: WireDuration;
    percentage: WireFractionalPercent | null;
  } | null;
  abort: {
    errorType?: WireOneofCase<'httpStatus' | 'grpcStatus' | 'headerAbort'>;
    httpStatus?: number;
    grpcStatus?: number;
    percentage: WireFractionalPercent | null;
  } | null;
  upstreamCluster: string;
  headers: WireHeaderMatcher[];
  downstreamNodes: string[];
  responseRateLimit: unknown;
}

// Routes.
export interface WireRetryPolicy {
  retryOn: string;
  numRetries: WireUInt32Value | null;
  perTryTimeout: WireDuration | null;
  retriableStatusCodes: number[];
  retryBackOff: { baseInterval: WireDuration | null; maxInterval: WireDuration | null } | null;
  retriableHeaders: WireHeaderMatcher[];
  retriableRequestHeaders: WireHeaderMatcher[];
}
export interface WireRequestMirrorPolicy {
  cluster: string;
  clusterHeader: string;
  runtimeFraction: { defaultValue: WireFractionalPercent | null } | null;
}
export interface WireHashPolicy {
  policySpecifier?: WireOneofCase<
    'header' | 'cookie' | 'connectionProperties' | 'queryParameter' | 'filterState'
  >;
  header?: { headerName: string; regexRewrite: WireRegexMatchAndSubstitute | null };
  connectionProperties?: { sourceIp: boolean };
  terminal: boolean;
}
export interface WireClusterWeight {
  name: string;
  clusterHeader: string;
  weight: WireUInt32Value | null;
  requestHeadersToAdd: WireHeaderValueOption[];
  requestHeadersToRemove: string[];
  responseHeadersToAdd: WireHeaderValueOption[];
  responseHeadersToRemove: string[];
  typedPerFilterConfig: Record<string, WireAny>;
  hostRewriteSpecifier?: WireOneofCase<'hostRewriteLiteral'>;
  hostRewriteLiteral?: string;
}
export interface WireRouteAction {
  clusterSpecifier?: WireOneofCase<
    | 'cluster'
    | 'clusterHeader'
    | 'weightedClusters'
    | 'clusterSpecifierPlugin'
    | 'inlineClusterSpecifierPlugin'
  >;
  cluster?: string;
  weightedClusters?: {
    clusters: WireClusterWeight[];
    totalWeight: WireUInt32Value | null;
    headerName: string;
  };
  prefixRewrite: string;
  regexRewrite: WireRegexMatchAndSubstitute | null;
  pathRewritePolicy: unknown;
  hostRewriteSpecifier?: WireOneofCase<
    'hostRewriteLiteral' | 'autoHostRewrite' | 'hostRewriteHeader' | 'hostRewritePathRegex'
  >;
  hostRewriteLiteral?: string;
  autoHostRewrite?: WireBoolValue;
  timeout: WireDuration | null;
  retryPolicy: WireRetryPolicy | null;
  retryPolicyTypedConfig: unknown;
  requestMirrorPolicies: WireRequestMirrorPolicy[];
  hashPolicy: WireHashPolicy[];
}
export interface WireRedirectAction {
  schemeRewriteSpecifier?: WireOneofCase<'httpsRedirect' | 'schemeRedirect'>;
  httpsRedirect?: boolean;
  schemeRedirect?: string;
  hostRedirect: string;
  portRedirect: number;
  pathRewriteSpecifier?: WireOneofCase<'pathRedirect' | 'prefixRewrite' | 'regexRewrite'>;
  pathRedirect?: string;
  prefixRewrite?: string;
  regexRewrite?: WireRegexMatchAndSubstitute;
  responseCode: WireEnum<
    'MOVED_PERMANENTLY' | 'FOUND' | 'SEE_OTHER' | 'TEMPORARY_REDIRECT' | 'PERMANENT_REDIRECT'
  >;
  stripQuery: boolean;
}
export interface WireRouteMatch {
  pathSpecifier?: WireOneofCase<
    'prefix' | 'path' | 'safeRegex' | 'connectMatcher' | 'pathSeparatedPrefix' | 'pathMatchPolicy'
  >;
  prefix?: string;
  path?: string;
  safeRegex?: WireRegexMatcher;
  caseSensitive: WireBoolValue | null;
  runtimeFraction: unknown;
  headers: WireHeaderMatcher[];
  queryParameters: WireQueryParameterMatcher[];
  grpc: unknown;
  tlsContext: unknown;
  dynamicMetadata: unknown[];
}
export interface WireRoute {
  name: string;
  match: WireRouteMatch | null;
  action?: WireOneofCase<'route' | 'redirect' | 'directResponse' | 'filterAction' | 'nonForwardingAction'>;
  route?: WireRouteAction;
  redirect?: WireRedirectAction;
  directResponse?: {
    status: number;
    body: {
      specifier?: WireOneofCase<'filename' | 'inlineBytes' | 'inlineString' | 'environmentVariable'>;
      inlineBytes?: Uint8Array;
      inlineString?: string;
    } | null;
  };
  typedPerFilterConfig: Record<string, WireAny>;
  requestHeadersToAdd: WireHeaderValueOption[];
  requestHeadersToRemove: string[];
  responseHeadersToAdd: WireHeaderValueOption[];
  responseHeadersToRemove: string[];
}
export interface WireVirtualHost {
  name: string;
  domains: string[];
  routes: WireRoute[];
  matcher: unknown;
  requireTls: WireEnum<'NONE' | 'EXTERNAL_ONLY' | 'ALL'>;
  requestHeadersToAdd: WireHeaderValueOption[];
  requestHeadersToRemove: string[];
  responseHeadersToAdd: WireHeaderValueOption[];
  responseHeadersToRemove: string[];
  typedPerFilterConfig: Record<string, WireAny>;
  retryPolicy: WireRetryPolicy | null;
  requestMirrorPolicies: WireRequestMirrorPolicy[];
}
export interface WireRouteConfiguration {
  name: string;
  virtualHosts: WireVirtualHost[];
  vhds: unknown;
  requestHeadersToAdd: WireHeaderValueOption[];
  requestHeadersToRemove: string[];
  responseHeadersToAdd: WireHeaderValueOption[];
  responseHeadersToRemove: string[];
  typedPerFilterConfig: Record<string, WireAny>;
  requestMirrorPolicies: WireRequestMirrorPolicy[];
  clusterSpecifierPlugins: unknown[];
}

// Clusters.
export interface WireThresholds {
  priority: WireEnum<'DEFAULT' | 'HIGH'>;
  maxConnections: WireUInt32Value | null;
  maxPendingRequests: WireUInt32Value | null;
  maxRequests: WireUInt32Value | null;
  maxRetries: WireUInt32Value | null;
  retryBudget: {
    budgetPercent: { value: number } | null;
    minRetryConcurrency: WireUInt32Value | null;
  } | null;
}
export interface WireOutlierDetection {
  consecutive_5xx: WireUInt32Value | null;
  interval: WireDuration | null;
  baseEjectionTime: WireDuration | null;
  maxEjectionPercent: WireUInt32Value | null;
  enforcingConsecutive_5xx: WireUInt32Value | null;
  enforcingConsecutiveGatewayFailure: WireUInt32Value | null;
  enforcingFailurePercentage: WireUInt32Value | null;
  enforcingConsecutiveLocalOriginFailure: WireUInt32Value | null;
  enforcingLocalOriginSuccessRate: WireUInt32Value | null;
  enforcingFailurePercentageLocalOrigin: WireUInt32Value | null;
  splitExternalLocalOriginErrors: boolean;
  maxEjectionTime: WireDuration | null;
  alwaysEjectOneHost: WireBoolValue | null;
}
export interface WireHttpProtocolOptions {
  upstreamProtocolOptions?: WireOneofCase<
    'explicitHttpConfig' | 'useDownstreamProtocolConfig' | 'autoConfig'
  >;
  explicitHttpConfig?: {
    protocolConfig?: WireOneofCase<'httpProtocolOptions' | 'http2ProtocolOptions' | 'http3ProtocolOptions'>;
    httpProtocolOptions?: object;
    http2ProtocolOptions?: object;
  };
  httpFilters: unknown[];
  commonHttpProtocolOptions: WireCommonHttpProtocolOptions | null;
}
/** envoy.config.core.v3.HttpProtocolOptions: a cluster's upstream connection options. */
export interface WireCommonHttpProtocolOptions {
  idleTimeout: WireDuration | null;
  maxConnectionDuration: WireDuration | null;
  maxHeadersCount: WireUInt32Value | null;
  maxResponseHeadersKb: WireUInt32Value | null;
  maxStreamDuration: WireDuration | null;
  headersWithUnderscoresAction: WireEnum<'ALLOW' | 'REJECT_REQUEST' | 'DROP_HEADER'>;
  maxRequestsPerConnection: WireUInt32Value | null;
}
export interface WireCluster {
  name: string;
  clusterDiscoveryType?: WireOneofCase<'type' | 'clusterType'>;
  type: WireEnum<'STATIC' | 'STRICT_DNS' | 'LOGICAL_DNS' | 'EDS' | 'ORIGINAL_DST'>;
  edsClusterConfig: { edsConfig: WireConfigSource | null; serviceName: string } | null;
  connectTimeout: WireDuration | null;
  lbPolicy: WireEnum<
    | 'ROUND_ROBIN'
    | 'LEAST_REQUEST'
    | 'RING_HASH'
    | 'RANDOM'
    | 'MAGLEV'
    | 'CLUSTER_PROVIDED'
    | 'LOAD_BALANCING_POLICY_CONFIG'
  >;
  loadBalancingPolicy: unknown;
  lbSubsetConfig: unknown;
  circuitBreakers: { thresholds: WireThresholds[]; perHostThresholds: WireThresholds[] } | null;
  outlierDetection: WireOutlierDetection | null;
  healthChecks: unknown[];
  http2ProtocolOptions: unknown;
  typedExtensionProtocolOptions: Record<string, WireAny>;
  protocolSelection: WireEnum<'USE_CONFIGURED_PROTOCOL' | 'USE_DOWNSTREAM_PROTOCOL'>;
  transportSocket: unknown;
  transportSocketMatches: unknown[];
  filters: unknown[];
  metadata: WireMetadata | null;
}

// Endpoints.
export interface WireLbEndpoint {
  hostIdentifier?: WireOneofCase<'endpoint' | 'endpointName'>;
  endpoint?: { address: WireAddress | null };
  healthStatus: WireEnum<'UNKNOWN' | 'HEALTHY' | 'UNHEALTHY' | 'DRAINING' | 'TIMEOUT' | 'DEGRADED'>;
  metadata: WireMetadata | null;
}
export interface WireClusterLoadAssignment {
  clusterName: string;
  endpoints: Array<{
    lbEndpoints: WireLbEndpoint[];
    lbConfig?: WireOneofCase<'loadBalancerEndpoints' | 'ledsClusterLocalityConfig'>;
    priority: number;
  }>;
}

/** Each message the two sides exchange, by its full name: the resources and the typed configs. */
export interface EnvoyMessages {
  [LISTENER_TYPE]: WireListener;
  [ROUTE_CONFIGURATION_TYPE]: WireRouteConfiguration;
  [CLUSTER_TYPE]: WireCluster;
  [CLUSTER_LOAD_ASSIGNMENT_TYPE]: WireClusterLoadAssignment;
  [HCM_TYPE]: WireHttpConnectionManager;
  [TCP_PROXY_TYPE]: WireTcpProxy;
  [RBAC_TYPE]: WireRbacFilter;
  [FAULT_TYPE]: WireHttpFault;
  [ROUTER_TYPE]: WireRouter;
  [HTTP_PROTOCOL_OPTIONS_TYPE]: WireHttpProtocolOptions;
  [FILTER_CONFIG_TYPE]: WireFilterConfig;
}
export type EnvoyMessageName = keyof EnvoyMessages;

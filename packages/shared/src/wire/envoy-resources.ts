/**
 * The shapes protobufjs decodes Envoy's messages into (camelCase fields; `google.protobuf.Any`
 * keeps `type_url`), limited to the fields the decoders read. Unset message fields read as null,
 * unset scalars as their defaults, and a oneof's discriminator names its set member. These types
 * never leave src/xds.
 */

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
  denominator: number;
}
export interface WireValue {
  kind?: 'nullValue' | 'numberValue' | 'stringValue' | 'boolValue' | 'structValue' | 'listValue';
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
  configSourceSpecifier?: 'path' | 'pathConfigSource' | 'apiConfigSource' | 'ads' | 'self';
}
export interface WireCidrRange {
  addressPrefix: string;
  prefixLen: WireUInt32Value | null;
}
export interface WireSocketAddress {
  protocol: number;
  address: string;
  portSpecifier?: 'portValue' | 'namedPort';
  portValue: number;
  namedPort: string;
}
export interface WireAddress {
  address?: 'socketAddress' | 'pipe' | 'envoyInternalAddress';
  socketAddress: WireSocketAddress | null;
}

// Matchers.
export interface WireRegexMatcher {
  regex: string;
}
export interface WireStringMatcher {
  matchPattern?: 'exact' | 'prefix' | 'suffix' | 'safeRegex' | 'contains' | 'custom';
  exact?: string;
  prefix?: string;
  suffix?: string;
  safeRegex?: WireRegexMatcher;
  contains?: string;
  ignoreCase: boolean;
}
export interface WireHeaderMatcher {
  name: string;
  headerMatchSpecifier?:
    | 'exactMatch'
    | 'safeRegexMatch'
    | 'rangeMatch'
    | 'presentMatch'
    | 'prefixMatch'
    | 'suffixMatch'
    | 'containsMatch'
    | 'stringMatch';
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
  queryParameterMatchSpecifier?: 'stringMatch' | 'presentMatch';
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
  appendAction: number;
  keepEmptyValue: boolean;
}

// Listener.
export interface WireFilterChainMatch {
  destinationPort: WireUInt32Value | null;
  prefixRanges: WireCidrRange[];
  addressSuffix: string;
  suffixLen: WireUInt32Value | null;
  directSourcePrefixRanges: WireCidrRange[];
  sourceType: number;
  sourcePrefixRanges: WireCidrRange[];
  sourcePorts: number[];
  serverNames: string[];
  transportProtocol: string;
  applicationProtocols: string[];
}
export interface WireNetworkFilter {
  name: string;
  configType?: 'typedConfig' | 'configDiscovery';
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
  configType?: 'typedConfig' | 'configDiscovery';
  typedConfig: WireAny | null;
  isOptional: boolean;
  disabled: boolean;
}
export interface WireHttpConnectionManager {
  codecType: number;
  statPrefix: string;
  routeSpecifier?: 'rds' | 'routeConfig' | 'scopedRoutes';
  rds: { configSource: WireConfigSource | null; routeConfigName: string } | null;
  httpFilters: WireHttpFilter[];
  commonHttpProtocolOptions: { maxHeadersCount: { value: number } | null } | null;
}
export interface WireTcpProxy {
  statPrefix: string;
  clusterSpecifier?: 'cluster' | 'weightedClusters';
  cluster?: string;
  tunnelingConfig: unknown;
}

// RBAC.
export interface WirePermission {
  rule?:
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
    | 'uriTemplate';
  andRules?: { rules: WirePermission[] };
  orRules?: { rules: WirePermission[] };
  any?: boolean;
  header?: WireHeaderMatcher;
  urlPath?: { rule?: 'path'; path?: WireStringMatcher };
  destinationPort?: number;
  notRule?: WirePermission;
}
export interface WirePrincipal {
  identifier?:
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
    | 'notId';
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
  rules: { action: number; policies: Record<string, WireRbacPolicy> } | null;
  matcher: unknown;
}

// Fault.
export interface WireHttpFault {
  delay: {
    faultDelaySecifier?: 'fixedDelay' | 'headerDelay';
    fixedDelay?: WireDuration;
    percentage: WireFractionalPercent | null;
  } | null;
  abort: {
    errorType?: 'httpStatus' | 'grpcStatus' | 'headerAbort';
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
  policySpecifier?: 'header' | 'cookie' | 'connectionProperties' | 'queryParameter' | 'filterState';
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
  hostRewriteSpecifier?: 'hostRewriteLiteral';
}
export interface WireRouteAction {
  clusterSpecifier?:
    | 'cluster'
    | 'clusterHeader'
    | 'weightedClusters'
    | 'clusterSpecifierPlugin'
    | 'inlineClusterSpecifierPlugin';
  cluster?: string;
  weightedClusters?: {
    clusters: WireClusterWeight[];
    totalWeight: WireUInt32Value | null;
    headerName: string;
  };
  prefixRewrite: string;
  regexRewrite: WireRegexMatchAndSubstitute | null;
  pathRewritePolicy: unknown;
  hostRewriteSpecifier?:
    | 'hostRewriteLiteral'
    | 'autoHostRewrite'
    | 'hostRewriteHeader'
    | 'hostRewritePathRegex';
  hostRewriteLiteral?: string;
  autoHostRewrite?: WireBoolValue;
  timeout: WireDuration | null;
  retryPolicy: WireRetryPolicy | null;
  retryPolicyTypedConfig: unknown;
  requestMirrorPolicies: WireRequestMirrorPolicy[];
  hashPolicy: WireHashPolicy[];
}
export interface WireRedirectAction {
  schemeRewriteSpecifier?: 'httpsRedirect' | 'schemeRedirect';
  httpsRedirect?: boolean;
  schemeRedirect?: string;
  hostRedirect: string;
  portRedirect: number;
  pathRewriteSpecifier?: 'pathRedirect' | 'prefixRewrite' | 'regexRewrite';
  pathRedirect?: string;
  prefixRewrite?: string;
  regexRewrite?: WireRegexMatchAndSubstitute;
  responseCode: number;
  stripQuery: boolean;
}
export interface WireRouteMatch {
  pathSpecifier?:
    | 'prefix'
    | 'path'
    | 'safeRegex'
    | 'connectMatcher'
    | 'pathSeparatedPrefix'
    | 'pathMatchPolicy';
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
  action?: 'route' | 'redirect' | 'directResponse' | 'filterAction' | 'nonForwardingAction';
  route?: WireRouteAction;
  redirect?: WireRedirectAction;
  directResponse?: {
    status: number;
    body: {
      specifier?: 'filename' | 'inlineBytes' | 'inlineString' | 'environmentVariable';
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
  requireTls: number;
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
  priority: number;
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
  upstreamProtocolOptions?: 'explicitHttpConfig' | 'useDownstreamProtocolConfig' | 'autoConfig';
  explicitHttpConfig?: {
    protocolConfig?: 'httpProtocolOptions' | 'http2ProtocolOptions' | 'http3ProtocolOptions';
  };
  httpFilters: unknown[];
}
export interface WireCluster {
  name: string;
  clusterDiscoveryType?: 'type' | 'clusterType';
  type: number;
  edsClusterConfig: { edsConfig: WireConfigSource | null; serviceName: string } | null;
  connectTimeout: WireDuration | null;
  lbPolicy: number;
  loadBalancingPolicy: unknown;
  lbSubsetConfig: unknown;
  circuitBreakers: { thresholds: WireThresholds[]; perHostThresholds: WireThresholds[] } | null;
  outlierDetection: WireOutlierDetection | null;
  healthChecks: unknown[];
  http2ProtocolOptions: unknown;
  typedExtensionProtocolOptions: Record<string, WireAny>;
  protocolSelection: number;
  transportSocket: unknown;
  transportSocketMatches: unknown[];
  filters: unknown[];
  metadata: WireMetadata | null;
}

// Endpoints.
export interface WireLbEndpoint {
  hostIdentifier?: 'endpoint' | 'endpointName';
  endpoint?: { address: WireAddress | null };
  healthStatus: number;
  metadata: WireMetadata | null;
}
export interface WireClusterLoadAssignment {
  clusterName: string;
  endpoints: Array<{
    lbEndpoints: WireLbEndpoint[];
    lbConfig?: 'loadBalancerEndpoints' | 'ledsClusterLocalityConfig';
    priority: number;
  }>;
}

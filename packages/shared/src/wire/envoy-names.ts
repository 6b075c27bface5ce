/**
 * Names from Envoy's v3 API that the control plane writes and the waypoint reads: message names of
 * the resources and of the typed configs they carry, the filters' well-known names, and the retry
 * conditions (`retry_on` tokens) the waypoint implements. One list here, so neither side can name
 * something the other does not know.
 */

/** Message names of the four resource types a waypoint receives. */
export const LISTENER_TYPE = 'envoy.config.listener.v3.Listener';
export const ROUTE_CONFIGURATION_TYPE = 'envoy.config.route.v3.RouteConfiguration';
export const CLUSTER_TYPE = 'envoy.config.cluster.v3.Cluster';
export const CLUSTER_LOAD_ASSIGNMENT_TYPE = 'envoy.config.endpoint.v3.ClusterLoadAssignment';

/** Message names of the typed configs the waypoint understands. */
export const HCM_TYPE = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
export const TCP_PROXY_TYPE = 'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
export const RBAC_TYPE = 'envoy.extensions.filters.http.rbac.v3.RBAC';
export const FAULT_TYPE = 'envoy.extensions.filters.http.fault.v3.HTTPFault';
export const ROUTER_TYPE = 'envoy.extensions.filters.http.router.v3.Router';
export const HTTP_PROTOCOL_OPTIONS_TYPE = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
export const FILTER_CONFIG_TYPE = 'envoy.config.route.v3.FilterConfig';

/** Envoy's well-known filter names (the `name` of a filter, and the key of per-route configs). */
export const HCM_FILTER = 'envoy.filters.network.http_connection_manager';
export const TCP_PROXY_FILTER = 'envoy.filters.network.tcp_proxy';
export const RBAC_FILTER = 'envoy.filters.http.rbac';
export const FAULT_FILTER = 'envoy.filters.http.fault';
export const ROUTER_FILTER = 'envoy.filters.http.router';

/**
 * The `retry_on` conditions the waypoint implements (Envoy's names, which Istio's VirtualService
 * `retryOn` also uses): a route asking for another is refused rather than retried differently.
 */
export const ENVOY_RETRY_ON = [
  '5xx',
  'gateway-error',
  'connect-failure',
  'reset',
  'refused-stream',
  'retriable-status-codes',
  'unavailable',
  'cancelled',
] as const;
export type EnvoyRetryOn = (typeof ENVOY_RETRY_ON)[number];

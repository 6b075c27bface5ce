/**
 * The Envoy v3 definitions a waypoint decodes (docs/waypoint-xds.md): the four resource types and
 * the extensions their typed configs may carry. Loaded through the shared, memoized loader.
 */
import { loadProtos } from '@ambient/shared';
import type protobuf from 'protobufjs';

export const LISTENER_TYPE_URL = 'type.googleapis.com/envoy.config.listener.v3.Listener';
export const ROUTE_CONFIGURATION_TYPE_URL = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';
export const CLUSTER_TYPE_URL = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
export const CLUSTER_LOAD_ASSIGNMENT_TYPE_URL =
  'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';

/** Message names of the typed configs the waypoint understands. */
export const HCM_TYPE = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
export const TCP_PROXY_TYPE = 'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
export const RBAC_TYPE = 'envoy.extensions.filters.http.rbac.v3.RBAC';
export const FAULT_TYPE = 'envoy.extensions.filters.http.fault.v3.HTTPFault';
export const ROUTER_TYPE = 'envoy.extensions.filters.http.router.v3.Router';
export const HTTP_PROTOCOL_OPTIONS_TYPE = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
export const FILTER_CONFIG_TYPE = 'envoy.config.route.v3.FilterConfig';

export const WAYPOINT_ENVOY_FILES = [
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
] as const;

/** The Root holding the waypoint's Envoy types (parsed once per process by loadProtos). */
export function envoyProtos(): protobuf.Root {
  return loadProtos(WAYPOINT_ENVOY_FILES);
}

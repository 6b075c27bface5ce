/**
 * The Envoy v3 definitions a waypoint decodes (docs/waypoint-xds.md): the four resource types and
 * the extensions their typed configs may carry. Loaded through the shared, memoized loader.
 */
import { envoyWaypointProtos } from '@ambient/shared';

// Protocol facts shared with the control plane; re-exported for the waypoint's decoders.
export {
  CLUSTER_LOAD_ASSIGNMENT_TYPE_URL,
  CLUSTER_TYPE_URL,
  ENVOY_WAYPOINT_FILES,
  LISTENER_TYPE_URL,
  ROUTE_CONFIGURATION_TYPE_URL,
} from '@ambient/shared';

/** Message names of the typed configs the waypoint understands. */
export const HCM_TYPE = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
export const TCP_PROXY_TYPE = 'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
export const RBAC_TYPE = 'envoy.extensions.filters.http.rbac.v3.RBAC';
export const FAULT_TYPE = 'envoy.extensions.filters.http.fault.v3.HTTPFault';
export const ROUTER_TYPE = 'envoy.extensions.filters.http.router.v3.Router';
export const HTTP_PROTOCOL_OPTIONS_TYPE = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
export const FILTER_CONFIG_TYPE = 'envoy.config.route.v3.FilterConfig';

/** The Root holding the waypoint's Envoy types (parsed once per process). */
export const envoyProtos = envoyWaypointProtos;

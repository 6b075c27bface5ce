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
  FAULT_TYPE,
  FILTER_CONFIG_TYPE,
  HCM_TYPE,
  HTTP_PROTOCOL_OPTIONS_TYPE,
  LISTENER_TYPE_URL,
  RBAC_TYPE,
  ROUTE_CONFIGURATION_TYPE_URL,
  ROUTER_TYPE,
  TCP_PROXY_TYPE,
} from '@ambient/shared';

/** The Root holding the waypoint's Envoy types (parsed once per process). */
export const envoyProtos = envoyWaypointProtos;

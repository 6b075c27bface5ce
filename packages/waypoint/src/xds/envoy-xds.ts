/**
 * The Envoy v3 resource types a waypoint subscribes to (docs/waypoint-xds.md), as XdsResourceType
 * decoders for the shared Delta ADS client: bytes in, a frozen domain value or every problem with
 * its field path out. Nothing behind this module sees a wire type.
 */
import {
  CLUSTER_LOAD_ASSIGNMENT_TYPE,
  CLUSTER_TYPE,
  type EnvoyMessageName,
  type EnvoyMessages,
  fail,
  LISTENER_TYPE,
  ok,
  type Result,
  ROUTE_CONFIGURATION_TYPE,
  type XdsResourceType,
} from '@ambient/shared';
import type { RouteTable, UpstreamCluster, WaypointListener } from '../config/waypoint-config.js';
import { decodeCluster } from './decode-cluster.js';
import { DecodeContext, deepFreeze } from './decode-context.js';
import { type ClusterEndpoints, decodeClusterLoadAssignment } from './decode-endpoints.js';
import { decodeListener } from './decode-listener.js';
import { decodeRouteConfiguration } from './decode-route.js';
import {
  CLUSTER_LOAD_ASSIGNMENT_TYPE_URL,
  CLUSTER_TYPE_URL,
  envoyProtos,
  LISTENER_TYPE_URL,
  ROUTE_CONFIGURATION_TYPE_URL,
} from './envoy-protos.js';

export type { ClusterEndpoints } from './decode-endpoints.js';

function resourceType<N extends EnvoyMessageName, T>(
  typeUrl: string,
  messageName: N,
  decode: (wire: EnvoyMessages[N], name: string, ctx: DecodeContext) => T,
): XdsResourceType<T> {
  const root = envoyProtos();
  const type = root.lookupType(messageName);
  return {
    typeUrl,
    decode(value, name): Result<T> {
      let wire: EnvoyMessages[N];
      try {
        // Read in place: unset fields come from the message prototype, nothing is copied.
        wire = type.decode(value) as unknown as EnvoyMessages[N];
      } catch (err) {
        return fail({ path: '', message: `${messageName} does not decode: ${(err as Error).message}` });
      }
      const ctx = new DecodeContext(root);
      let result: T;
      try {
        result = decode(wire, name, ctx);
      } catch (err) {
        // A decoder bug must cost one NACK, never the process.
        return fail({ path: '', message: `${messageName} could not be decoded: ${(err as Error).message}` });
      }
      return ctx.problems.length ? fail(ctx.problems) : ok(deepFreeze(result));
    },
  };
}

export function listenerResourceType(): XdsResourceType<WaypointListener> {
  return resourceType(LISTENER_TYPE_URL, LISTENER_TYPE, decodeListener);
}

export function routeConfigurationResourceType(): XdsResourceType<RouteTable> {
  return resourceType(ROUTE_CONFIGURATION_TYPE_URL, ROUTE_CONFIGURATION_TYPE, decodeRouteConfiguration);
}

export function clusterResourceType(): XdsResourceType<UpstreamCluster> {
  return resourceType(CLUSTER_TYPE_URL, CLUSTER_TYPE, decodeCluster);
}

export function clusterLoadAssignmentResourceType(): XdsResourceType<ClusterEndpoints> {
  return resourceType(
    CLUSTER_LOAD_ASSIGNMENT_TYPE_URL,
    CLUSTER_LOAD_ASSIGNMENT_TYPE,
    decodeClusterLoadAssignment,
  );
}

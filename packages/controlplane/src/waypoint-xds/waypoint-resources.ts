/**
 * What the control plane sends each waypoint (docs/waypoint-xds.md): for every Gateway of class
 * istio-waypoint, a Listener `waypoint` with one filter chain per served service port, a
 * RouteConfiguration per HTTP port (from HTTPRoutes, else a VirtualService, else a default route),
 * the Clusters those routes can reach (with DestinationRule subsets and traffic policy), and a
 * ClusterLoadAssignment per cluster with the pods behind it.
 *
 * A service is served by a waypoint when workload discovery puts that waypoint on it (so ztunnel
 * and the waypoint never disagree; that includes the services selecting the pods of a legacy
 * `istio.io/for-service-account` gateway). A pod whose workload carries the waypoint (`istio.io/waypoint-for`
 * workload or all) is served at its own address: one chain per port of the services selecting
 * it, matched on the pod IP and target port, with the default route to that pod alone. Resources are built as plain objects in Envoy's v3 shape and
 * encoded with Envoy's protos; problems that do not invalidate an object (a backend that does not
 * exist, a policy field a waypoint cannot check) become notices and the rest is served.
 */
import {
  CLUSTER_LOAD_ASSIGNMENT_TYPE,
  CLUSTER_TYPE,
  type EnvoyInput,
  LISTENER_TYPE,
  ROUTE_CONFIGURATION_TYPE,
  type WireFilterChain,
} from '@ambient/shared';
import {
  GATEWAY_NAME_LABEL,
  type MeshModel,
  type ModelProblem,
  matchesSelector,
} from '../ambient/mesh-model.js';
import type { GatewayObject, KubeObject, ServiceObject } from '../manifests/kube-objects.js';
import {
  BuildContext,
  byName,
  type ClusterEntry,
  indexObjects,
  type SvcPort,
  WAYPOINT_LISTENER_NAME,
  type WaypointResourceOptions,
} from './build-context.js';
import { buildCluster, ClusterSet } from './cluster-builder.js';
import { buildLoadAssignment } from './endpoints-builder.js';
import {
  CLUSTER_LOAD_ASSIGNMENT_TYPE_URL,
  CLUSTER_TYPE_URL,
  EnvoyEncoder,
  LISTENER_TYPE_URL,
  ROUTE_CONFIGURATION_TYPE_URL,
} from './envoy-encoder.js';
import { ListenerBuilder } from './listener-builder.js';
import { RouteBuilder } from './route-builder.js';

export {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_RETRIES,
  DEFAULT_RETRY_ON,
  fractionalPercent,
  portProtocol,
  UNLIMITED,
  WAYPOINT_LISTENER_NAME,
  type WaypointProtocol,
  type WaypointResourceOptions,
  waypointClusterName,
} from './build-context.js';

export interface WaypointResourceSet {
  /** The Gateway, `namespace/name`. */
  readonly gateway: string;
  /** Encoded resources (the bare message, not wrapped in a Resource) by type URL, then name. */
  readonly resources: ReadonlyMap<string, ReadonlyMap<string, Uint8Array>>;
}

export interface WaypointResources {
  /** By Gateway `namespace/name`. */
  readonly byGateway: ReadonlyMap<string, WaypointResourceSet>;
  /** Notices: what was left out of the waypoints' config, and why. */
  readonly problems: readonly ModelProblem[];
}

/** Services this waypoint serves, by namespace and name. */
function servedServices(b: BuildContext, gw: GatewayObject): ServiceObject[] {
  const { namespace, name } = gw.metadata;
  const gwHost = b.hostname(name, namespace);
  const out = new Set<ServiceObject>();
  for (const svc of b.ix.services.values()) {
    // The waypoint's own Service selects the waypoint pods: serving it would loop.
    if (svc.selector?.[GATEWAY_NAME_LABEL] !== undefined) continue;
    const a = b.model.addresses.get(
      `${svc.metadata.namespace}/${b.hostname(svc.metadata.name, svc.metadata.namespace)}`,
    );
    const wp = a && 'service' in a ? a.service.waypoint : undefined;
    if (wp && wp.hostname.hostname === gwHost && wp.hostname.namespace === namespace) out.add(svc);
  }
  return [...out].sort(byName);
}

/**
 * The ports of the pods this waypoint serves as a workload waypoint (their workload carries it):
 * each port of each service selecting the pod, at the pod's own address and target port.
 */
function servedPodPorts(b: BuildContext, gw: GatewayObject): SvcPort[] {
  const { namespace, name } = gw.metadata;
  const gwHost = b.hostname(name, namespace);
  const out = new Map<string, SvcPort>();
  for (const a of b.model.addresses.values()) {
    if (!('workload' in a)) continue;
    const w = a.workload;
    const wp = w.waypoint?.hostname;
    if (!wp || wp.hostname !== gwHost || wp.namespace !== namespace) continue;
    const pod = (b.ix.podsByNs.get(w.namespace) ?? []).find((p) => p.metadata.name === w.name);
    if (!pod?.running || pod.podIps.length === 0) continue;
    for (const svc of [...(b.ix.servicesByNs.get(w.namespace) ?? [])].sort(byName)) {
      const sel = svc.selector;
      if (!sel || Object.keys(sel).length === 0 || !matchesSelector(sel, pod.metadata.labels)) continue;
      for (const port of svc.ports) {
        const target =
          typeof port.targetPort === 'number' ? port.targetPort : pod.namedPorts[port.targetPort];
        if (target === undefined) continue;
        // One chain per pod address and port: the first service by name names it.
        const key = `${pod.podIps[0]}:${target}`;
        if (!out.has(key)) out.set(key, b.podPort(svc, port, pod, target));
      }
    }
  }
  return [...out.values()];
}

/** One gateway's resources, encoded: its listener, and the routes, clusters and endpoints it reaches. */
function gatewayResources(b: BuildContext, gw: GatewayObject): WaypointResourceSet {
  const enc = b.encoder;
  const clusterSet = new ClusterSet(b);
  const listenerBuilder = new ListenerBuilder(b, gw);
  const routeBuilder = new RouteBuilder(b, clusterSet);
  const ports = servedServices(b, gw)
    .filter((svc) => svc.clusterIps.length > 0)
    .flatMap((svc) => svc.ports.map((p) => b.svcPort(svc, p)))
    .concat(servedPodPorts(b, gw));
  const chains: EnvoyInput<WireFilterChain>[] = [];
  const routes = new Map<string, Uint8Array>();
  for (const sp of ports) {
    clusterSet.add(sp);
    chains.push(listenerBuilder.filterChain(sp));
    if (sp.proto !== 'tcp')
      routes.set(sp.name, enc.encode(ROUTE_CONFIGURATION_TYPE, routeBuilder.routeConfiguration(sp)));
  }
  const listener = listenerBuilder.listener(chains);
  const clusters = new Map<string, Uint8Array>();
  const endpoints = new Map<string, Uint8Array>();
  for (const name of [...clusterSet.entries.keys()].sort()) {
    const e = clusterSet.entries.get(name) as ClusterEntry;
    clusters.set(name, enc.encode(CLUSTER_TYPE, buildCluster(b, name, e)));
    endpoints.set(name, enc.encode(CLUSTER_LOAD_ASSIGNMENT_TYPE, buildLoadAssignment(b, name, e)));
  }
  return {
    gateway: `${gw.metadata.namespace}/${gw.metadata.name}`,
    resources: new Map<string, ReadonlyMap<string, Uint8Array>>([
      [LISTENER_TYPE_URL, new Map([[WAYPOINT_LISTENER_NAME, enc.encode(LISTENER_TYPE, listener)]])],
      [ROUTE_CONFIGURATION_TYPE_URL, routes],
      [CLUSTER_TYPE_URL, clusters],
      [CLUSTER_LOAD_ASSIGNMENT_TYPE_URL, endpoints],
    ]),
  };
}

/**
 * Computes every waypoint's resources from the cluster's objects and the workload model (which
 * says which waypoint serves each service). Stateless between builds: outputs are encoded bytes,
 * and the xDS server versions them by content, so unchanged resources are not sent again.
 */
export class WaypointResourceBuilder {
  constructor(
    private readonly options: WaypointResourceOptions,
    private readonly encoder: EnvoyEncoder = new EnvoyEncoder(),
  ) {}

  build(objects: ReadonlyMap<string, KubeObject>, model: MeshModel): WaypointResources {
    const ix = indexObjects(objects);
    const b = new BuildContext(ix, model, this.options, this.encoder);
    const byGateway = new Map<string, WaypointResourceSet>();
    for (const gw of ix.gateways) {
      const set = gatewayResources(b, gw);
      byGateway.set(set.gateway, set);
    }
    return { byGateway, problems: b.problems() };
  }
}

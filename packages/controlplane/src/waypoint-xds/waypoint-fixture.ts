/**
 * Objects and decoding helpers the waypoint xDS generator's tests share: a cluster of manifests built
 * into every gateway's resources, then decoded back with Envoy's protos for field-by-field checks.
 */
import { expect } from 'vitest';
import { MeshModelBuilder } from '../ambient/mesh-model.js';
import { decodeManifest, type KubeObject, objectKey } from '../manifests/kube-objects.js';
import {
  CLUSTER_LOAD_ASSIGNMENT_TYPE_URL,
  CLUSTER_TYPE_URL,
  EnvoyEncoder,
  LISTENER_TYPE_URL,
  ROUTE_CONFIGURATION_TYPE_URL,
} from './envoy-encoder.js';
import { DEFAULT_RETRY_ON, WaypointResourceBuilder, type WaypointResources } from './waypoint-resources.js';

// biome-ignore lint/suspicious/noExplicitAny: decoded protobuf messages are checked field by field
export type D = any;

export const enc = new EnvoyEncoder();
export const TD = 'cluster.local';
export const HOST = 'echo.demo.svc.cluster.local';
export const C80 = `inbound-vip|80|http|${HOST}`;
export const AMBIENT = { 'istio.io/dataplane-mode': 'ambient' };

export function objects(docs: unknown[]): Map<string, KubeObject> {
  const map = new Map<string, KubeObject>();
  for (const doc of docs) {
    const r = decodeManifest(doc);
    if (r.ok !== true) throw new Error(`invalid test manifest: ${JSON.stringify(r)}`);
    map.set(objectKey(r.value), r.value);
  }
  return map;
}

export function build(...docs: unknown[]): WaypointResources {
  const objs = objects(docs);
  const model = new MeshModelBuilder({
    clusterId: 'Kubernetes',
    trustDomain: TD,
    rootNamespace: 'istio-system',
    domainSuffix: 'cluster.local',
  }).build(objs);
  return new WaypointResourceBuilder({ trustDomain: TD, domainSuffix: 'cluster.local' }, enc).build(
    objs,
    model,
  );
}

export const TYPES: Record<string, string> = {
  [LISTENER_TYPE_URL]: 'envoy.config.listener.v3.Listener',
  [ROUTE_CONFIGURATION_TYPE_URL]: 'envoy.config.route.v3.RouteConfiguration',
  [CLUSTER_TYPE_URL]: 'envoy.config.cluster.v3.Cluster',
  [CLUSTER_LOAD_ASSIGNMENT_TYPE_URL]: 'envoy.config.endpoint.v3.ClusterLoadAssignment',
};

export interface Decoded {
  listener: D;
  routes: Map<string, D>;
  clusters: Map<string, D>;
  endpoints: Map<string, D>;
}

/** Decodes every resource of a gateway, checking each is stored under its own name. */
export function decoded(r: WaypointResources, gateway = 'demo/waypoint'): Decoded {
  const set = r.byGateway.get(gateway);
  if (!set) throw new Error(`no resources for ${gateway}: ${[...r.byGateway.keys()]}`);
  const of = (url: string) => {
    const out = new Map<string, D>();
    for (const [name, bytes] of set.resources.get(url) ?? []) {
      const msg = enc.decode(TYPES[url] as string, bytes);
      expect(msg.name ?? msg.clusterName).toBe(name);
      out.set(name, msg);
    }
    return out;
  };
  const listeners = of(LISTENER_TYPE_URL);
  expect([...listeners.keys()]).toEqual(['waypoint']);
  return {
    listener: listeners.get('waypoint'),
    routes: of(ROUTE_CONFIGURATION_TYPE_URL),
    clusters: of(CLUSTER_TYPE_URL),
    endpoints: of(CLUSTER_LOAD_ASSIGNMENT_TYPE_URL),
  };
}

/** The routes of a route configuration's only virtual host. */
export function routesOf(d: Decoded, name = C80): D[] {
  const rc = d.routes.get(name);
  expect(rc?.virtualHosts).toHaveLength(1);
  return rc.virtualHosts[0].routes;
}

/** The http_filters of a chain, by name. */
export function httpFilters(d: Decoded, chain = C80): D[] {
  const fc = d.listener.filterChains.find((c: D) => c.name === chain);
  return fc.filters[0].typedConfig.httpFilters;
}

/** An istio filter_metadata Struct as plain JSON. */
export function struct(s: D): unknown {
  const value = (v: D): unknown =>
    v.stringValue ?? v.numberValue ?? v.boolValue ?? v.listValue?.values?.map(value) ?? struct(v.structValue);
  return Object.fromEntries(Object.entries(s.fields ?? {}).map(([k, v]) => [k, value(v)]));
}

// ---- fixtures

export const namespace = (name: string, labels: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, labels },
});
export const gateway = (
  name = 'waypoint',
  ns = 'demo',
  annotations: Record<string, string> = {},
  labels = {},
) => ({
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'Gateway',
  metadata: { name, namespace: ns, annotations, labels },
  spec: { gatewayClassName: 'istio-waypoint' },
});
let ipCounter = 10;
export const pod = (
  name: string,
  labels: Record<string, string>,
  o: { ns?: string; sa?: string; ip?: string | null; phase?: string; ports?: Record<string, number> } = {},
) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: o.ns ?? 'demo', labels },
  spec: {
    nodeName: 'node0',
    serviceAccountName: o.sa ?? 'echo',
    containers: [
      { name: 'app', ports: Object.entries(o.ports ?? {}).map(([n, p]) => ({ name: n, containerPort: p })) },
    ],
  },
  status: {
    ...(o.ip !== null && { podIP: o.ip ?? `10.0.0.${++ipCounter}` }),
    ...(o.phase && { phase: o.phase }),
  },
});
export const service = (
  name: string,
  ports: Array<Record<string, unknown>>,
  o: { ns?: string; selector?: Record<string, string>; ips?: string[]; labels?: Record<string, string> } = {},
) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: o.ns ?? 'demo', labels: o.labels ?? {} },
  spec: {
    clusterIPs: o.ips ?? ['10.96.0.10'],
    ...(o.selector !== undefined ? { selector: o.selector } : { selector: { app: name } }),
    ports,
  },
});
export const HTTP80 = { name: 'http', port: 80, targetPort: 8080 };
export const httpRoute = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'HTTPRoute',
  metadata: { name, namespace: 'demo' },
  spec: { parentRefs: [{ group: '', kind: 'Service', name: 'echo' }], ...spec },
});
export const virtualService = (name: string, http: unknown[], extra: Record<string, unknown> = {}) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name, namespace: 'demo' },
  spec: { hosts: ['echo'], http, ...extra },
});
export const destinationRule = (spec: Record<string, unknown>, name = 'echo', ns = 'demo') => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'DestinationRule',
  metadata: { name, namespace: ns },
  spec: { host: 'echo', ...spec },
});
export const authz = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: 'security.istio.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name, namespace: 'demo' },
  spec,
});

/** A namespace whose services all use the `waypoint` Gateway, that gateway, and an echo service. */
export const BASE = [
  namespace('demo', { ...AMBIENT, 'istio.io/use-waypoint': 'waypoint' }),
  gateway(),
  pod('echo-v1', { app: 'echo', version: 'v1' }, { ip: '10.0.0.1' }),
  service('echo', [HTTP80]),
];

export const DEFAULT_RETRY = {
  retryOn: DEFAULT_RETRY_ON,
  numRetries: { value: 2 },
  retriableStatusCodes: [503],
};

/**
 * What every part of the waypoint xDS generator shares within one build: the cluster's objects
 * indexed once, the services' DestinationRules and pods, host resolution as Istio does it, and the
 * notices collected on the way (deduplicated, so a problem seen from several gateways is one).
 */
import type {
  EnvoyInput,
  EnvoyRetryOn,
  WireDuration,
  WireFractionalPercent,
  WireStruct,
  WireValue,
} from '@ambient/shared';
import {
  type MeshModel,
  type ModelProblem,
  matchesSelector,
  WAYPOINT_CLASS,
  type WireWorkload,
} from '../ambient/mesh-model.js';
import type {
  AuthorizationPolicyObject,
  DestinationRuleObject,
  DestinationSubset,
  GatewayObject,
  HttpRouteObject,
  KubeObject,
  NamespaceObject,
  PodObject,
  ServiceObject,
  ServicePort,
  TrafficPolicy,
  VirtualServiceObject,
} from '../manifests/kube-objects.js';
import type { EnvoyEncoder } from './envoy-encoder.js';

export type WaypointProtocol = 'http' | 'http2' | 'grpc' | 'tcp';

export interface WaypointResourceOptions {
  readonly trustDomain: string;
  readonly domainSuffix: string;
}

export const WAYPOINT_LISTENER_NAME = 'waypoint';
/** Limits Envoy treats as unlimited, which istiod sets when a DestinationRule does not. */
export const UNLIMITED = 0xffffffff;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** Istio's retry policy for routes that configure none. */
export const DEFAULT_RETRY_ON = (
  [
    'connect-failure',
    'refused-stream',
    'unavailable',
    'cancelled',
    'retriable-status-codes',
  ] satisfies EnvoyRetryOn[]
).join(',');
export const DEFAULT_RETRIES = 2;

const TCP_NAMES = new Set(['tcp', 'tls', 'https', 'mongo', 'mysql', 'redis']);

/**
 * A port's protocol: its appProtocol, else its name's prefix (`http-`, `http2-`, `grpc-`, `tcp-`,
 * ...), else HTTP with the codec sniffing HTTP/1.1 or HTTP/2. An appProtocol that is not HTTP
 * (https, tls, mongo, ...) is carried as TCP: the waypoint cannot parse it.
 */
export function portProtocol(port: Pick<ServicePort, 'name' | 'appProtocol'>): WaypointProtocol {
  const ap = port.appProtocol?.toLowerCase();
  if (ap) {
    if (ap === 'http' || ap === 'grpc-web') return 'http';
    if (ap === 'http2' || ap === 'kubernetes.io/h2c') return 'http2';
    if (ap === 'grpc') return 'grpc';
    return 'tcp';
  }
  const prefix = port.name.toLowerCase().split('-')[0] ?? '';
  if (prefix === 'http2') return 'http2';
  if (prefix === 'grpc') return prefix;
  if (TCP_NAMES.has(prefix)) return 'tcp';
  return 'http';
}

/** `inbound-vip|<port>|<proto>|<host>`, or with `|<subset>` before the host. */
export function waypointClusterName(
  port: number,
  proto: WaypointProtocol,
  host: string,
  subset?: string,
): string {
  return subset ? `inbound-vip|${port}|${proto}|${subset}|${host}` : `inbound-vip|${port}|${proto}|${host}`;
}

export function duration(ms: number): EnvoyInput<WireDuration> {
  return { seconds: Math.floor(ms / 1000), nanos: Math.round((ms % 1000) * 1e6) };
}

/** 0-100 as a FractionalPercent: whole percents over a hundred, else parts per million. */
export function fractionalPercent(percent: number): EnvoyInput<WireFractionalPercent> {
  return Number.isInteger(percent)
    ? { numerator: percent, denominator: 'HUNDRED' }
    : { numerator: Math.round(percent * 10_000), denominator: 'MILLION' };
}

/** A google.protobuf.Struct from JSON-like values. */
export function struct(o: Record<string, unknown>): EnvoyInput<WireStruct> {
  const value = (v: unknown): EnvoyInput<WireValue> => {
    if (typeof v === 'string') return { stringValue: v };
    if (typeof v === 'number') return { numberValue: v };
    if (typeof v === 'boolean') return { boolValue: v };
    if (Array.isArray(v)) return { listValue: { values: v.map(value) } };
    if (v && typeof v === 'object') return { structValue: struct(v as Record<string, unknown>) };
    return { nullValue: 'NULL_VALUE' };
  };
  return { fields: Object.fromEntries(Object.entries(o).map(([k, v]) => [k, value(v)])) };
}

export function byName<T extends { metadata: { namespace: string; name: string } }>(a: T, b: T): number {
  return (
    a.metadata.namespace.localeCompare(b.metadata.namespace) || a.metadata.name.localeCompare(b.metadata.name)
  );
}

/** A served or reachable service port. */
export interface SvcPort {
  readonly svc: ServiceObject;
  readonly port: ServicePort;
  readonly proto: WaypointProtocol;
  readonly host: string;
  /** The cluster name, which is also the chain and route configuration name. */
  readonly name: string;
  /**
   * Workload-addressed: traffic to this pod's own address at `port.port` (its target port),
   * routed to this pod only; absent for traffic to the service's VIP.
   */
  readonly pod?: PodObject;
}

export interface ClusterEntry {
  readonly sp: SvcPort;
  readonly subset?: DestinationSubset;
  readonly policy?: TrafficPolicy;
}

export interface Index {
  readonly namespaces: Map<string, NamespaceObject>;
  readonly services: Map<string, ServiceObject>;
  readonly servicesByNs: Map<string, ServiceObject[]>;
  readonly podsByNs: Map<string, PodObject[]>;
  readonly gateways: GatewayObject[];
  readonly httpRoutes: HttpRouteObject[];
  readonly virtualServices: VirtualServiceObject[];
  readonly destinationRules: DestinationRuleObject[];
  readonly policiesByNs: Map<string, AuthorizationPolicyObject[]>;
}

function push<V>(map: Map<string, V[]>, key: string, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** Indexes the objects one build reads, sorted so that outputs do not depend on input order. */
export function indexObjects(objects: ReadonlyMap<string, KubeObject>): Index {
  const ix: Index = {
    namespaces: new Map(),
    services: new Map(),
    servicesByNs: new Map(),
    podsByNs: new Map(),
    gateways: [],
    httpRoutes: [],
    virtualServices: [],
    destinationRules: [],
    policiesByNs: new Map(),
  };
  for (const o of objects.values()) {
    const { namespace, name } = o.metadata;
    switch (o.kind) {
      case 'Namespace':
        ix.namespaces.set(name, o);
        break;
      case 'Service':
        ix.services.set(`${namespace}/${name}`, o);
        push(ix.servicesByNs, namespace, o);
        break;
      case 'Pod':
        push(ix.podsByNs, namespace, o);
        break;
      case 'Gateway':
        if (o.gatewayClassName === WAYPOINT_CLASS) ix.gateways.push(o);
        break;
      case 'HTTPRoute':
        ix.httpRoutes.push(o);
        break;
      case 'VirtualService':
        ix.virtualServices.push(o);
        break;
      case 'DestinationRule':
        ix.destinationRules.push(o);
        break;
      case 'AuthorizationPolicy':
        if (o.targetRefs.length > 0) push(ix.policiesByNs, namespace, o);
        break;
    }
  }
  for (const list of [ix.gateways, ix.httpRoutes, ix.virtualServices, ix.destinationRules]) list.sort(byName);
  for (const list of ix.policiesByNs.values()) list.sort(byName);
  for (const list of ix.podsByNs.values()) list.sort(byName);
  return ix;
}

/** One build: indexes, caches and notices shared by every gateway. */
export class BuildContext {
  private readonly notices = new Map<string, ModelProblem>();
  private readonly drCache = new Map<string, DestinationRuleObject | undefined>();
  private workloadsByPod?: Map<string, WireWorkload>;

  constructor(
    readonly ix: Index,
    readonly model: MeshModel,
    readonly options: WaypointResourceOptions,
    readonly encoder: EnvoyEncoder,
  ) {}

  problems(): ModelProblem[] {
    return [...this.notices.values()];
  }

  notice(ref: string, path: string, message: string): void {
    const key = `${ref}\n${path}\n${message}`;
    if (!this.notices.has(key)) this.notices.set(key, { ref, path, message });
  }

  hostname(name: string, namespace: string): string {
    return `${name}.${namespace}.svc.${this.options.domainSuffix}`;
  }

  svcPort(svc: ServiceObject, port: ServicePort): SvcPort {
    const proto = portProtocol(port);
    const host = this.hostname(svc.metadata.name, svc.metadata.namespace);
    return { svc, port, proto, host, name: waypointClusterName(port.port, proto, host) };
  }

  /**
   * A service port as a pod of the service serves it at its own address (for a waypoint that
   * serves workloads): `inbound-pod|<targetPort>|<proto>|<pod IP>|<host>`, the service named last.
   */
  podPort(svc: ServiceObject, port: ServicePort, pod: PodObject, target: number): SvcPort {
    const proto = portProtocol(port);
    const host = this.hostname(svc.metadata.name, svc.metadata.namespace);
    const name = `inbound-pod|${target}|${proto}|${pod.podIps[0]}|${host}`;
    return { svc, port: { ...port, port: target, targetPort: target }, proto, host, name, pod };
  }

  /** A host as Istio resolves it from an object in `namespace`: short name, `name.ns`, or FQDN. */
  resolveHost(host: string, namespace: string): ServiceObject | undefined {
    const suffix = `.svc.${this.options.domainSuffix}`;
    let h = host.toLowerCase();
    if (h.endsWith(suffix)) h = h.slice(0, -suffix.length);
    else if (h.endsWith('.svc')) h = h.slice(0, -'.svc'.length);
    const parts = h.split('.');
    if (parts.length === 1) return this.ix.services.get(`${namespace}/${parts[0]}`);
    if (parts.length === 2) return this.ix.services.get(`${parts[1]}/${parts[0]}`);
    return undefined;
  }

  /** The DestinationRule for a service: one in its namespace first, then any other, by name. */
  destinationRule(svc: ServiceObject): DestinationRuleObject | undefined {
    const key = `${svc.metadata.namespace}/${svc.metadata.name}`;
    if (this.drCache.has(key)) return this.drCache.get(key);
    const matching = this.ix.destinationRules.filter(
      (dr) => this.resolveHost(dr.host, dr.metadata.namespace) === svc,
    );
    const own = matching.filter((dr) => dr.metadata.namespace === svc.metadata.namespace);
    const chosen = own[0] ?? matching[0];
    for (const dr of matching)
      if (dr !== chosen)
        this.notice(
          `DestinationRule ${dr.metadata.namespace}/${dr.metadata.name}`,
          'spec.host',
          `ignored: DestinationRule ${chosen?.metadata.namespace}/${chosen?.metadata.name} already applies to ${key}`,
        );
    this.drCache.set(key, chosen);
    return chosen;
  }

  /** The traffic policy of a service port's cluster: the rule's, with the subset's on top. */
  trafficPolicy(svc: ServiceObject, subset?: DestinationSubset): TrafficPolicy | undefined {
    const top = this.destinationRule(svc)?.trafficPolicy;
    const own = subset?.trafficPolicy;
    if (!own) return top;
    return { ...top, ...own };
  }

  /**
   * The Workload that workload discovery sends for a pod: the one place its workload name,
   * canonical name and revision, and cluster are derived, so endpoint metadata says the same.
   */
  workloadOf(pod: PodObject): WireWorkload | undefined {
    if (!this.workloadsByPod) {
      this.workloadsByPod = new Map();
      for (const a of this.model.addresses.values())
        if ('workload' in a)
          this.workloadsByPod.set(`${a.workload.namespace}/${a.workload.name}`, a.workload);
    }
    return this.workloadsByPod.get(`${pod.metadata.namespace}/${pod.metadata.name}`);
  }

  pods(svc: ServiceObject, subset?: DestinationSubset): PodObject[] {
    const selector = svc.selector;
    if (!selector || Object.keys(selector).length === 0) return [];
    return (this.ix.podsByNs.get(svc.metadata.namespace) ?? []).filter(
      (p) =>
        p.running &&
        p.podIps.length > 0 &&
        matchesSelector(selector, p.metadata.labels) &&
        (!subset || matchesSelector(subset.labels, p.metadata.labels)),
    );
  }
}

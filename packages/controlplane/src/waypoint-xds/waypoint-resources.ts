/**
 * What the control plane sends each waypoint (docs/waypoint-xds.md): for every Gateway of class
 * istio-waypoint, a Listener `waypoint` with one filter chain per served service port, a
 * RouteConfiguration per HTTP port (from HTTPRoutes, else a VirtualService, else a default route),
 * the Clusters those routes can reach (with DestinationRule subsets and traffic policy), and a
 * ClusterLoadAssignment per cluster with the pods behind it.
 *
 * A service is served by a waypoint when workload discovery puts that waypoint on it (so ztunnel
 * and the waypoint never disagree), or when it selects pods of the gateway's
 * `istio.io/for-service-account`. Resources are built as plain objects in Envoy's v3 shape and
 * encoded with Envoy's protos; problems that do not invalidate an object (a backend that does not
 * exist, a policy field a waypoint cannot check) become notices and the rest is served.
 */

import {
  FOR_SERVICE_ACCOUNT,
  GATEWAY_NAME_LABEL,
  HBONE_PORT,
  isAmbientEnrolled,
  type MeshModel,
  type ModelProblem,
  matchesSelector,
  WAYPOINT_CLASS,
} from '../ambient/mesh-model.js';
import type {
  AuthorizationPolicyObject,
  BackendRef,
  DestinationRuleObject,
  DestinationSubset,
  GatewayObject,
  HeaderModifier,
  HttpRouteMatch,
  HttpRouteObject,
  HttpRouteRule,
  IstioStringMatch,
  KubeObject,
  NamespaceObject,
  PodObject,
  ServiceObject,
  ServicePort,
  TrafficPolicy,
  VirtualServiceObject,
  VsDestination,
  VsHeaderOperations,
  VsHttpRoute,
  VsMatch,
} from '../manifests/kube-objects.js';
import {
  CLUSTER_LOAD_ASSIGNMENT_TYPE_URL,
  CLUSTER_TYPE_URL,
  EnvoyEncoder,
  LISTENER_TYPE_URL,
  ROUTE_CONFIGURATION_TYPE_URL,
} from './envoy-encoder.js';
import { type RbacRulesPlain, waypointRbac } from './waypoint-rbac.js';

type Plain = Record<string, unknown>;

export type WaypointProtocol = 'http' | 'http2' | 'grpc' | 'tcp';

export interface WaypointResourceOptions {
  readonly trustDomain: string;
  readonly domainSuffix: string;
}

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

export const WAYPOINT_LISTENER_NAME = 'waypoint';
/** Limits Envoy treats as unlimited, which istiod sets when a DestinationRule does not. */
export const UNLIMITED = 0xffffffff;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** Istio's retry policy for routes that configure none. */
export const DEFAULT_RETRY_ON = 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes';
export const DEFAULT_RETRIES = 2;

const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const TCP_PROXY = 'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const RBAC = 'envoy.extensions.filters.http.rbac.v3.RBAC';
const FAULT = 'envoy.extensions.filters.http.fault.v3.HTTPFault';
const ROUTER = 'envoy.extensions.filters.http.router.v3.Router';
const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const FAULT_FILTER = 'envoy.filters.http.fault';
const REDIRECT_CODES: Readonly<Record<number, string>> = {
  301: 'MOVED_PERMANENTLY',
  302: 'FOUND',
  303: 'SEE_OTHER',
  307: 'TEMPORARY_REDIRECT',
  308: 'PERMANENT_REDIRECT',
};
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

function duration(ms: number): Plain {
  return { seconds: Math.floor(ms / 1000), nanos: Math.round((ms % 1000) * 1e6) };
}

/** 0-100 as a FractionalPercent: whole percents over a hundred, else parts per million. */
export function fractionalPercent(percent: number): Plain {
  return Number.isInteger(percent)
    ? { numerator: percent, denominator: 'HUNDRED' }
    : { numerator: Math.round(percent * 10_000), denominator: 'MILLION' };
}

/** A google.protobuf.Struct from JSON-like values. */
function struct(o: Record<string, unknown>): Plain {
  const value = (v: unknown): Plain => {
    if (typeof v === 'string') return { stringValue: v };
    if (typeof v === 'number') return { numberValue: v };
    if (typeof v === 'boolean') return { boolValue: v };
    if (Array.isArray(v)) return { listValue: { values: v.map(value) } };
    if (v && typeof v === 'object') return { structValue: struct(v as Record<string, unknown>) };
    return { nullValue: 'NULL_VALUE' };
  };
  return { fields: Object.fromEntries(Object.entries(o).map(([k, v]) => [k, value(v)])) };
}

function byName<T extends { metadata: { namespace: string; name: string } }>(a: T, b: T): number {
  return (
    a.metadata.namespace.localeCompare(b.metadata.namespace) || a.metadata.name.localeCompare(b.metadata.name)
  );
}

/** A served or reachable service port. */
interface SvcPort {
  readonly svc: ServiceObject;
  readonly port: ServicePort;
  readonly proto: WaypointProtocol;
  readonly host: string;
  /** The cluster name, which is also the chain and route configuration name. */
  readonly name: string;
}

interface ClusterEntry {
  readonly sp: SvcPort;
  readonly subset?: DestinationSubset;
  readonly policy?: TrafficPolicy;
}

interface Index {
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

function index(objects: ReadonlyMap<string, KubeObject>): Index {
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

/** A PathPrefix without its trailing `/`, which Gateway API ignores (`/` stays). */
function normalPrefix(value: string): string {
  return value.replace(/\/+$/, '') || '/';
}

/** Istio's route precedence for Gateway API: path kind, path length, method, headers, query. */
function matchRank(m: HttpRouteMatch): [number, number, number, number, number] {
  const kind = m.path.type === 'Exact' ? 3 : m.path.type === 'PathPrefix' ? 2 : 1;
  const length = m.path.type === 'PathPrefix' ? normalPrefix(m.path.value).length : m.path.value.length;
  return [kind, length, m.method ? 1 : 0, m.headers.length, m.queryParams.length];
}

function compareRank(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return (b[i] ?? 0) - (a[i] ?? 0);
  return 0;
}

function headerMutations(
  set: readonly { name: string; value: string }[],
  add: readonly { name: string; value: string }[],
): Plain[] {
  return [
    ...set.map((h) => ({
      header: { key: h.name.toLowerCase(), value: h.value },
      appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD',
    })),
    ...add.map((h) => ({
      header: { key: h.name.toLowerCase(), value: h.value },
      appendAction: 'APPEND_IF_EXISTS_OR_ADD',
    })),
  ];
}

function istioMatch(m: IstioStringMatch): Plain {
  if ('exact' in m) return { exact: m.exact };
  if ('prefix' in m) return { prefix: m.prefix };
  return { safeRegex: { regex: m.regex } };
}

/** One build: indexes, caches and notices shared by every gateway. */
class Build {
  private readonly notices = new Map<string, ModelProblem>();
  private readonly drCache = new Map<string, DestinationRuleObject | undefined>();

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

/** What one gateway's resources are computed from, and collect while they are. */
class GatewayBuild {
  readonly clusters = new Map<string, ClusterEntry>();
  private readonly rbacCache = new Map<string, { deny?: RbacRulesPlain; allow?: RbacRulesPlain }>();

  constructor(
    private readonly b: Build,
    private readonly gw: GatewayObject,
  ) {}

  /** Services this waypoint serves, by namespace and name. */
  servedServices(): ServiceObject[] {
    const { namespace, name, annotations } = this.gw.metadata;
    const gwHost = this.b.hostname(name, namespace);
    const out = new Set<ServiceObject>();
    for (const svc of this.b.ix.services.values()) {
      // The waypoint's own Service selects the waypoint pods: serving it would loop.
      if (svc.selector?.[GATEWAY_NAME_LABEL] !== undefined) continue;
      const a = this.b.model.addresses.get(
        `${svc.metadata.namespace}/${this.b.hostname(svc.metadata.name, svc.metadata.namespace)}`,
      );
      const wp = a && 'service' in a ? a.service.waypoint : undefined;
      if (wp && wp.hostname.hostname === gwHost && wp.hostname.namespace === namespace) out.add(svc);
    }
    const sa = annotations[FOR_SERVICE_ACCOUNT];
    if (sa) {
      const pods = (this.b.ix.podsByNs.get(namespace) ?? []).filter(
        (p) => p.running && p.serviceAccountName === sa,
      );
      for (const svc of this.b.ix.servicesByNs.get(namespace) ?? []) {
        const sel = svc.selector;
        if (!sel || Object.keys(sel).length === 0 || sel[GATEWAY_NAME_LABEL] !== undefined) continue;
        if (pods.some((p) => matchesSelector(sel, p.metadata.labels))) out.add(svc);
      }
    }
    return [...out].sort(byName);
  }

  /** Adds a service port's cluster, and one per subset of its DestinationRule. */
  addClusters(sp: SvcPort): void {
    if (this.clusters.has(sp.name)) return;
    this.clusters.set(sp.name, { sp, policy: this.b.trafficPolicy(sp.svc) });
    for (const subset of this.b.destinationRule(sp.svc)?.subsets ?? []) {
      const name = waypointClusterName(sp.port.port, sp.proto, sp.host, subset.name);
      this.clusters.set(name, { sp, subset, policy: this.b.trafficPolicy(sp.svc, subset) });
    }
  }

  /** The cluster for a backend service port (and subset), adding it; undefined if unknown. */
  clusterFor(sp: SvcPort, subset: string | undefined, ref: string, path: string): string | undefined {
    this.addClusters(sp);
    if (!subset) return sp.name;
    const name = waypointClusterName(sp.port.port, sp.proto, sp.host, subset);
    if (this.clusters.has(name)) return name;
    this.b.notice(ref, path, `subset ${subset} is not defined by a DestinationRule for ${sp.host}`);
    return undefined;
  }

  policies(svc: ServiceObject): AuthorizationPolicyObject[] {
    const { namespace, name } = this.gw.metadata;
    const out = new Set<AuthorizationPolicyObject>();
    for (const p of this.b.ix.policiesByNs.get(namespace) ?? [])
      if (
        p.targetRefs.some(
          (r) =>
            r.kind === 'Gateway' &&
            (r.group === 'gateway.networking.k8s.io' || r.group === '') &&
            r.name === name,
        )
      )
        out.add(p);
    for (const p of this.b.ix.policiesByNs.get(svc.metadata.namespace) ?? [])
      if (
        p.targetRefs.some(
          (r) =>
            r.kind === 'Service' && (r.group === '' || r.group === 'core') && r.name === svc.metadata.name,
        )
      )
        out.add(p);
    return [...out].sort(byName);
  }

  rbac(svc: ServiceObject): { deny?: RbacRulesPlain; allow?: RbacRulesPlain } {
    const policies = this.policies(svc);
    const key = policies.map((p) => `${p.metadata.namespace}/${p.metadata.name}`).join(',');
    let r = this.rbacCache.get(key);
    if (!r) {
      r = waypointRbac(policies, (ref, path, message) => this.b.notice(ref, path, message));
      this.rbacCache.set(key, r);
    }
    return r;
  }

  filterChain(sp: SvcPort): Plain {
    const match = {
      prefixRanges: sp.svc.clusterIps.map((ip) => ({
        addressPrefix: ip,
        prefixLen: { value: ip.includes(':') ? 128 : 32 },
      })),
      destinationPort: { value: sp.port.port },
    };
    const enc = this.b.encoder;
    if (sp.proto === 'tcp') {
      return {
        name: sp.name,
        filterChainMatch: match,
        filters: [
          {
            name: 'envoy.filters.network.tcp_proxy',
            typedConfig: enc.any(TCP_PROXY, { statPrefix: sp.name, cluster: sp.name }),
          },
        ],
      };
    }
    const rbac = this.rbac(sp.svc);
    const httpFilters: Plain[] = [];
    for (const rules of [rbac.deny, rbac.allow]) {
      if (rules) httpFilters.push({ name: 'envoy.filters.http.rbac', typedConfig: enc.any(RBAC, { rules }) });
    }
    httpFilters.push({ name: FAULT_FILTER, typedConfig: enc.any(FAULT, {}) });
    httpFilters.push({ name: 'envoy.filters.http.router', typedConfig: enc.any(ROUTER, {}) });
    return {
      name: sp.name,
      filterChainMatch: match,
      filters: [
        {
          name: 'envoy.filters.network.http_connection_manager',
          typedConfig: enc.any(HCM, {
            statPrefix: sp.name,
            codecType: sp.proto === 'http' ? 'AUTO' : 'HTTP2',
            rds: { routeConfigName: sp.name, configSource: { ads: {}, resourceApiVersion: 'V3' } },
            httpFilters,
          }),
        },
      ],
    };
  }

  // ---- routes

  routeConfiguration(sp: SvcPort): Plain {
    const routes = this.routes(sp);
    return {
      name: sp.name,
      virtualHosts: [{ name: `${sp.host}:${sp.port.port}`, domains: ['*'], routes }],
    };
  }

  private routes(sp: SvcPort): Plain[] {
    const { namespace, name } = sp.svc.metadata;
    const attached: HttpRouteObject[] = [];
    for (const r of this.b.ix.httpRoutes) {
      const refs = r.parentRefs.filter(
        (p) =>
          p.kind === 'Service' &&
          (p.group === '' || p.group === 'core') &&
          p.name === name &&
          (p.namespace ?? r.metadata.namespace) === namespace,
      );
      if (refs.length === 0) continue;
      if (r.metadata.namespace !== namespace) {
        this.b.notice(
          `HTTPRoute ${r.metadata.namespace}/${r.metadata.name}`,
          'spec.parentRefs',
          `a route for Service ${namespace}/${name} from another namespace is not applied by its waypoint`,
        );
        continue;
      }
      if (refs.some((p) => p.port === undefined || p.port === sp.port.port)) attached.push(r);
    }
    if (attached.length > 0) return this.httpRouteRoutes(attached);
    const vs = this.virtualService(sp);
    if (vs) return this.vsRoutes(vs, sp);
    return [
      {
        name: 'default',
        match: { prefix: '/' },
        route: {
          cluster: sp.name,
          timeout: duration(0),
          retryPolicy: defaultRetryPolicy(),
          ...this.hashPolicy(sp),
        },
      },
    ];
  }

  private virtualService(sp: SvcPort): VirtualServiceObject | undefined {
    const matching = this.b.ix.virtualServices.filter(
      (vs) =>
        (vs.gateways.length === 0 || vs.gateways.includes('mesh')) &&
        vs.hosts.some((h) => this.b.resolveHost(h, vs.metadata.namespace) === sp.svc),
    );
    for (const vs of matching.slice(1))
      this.b.notice(
        `VirtualService ${vs.metadata.namespace}/${vs.metadata.name}`,
        'spec.hosts',
        `ignored for ${sp.host}: VirtualService ${matching[0]?.metadata.namespace}/${matching[0]?.metadata.name} already applies`,
      );
    return matching[0];
  }

  /** hash_policy from the consistent hash of a cluster's DestinationRule. */
  private hashPolicy(sp: SvcPort, subset?: string): Plain {
    const policy = this.b.trafficPolicy(
      sp.svc,
      subset ? this.b.destinationRule(sp.svc)?.subsets.find((s) => s.name === subset) : undefined,
    );
    const lb = policy?.loadBalancer;
    if (!lb || !('consistentHash' in lb)) return {};
    const ch = lb.consistentHash;
    return {
      hashPolicy: [
        'httpHeaderName' in ch
          ? { header: { headerName: ch.httpHeaderName.toLowerCase() } }
          : { connectionProperties: { sourceIp: true } },
      ],
    };
  }

  private backendRef(ref: BackendRef, routeNs: string, refName: string, path: string): SvcPort | undefined {
    if (ref.kind !== 'Service' || (ref.group !== '' && ref.group !== 'core')) {
      this.b.notice(refName, path, `backend kind ${ref.kind} is not supported`);
      return undefined;
    }
    const ns = ref.namespace ?? routeNs;
    if (ns !== routeNs) {
      this.b.notice(
        refName,
        path,
        `backend ${ns}/${ref.name} is in another namespace (ReferenceGrant is not supported)`,
      );
      return undefined;
    }
    const svc = this.b.ix.services.get(`${ns}/${ref.name}`);
    if (!svc) {
      this.b.notice(refName, path, `backend Service ${ns}/${ref.name} does not exist`);
      return undefined;
    }
    const port = svc.ports.find((p) => p.port === ref.port);
    if (!port) {
      this.b.notice(refName, path, `backend Service ${ns}/${ref.name} has no port ${ref.port}`);
      return undefined;
    }
    return this.b.svcPort(svc, port);
  }

  private httpRouteRoutes(attached: readonly HttpRouteObject[]): Plain[] {
    const entries: Array<{
      route: HttpRouteObject;
      rule: HttpRouteRule;
      ruleIndex: number;
      match: HttpRouteMatch;
      matchIndex: number;
    }> = [];
    for (const route of attached)
      route.rules.forEach((rule, ruleIndex) => {
        rule.matches.forEach((match, matchIndex) => {
          entries.push({ route, rule, ruleIndex, match, matchIndex });
        });
      });
    // Stable: ties keep route name order, then rule and match order.
    entries.sort((a, b) => compareRank(matchRank(a.match), matchRank(b.match)));
    return entries.flatMap((e) => this.httpRouteEntry(e.route, e.rule, e.ruleIndex, e.match, e.matchIndex));
  }

  private httpRouteEntry(
    route: HttpRouteObject,
    rule: HttpRouteRule,
    ruleIndex: number,
    match: HttpRouteMatch,
    matchIndex: number,
  ): Plain[] {
    const { namespace, name } = route.metadata;
    const ref = `HTTPRoute ${namespace}/${name}`;
    const rulePath = `spec.rules[${ruleIndex}]`;
    const headers: Plain[] = match.headers.map((h) => ({
      name: h.name.toLowerCase(),
      stringMatch: h.type === 'Exact' ? { exact: h.value } : { safeRegex: { regex: h.value } },
    }));
    if (match.method) headers.push({ name: ':method', stringMatch: { exact: match.method } });
    const queryParameters = match.queryParams.map((q) => ({
      name: q.name,
      stringMatch: q.type === 'Exact' ? { exact: q.value } : { safeRegex: { regex: q.value } },
    }));
    // Gateway API prefixes match whole path segments (`/foo` matches `/foo` and `/foo/x`, not
    // `/foobar`): an exact route and a `/foo/` prefix route express that with plain prefixes.
    type PathVariant = { path: string } | { prefix: string } | { safeRegex: { regex: string } };
    let variants: PathVariant[];
    if (match.path.type === 'Exact') variants = [{ path: match.path.value }];
    else if (match.path.type === 'RegularExpression') variants = [{ safeRegex: { regex: match.path.value } }];
    else {
      const v = normalPrefix(match.path.value);
      variants = v === '/' ? [{ prefix: '/' }] : [{ path: v }, { prefix: `${v}/` }];
    }
    const prefixReplacement = (variant: PathVariant, replacement: string): string =>
      'path' in variant ? replacement : replacement.endsWith('/') ? replacement : `${replacement}/`;

    const requestHeadersToAdd: Plain[] = [];
    const requestHeadersToRemove: string[] = [];
    const responseHeadersToAdd: Plain[] = [];
    const responseHeadersToRemove: string[] = [];
    const addMods = (m: HeaderModifier, add: Plain[], remove: string[]) => {
      add.push(...headerMutations(m.set, m.add));
      remove.push(...m.remove.map((h) => h.toLowerCase()));
    };
    let redirect: Extract<HttpRouteRule['filters'][number], { type: 'RequestRedirect' }> | undefined;
    let rewrite: Extract<HttpRouteRule['filters'][number], { type: 'URLRewrite' }> | undefined;
    const mirrors: Plain[] = [];
    rule.filters.forEach((f, i) => {
      switch (f.type) {
        case 'RequestHeaderModifier':
          addMods(f.modifier, requestHeadersToAdd, requestHeadersToRemove);
          break;
        case 'ResponseHeaderModifier':
          addMods(f.modifier, responseHeadersToAdd, responseHeadersToRemove);
          break;
        case 'RequestRedirect':
          redirect = f;
          break;
        case 'URLRewrite':
          rewrite = f;
          break;
        case 'RequestMirror': {
          const msp = this.backendRef(
            f.backendRef,
            namespace,
            ref,
            `${rulePath}.filters[${i}].requestMirror.backendRef`,
          );
          if (msp) {
            this.addClusters(msp);
            mirrors.push({
              cluster: msp.name,
              runtimeFraction: { defaultValue: fractionalPercent(f.percent) },
            });
          }
          break;
        }
      }
    });

    // Backends: invalid ones are left out with a notice; none left answers 500, as istiod does.
    const backends = rule.backendRefs.flatMap((b, i) => {
      const bsp = this.backendRef(b, namespace, ref, `${rulePath}.backendRefs[${i}]`);
      return bsp && b.weight > 0 ? [{ sp: bsp, weight: b.weight }] : [];
    });
    for (const b of backends) this.addClusters(b.sp);

    return variants.map((variant): Plain => {
      const base: Plain = {
        name: `${namespace}.${name}.${ruleIndex}.${matchIndex}`,
        match: {
          ...variant,
          ...(headers.length > 0 && { headers }),
          ...(queryParameters.length > 0 && { queryParameters }),
        },
        ...(requestHeadersToAdd.length > 0 && { requestHeadersToAdd }),
        ...(requestHeadersToRemove.length > 0 && { requestHeadersToRemove }),
        ...(responseHeadersToAdd.length > 0 && { responseHeadersToAdd }),
        ...(responseHeadersToRemove.length > 0 && { responseHeadersToRemove }),
      };
      if (redirect) {
        const r = redirect;
        return {
          ...base,
          redirect: {
            ...(r.scheme && { schemeRedirect: r.scheme }),
            ...(r.hostname && { hostRedirect: r.hostname }),
            ...(r.port !== undefined && { portRedirect: r.port }),
            ...(r.path?.type === 'ReplaceFullPath' && { pathRedirect: r.path.value }),
            ...(r.path?.type === 'ReplacePrefixMatch' && {
              prefixRewrite: prefixReplacement(variant, r.path.value),
            }),
            responseCode: REDIRECT_CODES[r.statusCode] ?? 'FOUND',
          },
        };
      }
      if (backends.length === 0) {
        if (rule.backendRefs.length === 0)
          this.b.notice(ref, `${rulePath}.backendRefs`, 'a rule without backends answers 500');
        return { ...base, directResponse: { status: 500 } };
      }
      const retryPolicy = defaultRetryPolicy();
      if (rule.timeouts.backendRequestMs)
        retryPolicy.perTryTimeout = duration(rule.timeouts.backendRequestMs);
      const first = backends[0] as { sp: SvcPort };
      return {
        ...base,
        route: {
          ...(backends.length === 1
            ? { cluster: first.sp.name }
            : {
                weightedClusters: {
                  clusters: backends.map((b) => ({ name: b.sp.name, weight: { value: b.weight } })),
                },
              }),
          timeout: duration(rule.timeouts.requestMs ?? 0),
          retryPolicy,
          ...(rewrite?.path?.type === 'ReplacePrefixMatch' && {
            prefixRewrite: prefixReplacement(variant, rewrite.path.value),
          }),
          ...(rewrite?.path?.type === 'ReplaceFullPath' && {
            regexRewrite: { pattern: { regex: '^/.*$' }, substitution: rewrite.path.value },
          }),
          ...(rewrite?.hostname && { hostRewriteLiteral: rewrite.hostname }),
          ...(mirrors.length > 0 && { requestMirrorPolicies: mirrors }),
          ...this.hashPolicy(first.sp),
        },
      };
    });
  }

  /** A VirtualService destination: its service port (explicit, this port, or the only one). */
  private destination(
    d: VsDestination,
    vs: VirtualServiceObject,
    sp: SvcPort,
    path: string,
  ): string | undefined {
    const ref = `VirtualService ${vs.metadata.namespace}/${vs.metadata.name}`;
    const svc = this.b.resolveHost(d.host, vs.metadata.namespace);
    if (!svc) {
      this.b.notice(ref, `${path}.host`, `host ${d.host} is not a Service in the mesh`);
      return undefined;
    }
    const port =
      d.port !== undefined
        ? svc.ports.find((p) => p.port === d.port)
        : (svc.ports.find((p) => p.port === sp.port.port) ??
          (svc.ports.length === 1 ? svc.ports[0] : undefined));
    if (!port) {
      this.b.notice(
        ref,
        `${path}.port`,
        d.port !== undefined
          ? `Service ${d.host} has no port ${d.port}`
          : `Service ${d.host} has several ports: name one`,
      );
      return undefined;
    }
    return this.clusterFor(this.b.svcPort(svc, port), d.subset, ref, `${path}.subset`);
  }

  private vsRoutes(vs: VirtualServiceObject, sp: SvcPort): Plain[] {
    return vs.http.flatMap((http, i) => {
      const matches = http.match.length > 0 ? http.match : [undefined];
      const applicable = matches.filter((m) => m?.port === undefined || m.port === sp.port.port);
      if (applicable.length === 0) return [];
      const action = this.vsAction(vs, http, i, sp);
      return applicable.map((m) => ({
        name: http.name ?? `${vs.metadata.namespace}.${vs.metadata.name}.${i}`,
        match: vsMatch(m),
        ...action,
      }));
    });
  }

  private vsAction(vs: VirtualServiceObject, http: VsHttpRoute, i: number, sp: SvcPort): Plain {
    const path = `spec.http[${i}]`;
    const out: Plain = {};
    const req = headerOps(http.headers.request);
    const res = headerOps(http.headers.response);
    if (req.add.length > 0) out.requestHeadersToAdd = req.add;
    if (req.remove.length > 0) out.requestHeadersToRemove = req.remove;
    if (res.add.length > 0) out.responseHeadersToAdd = res.add;
    if (res.remove.length > 0) out.responseHeadersToRemove = res.remove;
    if (http.fault) {
      const { delay, abort } = http.fault;
      out.typedPerFilterConfig = {
        [FAULT_FILTER]: this.b.encoder.any(FAULT, {
          ...(delay && {
            delay: { fixedDelay: duration(delay.fixedDelayMs), percentage: fractionalPercent(delay.percent) },
          }),
          ...(abort && {
            abort: {
              ...(abort.httpStatus !== undefined && { httpStatus: abort.httpStatus }),
              ...(abort.grpcStatus !== undefined && { grpcStatus: abort.grpcStatus }),
              percentage: fractionalPercent(abort.percent),
            },
          }),
        }),
      };
    }
    if (http.redirect) {
      const r = http.redirect;
      out.redirect = {
        ...(r.scheme && { schemeRedirect: r.scheme }),
        ...(r.authority && { hostRedirect: r.authority }),
        ...(r.port !== undefined && { portRedirect: r.port }),
        ...(r.uri && { pathRedirect: r.uri }),
        responseCode: REDIRECT_CODES[r.redirectCode] ?? 'MOVED_PERMANENTLY',
      };
      return out;
    }
    if (http.directResponse) {
      const d = http.directResponse;
      out.directResponse = {
        status: d.status,
        ...(d.body !== undefined && { body: { inlineString: d.body } }),
      };
      return out;
    }
    const anyWeight = http.route.some((r) => r.weight !== undefined);
    const clusters = http.route.flatMap((r, j) => {
      const cluster = this.destination(r.destination, vs, sp, `${path}.route[${j}].destination`);
      const weight = anyWeight ? (r.weight ?? 0) : 1;
      return cluster && weight > 0 ? [{ name: cluster, weight, dest: r.destination }] : [];
    });
    if (clusters.length === 0) {
      this.b.notice(
        `VirtualService ${vs.metadata.namespace}/${vs.metadata.name}`,
        `${path}.route`,
        'no valid destination: answers 500',
      );
      out.directResponse = { status: 500 };
      return out;
    }
    const first = clusters[0] as (typeof clusters)[number];
    const firstEntry = this.clusters.get(first.name) as ClusterEntry;
    let retryPolicy: Plain | undefined = defaultRetryPolicy();
    const retries = http.retries;
    if (retries) {
      retryPolicy =
        retries.attempts === 0
          ? undefined
          : {
              retryOn: (retries.retryOn ?? DEFAULT_RETRY_ON.split(',')).join(','),
              numRetries: { value: retries.attempts },
              ...(retries.perTryTimeoutMs !== undefined && {
                perTryTimeout: duration(retries.perTryTimeoutMs),
              }),
              ...(retries.backoffMs !== undefined && {
                retryBackOff: {
                  baseInterval: duration(retries.backoffMs),
                  maxInterval: duration(retries.backoffMs * 10),
                },
              }),
              retriableStatusCodes: retries.retryOn ? [...retries.retriableStatusCodes] : [503],
            };
    }
    const mirror = http.mirror && this.destination(http.mirror, vs, sp, `${path}.mirror`);
    const rw = http.rewrite;
    out.route = {
      ...(clusters.length === 1
        ? { cluster: first.name }
        : {
            weightedClusters: {
              clusters: clusters.map((c) => ({ name: c.name, weight: { value: c.weight } })),
            },
          }),
      timeout: duration(http.timeoutMs ?? 0),
      ...(retryPolicy && { retryPolicy }),
      ...(rw?.uri && { prefixRewrite: rw.uri }),
      ...(rw?.uriRegexRewrite && {
        regexRewrite: {
          pattern: { regex: rw.uriRegexRewrite.match },
          substitution: rw.uriRegexRewrite.rewrite,
        },
      }),
      ...(rw?.authority && { hostRewriteLiteral: rw.authority }),
      ...(mirror && {
        requestMirrorPolicies: [
          {
            cluster: mirror,
            runtimeFraction: { defaultValue: fractionalPercent(http.mirrorPercent ?? 100) },
          },
        ],
      }),
      ...this.hashPolicy(firstEntry.sp, first.dest.subset),
    };
    return out;
  }

  // ---- clusters and endpoints

  cluster(name: string, e: ClusterEntry): Plain {
    const { sp, policy } = e;
    const lb = policy?.loadBalancer;
    const lbPolicy = !lb ? 'ROUND_ROBIN' : 'simple' in lb ? lb.simple : 'RING_HASH';
    const tcp = policy?.connectionPool?.tcp;
    const http = policy?.connectionPool?.http;
    const od = policy?.outlierDetection;
    return {
      name,
      type: 'EDS',
      edsClusterConfig: { serviceName: name, edsConfig: { ads: {}, resourceApiVersion: 'V3' } },
      connectTimeout: duration(tcp?.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS),
      lbPolicy,
      circuitBreakers: {
        thresholds: [
          {
            maxConnections: { value: tcp?.maxConnections ?? UNLIMITED },
            maxPendingRequests: { value: http?.http1MaxPendingRequests ?? UNLIMITED },
            maxRequests: { value: http?.http2MaxRequests ?? UNLIMITED },
            maxRetries: { value: http?.maxRetries ?? UNLIMITED },
            // Envoy ignores max_retries once a budget is set: an explicit maxRetries wins.
            ...(http?.maxRetries === undefined && {
              retryBudget: { budgetPercent: { value: 20 }, minRetryConcurrency: { value: 3 } },
            }),
          },
        ],
      },
      ...(od && {
        outlierDetection: {
          consecutive_5xx: { value: od.consecutive5xxErrors ?? 5 },
          interval: duration(od.intervalMs ?? 10_000),
          baseEjectionTime: duration(od.baseEjectionTimeMs ?? 30_000),
          maxEjectionPercent: { value: od.maxEjectionPercent ?? 10 },
        },
      }),
      ...((sp.proto === 'http2' || sp.proto === 'grpc') && {
        typedExtensionProtocolOptions: {
          [HTTP_PROTOCOL_OPTIONS]: this.b.encoder.any(HTTP_PROTOCOL_OPTIONS, {
            explicitHttpConfig: { http2ProtocolOptions: {} },
          }),
        },
      }),
      metadata: {
        filterMetadata: {
          istio: struct({
            services: [{ host: sp.host, namespace: sp.svc.metadata.namespace, name: sp.svc.metadata.name }],
          }),
        },
      },
    };
  }

  loadAssignment(name: string, e: ClusterEntry): Plain {
    const { svc, port } = e.sp;
    const { trustDomain } = this.b.options;
    const ns = this.b.ix.namespaces.get(svc.metadata.namespace);
    const lbEndpoints = this.b.pods(svc, e.subset).flatMap((pod) => {
      const target = typeof port.targetPort === 'number' ? port.targetPort : pod.namedPorts[port.targetPort];
      if (target === undefined) return [];
      const { name: podName, namespace } = pod.metadata;
      return [
        {
          endpoint: { address: { socketAddress: { address: pod.podIps[0], portValue: target } } },
          metadata: {
            filterMetadata: {
              istio: struct({
                workload: podName,
                namespace,
                service_account: pod.serviceAccountName,
                identity: `spiffe://${trustDomain}/ns/${namespace}/sa/${pod.serviceAccountName}`,
                tunnel: isAmbientEnrolled(pod, ns) ? 'hbone' : 'none',
              }),
            },
          },
        },
      ];
    });
    return { clusterName: name, endpoints: [{ lbEndpoints }] };
  }

  resources(): WaypointResourceSet {
    const enc = this.b.encoder;
    const ports = this.servedServices()
      .filter((svc) => svc.clusterIps.length > 0)
      .flatMap((svc) => svc.ports.map((p) => this.b.svcPort(svc, p)));
    const chains: Plain[] = [];
    const routes = new Map<string, Uint8Array>();
    for (const sp of ports) {
      this.addClusters(sp);
      chains.push(this.filterChain(sp));
      if (sp.proto !== 'tcp')
        routes.set(
          sp.name,
          enc.encode('envoy.config.route.v3.RouteConfiguration', this.routeConfiguration(sp)),
        );
    }
    const listener = {
      name: WAYPOINT_LISTENER_NAME,
      address: { socketAddress: { address: '0.0.0.0', portValue: HBONE_PORT } },
      filterChains: chains,
    };
    const clusters = new Map<string, Uint8Array>();
    const endpoints = new Map<string, Uint8Array>();
    for (const name of [...this.clusters.keys()].sort()) {
      const e = this.clusters.get(name) as ClusterEntry;
      clusters.set(name, enc.encode('envoy.config.cluster.v3.Cluster', this.cluster(name, e)));
      endpoints.set(
        name,
        enc.encode('envoy.config.endpoint.v3.ClusterLoadAssignment', this.loadAssignment(name, e)),
      );
    }
    return {
      gateway: `${this.gw.metadata.namespace}/${this.gw.metadata.name}`,
      resources: new Map<string, ReadonlyMap<string, Uint8Array>>([
        [
          LISTENER_TYPE_URL,
          new Map([[WAYPOINT_LISTENER_NAME, enc.encode('envoy.config.listener.v3.Listener', listener)]]),
        ],
        [ROUTE_CONFIGURATION_TYPE_URL, routes],
        [CLUSTER_TYPE_URL, clusters],
        [CLUSTER_LOAD_ASSIGNMENT_TYPE_URL, endpoints],
      ]),
    };
  }
}

function defaultRetryPolicy(): Plain {
  return { retryOn: DEFAULT_RETRY_ON, numRetries: { value: DEFAULT_RETRIES }, retriableStatusCodes: [503] };
}

function headerOps(ops: VsHeaderOperations): { add: Plain[]; remove: string[] } {
  return { add: headerMutations(ops.set, ops.add), remove: ops.remove.map((h) => h.toLowerCase()) };
}

function vsMatch(m: VsMatch | undefined): Plain {
  if (!m) return { prefix: '/' };
  const path = !m.uri
    ? { prefix: '/' }
    : 'exact' in m.uri
      ? { path: m.uri.exact }
      : 'prefix' in m.uri
        ? { prefix: m.uri.prefix }
        : { safeRegex: { regex: m.uri.regex } };
  const headers: Plain[] = m.headers.map((h) => ({
    name: h.name.toLowerCase(),
    ...(h.match ? { stringMatch: istioMatch(h.match) } : { presentMatch: true }),
    ...(h.invert && { invertMatch: true }),
  }));
  if (m.method) headers.push({ name: ':method', stringMatch: istioMatch(m.method) });
  if (m.authority) headers.push({ name: ':authority', stringMatch: istioMatch(m.authority) });
  const queryParameters = m.queryParams.map((q) => ({
    name: q.name,
    ...(q.match ? { stringMatch: istioMatch(q.match) } : { presentMatch: true }),
  }));
  return {
    ...path,
    ...(m.ignoreUriCase && { caseSensitive: { value: false } }),
    ...(headers.length > 0 && { headers }),
    ...(queryParameters.length > 0 && { queryParameters }),
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
    const ix = index(objects);
    const b = new Build(ix, model, this.options, this.encoder);
    const byGateway = new Map<string, WaypointResourceSet>();
    for (const gw of ix.gateways) {
      const set = new GatewayBuild(b, gw).resources();
      byGateway.set(set.gateway, set);
    }
    return { byGateway, problems: b.problems() };
  }
}

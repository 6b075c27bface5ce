import { describe, expect, it } from 'vitest';
import { MeshModelBuilder } from '../ambient/mesh-model.js';
import { decodeManifest, type KubeObject, objectKey } from '../manifests/kube-objects.js';
import {
  CLUSTER_LOAD_ASSIGNMENT_TYPE_URL,
  CLUSTER_TYPE_URL,
  EnvoyEncoder,
  LISTENER_TYPE_URL,
  ROUTE_CONFIGURATION_TYPE_URL,
} from './envoy-encoder.js';
import {
  DEFAULT_RETRY_ON,
  fractionalPercent,
  portProtocol,
  UNLIMITED,
  WaypointResourceBuilder,
  type WaypointResources,
  waypointClusterName,
} from './waypoint-resources.js';

// biome-ignore lint/suspicious/noExplicitAny: decoded protobuf messages are checked field by field
type D = any;

const enc = new EnvoyEncoder();
const TD = 'cluster.local';
const HOST = 'echo.demo.svc.cluster.local';
const C80 = `inbound-vip|80|http|${HOST}`;
const AMBIENT = { 'istio.io/dataplane-mode': 'ambient' };

function objects(docs: unknown[]): Map<string, KubeObject> {
  const map = new Map<string, KubeObject>();
  for (const doc of docs) {
    const r = decodeManifest(doc);
    if (r.ok !== true) throw new Error(`invalid test manifest: ${JSON.stringify(r)}`);
    map.set(objectKey(r.value), r.value);
  }
  return map;
}

function build(...docs: unknown[]): WaypointResources {
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

const TYPES: Record<string, string> = {
  [LISTENER_TYPE_URL]: 'envoy.config.listener.v3.Listener',
  [ROUTE_CONFIGURATION_TYPE_URL]: 'envoy.config.route.v3.RouteConfiguration',
  [CLUSTER_TYPE_URL]: 'envoy.config.cluster.v3.Cluster',
  [CLUSTER_LOAD_ASSIGNMENT_TYPE_URL]: 'envoy.config.endpoint.v3.ClusterLoadAssignment',
};

interface Decoded {
  listener: D;
  routes: Map<string, D>;
  clusters: Map<string, D>;
  endpoints: Map<string, D>;
}

/** Decodes every resource of a gateway, checking each is stored under its own name. */
function decoded(r: WaypointResources, gateway = 'demo/waypoint'): Decoded {
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
function routesOf(d: Decoded, name = C80): D[] {
  const rc = d.routes.get(name);
  expect(rc?.virtualHosts).toHaveLength(1);
  return rc.virtualHosts[0].routes;
}

/** The http_filters of a chain, by name. */
function httpFilters(d: Decoded, chain = C80): D[] {
  const fc = d.listener.filterChains.find((c: D) => c.name === chain);
  return fc.filters[0].typedConfig.httpFilters;
}

/** An istio filter_metadata Struct as plain JSON. */
function struct(s: D): unknown {
  const value = (v: D): unknown =>
    v.stringValue ?? v.numberValue ?? v.boolValue ?? v.listValue?.values?.map(value) ?? struct(v.structValue);
  return Object.fromEntries(Object.entries(s.fields ?? {}).map(([k, v]) => [k, value(v)]));
}

// ---- fixtures

const namespace = (name: string, labels: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, labels },
});
const gateway = (name = 'waypoint', ns = 'demo', annotations: Record<string, string> = {}, labels = {}) => ({
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'Gateway',
  metadata: { name, namespace: ns, annotations, labels },
  spec: { gatewayClassName: 'istio-waypoint' },
});
let ipCounter = 10;
const pod = (
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
const service = (
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
const HTTP80 = { name: 'http', port: 80, targetPort: 8080 };
const httpRoute = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'HTTPRoute',
  metadata: { name, namespace: 'demo' },
  spec: { parentRefs: [{ group: '', kind: 'Service', name: 'echo' }], ...spec },
});
const virtualService = (name: string, http: unknown[], extra: Record<string, unknown> = {}) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name, namespace: 'demo' },
  spec: { hosts: ['echo'], http, ...extra },
});
const destinationRule = (spec: Record<string, unknown>, name = 'echo', ns = 'demo') => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'DestinationRule',
  metadata: { name, namespace: ns },
  spec: { host: 'echo', ...spec },
});
const authz = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: 'security.istio.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name, namespace: 'demo' },
  spec,
});

/** A namespace whose services all use the `waypoint` Gateway, that gateway, and an echo service. */
const BASE = [
  namespace('demo', { ...AMBIENT, 'istio.io/use-waypoint': 'waypoint' }),
  gateway(),
  pod('echo-v1', { app: 'echo', version: 'v1' }, { ip: '10.0.0.1' }),
  service('echo', [HTTP80]),
];

const DEFAULT_RETRY = { retryOn: DEFAULT_RETRY_ON, numRetries: { value: 2 }, retriableStatusCodes: [503] };

describe('waypoint resources: which services a waypoint serves', () => {
  it('serves the services workload discovery sends to the gateway, one chain per port matching every VIP', () => {
    const d = decoded(
      build(
        ...BASE,
        service('dual', [HTTP80, { name: 'grpc-api', port: 9000 }], { ips: ['10.96.0.20', 'fd00::20'] }),
        // Not served: headless, the waypoint's own Service, and a service in an unlabelled namespace.
        service('headless', [HTTP80], { ips: ['None'] }),
        service('waypoint', [{ name: 'mesh', port: 15008 }], {
          selector: { 'gateway.networking.k8s.io/gateway-name': 'waypoint' },
        }),
        namespace('other'),
        service('elsewhere', [HTTP80], { ns: 'other' }),
        pod('waypoint-0', { 'gateway.networking.k8s.io/gateway-name': 'waypoint' }, { sa: 'waypoint' }),
      ),
    );
    expect(d.listener.name).toBe('waypoint');
    expect(d.listener.address).toEqual({ socketAddress: { address: '0.0.0.0', portValue: 15008 } });
    expect(d.listener.filterChains.map((c: D) => [c.name, c.filterChainMatch])).toEqual([
      [
        'inbound-vip|80|http|dual.demo.svc.cluster.local',
        {
          prefixRanges: [
            { addressPrefix: '10.96.0.20', prefixLen: { value: 32 } },
            { addressPrefix: 'fd00::20', prefixLen: { value: 128 } },
          ],
          destinationPort: { value: 80 },
        },
      ],
      [
        'inbound-vip|9000|grpc|dual.demo.svc.cluster.local',
        {
          prefixRanges: [
            { addressPrefix: '10.96.0.20', prefixLen: { value: 32 } },
            { addressPrefix: 'fd00::20', prefixLen: { value: 128 } },
          ],
          destinationPort: { value: 9000 },
        },
      ],
      [
        C80,
        {
          prefixRanges: [{ addressPrefix: '10.96.0.10', prefixLen: { value: 32 } }],
          destinationPort: { value: 80 },
        },
      ],
    ]);
    expect([...d.routes.keys()]).toEqual([
      'inbound-vip|80|http|dual.demo.svc.cluster.local',
      'inbound-vip|9000|grpc|dual.demo.svc.cluster.local',
      C80,
    ]);
  });

  it('serves only services labelled for this gateway, and a service label beats its namespace', () => {
    const r = build(
      namespace('demo', { ...AMBIENT, 'istio.io/use-waypoint': 'waypoint' }),
      gateway(),
      gateway('reviews-wp'),
      service('echo', [HTTP80]),
      service('reviews', [HTTP80], {
        ips: ['10.96.0.30'],
        labels: { 'istio.io/use-waypoint': 'reviews-wp' },
      }),
      service('direct', [HTTP80], { ips: ['10.96.0.31'], labels: { 'istio.io/use-waypoint': 'none' } }),
    );
    expect([...r.byGateway.keys()].sort()).toEqual(['demo/reviews-wp', 'demo/waypoint']);
    expect(decoded(r).listener.filterChains.map((c: D) => c.name)).toEqual([C80]);
    expect(decoded(r, 'demo/reviews-wp').listener.filterChains.map((c: D) => c.name)).toEqual([
      'inbound-vip|80|http|reviews.demo.svc.cluster.local',
    ]);
  });

  it("serves services selecting pods of the gateway's for-service-account, whatever its waypoint-for", () => {
    const r = build(
      namespace('demo', AMBIENT),
      gateway(
        'echo-wp',
        'demo',
        { 'istio.io/for-service-account': 'echo' },
        { 'istio.io/waypoint-for': 'workload' },
      ),
      pod('echo-v1', { app: 'echo' }, { sa: 'echo' }),
      pod('other', { app: 'other' }, { sa: 'other' }),
      service('echo', [HTTP80]),
      service('other', [HTTP80], { ips: ['10.96.0.40'] }),
    );
    expect(decoded(r, 'demo/echo-wp').listener.filterChains.map((c: D) => c.name)).toEqual([C80]);
  });

  it('sends every gateway an empty listener when it serves nothing, and nothing without waypoint gateways', () => {
    const d = decoded(build(namespace('demo'), gateway(), service('echo', [HTTP80])));
    expect(d.listener.filterChains).toBeUndefined();
    expect(d.routes.size + d.clusters.size + d.endpoints.size).toBe(0);
    const ingress = { ...gateway('ingress'), spec: { gatewayClassName: 'istio' } };
    expect(build(namespace('demo'), ingress).byGateway.size).toBe(0);
  });

  it('is deterministic: the same objects give the same bytes', () => {
    const docs = [...BASE, destinationRule({ subsets: [{ name: 'v1', labels: { version: 'v1' } }] })];
    const a = build(...docs).byGateway.get('demo/waypoint');
    const b = build(...docs).byGateway.get('demo/waypoint');
    for (const [url, msgs] of a?.resources ?? []) {
      for (const [name, bytes] of msgs) expect(b?.resources.get(url)?.get(name)).toEqual(bytes);
    }
  });
});

describe('waypoint resources: listener filter chains', () => {
  it('gives HTTP ports an HCM with RDS and fault and router filters; AUTO codec for sniffed HTTP, HTTP2 for grpc', () => {
    const d = decoded(
      build(
        ...BASE.slice(0, 3),
        service('echo', [
          HTTP80,
          { name: 'grpc', port: 9000 },
          { name: 'h2', port: 81, appProtocol: 'http2' },
        ]),
      ),
    );
    const hcm = (name: string) => d.listener.filterChains.find((c: D) => c.name === name).filters;
    expect(hcm(C80)).toEqual([
      {
        name: 'envoy.filters.network.http_connection_manager',
        typedConfig: {
          '@type':
            'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
          statPrefix: C80,
          rds: { routeConfigName: C80, configSource: { ads: {}, resourceApiVersion: 'V3' } },
          httpFilters: [
            {
              name: 'envoy.filters.http.fault',
              typedConfig: {
                '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
              },
            },
            {
              name: 'envoy.filters.http.router',
              typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
            },
          ],
        },
      },
    ]);
    // AUTO is the enum's zero value: absent on the wire.
    expect(hcm(C80)[0].typedConfig.codecType).toBeUndefined();
    expect(hcm(`inbound-vip|9000|grpc|${HOST}`)[0].typedConfig.codecType).toBe('HTTP2');
    expect(hcm(`inbound-vip|81|http2|${HOST}`)[0].typedConfig.codecType).toBe('HTTP2');
  });

  it('gives TCP ports only a tcp_proxy to the port cluster, and no route configuration', () => {
    const d = decoded(
      build(...BASE.slice(0, 3), service('echo', [{ name: 'tcp-db', port: 5432, targetPort: 5432 }])),
    );
    const name = `inbound-vip|5432|tcp|${HOST}`;
    expect(d.listener.filterChains[0].filters).toEqual([
      {
        name: 'envoy.filters.network.tcp_proxy',
        typedConfig: {
          '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
          statPrefix: name,
          cluster: name,
        },
      },
    ]);
    expect(d.routes.size).toBe(0);
    expect([...d.clusters.keys()]).toEqual([name]);
  });

  it.each([
    [{ name: 'web' }, 'http'],
    [{ name: 'http' }, 'http'],
    [{ name: 'http-api' }, 'http'],
    [{ name: 'http2-api' }, 'http2'],
    [{ name: 'grpc-api' }, 'grpc'],
    [{ name: 'tcp-db' }, 'tcp'],
    [{ name: 'tls' }, 'tcp'],
    [{ name: 'mysql' }, 'tcp'],
    [{ name: '' }, 'http'],
    [{ name: 'tcp', appProtocol: 'http' }, 'http'],
    [{ name: 'web', appProtocol: 'HTTP2' }, 'http2'],
    [{ name: 'web', appProtocol: 'kubernetes.io/h2c' }, 'http2'],
    [{ name: 'web', appProtocol: 'grpc' }, 'grpc'],
    [{ name: 'web', appProtocol: 'grpc-web' }, 'http'],
    [{ name: 'http', appProtocol: 'https' }, 'tcp'],
    [{ name: 'http', appProtocol: 'mongo' }, 'tcp'],
  ] as const)('takes the protocol of port %j as %s', (port, proto) => {
    expect(portProtocol(port)).toBe(proto);
  });

  it('names clusters inbound-vip|<port>|<proto>|[<subset>|]<host>', () => {
    expect(waypointClusterName(80, 'http', HOST)).toBe(C80);
    expect(waypointClusterName(80, 'http', HOST, 'v1')).toBe(`inbound-vip|80|http|v1|${HOST}`);
  });
});

describe('waypoint resources: authorization', () => {
  it('puts Gateway-targeted policies in every HTTP chain and Service-targeted ones in that service only, DENY first', () => {
    const d = decoded(
      build(
        ...BASE,
        service('other', [HTTP80], { ips: ['10.96.0.50'] }),
        authz('gw-allow', {
          targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }],
          rules: [{ from: [{ source: { namespaces: ['demo'] } }] }],
        }),
        authz('echo-deny', {
          action: 'DENY',
          targetRefs: [{ kind: 'Service', group: '', name: 'echo' }],
          rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }],
        }),
        // A ztunnel policy (selector) and a policy for another gateway do not reach these chains.
        authz('l4', { selector: { matchLabels: { app: 'echo' } }, action: 'DENY', rules: [{}] }),
        authz('elsewhere', {
          targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'nope' }],
        }),
      ),
    );
    const echo = httpFilters(d);
    expect(echo.map((f: D) => f.name)).toEqual([
      'envoy.filters.http.rbac',
      'envoy.filters.http.rbac',
      'envoy.filters.http.fault',
      'envoy.filters.http.router',
    ]);
    expect(echo[0].typedConfig['@type']).toBe(
      'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC',
    );
    expect(echo[0].typedConfig.rules.action).toBe('DENY');
    expect(Object.keys(echo[0].typedConfig.rules.policies)).toEqual(['ns[demo]-policy[echo-deny]-rule[0]']);
    // ALLOW is the enum's zero value: absent on the wire.
    expect(echo[1].typedConfig.rules.action).toBeUndefined();
    expect(Object.keys(echo[1].typedConfig.rules.policies)).toEqual(['ns[demo]-policy[gw-allow]-rule[0]']);
    expect(
      echo[1].typedConfig.rules.policies['ns[demo]-policy[gw-allow]-rule[0]'].principals[0].andIds.ids[0],
    ).toEqual({
      orIds: {
        ids: [
          { authenticated: { principalName: { safeRegex: { regex: 'spiffe://[^/]+/ns/demo/sa/[^/]+' } } } },
        ],
      },
    });
    const other = httpFilters(d, 'inbound-vip|80|http|other.demo.svc.cluster.local');
    expect(other.map((f: D) => f.name)).toEqual([
      'envoy.filters.http.rbac',
      'envoy.filters.http.fault',
      'envoy.filters.http.router',
    ]);
    expect(other[0].typedConfig.rules.action).toBeUndefined();
    expect(Object.keys(other[0].typedConfig.rules.policies)).toEqual(['ns[demo]-policy[gw-allow]-rule[0]']);
  });

  it('sends an ALLOW filter with rules but no policies for an ALLOW policy without rules (deny all)', () => {
    const d = decoded(
      build(...BASE, authz('deny-all', { targetRefs: [{ kind: 'Service', group: '', name: 'echo' }] })),
    );
    const rbac = httpFilters(d)[0];
    expect(rbac.name).toBe('envoy.filters.http.rbac');
    expect(rbac.typedConfig.rules).toEqual({});
  });
});

describe('waypoint resources: default routes', () => {
  it('routes / to the service cluster with no timeout and Istio default retries', () => {
    const d = decoded(build(...BASE));
    expect(d.routes.get(C80)).toEqual({
      name: C80,
      virtualHosts: [
        {
          name: `${HOST}:80`,
          domains: ['*'],
          routes: [
            {
              name: 'default',
              match: { prefix: '/' },
              route: { cluster: C80, timeout: {}, retryPolicy: DEFAULT_RETRY },
            },
          ],
        },
      ],
    });
  });
});

describe('waypoint resources: HTTPRoute', () => {
  // Backends this waypoint does not serve (they opt out of the namespace's waypoint).
  const notServed = { 'istio.io/use-waypoint': 'none' };
  const backends = [
    service('echo-v1', [HTTP80], {
      ips: ['10.96.0.11'],
      selector: { app: 'echo', version: 'v1' },
      labels: notServed,
    }),
    service('echo-v2', [HTTP80, { name: 'grpc', port: 9000 }], {
      ips: ['10.96.0.12'],
      selector: { app: 'echo', version: 'v2' },
      labels: notServed,
    }),
  ];

  it('orders rule matches by Gateway API precedence and splits a PathPrefix into exact and segment routes', () => {
    const d = decoded(
      build(
        ...BASE,
        ...backends,
        httpRoute('b-route', {
          rules: [
            {
              matches: [{ path: { type: 'PathPrefix', value: '/api/' } }],
              backendRefs: [{ name: 'echo-v1', port: 80 }],
            },
            {
              matches: [
                { path: { type: 'RegularExpression', value: '^/v[0-9]+' } },
                { path: { type: 'PathPrefix', value: '/api' }, method: 'GET' },
              ],
              backendRefs: [{ name: 'echo-v2', port: 80 }],
            },
          ],
        }),
        httpRoute('a-route', {
          rules: [
            {
              matches: [
                { path: { type: 'Exact', value: '/login' } },
                {
                  path: { type: 'PathPrefix', value: '/api' },
                  headers: [{ name: 'X-User', value: 'alice' }],
                },
                { path: { type: 'PathPrefix', value: '/' } },
              ],
              backendRefs: [{ name: 'echo', port: 80 }],
            },
          ],
        }),
      ),
    );
    const routes = routesOf(d);
    expect(routes.map((r: D) => [r.name, r.match])).toEqual([
      ['demo.a-route.0.0', { path: '/login' }],
      ['demo.b-route.1.1', { path: '/api', headers: [{ name: ':method', stringMatch: { exact: 'GET' } }] }],
      [
        'demo.b-route.1.1',
        { prefix: '/api/', headers: [{ name: ':method', stringMatch: { exact: 'GET' } }] },
      ],
      ['demo.a-route.0.1', { path: '/api', headers: [{ name: 'x-user', stringMatch: { exact: 'alice' } }] }],
      [
        'demo.a-route.0.1',
        { prefix: '/api/', headers: [{ name: 'x-user', stringMatch: { exact: 'alice' } }] },
      ],
      ['demo.b-route.0.0', { path: '/api' }],
      ['demo.b-route.0.0', { prefix: '/api/' }],
      ['demo.a-route.0.2', { prefix: '/' }],
      ['demo.b-route.1.0', { safeRegex: { regex: '^/v[0-9]+' } }],
    ]);
    expect(routes[0].route).toEqual({ cluster: C80, timeout: {}, retryPolicy: DEFAULT_RETRY });
    expect(routes[1].route.cluster).toBe('inbound-vip|80|http|echo-v2.demo.svc.cluster.local');
    // Backends get clusters (and endpoints) even though this waypoint does not serve them.
    expect([...d.clusters.keys()]).toEqual([
      'inbound-vip|80|http|echo-v1.demo.svc.cluster.local',
      'inbound-vip|80|http|echo-v2.demo.svc.cluster.local',
      C80,
    ]);
    expect([...d.endpoints.keys()]).toEqual([...d.clusters.keys()]);
  });

  it('matches query parameters and regex headers, and splits weighted backends', () => {
    const d = decoded(
      build(
        ...BASE,
        ...backends,
        httpRoute('split', {
          rules: [
            {
              matches: [
                {
                  path: { type: 'Exact', value: '/x' },
                  headers: [{ type: 'RegularExpression', name: 'x-id', value: '^[0-9]+$' }],
                  queryParams: [
                    { name: 'debug', value: '1' },
                    { type: 'RegularExpression', name: 'v', value: '^2' },
                  ],
                },
              ],
              backendRefs: [
                { name: 'echo-v1', port: 80, weight: 90 },
                { name: 'echo-v2', port: 9000, weight: 10 },
                { name: 'echo', port: 80, weight: 0 },
              ],
              timeouts: { request: '1.5s', backendRequest: '500ms' },
            },
          ],
        }),
      ),
    );
    const [r] = routesOf(d);
    expect(r.match).toEqual({
      path: '/x',
      headers: [{ name: 'x-id', stringMatch: { safeRegex: { regex: '^[0-9]+$' } } }],
      queryParameters: [
        { name: 'debug', stringMatch: { exact: '1' } },
        { name: 'v', stringMatch: { safeRegex: { regex: '^2' } } },
      ],
    });
    expect(r.route).toEqual({
      weightedClusters: {
        clusters: [
          { name: 'inbound-vip|80|http|echo-v1.demo.svc.cluster.local', weight: { value: 90 } },
          { name: 'inbound-vip|9000|grpc|echo-v2.demo.svc.cluster.local', weight: { value: 10 } },
        ],
      },
      timeout: { seconds: 1, nanos: 500_000_000 },
      retryPolicy: { ...DEFAULT_RETRY, perTryTimeout: { nanos: 500_000_000 } },
    });
    expect(d.clusters.get('inbound-vip|9000|grpc|echo-v2.demo.svc.cluster.local')).toBeDefined();
  });

  it('applies header modifiers, URL rewrites, mirrors, and turns ReplacePrefixMatch into per-route prefix rewrites', () => {
    const d = decoded(
      build(
        ...BASE,
        ...backends,
        httpRoute('rewrite', {
          rules: [
            {
              matches: [{ path: { type: 'PathPrefix', value: '/old/' } }],
              filters: [
                {
                  type: 'RequestHeaderModifier',
                  requestHeaderModifier: {
                    set: [{ name: 'X-Set', value: 'a' }],
                    add: [{ name: 'x-add', value: 'b' }],
                    remove: ['X-Gone'],
                  },
                },
                {
                  type: 'ResponseHeaderModifier',
                  responseHeaderModifier: { set: [{ name: 'x-served-by', value: 'wp' }], remove: ['server'] },
                },
                {
                  type: 'URLRewrite',
                  urlRewrite: {
                    hostname: 'echo.internal',
                    path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/new' },
                  },
                },
                {
                  type: 'RequestMirror',
                  requestMirror: { backendRef: { name: 'echo-v2', port: 80 }, percent: 25 },
                },
              ],
              backendRefs: [{ name: 'echo', port: 80 }],
            },
            {
              matches: [{ path: { type: 'Exact', value: '/full' } }],
              filters: [
                {
                  type: 'URLRewrite',
                  urlRewrite: { path: { type: 'ReplaceFullPath', replaceFullPath: '/replaced' } },
                },
              ],
              backendRefs: [{ name: 'echo', port: 80 }],
            },
          ],
        }),
      ),
    );
    const routes = routesOf(d);
    expect(routes.map((r: D) => r.match)).toEqual([{ path: '/full' }, { path: '/old' }, { prefix: '/old/' }]);
    expect(routes[0].route.regexRewrite).toEqual({ pattern: { regex: '^/.*$' }, substitution: '/replaced' });
    const [, exact, prefix] = routes;
    expect(exact.route.prefixRewrite).toBe('/new');
    expect(prefix.route.prefixRewrite).toBe('/new/');
    for (const r of [exact, prefix]) {
      expect(r.route.hostRewriteLiteral).toBe('echo.internal');
      expect(r.route.requestMirrorPolicies).toEqual([
        {
          cluster: 'inbound-vip|80|http|echo-v2.demo.svc.cluster.local',
          runtimeFraction: { defaultValue: { numerator: 25 } },
        },
      ]);
      expect(r.requestHeadersToAdd).toEqual([
        { header: { key: 'x-set', value: 'a' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' },
        { header: { key: 'x-add', value: 'b' } },
      ]);
      expect(r.requestHeadersToRemove).toEqual(['x-gone']);
      expect(r.responseHeadersToAdd).toEqual([
        { header: { key: 'x-served-by', value: 'wp' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' },
      ]);
      expect(r.responseHeadersToRemove).toEqual(['server']);
    }
  });

  it('redirects with scheme, host, port, status and a prefix replacement', () => {
    const d = decoded(
      build(
        ...BASE,
        httpRoute('redirect', {
          rules: [
            {
              matches: [{ path: { type: 'PathPrefix', value: '/docs' } }],
              filters: [
                {
                  type: 'RequestRedirect',
                  requestRedirect: {
                    scheme: 'https',
                    hostname: 'docs.example',
                    port: 8443,
                    statusCode: 301,
                    path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' },
                  },
                },
              ],
            },
            {
              matches: [{ path: { type: 'Exact', value: '/moved' } }],
              filters: [
                {
                  type: 'RequestRedirect',
                  requestRedirect: {
                    path: { type: 'ReplaceFullPath', replaceFullPath: '/here' },
                    statusCode: 307,
                  },
                },
              ],
            },
          ],
        }),
      ),
    );
    const routes = routesOf(d);
    expect(routes.map((r: D) => [r.match, r.redirect])).toEqual([
      [{ path: '/moved' }, { pathRedirect: '/here', responseCode: 'TEMPORARY_REDIRECT' }],
      [
        { path: '/docs' },
        { schemeRedirect: 'https', hostRedirect: 'docs.example', portRedirect: 8443, prefixRewrite: '/' },
      ],
      [
        { prefix: '/docs/' },
        { schemeRedirect: 'https', hostRedirect: 'docs.example', portRedirect: 8443, prefixRewrite: '/' },
      ],
    ]);
  });

  it('answers 500 for rules without valid backends, and says why', () => {
    const r = build(
      ...BASE,
      namespace('other'),
      service('foreign', [HTTP80], { ns: 'other', ips: ['10.96.9.9'] }),
      httpRoute('broken', {
        rules: [
          {
            matches: [{ path: { type: 'Exact', value: '/a' } }],
            backendRefs: [{ name: 'missing', port: 80 }],
          },
          { matches: [{ path: { type: 'Exact', value: '/b' } }], backendRefs: [{ name: 'echo', port: 81 }] },
          {
            matches: [{ path: { type: 'Exact', value: '/c' } }],
            backendRefs: [{ name: 'foreign', namespace: 'other', port: 80 }],
          },
          { matches: [{ path: { type: 'Exact', value: '/d' } }] },
        ],
      }),
    );
    expect(routesOf(decoded(r)).map((x: D) => [x.match.path, x.directResponse])).toEqual([
      ['/a', { status: 500 }],
      ['/b', { status: 500 }],
      ['/c', { status: 500 }],
      ['/d', { status: 500 }],
    ]);
    expect(r.problems).toEqual([
      {
        ref: 'HTTPRoute demo/broken',
        path: 'spec.rules[0].backendRefs[0]',
        message: 'backend Service demo/missing does not exist',
      },
      {
        ref: 'HTTPRoute demo/broken',
        path: 'spec.rules[1].backendRefs[0]',
        message: 'backend Service demo/echo has no port 81',
      },
      {
        ref: 'HTTPRoute demo/broken',
        path: 'spec.rules[2].backendRefs[0]',
        message: 'backend other/foreign is in another namespace (ReferenceGrant is not supported)',
      },
      {
        ref: 'HTTPRoute demo/broken',
        path: 'spec.rules[3].backendRefs',
        message: 'a rule without backends answers 500',
      },
    ]);
  });

  it('attaches by parent port, wins over a VirtualService, and ignores routes from other namespaces', () => {
    const r = build(
      ...BASE.slice(0, 3),
      service('echo', [HTTP80, { name: 'http-alt', port: 8081, targetPort: 8080 }]),
      httpRoute('port-80', {
        parentRefs: [{ group: '', kind: 'Service', name: 'echo', port: 80 }],
        rules: [
          {
            matches: [{ path: { type: 'Exact', value: '/only-80' } }],
            backendRefs: [{ name: 'echo', port: 80 }],
          },
        ],
      }),
      virtualService('vs', [{ route: [{ destination: { host: 'echo' } }] }]),
      namespace('other'),
      {
        ...httpRoute('consumer', {
          parentRefs: [{ group: '', kind: 'Service', name: 'echo', namespace: 'demo' }],
        }),
        metadata: { name: 'consumer', namespace: 'other' },
      },
    );
    const d = decoded(r);
    expect(routesOf(d).map((x: D) => x.name)).toEqual(['demo.port-80.0.0']);
    expect(routesOf(d, `inbound-vip|8081|http|${HOST}`).map((x: D) => x.name)).toEqual(['demo.vs.0']);
    expect(r.problems).toContainEqual({
      ref: 'HTTPRoute other/consumer',
      path: 'spec.parentRefs',
      message: 'a route for Service demo/echo from another namespace is not applied by its waypoint',
    });
  });
});

describe('waypoint resources: VirtualService', () => {
  const subsets = destinationRule({
    subsets: [
      { name: 'v1', labels: { version: 'v1' } },
      { name: 'v2', labels: { version: 'v2' } },
    ],
  });

  it('turns matches into Envoy matches, one route per match, and skips matches for other ports', () => {
    const d = decoded(
      build(
        ...BASE,
        virtualService('vs', [
          {
            name: 'testers',
            match: [
              {
                uri: { prefix: '/api' },
                headers: { 'X-Tester': { exact: 'yes' }, 'x-trace': {} },
                withoutHeaders: { 'x-skip': { regex: '.+' } },
                method: { exact: 'GET' },
                authority: { prefix: 'echo' },
                queryParams: { debug: { exact: '1' }, verbose: {} },
              },
              { uri: { exact: '/Exact' }, ignoreUriCase: true },
              { uri: { regex: '^/r/.*' }, port: 80 },
              { uri: { exact: '/other-port' }, port: 9999 },
            ],
            route: [{ destination: { host: 'echo' } }],
          },
          { route: [{ destination: { host: HOST, port: { number: 80 } } }] },
        ]),
      ),
    );
    const routes = routesOf(d);
    expect(routes.map((r: D) => [r.name, r.match])).toEqual([
      [
        'testers',
        {
          prefix: '/api',
          headers: [
            { name: 'x-tester', stringMatch: { exact: 'yes' } },
            { name: 'x-trace', presentMatch: true },
            { name: 'x-skip', stringMatch: { safeRegex: { regex: '.+' } }, invertMatch: true },
            { name: ':method', stringMatch: { exact: 'GET' } },
            { name: ':authority', stringMatch: { prefix: 'echo' } },
          ],
          queryParameters: [
            { name: 'debug', stringMatch: { exact: '1' } },
            { name: 'verbose', presentMatch: true },
          ],
        },
      ],
      // A present BoolValue: its `false` is the zero value, so the message is empty on the wire.
      ['testers', { path: '/Exact', caseSensitive: {} }],
      ['testers', { safeRegex: { regex: '^/r/.*' } }],
      ['demo.vs.1', { prefix: '/' }],
    ]);
    for (const r of routes)
      expect(r.route).toEqual({ cluster: C80, timeout: {}, retryPolicy: DEFAULT_RETRY });
  });

  it('routes to weighted subsets with timeout, retries, rewrite, mirror, fault and header operations', () => {
    const d = decoded(
      build(
        ...BASE,
        subsets,
        service('shadow', [HTTP80], { ips: ['10.96.0.70'] }),
        virtualService('vs', [
          {
            route: [
              { destination: { host: 'echo', subset: 'v1' }, weight: 75 },
              { destination: { host: 'echo', subset: 'v2' }, weight: 25 },
            ],
            timeout: '3s',
            retries: {
              attempts: 4,
              perTryTimeout: '250ms',
              retryOn: 'gateway-error,reset,503',
              backoff: '20ms',
            },
            rewrite: { uri: '/v2', authority: 'echo-v2' },
            mirror: { host: 'shadow' },
            mirrorPercentage: { value: 2.5 },
            fault: {
              delay: { fixedDelay: '1.5s', percentage: { value: 10 } },
              abort: { httpStatus: 503, percentage: { value: 0.1 } },
            },
            headers: {
              request: { set: { 'x-route': 'vs' }, add: { 'x-multi': '1' }, remove: ['cookie'] },
              response: { set: { 'cache-control': 'no-store' }, remove: ['server'] },
            },
          },
        ]),
      ),
    );
    const [r] = routesOf(d);
    expect(r.route).toEqual({
      weightedClusters: {
        clusters: [
          { name: `inbound-vip|80|http|v1|${HOST}`, weight: { value: 75 } },
          { name: `inbound-vip|80|http|v2|${HOST}`, weight: { value: 25 } },
        ],
      },
      timeout: { seconds: 3 },
      retryPolicy: {
        retryOn: 'gateway-error,reset,retriable-status-codes',
        numRetries: { value: 4 },
        perTryTimeout: { nanos: 250_000_000 },
        retryBackOff: { baseInterval: { nanos: 20_000_000 }, maxInterval: { nanos: 200_000_000 } },
        retriableStatusCodes: [503],
      },
      prefixRewrite: '/v2',
      hostRewriteLiteral: 'echo-v2',
      requestMirrorPolicies: [
        {
          cluster: 'inbound-vip|80|http|shadow.demo.svc.cluster.local',
          runtimeFraction: { defaultValue: { numerator: 25_000, denominator: 'MILLION' } },
        },
      ],
    });
    expect(r.typedPerFilterConfig).toEqual({
      'envoy.filters.http.fault': {
        '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
        delay: { fixedDelay: { seconds: 1, nanos: 500_000_000 }, percentage: { numerator: 10 } },
        abort: { httpStatus: 503, percentage: { numerator: 1000, denominator: 'MILLION' } },
      },
    });
    expect(r.requestHeadersToAdd).toEqual([
      { header: { key: 'x-route', value: 'vs' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' },
      { header: { key: 'x-multi', value: '1' } },
    ]);
    expect(r.requestHeadersToRemove).toEqual(['cookie']);
    expect(r.responseHeadersToAdd).toEqual([
      { header: { key: 'cache-control', value: 'no-store' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' },
    ]);
    expect(r.responseHeadersToRemove).toEqual(['server']);
  });

  it('turns off retries for attempts 0, keeps default conditions without retryOn, and aborts with a gRPC status', () => {
    const d = decoded(
      build(
        ...BASE,
        virtualService('vs', [
          {
            match: [{ uri: { exact: '/none' } }],
            route: [{ destination: { host: 'echo' } }],
            retries: { attempts: 0 },
          },
          {
            match: [{ uri: { exact: '/default-on' } }],
            route: [{ destination: { host: 'echo' } }],
            retries: { attempts: 5 },
          },
          {
            match: [{ uri: { exact: '/grpc-abort' } }],
            route: [{ destination: { host: 'echo' } }],
            fault: { abort: { grpcStatus: 'UNAVAILABLE' } },
          },
        ]),
      ),
    );
    const [none, defaultOn, grpcAbort] = routesOf(d);
    expect(none.route.retryPolicy).toBeUndefined();
    expect(defaultOn.route.retryPolicy).toEqual({ ...DEFAULT_RETRY, numRetries: { value: 5 } });
    expect(grpcAbort.typedPerFilterConfig['envoy.filters.http.fault'].abort).toEqual({
      grpcStatus: 14,
      percentage: { numerator: 100 },
    });
  });

  it('redirects and answers directly', () => {
    const d = decoded(
      build(
        ...BASE,
        virtualService('vs', [
          {
            match: [{ uri: { exact: '/r' } }],
            redirect: { uri: '/new', authority: 'other', port: 8080, scheme: 'https', redirectCode: 302 },
          },
          { match: [{ uri: { exact: '/d' } }], directResponse: { status: 418, body: { string: 'teapot' } } },
          { match: [{ uri: { exact: '/m' } }], redirect: { uri: '/moved' } },
        ]),
      ),
    );
    const [r, dr, m] = routesOf(d);
    expect(r.redirect).toEqual({
      schemeRedirect: 'https',
      hostRedirect: 'other',
      portRedirect: 8080,
      pathRedirect: '/new',
      responseCode: 'FOUND',
    });
    expect(r.route).toBeUndefined();
    expect(dr.directResponse).toEqual({ status: 418, body: { inlineString: 'teapot' } });
    // MOVED_PERMANENTLY is the enum's zero value: absent on the wire.
    expect(m.redirect).toEqual({ pathRedirect: '/moved' });
  });

  it('resolves hosts as Istio does, ignores gateway-only and later VirtualServices, and reports unknown destinations', () => {
    const r = build(
      ...BASE,
      virtualService('a-ingress-only', [{ directResponse: { status: 200 } }], {
        gateways: ['istio-system/ingress'],
      }),
      virtualService(
        'b-fqdn',
        [
          { match: [{ uri: { exact: '/x' } }], route: [{ destination: { host: 'echo.demo' } }] },
          { match: [{ uri: { exact: '/y' } }], route: [{ destination: { host: 'nope' } }] },
          { match: [{ uri: { exact: '/z' } }], route: [{ destination: { host: 'echo', subset: 'v9' } }] },
        ],
        { hosts: [HOST], gateways: ['mesh'] },
      ),
      virtualService('c-short', [{ directResponse: { status: 204 } }]),
    );
    const routes = routesOf(decoded(r));
    expect(routes.map((x: D) => x.route?.cluster ?? x.directResponse.status)).toEqual([C80, 500, 500]);
    expect(r.problems).toEqual([
      {
        ref: 'VirtualService demo/c-short',
        path: 'spec.hosts',
        message: `ignored for ${HOST}: VirtualService demo/b-fqdn already applies`,
      },
      {
        ref: 'VirtualService demo/b-fqdn',
        path: 'spec.http[1].route[0].destination.host',
        message: 'host nope is not a Service in the mesh',
      },
      {
        ref: 'VirtualService demo/b-fqdn',
        path: 'spec.http[1].route',
        message: 'no valid destination: answers 500',
      },
      {
        ref: 'VirtualService demo/b-fqdn',
        path: 'spec.http[2].route[0].destination.subset',
        message: `subset v9 is not defined by a DestinationRule for ${HOST}`,
      },
      {
        ref: 'VirtualService demo/b-fqdn',
        path: 'spec.http[2].route',
        message: 'no valid destination: answers 500',
      },
    ]);
  });
});

describe('waypoint resources: clusters', () => {
  it('sends EDS clusters with Istio defaults, telemetry metadata and HTTP/2 options for gRPC', () => {
    const d = decoded(build(...BASE.slice(0, 3), service('echo', [HTTP80, { name: 'grpc', port: 9000 }])));
    const c = d.clusters.get(C80);
    expect(c).toEqual({
      name: C80,
      type: 'EDS',
      edsClusterConfig: { serviceName: C80, edsConfig: { ads: {}, resourceApiVersion: 'V3' } },
      connectTimeout: { seconds: 10 },
      circuitBreakers: {
        thresholds: [
          {
            maxConnections: { value: UNLIMITED },
            maxPendingRequests: { value: UNLIMITED },
            maxRequests: { value: UNLIMITED },
            maxRetries: { value: UNLIMITED },
            retryBudget: { budgetPercent: { value: 20 }, minRetryConcurrency: { value: 3 } },
          },
        ],
      },
      metadata: { filterMetadata: { istio: expect.anything() } },
    });
    expect(c.lbPolicy).toBeUndefined(); // ROUND_ROBIN, the zero value
    expect(struct(c.metadata.filterMetadata.istio)).toEqual({
      services: [{ host: HOST, namespace: 'demo', name: 'echo' }],
    });
    expect(c.typedExtensionProtocolOptions).toBeUndefined();
    expect(d.clusters.get(`inbound-vip|9000|grpc|${HOST}`).typedExtensionProtocolOptions).toEqual({
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicitHttpConfig: { http2ProtocolOptions: {} },
      },
    });
  });

  it('applies a DestinationRule: load balancer, limits, outlier detection, and subsets with their own policy', () => {
    const d = decoded(
      build(
        ...BASE,
        destinationRule({
          host: HOST,
          trafficPolicy: {
            loadBalancer: { simple: 'LEAST_REQUEST' },
            connectionPool: {
              tcp: { maxConnections: 100, connectTimeout: '250ms' },
              http: { http1MaxPendingRequests: 10, http2MaxRequests: 1000 },
            },
            outlierDetection: { consecutive5xxErrors: 3, interval: '5s' },
          },
          subsets: [
            { name: 'v1', labels: { version: 'v1' } },
            {
              name: 'v2',
              labels: { version: 'v2' },
              trafficPolicy: {
                loadBalancer: { simple: 'RANDOM' },
                connectionPool: { http: { maxRetries: 5 } },
              },
            },
          ],
        }),
      ),
    );
    expect([...d.clusters.keys()]).toEqual([
      C80,
      `inbound-vip|80|http|v1|${HOST}`,
      `inbound-vip|80|http|v2|${HOST}`,
    ]);
    const top = d.clusters.get(C80);
    expect(top.lbPolicy).toBe('LEAST_REQUEST');
    expect(top.connectTimeout).toEqual({ nanos: 250_000_000 });
    expect(top.circuitBreakers.thresholds[0]).toEqual({
      maxConnections: { value: 100 },
      maxPendingRequests: { value: 10 },
      maxRequests: { value: 1000 },
      maxRetries: { value: UNLIMITED },
      retryBudget: { budgetPercent: { value: 20 }, minRetryConcurrency: { value: 3 } },
    });
    expect(top.outlierDetection).toEqual({
      consecutive_5xx: { value: 3 },
      interval: { seconds: 5 },
      baseEjectionTime: { seconds: 30 },
      maxEjectionPercent: { value: 10 },
    });
    expect(d.clusters.get(`inbound-vip|80|http|v1|${HOST}`).lbPolicy).toBe('LEAST_REQUEST');
    const v2 = d.clusters.get(`inbound-vip|80|http|v2|${HOST}`);
    expect(v2.lbPolicy).toBe('RANDOM');
    // The subset's connectionPool replaces the top-level one; an explicit maxRetries gets no budget.
    expect(v2.circuitBreakers.thresholds[0]).toEqual({
      maxConnections: { value: UNLIMITED },
      maxPendingRequests: { value: UNLIMITED },
      maxRequests: { value: UNLIMITED },
      maxRetries: { value: 5 },
    });
    expect(v2.outlierDetection.consecutive_5xx).toEqual({ value: 3 });
    expect(v2.connectTimeout).toEqual({ seconds: 10 });
  });

  it('hashes consistently: RING_HASH clusters and a hash_policy on routes to them', () => {
    const d = decoded(
      build(
        ...BASE,
        destinationRule({
          trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'X-User' } } },
          subsets: [
            {
              name: 'sticky-ip',
              labels: { version: 'v1' },
              trafficPolicy: { loadBalancer: { consistentHash: { useSourceIp: true } } },
            },
          ],
        }),
        virtualService('vs', [
          {
            match: [{ uri: { prefix: '/ip' } }],
            route: [{ destination: { host: 'echo', subset: 'sticky-ip' } }],
          },
          { route: [{ destination: { host: 'echo' } }] },
        ]),
      ),
    );
    expect(d.clusters.get(C80).lbPolicy).toBe('RING_HASH');
    const [ip, header] = routesOf(d);
    expect(ip.route.hashPolicy).toEqual([{ connectionProperties: { sourceIp: true } }]);
    expect(header.route.hashPolicy).toEqual([{ header: { headerName: 'x-user' } }]);
  });

  it('prefers the DestinationRule in the service namespace and reports the others', () => {
    const r = build(
      ...BASE,
      namespace('istio-system'),
      destinationRule(
        { host: HOST, trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } },
        'a-global',
        'istio-system',
      ),
      destinationRule({ trafficPolicy: { loadBalancer: { simple: 'LEAST_REQUEST' } } }, 'z-local'),
    );
    expect(decoded(r).clusters.get(C80).lbPolicy).toBe('LEAST_REQUEST');
    expect(r.problems).toEqual([
      {
        ref: 'DestinationRule istio-system/a-global',
        path: 'spec.host',
        message: 'ignored: DestinationRule demo/z-local already applies to demo/echo',
      },
    ]);
  });
});

describe('waypoint resources: endpoints', () => {
  it('lists ready pods with their target port and identity metadata, HBONE only when enrolled', () => {
    const d = decoded(
      build(
        namespace('demo', { ...AMBIENT, 'istio.io/use-waypoint': 'waypoint' }),
        gateway(),
        service('echo', [{ name: 'http', port: 80, targetPort: 'web' }]),
        pod(
          'echo-b',
          { app: 'echo', version: 'v2', 'istio.io/dataplane-mode': 'none' },
          { ip: '10.0.0.2', ports: { web: 8081 } },
        ),
        pod('echo-a', { app: 'echo', version: 'v1' }, { ip: '10.0.0.1', ports: { web: 8080 } }),
        // Not endpoints: no IP yet, finished, no such named port, not selected.
        pod('echo-pending', { app: 'echo' }, { ip: null, ports: { web: 8080 } }),
        pod('echo-done', { app: 'echo' }, { phase: 'Succeeded', ports: { web: 8080 } }),
        pod('echo-noport', { app: 'echo' }, { ip: '10.0.0.3' }),
        pod('sleep', { app: 'sleep' }, { sa: 'sleep', ports: { web: 8080 } }),
        destinationRule({ subsets: [{ name: 'v2', labels: { version: 'v2' } }] }),
      ),
    );
    const all = d.endpoints.get(C80);
    expect(all.clusterName).toBe(C80);
    expect(all.endpoints).toHaveLength(1);
    const eps = all.endpoints[0].lbEndpoints;
    expect(eps.map((e: D) => e.endpoint.address.socketAddress)).toEqual([
      { address: '10.0.0.1', portValue: 8080 },
      { address: '10.0.0.2', portValue: 8081 },
    ]);
    expect(eps.map((e: D) => struct(e.metadata.filterMetadata.istio))).toEqual([
      {
        workload: 'echo-a',
        namespace: 'demo',
        service_account: 'echo',
        identity: 'spiffe://cluster.local/ns/demo/sa/echo',
        tunnel: 'hbone',
      },
      {
        workload: 'echo-b',
        namespace: 'demo',
        service_account: 'echo',
        identity: 'spiffe://cluster.local/ns/demo/sa/echo',
        tunnel: 'none',
      },
    ]);
    const v2 = d.endpoints.get(`inbound-vip|80|http|v2|${HOST}`).endpoints[0].lbEndpoints;
    expect(v2.map((e: D) => e.endpoint.address.socketAddress.address)).toEqual(['10.0.0.2']);
  });

  it('keeps one empty locality for a service without ready pods', () => {
    const d = decoded(build(BASE[0], BASE[1], service('echo', [HTTP80])));
    expect(d.endpoints.get(C80)).toEqual({ clusterName: C80, endpoints: [{}] });
  });
});

describe('waypoint resources: percentages', () => {
  it('sends whole percents over HUNDRED and fractions over MILLION', () => {
    expect(fractionalPercent(25)).toEqual({ numerator: 25, denominator: 'HUNDRED' });
    expect(fractionalPercent(0.5)).toEqual({ numerator: 5000, denominator: 'MILLION' });
    expect(fractionalPercent(12.5)).toEqual({ numerator: 125_000, denominator: 'MILLION' });
  });
});

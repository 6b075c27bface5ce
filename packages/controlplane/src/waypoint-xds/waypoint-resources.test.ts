import { describe, expect, it } from 'vitest';
import {
  AMBIENT,
  BASE,
  build,
  C80,
  type D,
  decoded,
  destinationRule,
  gateway,
  HTTP80,
  httpRoute,
  namespace,
  pod,
  routesOf,
  service,
} from './waypoint-fixture.js';
import { fractionalPercent } from './waypoint-resources.js';

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
      pod('echo-v1', { app: 'echo' }, { sa: 'echo', ip: '10.0.0.7' }),
      pod('other', { app: 'other' }, { sa: 'other' }),
      service('echo', [HTTP80]),
      service('other', [HTTP80], { ips: ['10.96.0.40'] }),
    );
    // The echo pods carry the legacy waypoint as their workload waypoint: served at their address too.
    expect(decoded(r, 'demo/echo-wp').listener.filterChains.map((c: D) => c.name)).toEqual([
      C80,
      'inbound-pod|8080|http|10.0.0.7|echo.demo.svc.cluster.local',
    ]);
  });

  it('serves the pods of a workload waypoint at their own address: a chain per pod port, a cluster of that pod, the default route', () => {
    const POD_CHAIN = 'inbound-pod|8080|http|10.0.0.5|echo.demo.svc.cluster.local';
    const r = build(
      namespace('demo', { ...AMBIENT, 'istio.io/use-waypoint': 'waypoint' }),
      gateway('waypoint', 'demo', {}, { 'istio.io/waypoint-for': 'workload' }),
      pod('echo-v1', { app: 'echo' }, { ip: '10.0.0.5' }),
      pod('echo-v2', { app: 'echo', 'istio.io/use-waypoint': 'none' }, { ip: '10.0.0.6' }),
      service('echo', [HTTP80]),
      // Service routes are for the VIP: they do not apply to traffic addressed to the pod.
      httpRoute('split', { rules: [{ backendRefs: [{ name: 'echo', port: 80 }] }] }),
    );
    const d = decoded(r);
    // A workload-only waypoint serves no service VIP, and echo-v2 opted out.
    expect(d.listener.filterChains.map((c: D) => [c.name, c.filterChainMatch])).toEqual([
      [
        POD_CHAIN,
        {
          prefixRanges: [{ addressPrefix: '10.0.0.5', prefixLen: { value: 32 } }],
          destinationPort: { value: 8080 },
        },
      ],
    ]);
    expect(routesOf(d, POD_CHAIN).map((x: D) => [x.name, x.route.cluster])).toEqual([['default', POD_CHAIN]]);
    expect(
      d.endpoints.get(POD_CHAIN).endpoints[0].lbEndpoints.map((e: D) => e.endpoint.address.socketAddress),
    ).toEqual([{ address: '10.0.0.5', portValue: 8080 }]);
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

describe('waypoint resources: percentages', () => {
  it('sends whole percents over HUNDRED and fractions over MILLION', () => {
    expect(fractionalPercent(25)).toEqual({ numerator: 25, denominator: 'HUNDRED' });
    expect(fractionalPercent(0.5)).toEqual({ numerator: 5000, denominator: 'MILLION' });
    expect(fractionalPercent(12.5)).toEqual({ numerator: 125_000, denominator: 'MILLION' });
  });
});

import { describe, expect, it } from 'vitest';
import {
  authz,
  BASE,
  build,
  C80,
  type D,
  decoded,
  HOST,
  HTTP80,
  httpFilters,
  service,
} from './waypoint-fixture.js';
import { portProtocol, waypointClusterName } from './waypoint-resources.js';

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

import type { Result, XdsResourceType } from '@ambient/shared';
import { describe, expect, it } from 'vitest';
import { evaluateRbac } from '../authz/rbac.js';
import type { HttpChain, RouteAction } from '../config/waypoint-config.js';
import { decideFault } from '../fault/fault-decision.js';
import { selectRoute } from '../route/route-select.js';
import { duration, encodeMessage, struct, typed } from '../testing/envoy-encode.js';
import { FAULT_TYPE, HCM_TYPE, HTTP_PROTOCOL_OPTIONS_TYPE, RBAC_TYPE, ROUTER_TYPE } from './envoy-protos.js';
import {
  clusterLoadAssignmentResourceType,
  clusterResourceType,
  listenerResourceType,
  routeConfigurationResourceType,
} from './envoy-xds.js';
import { WaypointConfigStore } from './waypoint-config-store.js';

const HOST = 'reviews.bookinfo.svc.cluster.local';
const CHAIN = `inbound-vip|9080|http|${HOST}`;
const V2 = `inbound-vip|9080|http|v2|${HOST}`;

function ok<T>(type: XdsResourceType<T>, message: string, object: Record<string, unknown>, name: string): T {
  const r: Result<T> = type.decode(encodeMessage(message, object), name);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.value;
}

/** The resources docs/waypoint-xds.md describes, as the control plane encodes them. */
function contract() {
  const listener = ok(
    listenerResourceType(),
    'envoy.config.listener.v3.Listener',
    {
      name: 'waypoint',
      address: { socketAddress: { address: '0.0.0.0', portValue: 15008 } },
      filterChains: [
        {
          name: CHAIN,
          filterChainMatch: {
            prefixRanges: [{ addressPrefix: '10.96.0.10', prefixLen: { value: 32 } }],
            destinationPort: { value: 9080 },
          },
          filters: [
            {
              name: 'envoy.filters.network.http_connection_manager',
              typedConfig: typed(HCM_TYPE, {
                statPrefix: CHAIN,
                codecType: 'AUTO',
                rds: { routeConfigName: CHAIN, configSource: { ads: {} } },
                httpFilters: [
                  {
                    name: 'envoy.filters.http.rbac',
                    typedConfig: typed(RBAC_TYPE, {
                      rules: {
                        action: 'DENY',
                        policies: {
                          'ns[bookinfo]-policy[no-delete]-rule[0]': {
                            principals: [{ any: true }],
                            permissions: [
                              {
                                andRules: {
                                  rules: [{ header: { name: ':method', stringMatch: { exact: 'DELETE' } } }],
                                },
                              },
                            ],
                          },
                        },
                      },
                    }),
                  },
                  {
                    name: 'envoy.filters.http.rbac',
                    typedConfig: typed(RBAC_TYPE, {
                      rules: {
                        action: 'ALLOW',
                        policies: {
                          'ns[bookinfo]-policy[from-bookinfo]-rule[0]': {
                            principals: [
                              {
                                orIds: {
                                  ids: [
                                    {
                                      authenticated: {
                                        principalName: {
                                          safeRegex: { regex: 'spiffe://[^/]+/ns/bookinfo/sa/[^/]+' },
                                        },
                                      },
                                    },
                                  ],
                                },
                              },
                            ],
                            permissions: [{ any: true }],
                          },
                        },
                      },
                    }),
                  },
                  { name: 'envoy.filters.http.fault', typedConfig: typed(FAULT_TYPE) },
                  { name: 'envoy.filters.http.router', typedConfig: typed(ROUTER_TYPE) },
                ],
              }),
            },
          ],
        },
      ],
    },
    'waypoint',
  );
  const routes = ok(
    routeConfigurationResourceType(),
    'envoy.config.route.v3.RouteConfiguration',
    {
      name: CHAIN,
      virtualHosts: [
        {
          name: `${HOST}:9080`,
          domains: ['*'],
          routes: [
            {
              name: 'jason',
              match: { prefix: '/', headers: [{ name: 'end-user', stringMatch: { exact: 'jason' } }] },
              route: { cluster: V2, timeout: {} },
              typedPerFilterConfig: {
                'envoy.filters.http.fault': typed(FAULT_TYPE, {
                  delay: {
                    fixedDelay: duration(7000),
                    percentage: { numerator: 100, denominator: 'HUNDRED' },
                  },
                }),
              },
            },
            {
              name: 'default',
              match: { prefix: '/' },
              route: {
                weightedClusters: {
                  clusters: [
                    { name: CHAIN, weight: { value: 80 } },
                    { name: V2, weight: { value: 20 } },
                  ],
                },
                timeout: {},
                retryPolicy: {
                  retryOn: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
                  numRetries: { value: 2 },
                  retriableStatusCodes: [503],
                },
              },
            },
          ],
        },
      ],
    },
    CHAIN,
  );
  const cluster = (name: string) =>
    ok(
      clusterResourceType(),
      'envoy.config.cluster.v3.Cluster',
      {
        name,
        type: 'EDS',
        edsClusterConfig: { serviceName: name, edsConfig: { ads: {} } },
        connectTimeout: duration(10_000),
        lbPolicy: 'ROUND_ROBIN',
        circuitBreakers: {
          thresholds: [
            {
              maxConnections: { value: 0xffffffff },
              maxPendingRequests: { value: 0xffffffff },
              maxRequests: { value: 0xffffffff },
              maxRetries: { value: 0xffffffff },
              retryBudget: { budgetPercent: { value: 20 }, minRetryConcurrency: { value: 3 } },
            },
          ],
        },
        typedExtensionProtocolOptions: {
          'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': typed(HTTP_PROTOCOL_OPTIONS_TYPE, {
            explicitHttpConfig: { httpProtocolOptions: {} },
          }),
        },
        metadata: {
          filterMetadata: {
            istio: struct({ services: [{ host: HOST, namespace: 'bookinfo', name: 'reviews' }] }),
          },
        },
      },
      name,
    );
  const assignment = ok(
    clusterLoadAssignmentResourceType(),
    'envoy.config.endpoint.v3.ClusterLoadAssignment',
    {
      clusterName: CHAIN,
      endpoints: [
        {
          lbEndpoints: [
            {
              endpoint: { address: { socketAddress: { address: '10.1.0.5', portValue: 9080 } } },
              metadata: {
                filterMetadata: {
                  istio: struct({
                    workload: 'reviews-v1-abc',
                    namespace: 'bookinfo',
                    service_account: 'bookinfo-reviews',
                    identity: 'spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews',
                    tunnel: 'hbone',
                  }),
                },
              },
            },
          ],
        },
      ],
    },
    CHAIN,
  );
  return { listener, routes, clusters: [cluster(CHAIN), cluster(V2)], assignment };
}

describe('the waypoint contract end to end (pure)', () => {
  it('decodes, assembles and drives authorization, routing and faults', () => {
    const r = contract();
    const store = new WaypointConfigStore();
    store.setListeners(new Map([['waypoint', r.listener]]));
    store.setRoutes(new Map([[CHAIN, r.routes]]));
    store.setClusters(new Map(r.clusters.map((c) => [c.name, c])));
    store.setEndpoints(new Map([[CHAIN, r.assignment]]));
    expect(store.warnings).toEqual([{ path: `clusters[${V2}]`, message: 'no ClusterLoadAssignment yet' }]);

    const config = store.config;
    const chain = config.listener?.chains[0];
    const http = chain?.handler as HttpChain;
    const base = { sourceIp: '10.1.0.9', destinationPort: 9080 };
    const headers = { ':method': 'GET', ':path': '/reviews/1', ':authority': 'reviews:9080' };
    expect(
      evaluateRbac(http.rbac, {
        ...base,
        principal: 'spiffe://cluster.local/ns/bookinfo/sa/productpage',
        headers,
      }),
    ).toEqual({
      allowed: true,
      policy: 'ns[bookinfo]-policy[from-bookinfo]-rule[0]',
    });
    expect(
      evaluateRbac(http.rbac, { ...base, principal: 'spiffe://cluster.local/ns/other/sa/x', headers }),
    ).toMatchObject({ allowed: false });
    expect(
      evaluateRbac(http.rbac, {
        ...base,
        principal: 'spiffe://cluster.local/ns/bookinfo/sa/productpage',
        headers: { ...headers, ':method': 'DELETE' },
      }),
    ).toMatchObject({ allowed: false, action: 'DENY' });

    const table = config.routes.get(http.routeConfigName);
    expect(table).toBeDefined();
    const view = { method: 'GET', path: '/reviews/1', authority: 'reviews:9080' };
    const jason = selectRoute(table!, { ...view, headers: { 'end-user': 'jason' } });
    expect(jason?.name).toBe('jason');
    expect(decideFault(jason?.fault, () => 0.5)).toEqual({ delayMs: 7000 });
    const other = selectRoute(table!, { ...view, headers: {} });
    expect(other?.name).toBe('default');
    const action = other?.action as RouteAction;
    expect(action.timeoutMs).toBe(0);
    expect(action.retry?.numRetries).toBe(2);
    expect(config.clusters.get(CHAIN)?.service?.name).toBe('reviews');
    expect(config.endpoints.get(CHAIN)?.[0]?.tunnel).toBe('hbone');
  });
});

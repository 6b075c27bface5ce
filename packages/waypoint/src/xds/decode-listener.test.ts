import type { Problem, Result } from '@ambient/shared';
import { describe, expect, it } from 'vitest';
import type { HttpChain, WaypointListener } from '../config/waypoint-config.js';
import { encodeMessage, typed } from '../testing/envoy-encode.js';
import {
  FAULT_TYPE,
  HCM_TYPE,
  LISTENER_TYPE_URL,
  RBAC_TYPE,
  ROUTER_TYPE,
  TCP_PROXY_TYPE,
} from './envoy-protos.js';
import { listenerResourceType } from './envoy-xds.js';
import { Re2Regex } from './re2-regex.js';

const HTTP_CHAIN = 'inbound-vip|9080|http|reviews.bookinfo.svc.cluster.local';
const TCP_CHAIN = 'inbound-vip|3306|tcp|mysql.db.svc.cluster.local';

function hcm(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return typed(HCM_TYPE, {
    statPrefix: HTTP_CHAIN,
    codecType: 'AUTO',
    rds: { routeConfigName: HTTP_CHAIN, configSource: { ads: {} } },
    httpFilters: [
      { name: 'envoy.filters.http.fault', typedConfig: typed(FAULT_TYPE) },
      { name: 'envoy.filters.http.router', typedConfig: typed(ROUTER_TYPE) },
    ],
    ...fields,
  });
}

function httpChain(fields: Record<string, unknown> = {}, hcmFields: Record<string, unknown> = {}) {
  return {
    name: HTTP_CHAIN,
    filterChainMatch: {
      prefixRanges: [{ addressPrefix: '10.96.0.10', prefixLen: { value: 32 } }],
      destinationPort: { value: 9080 },
    },
    filters: [{ name: 'envoy.filters.network.http_connection_manager', typedConfig: hcm(hcmFields) }],
    ...fields,
  };
}

const tcpChain = {
  name: TCP_CHAIN,
  filterChainMatch: {
    prefixRanges: [{ addressPrefix: '10.96.0.11', prefixLen: { value: 32 } }],
    destinationPort: { value: 3306 },
  },
  filters: [
    {
      name: 'envoy.filters.network.tcp_proxy',
      typedConfig: typed(TCP_PROXY_TYPE, { statPrefix: TCP_CHAIN, cluster: TCP_CHAIN }),
    },
  ],
};

function listener(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'waypoint',
    address: { socketAddress: { address: '0.0.0.0', portValue: 15008 } },
    filterChains: [httpChain(), tcpChain],
    ...fields,
  };
}

function decode(object: Record<string, unknown>, name = 'waypoint'): Result<WaypointListener> {
  return listenerResourceType().decode(encodeMessage('envoy.config.listener.v3.Listener', object), name);
}

function decodeOk(object: Record<string, unknown>): WaypointListener {
  const r = decode(object);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.value;
}

function problems(object: Record<string, unknown>, name = 'waypoint'): readonly Problem[] {
  const r = decode(object, name);
  if (r.ok) throw new Error('expected problems');
  return r.problems;
}

function httpOf(l: WaypointListener): HttpChain {
  return l.chains[0]?.handler as HttpChain;
}

function rbacFilter(action: 'ALLOW' | 'DENY', policies: Record<string, unknown>) {
  return { name: 'envoy.filters.http.rbac', typedConfig: typed(RBAC_TYPE, { rules: { action, policies } }) };
}

const ROUTER = { name: 'envoy.filters.http.router', typedConfig: typed(ROUTER_TYPE) };

describe('listenerResourceType', () => {
  it('has the Listener type URL', () => {
    expect(listenerResourceType().typeUrl).toBe(LISTENER_TYPE_URL);
  });

  it('decodes the contract listener: an HTTP chain and a TCP chain', () => {
    const l = decodeOk(listener());
    expect(l.name).toBe('waypoint');
    expect(l.chains).toEqual([
      {
        name: HTTP_CHAIN,
        prefixes: [{ address: '10.96.0.10', prefixLen: 32 }],
        port: 9080,
        handler: {
          kind: 'http',
          codec: 'auto',
          routeConfigName: HTTP_CHAIN,
          rbac: [],
          statPrefix: HTTP_CHAIN,
        },
      },
      {
        name: TCP_CHAIN,
        prefixes: [{ address: '10.96.0.11', prefixLen: 32 }],
        port: 3306,
        handler: { kind: 'tcp', cluster: TCP_CHAIN, statPrefix: TCP_CHAIN },
      },
    ]);
  });

  it('returns a deeply frozen value', () => {
    const l = decodeOk(listener());
    expect(Object.isFrozen(l)).toBe(true);
    expect(Object.isFrozen(l.chains)).toBe(true);
    expect(Object.isFrozen(l.chains[0]?.handler)).toBe(true);
  });

  it('maps codec types AUTO, HTTP1 and HTTP2', () => {
    for (const [codecType, codec] of [
      ['AUTO', 'auto'],
      ['HTTP1', 'http1'],
      ['HTTP2', 'http2'],
    ]) {
      const l = decodeOk(listener({ filterChains: [httpChain({}, { codecType })] }));
      expect(httpOf(l).codec).toBe(codec);
    }
  });

  it('takes the request header count limit from common_http_protocol_options.max_headers_count', () => {
    expect(httpOf(decodeOk(listener())).maxHeadersCount).toBeUndefined();
    const opts = (n: number) => ({ commonHttpProtocolOptions: { maxHeadersCount: { value: n } } });
    expect(httpOf(decodeOk(listener({ filterChains: [httpChain({}, opts(50))] }))).maxHeadersCount).toBe(50);
    expect(problems(listener({ filterChains: [httpChain({}, opts(0))] }))).toContainEqual({
      path: 'filter_chains[0].filters[0].typed_config.common_http_protocol_options.max_headers_count',
      message: 'must be at least 1',
    });
  });

  it('rejects HTTP/3 codec', () => {
    expect(problems(listener({ filterChains: [httpChain({}, { codecType: 'HTTP3' })] }))).toContainEqual({
      path: 'filter_chains[0].filters[0].typed_config.codec_type',
      message: '3 is not AUTO, HTTP1 or HTTP2',
    });
  });

  it('accepts chains without a match: any address, any port', () => {
    const l = decodeOk(listener({ filterChains: [{ ...tcpChain, filterChainMatch: null }] }));
    expect(l.chains[0]).toMatchObject({ prefixes: [], port: 0 });
  });

  it('accepts IPv6 prefixes up to 128 bits', () => {
    const chain = {
      ...tcpChain,
      filterChainMatch: { prefixRanges: [{ addressPrefix: 'fd00::10', prefixLen: { value: 128 } }] },
    };
    expect(decodeOk(listener({ filterChains: [chain] })).chains[0]?.prefixes).toEqual([
      { address: 'fd00::10', prefixLen: 128 },
    ]);
  });

  it('decodes DENY then ALLOW RBAC filters in filter order, policies by name', () => {
    const deny = rbacFilter('DENY', {
      'ns[bookinfo]-policy[deny-delete]-rule[0]': {
        permissions: [{ header: { name: ':method', stringMatch: { exact: 'DELETE' } } }],
        principals: [{ any: true }],
      },
    });
    const allow = rbacFilter('ALLOW', {
      'ns[bookinfo]-policy[z]-rule[0]': { permissions: [{ any: true }], principals: [{ any: true }] },
      'ns[bookinfo]-policy[a]-rule[0]': {
        permissions: [{ urlPath: { path: { prefix: '/api/' } } }],
        principals: [
          {
            authenticated: { principalName: { exact: 'spiffe://cluster.local/ns/bookinfo/sa/productpage' } },
          },
        ],
      },
    });
    const l = decodeOk(
      listener({
        filterChains: [
          httpChain(
            {},
            {
              httpFilters: [
                deny,
                allow,
                { name: 'envoy.filters.http.fault', typedConfig: typed(FAULT_TYPE) },
                ROUTER,
              ],
            },
          ),
        ],
      }),
    );
    const rbac = httpOf(l).rbac;
    expect(rbac).toEqual([
      {
        action: 'DENY',
        policies: [
          {
            name: 'ns[bookinfo]-policy[deny-delete]-rule[0]',
            permissions: [{ header: { name: ':method', match: { exact: 'DELETE' }, invert: false } }],
            principals: [{ any: true }],
          },
        ],
      },
      {
        action: 'ALLOW',
        policies: [
          {
            name: 'ns[bookinfo]-policy[a]-rule[0]',
            permissions: [{ urlPath: { prefix: '/api/' } }],
            principals: [{ principalName: { exact: 'spiffe://cluster.local/ns/bookinfo/sa/productpage' } }],
          },
          {
            name: 'ns[bookinfo]-policy[z]-rule[0]',
            permissions: [{ any: true }],
            principals: [{ any: true }],
          },
        ],
      },
    ]);
  });

  it('decodes every supported RBAC permission and principal', () => {
    const allow = rbacFilter('ALLOW', {
      p: {
        permissions: [
          {
            andRules: {
              rules: [
                { destinationPort: 9080 },
                {
                  orRules: { rules: [{ header: { name: ':authority', stringMatch: { suffix: '.local' } } }] },
                },
                { notRule: { urlPath: { path: { safeRegex: { regex: '/admin/.*' } } } } },
              ],
            },
          },
        ],
        principals: [
          {
            andIds: {
              ids: [
                { sourceIp: { addressPrefix: '10.0.0.0', prefixLen: { value: 8 } } },
                { directRemoteIp: { addressPrefix: '10.1.0.0', prefixLen: { value: 16 } } },
                { remoteIp: { addressPrefix: 'fd00::', prefixLen: { value: 8 } } },
              ],
            },
          },
          { orIds: { ids: [{ header: { name: 'X-User', presentMatch: true } }] } },
          {
            notId: {
              authenticated: { principalName: { safeRegex: { regex: 'spiffe://[^/]+/ns/evil/sa/[^/]+' } } },
            },
          },
          { authenticated: {} },
        ],
      },
    });
    const l = decodeOk(listener({ filterChains: [httpChain({}, { httpFilters: [allow, ROUTER] })] }));
    const policy = httpOf(l).rbac[0]?.policies[0];
    expect(policy?.permissions[0]).toMatchObject({
      andRules: [
        { destinationPort: 9080 },
        { orRules: [{ header: { name: ':authority', match: { suffix: '.local' }, invert: false } }] },
        { notRule: { urlPath: { regex: expect.any(Re2Regex) } } },
      ],
    });
    expect(policy?.principals).toMatchObject([
      {
        andIds: [
          { sourceIp: { address: '10.0.0.0', prefixLen: 8 } },
          { sourceIp: { address: '10.1.0.0', prefixLen: 16 } },
          { sourceIp: { address: 'fd00::', prefixLen: 8 } },
        ],
      },
      { orIds: [{ header: { name: 'x-user', invert: false } }] },
      { notId: { principalName: { regex: expect.any(Re2Regex) } } },
      { principalName: { prefix: '' } },
    ]);
    const notId = policy?.principals[2] as { notId: { principalName: { regex: RegExp } } };
    const regex = notId.notId.principalName.regex;
    expect(regex.test('spiffe://cluster.local/ns/evil/sa/x')).toBe(true);
    expect(regex.test('spiffe://cluster.local/ns/evil/sa/x/y')).toBe(false);
  });

  it('skips RBAC filters that enforce nothing: no rules, or action LOG', () => {
    const l = decodeOk(
      listener({
        filterChains: [
          httpChain(
            {},
            {
              httpFilters: [
                { name: 'envoy.filters.http.rbac', typedConfig: typed(RBAC_TYPE, {}) },
                rbacFilter('LOG' as 'ALLOW', {
                  p: { permissions: [{ any: true }], principals: [{ any: true }] },
                }),
                ROUTER,
              ],
            },
          ),
        ],
      }),
    );
    expect(httpOf(l).rbac).toEqual([]);
  });

  it('skips optional unknown HTTP filters', () => {
    const l = decodeOk(
      listener({
        filterChains: [
          httpChain(
            {},
            {
              httpFilters: [
                { name: 'istio.stats', isOptional: true, typedConfig: typed('google.protobuf.Empty') },
                ROUTER,
              ],
            },
          ),
        ],
      }),
    );
    expect(httpOf(l).rbac).toEqual([]);
  });

  it('refuses disabled HTTP filters: a route could enable them', () => {
    const deny = rbacFilter('DENY', { p: { permissions: [{ any: true }], principals: [{ any: true }] } });
    expect(
      problems(
        listener({ filterChains: [httpChain({}, { httpFilters: [{ ...deny, disabled: true }, ROUTER] })] }),
      ),
    ).toEqual([
      {
        path: 'filter_chains[0].filters[0].typed_config.http_filters[0].disabled',
        message: 'is not supported: routes cannot enable filters here',
      },
    ]);
  });

  it('reports an unknown HTTP filter with its field path', () => {
    const filters = [
      { name: 'envoy.filters.http.fault', typedConfig: typed(FAULT_TYPE) },
      { name: 'envoy.filters.http.cors', typedConfig: typed('google.protobuf.Empty') },
      ROUTER,
    ];
    const chains = [
      tcpChain,
      { ...tcpChain, filterChainMatch: null },
      httpChain({}, { httpFilters: filters }),
    ];
    expect(problems(listener({ filterChains: chains }))).toEqual([
      {
        path: 'filter_chains[2].filters[0].typed_config.http_filters[1]',
        message: 'envoy.filters.http.cors of type google.protobuf.Empty is not supported',
      },
    ]);
  });

  it('requires the router to be the last HTTP filter, and present', () => {
    expect(
      problems(
        listener({
          filterChains: [
            httpChain({}, { httpFilters: [ROUTER, { name: 'f', typedConfig: typed(FAULT_TYPE) }] }),
          ],
        }),
      ),
    ).toEqual([
      {
        path: 'filter_chains[0].filters[0].typed_config.http_filters[0]',
        message: 'the router must be the last HTTP filter',
      },
      {
        path: 'filter_chains[0].filters[0].typed_config.http_filters[1]',
        message: `f is not a router: the chain must end with ${ROUTER_TYPE}`,
      },
    ]);
    expect(problems(listener({ filterChains: [httpChain({}, { httpFilters: [] })] }))).toEqual([
      {
        path: 'filter_chains[0].filters[0].typed_config.http_filters',
        message: `must end with ${ROUTER_TYPE}`,
      },
    ]);
  });

  it('reports HTTP filters without typed_config or with config discovery', () => {
    const p = problems(
      listener({
        filterChains: [
          httpChain(
            {},
            {
              httpFilters: [
                { name: 'envoy.filters.http.cors' },
                { name: 'x', configDiscovery: { typeUrls: ['t'] } },
                ROUTER,
              ],
            },
          ),
        ],
      }),
    );
    expect(p).toEqual([
      {
        path: 'filter_chains[0].filters[0].typed_config.http_filters[0]',
        message: 'envoy.filters.http.cors has no typed_config',
      },
      {
        path: 'filter_chains[0].filters[0].typed_config.http_filters[1].config_discovery',
        message: 'is not supported: use typed_config',
      },
    ]);
  });

  it('rejects filter-level faults: faults are per route', () => {
    const fault = {
      name: 'envoy.filters.http.fault',
      typedConfig: typed(FAULT_TYPE, { abort: { httpStatus: 503, percentage: { numerator: 100 } } }),
    };
    expect(problems(listener({ filterChains: [httpChain({}, { httpFilters: [fault, ROUTER] })] }))).toEqual([
      {
        path: 'filter_chains[0].filters[0].typed_config.http_filters[0].typed_config',
        message: 'filter-level faults are not supported: configure them per route',
      },
    ]);
  });

  it('reports every RBAC problem with its path, not just the first', () => {
    const bad = rbacFilter('ALLOW', {
      p: {
        permissions: [
          { destinationIp: { addressPrefix: '10.0.0.1', prefixLen: { value: 32 } } },
          { urlPath: { path: { safeRegex: { regex: '(' } } } },
          { header: { name: 'x', rangeMatch: { start: 1, end: 2 } } },
        ],
        principals: [{ sourceIp: { addressPrefix: 'not-an-ip' } }, { metadata: {} }],
        condition: { id: 1 },
      },
      q: { permissions: [], principals: [] },
    });
    const p = problems(listener({ filterChains: [httpChain({}, { httpFilters: [bad, ROUTER] })] }));
    const at = 'filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.rules.policies';
    expect(p).toEqual([
      { path: `${at}[p].condition`, message: 'CEL conditions are not supported' },
      { path: `${at}[p].permissions[0].destination_ip`, message: 'is not supported' },
      {
        path: `${at}[p].permissions[1].url_path.path.safe_regex.regex`,
        message: expect.stringContaining('regex "("'),
      },
      { path: `${at}[p].permissions[2].header.range_match`, message: 'is not supported' },
      {
        path: `${at}[p].principals[0].source_ip.address_prefix`,
        message: '"not-an-ip" is not an IP address',
      },
      { path: `${at}[p].principals[1].metadata`, message: 'is not supported' },
      { path: `${at}[q].permissions`, message: 'must not be empty' },
      { path: `${at}[q].principals`, message: 'must not be empty' },
    ]);
  });

  it('rejects RBAC matchers and regexes with ignore_case', () => {
    const f = {
      name: 'envoy.filters.http.rbac',
      typedConfig: typed(RBAC_TYPE, {
        matcher: { onNoMatch: {} },
        rules: {
          action: 'ALLOW',
          policies: {
            p: {
              permissions: [{ urlPath: { path: { safeRegex: { regex: '/a' }, ignoreCase: true } } }],
              principals: [{ any: true }],
            },
          },
        },
      }),
    };
    const at = 'filter_chains[0].filters[0].typed_config.http_filters[0].typed_config';
    expect(problems(listener({ filterChains: [httpChain({}, { httpFilters: [f, ROUTER] })] }))).toEqual([
      { path: `${at}.matcher`, message: 'is not supported: use rules' },
      {
        path: `${at}.rules.policies[p].permissions[0].url_path.path.ignore_case`,
        message: 'has no effect on safe_regex: Envoy rejects it',
      },
    ]);
  });

  it('requires RDS over ADS in the connection manager', () => {
    const p = problems(
      listener({
        filterChains: [
          httpChain(
            {},
            { rds: { routeConfigName: '', configSource: { path: '/etc/routes' } }, statPrefix: '' },
          ),
          { ...httpChain({}, { rds: null, routeConfig: { name: 'inline' } }), filterChainMatch: null },
        ],
      }),
    );
    expect(p).toEqual([
      { path: 'filter_chains[0].filters[0].typed_config.stat_prefix', message: 'is required' },
      { path: 'filter_chains[0].filters[0].typed_config.rds.route_config_name', message: 'is required' },
      {
        path: 'filter_chains[0].filters[0].typed_config.rds.config_source',
        message: 'path is not supported: use ads',
      },
      {
        path: 'filter_chains[1].filters[0].typed_config.route_config',
        message: 'inline route configs are not supported: use rds',
      },
    ]);
  });

  it('checks the TCP proxy', () => {
    const chain = {
      ...tcpChain,
      filters: [
        {
          name: 'tcp',
          typedConfig: typed(TCP_PROXY_TYPE, { weightedClusters: { clusters: [{ name: 'a', weight: 1 }] } }),
        },
      ],
    };
    expect(problems(listener({ filterChains: [chain] }))).toEqual([
      { path: 'filter_chains[0].filters[0].typed_config.stat_prefix', message: 'is required' },
      {
        path: 'filter_chains[0].filters[0].typed_config.weighted_clusters',
        message: 'is not supported: use cluster',
      },
    ]);
  });

  it('requires one terminal network filter, last, and reports unknown network filters', () => {
    const p = problems(
      listener({
        filterChains: [
          { ...tcpChain, filters: [] },
          {
            ...tcpChain,
            filterChainMatch: null,
            filters: [
              {
                name: 'envoy.filters.network.rbac',
                typedConfig: {
                  type_url: 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC',
                  value: new Uint8Array(),
                },
              },
              tcpChain.filters[0],
            ],
          },
          {
            ...tcpChain,
            filterChainMatch: { destinationPort: { value: 1 } },
            filters: [tcpChain.filters[0], tcpChain.filters[0]],
          },
          { ...tcpChain, filterChainMatch: { destinationPort: { value: 2 } }, filters: [{ name: 'x' }] },
        ],
      }),
    );
    expect(p).toEqual([
      { path: 'filter_chains[0].filters', message: 'must hold an http_connection_manager or a tcp_proxy' },
      {
        path: 'filter_chains[1].filters[0]',
        message:
          'envoy.filters.network.rbac of type envoy.extensions.filters.network.rbac.v3.RBAC is not supported',
      },
      {
        path: 'filter_chains[2].filters[0]',
        message: `${TCP_PROXY_TYPE} is terminal and must be the last filter`,
      },
      { path: 'filter_chains[3].filters[0].typed_config', message: 'is required' },
    ]);
  });

  it('reports match criteria it cannot evaluate, and bad prefixes and ports', () => {
    const chain = {
      ...tcpChain,
      filterChainMatch: {
        destinationPort: { value: 70000 },
        prefixRanges: [
          { addressPrefix: '10.0.0.1', prefixLen: { value: 33 } },
          { addressPrefix: 'nope', prefixLen: { value: 1 } },
        ],
        serverNames: ['a.example'],
        transportProtocol: 'tls',
        applicationProtocols: ['h2'],
        sourcePrefixRanges: [{ addressPrefix: '10.0.0.0' }],
        directSourcePrefixRanges: [{ addressPrefix: '10.0.0.0' }],
        sourcePorts: [1],
        sourceType: 'EXTERNAL',
      },
      transportSocket: { name: 'tls' },
      useProxyProto: { value: true },
    };
    const m = 'filter_chains[0].filter_chain_match';
    expect(problems(listener({ filterChains: [chain] }))).toEqual([
      { path: `${m}.server_names`, message: 'is not supported' },
      { path: `${m}.transport_protocol`, message: 'is not supported' },
      { path: `${m}.application_protocols`, message: 'is not supported' },
      { path: `${m}.source_prefix_ranges`, message: 'is not supported' },
      { path: `${m}.direct_source_prefix_ranges`, message: 'is not supported' },
      { path: `${m}.source_ports`, message: 'is not supported' },
      { path: `${m}.source_type`, message: 'is not supported' },
      { path: `${m}.destination_port`, message: '70000 is not a port from 1 to 65535' },
      { path: `${m}.prefix_ranges[0].prefix_len`, message: '33 is longer than 32' },
      { path: `${m}.prefix_ranges[1].address_prefix`, message: '"nope" is not an IP address' },
      { path: 'filter_chains[0].transport_socket', message: 'is not supported: HBONE carries TLS' },
      { path: 'filter_chains[0].use_proxy_proto', message: 'is not supported' },
    ]);
  });

  it('rejects two chains with the same match, as Envoy does', () => {
    const twin = { ...tcpChain, name: 'twin' };
    expect(problems(listener({ filterChains: [tcpChain, twin] }))).toEqual([
      { path: 'filter_chains[1]', message: 'has the same filter_chain_match as filter_chains[0]' },
    ]);
  });

  it('checks listener-level fields and the resource name', () => {
    const p = problems(
      listener({
        address: { pipe: { path: '/tmp/x' } },
        defaultFilterChain: tcpChain,
        filterChainMatcher: { onNoMatch: {} },
      }),
      'other',
    );
    expect(p).toEqual([
      { path: 'name', message: '"waypoint" does not match the resource name' },
      { path: 'address', message: 'must be a socket_address' },
      { path: 'filter_chain_matcher', message: 'is not supported: use filter_chain_match' },
      { path: 'default_filter_chain', message: 'is not supported' },
    ]);
  });

  it('fails on bytes that are not a Listener, without throwing', () => {
    const r = listenerResourceType().decode(new Uint8Array([0xff, 0xff, 0xff]), 'waypoint');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems[0]?.message).toMatch(/does not decode/);
  });

  it('reports a typed config whose bytes do not decode as its type', () => {
    const chain = {
      ...tcpChain,
      filters: [
        {
          name: 'tcp',
          typedConfig: {
            type_url: `type.googleapis.com/${TCP_PROXY_TYPE}`,
            value: Buffer.from([0xff, 0xff]),
          },
        },
      ],
    };
    const p = problems(listener({ filterChains: [chain] }));
    expect(p[0]?.path).toBe('filter_chains[0].filters[0].typed_config');
    expect(p[0]?.message).toMatch(/does not decode/);
  });
});

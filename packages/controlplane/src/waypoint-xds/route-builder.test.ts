import { describe, expect, it } from 'vitest';
import {
  BASE,
  build,
  C80,
  type D,
  DEFAULT_RETRY,
  decoded,
  destinationRule,
  HOST,
  HTTP80,
  httpRoute,
  namespace,
  routesOf,
  service,
  virtualService,
} from './waypoint-fixture.js';

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

import type { Problem, Result } from '@ambient/shared';
import { describe, expect, it } from 'vitest';
import type { RedirectAction, Route, RouteAction, RouteTable } from '../config/waypoint-config.js';
import { duration, encodeMessage, typed } from '../testing/envoy-encode.js';
import { FAULT_TYPE, FILTER_CONFIG_TYPE, ROUTE_CONFIGURATION_TYPE_URL } from './envoy-protos.js';
import { routeConfigurationResourceType } from './envoy-xds.js';
import { Re2Regex } from './re2-regex.js';

const NAME = 'inbound-vip|9080|http|reviews.bookinfo.svc.cluster.local';
const CLUSTER = NAME;

function rc(routes: unknown[], vhost: Record<string, unknown> = {}, top: Record<string, unknown> = {}) {
  return {
    name: NAME,
    virtualHosts: [{ name: 'reviews.bookinfo.svc.cluster.local:9080', domains: ['*'], routes, ...vhost }],
    ...top,
  };
}

function decode(object: Record<string, unknown>, name = NAME): Result<RouteTable> {
  return routeConfigurationResourceType().decode(
    encodeMessage('envoy.config.route.v3.RouteConfiguration', object),
    name,
  );
}

function table(object: Record<string, unknown>): RouteTable {
  const r = decode(object);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.value;
}

function one(route: Record<string, unknown>, vhost: Record<string, unknown> = {}): Route {
  const t = table(rc([route], vhost));
  expect(t.routes).toHaveLength(1);
  return t.routes[0] as Route;
}

function problems(object: Record<string, unknown>): readonly Problem[] {
  const r = decode(object);
  if (r.ok) throw new Error('expected problems');
  return r.problems;
}

const toCluster = { route: { cluster: CLUSTER } };

describe('routeConfigurationResourceType', () => {
  it('has the RouteConfiguration type URL', () => {
    expect(routeConfigurationResourceType().typeUrl).toBe(ROUTE_CONFIGURATION_TYPE_URL);
  });

  it('decodes the default route with Envoy defaults', () => {
    const t = table(rc([{ name: 'default', match: { prefix: '/' }, ...toCluster }]));
    expect(t).toEqual({
      name: NAME,
      routes: [
        {
          name: 'default',
          match: { path: { prefix: '/' }, headers: [], query: [] },
          action: {
            kind: 'route',
            clusters: [{ cluster: CLUSTER, weight: 1 }],
            timeoutMs: 15_000,
            mirrors: [],
            hashPolicies: [],
          },
          requestHeaders: { add: [], remove: [] },
          responseHeaders: { add: [], remove: [] },
        },
      ],
    });
    expect(Object.isFrozen(t.routes[0]?.action)).toBe(true);
  });

  it('keeps routes in order across the virtual host', () => {
    const t = table(
      rc([
        { name: 'a', match: { path: '/a' }, ...toCluster },
        { name: 'b', match: { prefix: '/' }, ...toCluster },
      ]),
    );
    expect(t.routes.map((r) => r.name)).toEqual(['a', 'b']);
  });

  it('accepts a route configuration without virtual hosts (every request is 404)', () => {
    expect(table({ name: NAME }).routes).toEqual([]);
  });

  describe('match', () => {
    it('decodes prefix, path and safe_regex, with case_sensitive false', () => {
      expect(one({ match: { prefix: '/api' }, ...toCluster }).match.path).toEqual({ prefix: '/api' });
      expect(one({ match: { path: '/exact' }, ...toCluster }).match.path).toEqual({ exact: '/exact' });
      expect(
        one({ match: { prefix: '/API', caseSensitive: { value: false } }, ...toCluster }).match.path,
      ).toEqual({
        prefix: '/API',
        ignoreCase: true,
      });
      expect(one({ match: { path: '/A', caseSensitive: { value: true } }, ...toCluster }).match.path).toEqual(
        { exact: '/A' },
      );
      const r = one({ match: { safeRegex: { regex: '/v[0-9]+/.*' } }, ...toCluster }).match.path as {
        regex: { test(input: string): boolean };
      };
      expect(r.regex.test('/v1/x')).toBe(true);
      expect(r.regex.test('/x/v1/x')).toBe(false);
    });

    it('decodes header matchers of every form, lower-casing names', () => {
      const m = one({
        match: {
          prefix: '/',
          headers: [
            { name: ':method', stringMatch: { exact: 'GET' } },
            { name: 'X-Exact', exactMatch: 'a' },
            { name: 'x-prefix', prefixMatch: 'p' },
            { name: 'x-suffix', suffixMatch: 's' },
            { name: 'x-contains', containsMatch: 'c' },
            { name: 'x-regex', safeRegexMatch: { regex: 'a+' } },
            { name: 'x-present', presentMatch: true },
            { name: 'x-absent', presentMatch: false },
            { name: 'x-not', stringMatch: { prefix: 'n', ignoreCase: true }, invertMatch: true },
            { name: 'x-bare' },
            { name: 'x-absent-inverted', presentMatch: false, invertMatch: true },
          ],
        },
        ...toCluster,
      }).match;
      expect(m.headers).toEqual([
        { name: ':method', match: { exact: 'GET' }, invert: false },
        { name: 'x-exact', match: { exact: 'a' }, invert: false },
        { name: 'x-prefix', match: { prefix: 'p' }, invert: false },
        { name: 'x-suffix', match: { suffix: 's' }, invert: false },
        { name: 'x-contains', match: { contains: 'c' }, invert: false },
        { name: 'x-regex', match: { regex: expect.any(Re2Regex) }, invert: false },
        { name: 'x-present', invert: false },
        { name: 'x-absent', invert: true },
        { name: 'x-not', match: { prefix: 'n', ignoreCase: true }, invert: true },
        { name: 'x-bare', invert: false },
        { name: 'x-absent-inverted', invert: false },
      ]);
    });

    it('decodes query parameter matchers', () => {
      const m = one({
        match: {
          prefix: '/',
          queryParameters: [
            { name: 'debug', presentMatch: true },
            { name: 'v', stringMatch: { exact: '2' } },
          ],
        },
        ...toCluster,
      }).match;
      expect(m.query).toEqual([{ name: 'debug' }, { name: 'v', match: { exact: '2' } }]);
    });

    it('reports unsupported match fields and bad matchers', () => {
      const p = problems(
        rc([
          {
            match: {
              pathSeparatedPrefix: '/a',
              runtimeFraction: { defaultValue: { numerator: 1 } },
              grpc: {},
              tlsContext: {},
              dynamicMetadata: [{ filter: 'x' }],
              headers: [
                { name: '', treatMissingHeaderAsEmpty: true, prefixMatch: '' },
                { name: 'x', stringMatch: { custom: { name: 'c' } } },
                { name: 'y', stringMatch: {} },
              ],
              queryParameters: [{ name: '', presentMatch: false }],
            },
            ...toCluster,
          },
          { match: {}, ...toCluster },
        ]),
      );
      const m = 'virtual_hosts[0].routes[0].match';
      expect(p).toEqual([
        { path: `${m}.path_separated_prefix`, message: 'is not supported: use prefix, path or safe_regex' },
        { path: `${m}.runtime_fraction`, message: 'is not supported' },
        { path: `${m}.grpc`, message: 'is not supported' },
        { path: `${m}.tls_context`, message: 'is not supported' },
        { path: `${m}.dynamic_metadata`, message: 'is not supported' },
        { path: `${m}.headers[0].name`, message: 'is required' },
        { path: `${m}.headers[0].treat_missing_header_as_empty`, message: 'is not supported' },
        { path: `${m}.headers[0].prefix_match`, message: 'must not be empty' },
        { path: `${m}.headers[1].string_match.custom`, message: 'custom string matchers are not supported' },
        {
          path: `${m}.headers[2].string_match`,
          message: 'must set exact, prefix, suffix, contains or safe_regex',
        },
        { path: `${m}.query_parameters[0].name`, message: 'is required' },
        {
          path: `${m}.query_parameters[0].present_match`,
          message: 'false is not supported (Envoy requires true)',
        },
        { path: 'virtual_hosts[0].routes[1].match', message: 'must set prefix, path or safe_regex' },
      ]);
    });

    it('reports a regex that does not compile, with its path', () => {
      const p = problems(rc([{ match: { safeRegex: { regex: 'a(b' } }, ...toCluster }]));
      expect(p).toHaveLength(1);
      expect(p[0]?.path).toBe('virtual_hosts[0].routes[0].match.safe_regex.regex');
      expect(p[0]?.message).toContain('regex "a(b"');
    });

    it('rejects regexes RE2 would reject', () => {
      const p = problems(rc([{ match: { safeRegex: { regex: '(a)\\1' } }, ...toCluster }]));
      // RE2's own message: it has no backreferences.
      expect(p[0]?.message).toContain('invalid escape sequence: `\\1`');
    });
  });

  describe('route action', () => {
    it('decodes weighted clusters', () => {
      const a = one({
        match: { prefix: '/' },
        route: {
          weightedClusters: {
            clusters: [
              { name: 'v1', weight: { value: 90 } },
              { name: 'v2', weight: { value: 10 } },
            ],
          },
        },
      }).action as RouteAction;
      expect(a.clusters).toEqual([
        { cluster: 'v1', weight: 90 },
        { cluster: 'v2', weight: 10 },
      ]);
    });

    it('converts timeouts to ms: unset is 15 s, 0 is none', () => {
      const timeout = (t: unknown) =>
        (one({ match: { prefix: '/' }, route: { cluster: 'c', timeout: t } }).action as RouteAction)
          .timeoutMs;
      expect(timeout(undefined)).toBe(15_000);
      expect(timeout({})).toBe(0);
      expect(timeout(duration(1500))).toBe(1500);
      expect(timeout({ seconds: 0, nanos: 999_999 })).toBe(0);
      expect(timeout({ seconds: 3, nanos: 2_500_000 })).toBe(3002);
    });

    it('decodes a full retry policy', () => {
      const a = one({
        match: { prefix: '/' },
        route: {
          cluster: 'c',
          retryPolicy: {
            retryOn:
              '5xx, gateway-error,connect-failure,reset,refused-stream,retriable-status-codes,unavailable,cancelled',
            numRetries: { value: 3 },
            perTryTimeout: duration(2000),
            retriableStatusCodes: [409, 503],
            retryBackOff: { baseInterval: duration(100), maxInterval: duration(1000) },
          },
        },
      }).action as RouteAction;
      expect(a.retry).toEqual({
        retryOn: new Set([
          '5xx',
          'gateway-error',
          'connect-failure',
          'reset',
          'refused-stream',
          'retriable-status-codes',
          'unavailable',
          'cancelled',
        ]),
        numRetries: 3,
        perTryTimeoutMs: 2000,
        retriableStatusCodes: new Set([409, 503]),
        backoffBaseMs: 100,
        backoffMaxMs: 1000,
      });
    });

    it('fills retry defaults as Envoy: one retry, 25 ms base, 10x max', () => {
      const a = one({
        match: { prefix: '/' },
        route: { cluster: 'c', retryPolicy: { retryOn: 'connect-failure' } },
      }).action as RouteAction;
      expect(a.retry).toEqual({
        retryOn: new Set(['connect-failure']),
        numRetries: 1,
        perTryTimeoutMs: 0,
        retriableStatusCodes: new Set(),
        backoffBaseMs: 25,
        backoffMaxMs: 250,
      });
      const b = one({
        match: { prefix: '/' },
        route: {
          cluster: 'c',
          retryPolicy: {
            retryOn: '5xx',
            numRetries: { value: 0 },
            retryBackOff: { baseInterval: duration(40) },
          },
        },
      }).action as RouteAction;
      expect(b.retry).toMatchObject({ numRetries: 0, backoffBaseMs: 40, backoffMaxMs: 400 });
    });

    it('rounds sub-millisecond backoff up to 1 ms', () => {
      const a = one({
        match: { prefix: '/' },
        route: {
          cluster: 'c',
          retryPolicy: { retryOn: '5xx', retryBackOff: { baseInterval: { nanos: 1000 } } },
        },
      }).action as RouteAction;
      expect(a.retry?.backoffBaseMs).toBe(1);
    });

    it('reports retry policy problems', () => {
      const p = problems(
        rc([
          {
            match: { prefix: '/' },
            route: {
              cluster: 'c',
              retryPolicy: {
                retryOn: '5xx,retriable-4xx,bogus',
                retriableStatusCodes: [42],
                retriableHeaders: [{ name: 'x', presentMatch: true }],
                retryBackOff: { baseInterval: duration(100), maxInterval: duration(50) },
              },
            },
          },
          {
            match: { prefix: '/' },
            route: { cluster: 'c', retryPolicy: { retryBackOff: { maxInterval: duration(10) } } },
          },
        ]),
      );
      const r = 'virtual_hosts[0].routes[0].route.retry_policy';
      expect(p).toEqual([
        { path: `${r}.retry_on`, message: 'retriable-4xx is not supported' },
        { path: `${r}.retry_on`, message: 'bogus is not supported' },
        { path: `${r}.retriable_status_codes`, message: '42 is not an HTTP status' },
        { path: `${r}.retriable_headers`, message: 'is not supported' },
        {
          path: `${r}.retry_back_off.max_interval`,
          message: 'must be greater than or equal to the base_interval',
        },
        {
          path: 'virtual_hosts[0].routes[1].route.retry_policy.retry_back_off.base_interval',
          message: 'is required',
        },
      ]);
    });

    it('decodes rewrites, host rewrite, mirrors and hash policies', () => {
      const a = one({
        match: { prefix: '/old/' },
        route: {
          cluster: 'c',
          prefixRewrite: '/new/',
          hostRewriteLiteral: 'reviews.internal',
          requestMirrorPolicies: [
            {
              cluster: 'shadow',
              runtimeFraction: { defaultValue: { numerator: 25, denominator: 'HUNDRED' } },
            },
            { cluster: 'all' },
            {
              cluster: 'tiny',
              runtimeFraction: { defaultValue: { numerator: 5, denominator: 'TEN_THOUSAND' } },
            },
            {
              cluster: 'micro',
              runtimeFraction: { defaultValue: { numerator: 20, denominator: 'MILLION' } },
            },
          ],
          hashPolicy: [
            { header: { headerName: 'X-User' } },
            { connectionProperties: { sourceIp: true } },
            { connectionProperties: { sourceIp: false } },
          ],
        },
      }).action as RouteAction;
      expect(a.prefixRewrite).toBe('/new/');
      expect(a.hostRewrite).toBe('reviews.internal');
      expect(a.mirrors).toEqual([
        { cluster: 'shadow', percent: 25 },
        { cluster: 'all', percent: 100 },
        { cluster: 'tiny', percent: 0.05 },
        { cluster: 'micro', percent: 0.002 },
      ]);
      expect(a.hashPolicies).toEqual([{ header: 'x-user' }, { sourceIp: true }]);
    });

    it('decodes regex_rewrite and applies RE2 substitutions', () => {
      const a = one({
        match: { prefix: '/' },
        route: {
          cluster: 'c',
          regexRewrite: { pattern: { regex: '^/service/([^/]+)(/.*)$' }, substitution: '\\2/instance/\\1' },
        },
      }).action as RouteAction;
      expect(a.regexRewrite?.substitution).toBe('\\2/instance/\\1');
      expect(
        a.regexRewrite?.pattern.replaceAll('/service/foo/v1/api', a.regexRewrite?.substitution as string),
      ).toBe('/v1/api/instance/foo');
    });

    it('rejects a regex_rewrite substitution naming a group the pattern lacks, as RE2 does', () => {
      const p = problems(
        rc([
          {
            match: { prefix: '/' },
            route: { cluster: 'c', regexRewrite: { pattern: { regex: '^/(a)$' }, substitution: '\\2' } },
          },
        ]),
      );
      expect(p).toHaveLength(1);
      expect(p[0]?.path).toBe('virtual_hosts[0].routes[0].route.regex_rewrite.substitution');
      expect(p[0]?.message).toContain('names group \\2; the pattern has 1');
    });

    it('reports route action problems', () => {
      const p = problems(
        rc([
          {
            match: { prefix: '/' },
            route: {
              cluster: 'c',
              prefixRewrite: '/x',
              regexRewrite: { pattern: { regex: 'a' }, substitution: 'b' },
              autoHostRewrite: { value: true },
              requestMirrorPolicies: [{ clusterHeader: 'x-mirror' }, {}],
              hashPolicy: [
                { cookie: { name: 'session' } },
                { header: { headerName: 'x', regexRewrite: {} }, terminal: true },
              ],
            },
          },
          { match: { prefix: '/' }, route: { clusterHeader: 'x-cluster' } },
          { match: { prefix: '/' }, route: {} },
          {
            match: { prefix: '/' },
            route: {
              weightedClusters: {
                clusters: [
                  {
                    name: 'a',
                    weight: { value: 0 },
                    requestHeadersToAdd: [{ header: { key: 'x', value: 'y' } }],
                  },
                  { clusterHeader: 'h' },
                ],
                totalWeight: { value: 100 },
              },
            },
          },
          { match: { prefix: '/' }, route: { cluster: '' } },
        ]),
      );
      const r = (i: number) => `virtual_hosts[0].routes[${i}].route`;
      expect(p).toEqual([
        { path: r(0), message: 'specify only one of prefix_rewrite and regex_rewrite' },
        { path: `${r(0)}.auto_host_rewrite`, message: 'is not supported: use host_rewrite_literal' },
        {
          path: `${r(0)}.request_mirror_policies[0].cluster_header`,
          message: 'is not supported: use cluster',
        },
        { path: `${r(0)}.request_mirror_policies[1].cluster`, message: 'is required' },
        {
          path: `${r(0)}.hash_policy[0].cookie`,
          message: 'is not supported: use header or connection_properties',
        },
        { path: `${r(0)}.hash_policy[1].terminal`, message: 'is not supported' },
        { path: `${r(0)}.hash_policy[1].header.regex_rewrite`, message: 'is not supported' },
        { path: `${r(1)}.cluster_header`, message: 'is not supported' },
        { path: r(2), message: 'must set cluster or weighted_clusters' },
        {
          path: `${r(3)}.weighted_clusters.clusters[0].request_headers_to_add`,
          message: 'is not supported per cluster',
        },
        {
          path: `${r(3)}.weighted_clusters.clusters[1].cluster_header`,
          message: 'is not supported: use name',
        },
        { path: `${r(3)}.weighted_clusters.clusters`, message: 'the sum of weights must be greater than 0' },
        { path: `${r(3)}.weighted_clusters.total_weight`, message: '100 is not the sum of the weights (0)' },
        { path: `${r(4)}.cluster`, message: 'must not be empty' },
      ]);
    });
  });

  describe('redirect and direct response', () => {
    it('decodes redirects with Envoy response codes', () => {
      const codes = ['MOVED_PERMANENTLY', 'FOUND', 'SEE_OTHER', 'TEMPORARY_REDIRECT', 'PERMANENT_REDIRECT'];
      expect(
        codes.map(
          (responseCode) =>
            (one({ match: { prefix: '/' }, redirect: { responseCode } }).action as RedirectAction).status,
        ),
      ).toEqual([301, 302, 303, 307, 308]);
      const a = one({
        match: { prefix: '/' },
        redirect: {
          schemeRedirect: 'HTTPS',
          hostRedirect: 'example.com',
          portRedirect: 8443,
          pathRedirect: '/new',
          stripQuery: true,
        },
      }).action;
      expect(a).toEqual({
        kind: 'redirect',
        scheme: 'https',
        host: 'example.com',
        port: 8443,
        path: '/new',
        stripQuery: true,
        status: 301,
      });
      expect(
        one({ match: { prefix: '/' }, redirect: { httpsRedirect: true, prefixRewrite: '/v2/' } }).action,
      ).toEqual({
        kind: 'redirect',
        scheme: 'https',
        prefixRewrite: '/v2/',
        status: 301,
      });
      const r = one({
        match: { prefix: '/' },
        redirect: { regexRewrite: { pattern: { regex: 'a' }, substitution: 'b' } },
      }).action as RedirectAction;
      expect(r.regexRewrite?.substitution).toBe('b');
    });

    it('decodes direct responses with inline bodies', () => {
      expect(
        one({ match: { prefix: '/' }, directResponse: { status: 418, body: { inlineString: 'teapot' } } })
          .action,
      ).toEqual({
        kind: 'direct',
        status: 418,
        body: 'teapot',
      });
      expect(
        one({
          match: { prefix: '/' },
          directResponse: { status: 200, body: { inlineBytes: Buffer.from('hi') } },
        }).action,
      ).toEqual({
        kind: 'direct',
        status: 200,
        body: 'hi',
      });
      expect(one({ match: { prefix: '/' }, directResponse: { status: 204 } }).action).toEqual({
        kind: 'direct',
        status: 204,
      });
    });

    it('reports bad statuses, unsupported bodies and other actions', () => {
      const p = problems(
        rc([
          { match: { prefix: '/' }, directResponse: { status: 99, body: { filename: '/etc/passwd' } } },
          {
            match: { prefix: '/' },
            directResponse: { status: 200, body: { inlineString: 'x'.repeat(4097) } },
          },
          { match: { prefix: '/' }, nonForwardingAction: {} },
          { match: { prefix: '/' } },
          { match: { prefix: '/' }, redirect: { responseCode: 9, portRedirect: 70000 } },
        ]),
      );
      const r = (i: number) => `virtual_hosts[0].routes[${i}]`;
      expect(p).toEqual([
        { path: `${r(0)}.direct_response.status`, message: '99 is not from 200 to 599' },
        {
          path: `${r(0)}.direct_response.body`,
          message: 'filename is not supported: use inline_string or inline_bytes',
        },
        { path: `${r(1)}.direct_response.body`, message: 'is longer than 4096 bytes' },
        { path: `${r(2)}.non_forwarding_action`, message: 'is not supported' },
        { path: r(3), message: 'must set route, redirect or direct_response' },
        { path: `${r(4)}.redirect.response_code`, message: '9 is not a redirect code' },
        { path: `${r(4)}.redirect.port_redirect`, message: '70000 is not a port' },
      ]);
    });

    it('honours max_direct_response_body_size_bytes', () => {
      const r = decode(
        rc(
          [
            {
              match: { prefix: '/' },
              directResponse: { status: 200, body: { inlineString: 'x'.repeat(5000) } },
            },
          ],
          {},
          {
            maxDirectResponseBodySizeBytes: { value: 8192 },
          },
        ),
      );
      expect(r.ok).toBe(true);
    });
  });

  describe('header mutations', () => {
    it('decodes adds and removes, with append semantics and lower-cased names', () => {
      const r = one({
        match: { prefix: '/' },
        ...toCluster,
        requestHeadersToAdd: [
          { header: { key: 'X-Append', value: 'a' } },
          { header: { key: 'x-set', value: 's' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' },
          { header: { key: 'x-legacy', value: 'l' }, append: { value: false } },
          { header: { key: 'x-legacy-append', value: 'l' }, append: { value: true } },
          { header: { key: 'x-empty', value: '' } },
          { header: { key: 'x-kept-empty', value: '' }, keepEmptyValue: true },
          { header: { key: 'x-raw', rawValue: Buffer.from('raw') } },
        ],
        requestHeadersToRemove: ['X-Remove'],
        responseHeadersToAdd: [
          { header: { key: 'x-served-by', value: 'waypoint' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' },
        ],
        responseHeadersToRemove: ['server'],
      });
      expect(r.requestHeaders).toEqual({
        add: [
          { name: 'x-append', value: 'a', append: true },
          { name: 'x-set', value: 's', append: false },
          { name: 'x-legacy', value: 'l', append: false },
          { name: 'x-legacy-append', value: 'l', append: true },
          { name: 'x-kept-empty', value: '', append: true },
          { name: 'x-raw', value: 'raw', append: true },
        ],
        remove: ['x-remove'],
      });
      expect(r.responseHeaders).toEqual({
        add: [{ name: 'x-served-by', value: 'waypoint', append: false }],
        remove: ['server'],
      });
    });

    it('refuses to modify pseudo-headers and Host, and unsupported append actions', () => {
      const p = problems(
        rc([
          {
            match: { prefix: '/' },
            ...toCluster,
            requestHeadersToAdd: [
              { header: { key: ':path', value: '/x' } },
              { header: { key: 'Host', value: 'h' } },
              { header: { key: 'x', value: 'v' }, appendAction: 'ADD_IF_ABSENT' },
              {
                header: { key: 'y', value: 'v' },
                append: { value: true },
                appendAction: 'OVERWRITE_IF_EXISTS',
              },
              {},
            ],
            requestHeadersToRemove: [':authority', ''],
          },
        ]),
      );
      const r = 'virtual_hosts[0].routes[0]';
      expect(p).toEqual([
        { path: `${r}.request_headers_to_add[0].header.key`, message: ':path may not be modified' },
        { path: `${r}.request_headers_to_add[1].header.key`, message: 'host may not be modified' },
        {
          path: `${r}.request_headers_to_add[2].append_action`,
          message:
            'ADD_IF_ABSENT is not supported: use APPEND_IF_EXISTS_OR_ADD or OVERWRITE_IF_EXISTS_OR_ADD',
        },
        {
          path: `${r}.request_headers_to_add[3]`,
          message: 'append and append_action are mutually exclusive',
        },
        { path: `${r}.request_headers_to_add[4].header`, message: 'is required' },
        { path: `${r}.request_headers_to_remove[0]`, message: ':authority may not be removed' },
        { path: `${r}.request_headers_to_remove[1]`, message: 'must not be empty' },
      ]);
    });

    it('supports header mutations on routes only', () => {
      const add = [{ header: { key: 'x', value: 'y' } }];
      const p = problems(
        rc(
          [{ match: { prefix: '/' }, ...toCluster }],
          { requestHeadersToAdd: add },
          { responseHeadersToRemove: ['z'] },
        ),
      );
      expect(p).toEqual([
        { path: 'response_headers_to_remove', message: 'is only supported on routes' },
        { path: 'virtual_hosts[0].request_headers_to_add', message: 'is only supported on routes' },
      ]);
    });
  });

  describe('faults', () => {
    const fault = (fields: Record<string, unknown>) => ({
      'envoy.filters.http.fault': typed(FAULT_TYPE, fields),
    });

    it('decodes delay and abort with their percentages', () => {
      const r = one({
        match: { prefix: '/' },
        ...toCluster,
        typedPerFilterConfig: fault({
          delay: { fixedDelay: duration(5000), percentage: { numerator: 50, denominator: 'HUNDRED' } },
          abort: { httpStatus: 503, percentage: { numerator: 1500, denominator: 'TEN_THOUSAND' } },
        }),
      });
      expect(r.fault).toEqual({ delay: { ms: 5000, percent: 50 }, abort: { httpStatus: 503, percent: 15 } });
    });

    it('decodes gRPC aborts, unset percentages as 0 and caps above 100%', () => {
      expect(
        one({
          match: { prefix: '/' },
          ...toCluster,
          typedPerFilterConfig: fault({ abort: { grpcStatus: 14 } }),
        }).fault,
      ).toEqual({
        abort: { grpcStatus: 14, percent: 0 },
      });
      expect(
        one({
          match: { prefix: '/' },
          ...toCluster,
          typedPerFilterConfig: fault({
            delay: { fixedDelay: duration(1), percentage: { numerator: 5_000_000, denominator: 'MILLION' } },
          }),
        }).fault,
      ).toEqual({ delay: { ms: 1, percent: 100 } });
    });

    it('unwraps FilterConfig and skips optional unknown per-route configs', () => {
      const r = one({
        match: { prefix: '/' },
        ...toCluster,
        typedPerFilterConfig: {
          'envoy.filters.http.fault': typed(FILTER_CONFIG_TYPE, {
            config: typed(FAULT_TYPE, { abort: { httpStatus: 500, percentage: { numerator: 100 } } }),
          }),
          'istio.stats': typed(FILTER_CONFIG_TYPE, {
            isOptional: true,
            config: typed('google.protobuf.Empty'),
          }),
        },
      });
      expect(r.fault).toEqual({ abort: { httpStatus: 500, percent: 100 } });
    });

    it('reports unsupported fault fields and per-route configs', () => {
      const p = problems(
        rc([
          {
            match: { prefix: '/' },
            ...toCluster,
            typedPerFilterConfig: {
              'envoy.filters.http.fault': typed(FAULT_TYPE, {
                delay: { headerDelay: {} },
                abort: { httpStatus: 700 },
                headers: [{ name: 'x', presentMatch: true }],
                upstreamCluster: 'c',
                downstreamNodes: ['n'],
              }),
              'envoy.filters.http.rbac': typed('envoy.extensions.filters.http.rbac.v3.RBACPerRoute', {}),
              'x.disabled': typed(FILTER_CONFIG_TYPE, { disabled: true }),
            },
          },
          {
            match: { prefix: '/' },
            ...toCluster,
            typedPerFilterConfig: fault({ abort: { percentage: { numerator: 1 } } }),
          },
        ]),
      );
      const f = 'virtual_hosts[0].routes[0].typed_per_filter_config';
      expect(p).toEqual([
        { path: `${f}[envoy.filters.http.fault].delay.header_delay`, message: 'is not supported' },
        { path: `${f}[envoy.filters.http.fault].abort.http_status`, message: '700 is not from 200 to 599' },
        { path: `${f}[envoy.filters.http.fault].headers`, message: 'is not supported' },
        { path: `${f}[envoy.filters.http.fault].upstream_cluster`, message: 'is not supported' },
        { path: `${f}[envoy.filters.http.fault].downstream_nodes`, message: 'is not supported' },
        {
          path: `${f}[envoy.filters.http.rbac]`,
          message:
            'per-route config of type envoy.extensions.filters.http.rbac.v3.RBACPerRoute is not supported',
        },
        { path: `${f}[x.disabled].disabled`, message: 'disabling a filter per route is not supported' },
        {
          path: 'virtual_hosts[0].routes[1].typed_per_filter_config[envoy.filters.http.fault].abort',
          message: 'must set http_status or grpc_status',
        },
      ]);
    });
  });

  describe('virtual host', () => {
    it('lets routes inherit the virtual host retry policy, mirrors and fault', () => {
      const t = table(
        rc(
          [
            { name: 'inherits', match: { prefix: '/a' }, ...toCluster },
            {
              name: 'own',
              match: { prefix: '/' },
              route: {
                cluster: 'c',
                retryPolicy: { retryOn: '5xx', numRetries: { value: 5 } },
                requestMirrorPolicies: [{ cluster: 'm2' }],
              },
              typedPerFilterConfig: {
                'envoy.filters.http.fault': typed(FAULT_TYPE, {
                  abort: { httpStatus: 400, percentage: { numerator: 1 } },
                }),
              },
            },
          ],
          {
            retryPolicy: { retryOn: 'connect-failure', numRetries: { value: 2 } },
            requestMirrorPolicies: [{ cluster: 'm1' }],
            typedPerFilterConfig: {
              'envoy.filters.http.fault': typed(FAULT_TYPE, {
                delay: { fixedDelay: duration(10), percentage: { numerator: 100 } },
              }),
            },
          },
        ),
      );
      const [inherits, own] = t.routes as [Route, Route];
      expect((inherits.action as RouteAction).retry?.numRetries).toBe(2);
      expect((inherits.action as RouteAction).mirrors).toEqual([{ cluster: 'm1', percent: 100 }]);
      expect(inherits.fault).toEqual({ delay: { ms: 10, percent: 100 } });
      expect((own.action as RouteAction).retry?.numRetries).toBe(5);
      expect((own.action as RouteAction).mirrors).toEqual([{ cluster: 'm2', percent: 100 }]);
      expect(own.fault).toEqual({ abort: { httpStatus: 400, percent: 1 } });
    });

    it('falls back to the route configuration for mirrors and fault', () => {
      const t = table(
        rc(
          [{ match: { prefix: '/' }, ...toCluster }],
          {},
          {
            requestMirrorPolicies: [{ cluster: 'rc-mirror' }],
            typedPerFilterConfig: {
              'envoy.filters.http.fault': typed(FAULT_TYPE, {
                abort: { grpcStatus: 2, percentage: { numerator: 3 } },
              }),
            },
          },
        ),
      );
      expect((t.routes[0] as Route).action).toMatchObject({
        mirrors: [{ cluster: 'rc-mirror', percent: 100 }],
      });
      expect(((t.routes[0] as Route).action as RouteAction).mirrors).toEqual([
        { cluster: 'rc-mirror', percent: 100 },
      ]);
      expect(t.routes[0]?.fault).toEqual({ abort: { grpcStatus: 2, percent: 3 } });
    });

    it('requires one virtual host matching every authority', () => {
      const p = problems({
        name: NAME,
        virtualHosts: [
          { name: 'a', domains: ['reviews'], routes: [], requireTls: 'ALL', matcher: { onNoMatch: {} } },
          { name: 'b', domains: ['*'] },
        ],
        vhds: { configSource: { ads: {} } },
      });
      expect(p).toEqual([
        { path: 'vhds', message: 'is not supported' },
        {
          path: 'virtual_hosts',
          message: 'has 2 virtual hosts: the waypoint serves one per route configuration',
        },
        {
          path: 'virtual_hosts[0].domains',
          message: 'must contain "*": the waypoint does not select virtual hosts by authority',
        },
        { path: 'virtual_hosts[0].matcher', message: 'is not supported: use routes' },
        { path: 'virtual_hosts[0].require_tls', message: 'is not supported' },
      ]);
    });

    it('checks the resource name', () => {
      expect(problems({ name: 'other' })).toEqual([
        { path: 'name', message: '"other" does not match the resource name' },
      ]);
    });
  });

  it('reports every problem of a route configuration at once', () => {
    const p = problems(
      rc([
        { match: { safeRegex: { regex: '[' } }, ...toCluster },
        { match: { prefix: '/' }, route: { cluster: 'c', retryPolicy: { retryOn: 'nope' } } },
        { match: { prefix: '/' }, redirect: { responseCode: 7 } },
      ]),
    );
    expect(p.map((x) => x.path)).toEqual([
      'virtual_hosts[0].routes[0].match.safe_regex.regex',
      'virtual_hosts[0].routes[1].route.retry_policy.retry_on',
      'virtual_hosts[0].routes[2].redirect.response_code',
    ]);
  });
});

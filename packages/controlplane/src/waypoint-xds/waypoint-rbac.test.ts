import { RE2JS } from 're2js';
import { describe, expect, it } from 'vitest';
import { type AuthorizationPolicyObject, decodeManifest } from '../manifests/kube-objects.js';
import { istioStringMatcher, quoteRegex, rbacPolicyName, waypointRbac } from './waypoint-rbac.js';

function policy(
  spec: Record<string, unknown>,
  opts: { name?: string; annotations?: Record<string, string> } = {},
): AuthorizationPolicyObject {
  const r = decodeManifest({
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: opts.name ?? 'policy', namespace: 'demo', annotations: opts.annotations ?? {} },
    spec: {
      targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }],
      ...spec,
    },
  });
  if (r.ok !== true || r.value.kind !== 'AuthorizationPolicy') throw new Error(JSON.stringify(r));
  return r.value;
}

interface Notice {
  ref: string;
  path: string;
  message: string;
}

function translate(...policies: AuthorizationPolicyObject[]) {
  const notices: Notice[] = [];
  const rbac = waypointRbac(policies, (ref, path, message) => notices.push({ ref, path, message }));
  return { rbac, notices };
}

const NAME = rbacPolicyName('demo', 'policy', 0);
const authn = (m: Record<string, unknown>) => ({ authenticated: { principalName: m } });

describe('waypoint RBAC: names and string matchers', () => {
  it('names each rule ns[<ns>]-policy[<name>]-rule[<i>]', () => {
    expect(rbacPolicyName('demo', 'allow-get', 3)).toBe('ns[demo]-policy[allow-get]-rule[3]');
  });

  it('matches as Istio: * any non-empty value, x* prefix, *x suffix, else exact; a prefix is prepended', () => {
    expect(istioStringMatcher('*')).toEqual({ safeRegex: { regex: '.+' } });
    expect(istioStringMatcher('/api/*')).toEqual({ prefix: '/api/' });
    expect(istioStringMatcher('*.png')).toEqual({ suffix: '.png' });
    expect(istioStringMatcher('/exact')).toEqual({ exact: '/exact' });
    expect(istioStringMatcher('*/sa/x', 'spiffe://')).toEqual({ safeRegex: { regex: 'spiffe://.*/sa/x' } });
    expect(istioStringMatcher('td/ns/a*', 'spiffe://')).toEqual({ prefix: 'spiffe://td/ns/a' });
    expect(istioStringMatcher('Echo.Demo', '', true)).toEqual({ exact: 'Echo.Demo', ignoreCase: true });
    expect(quoteRegex('a.b*c(d)')).toBe('a\\.b\\*c\\(d\\)');
  });
});

describe('waypoint RBAC: sources, operations and conditions', () => {
  it('turns principals, namespaces and IP blocks into an AND of ORs per source, one principal per source', () => {
    const { rbac } = translate(
      policy({
        rules: [
          {
            from: [
              {
                source: {
                  principals: ['cluster.local/ns/demo/sa/sleep', 'spiffe://cluster.local/ns/demo/sa/curl'],
                  notNamespaces: ['kube-system'],
                },
              },
              {
                source: {
                  namespaces: ['prod*'],
                  ipBlocks: ['10.0.0.0/8', '192.168.1.1'],
                  notIpBlocks: ['fd00::/8'],
                },
              },
            ],
          },
        ],
      }),
    );
    expect(rbac.allow?.policies[NAME]).toEqual({
      permissions: [{ any: true }],
      principals: [
        {
          andIds: {
            ids: [
              {
                orIds: {
                  ids: [
                    authn({ exact: 'spiffe://cluster.local/ns/demo/sa/sleep' }),
                    authn({ exact: 'spiffe://cluster.local/ns/demo/sa/curl' }),
                  ],
                },
              },
              {
                notId: {
                  orIds: { ids: [authn({ safeRegex: { regex: 'spiffe://[^/]+/ns/kube-system/sa/[^/]+' } })] },
                },
              },
            ],
          },
        },
        {
          andIds: {
            ids: [
              { orIds: { ids: [authn({ safeRegex: { regex: 'spiffe://[^/]+/ns/prod[^/]*/sa/[^/]+' } })] } },
              {
                orIds: {
                  ids: [
                    { directRemoteIp: { addressPrefix: '10.0.0.0', prefixLen: { value: 8 } } },
                    { directRemoteIp: { addressPrefix: '192.168.1.1', prefixLen: { value: 32 } } },
                  ],
                },
              },
              {
                notId: {
                  orIds: { ids: [{ directRemoteIp: { addressPrefix: 'fd00::', prefixLen: { value: 8 } } }] },
                },
              },
            ],
          },
        },
      ],
    });
  });

  it('quotes namespace names and maps * and *x namespace patterns', () => {
    const { rbac } = translate(
      policy({ rules: [{ from: [{ source: { namespaces: ['a.b', '*', '*-dev'] } }] }] }),
    );
    expect(rbac.allow?.policies[NAME]?.principals).toEqual([
      {
        andIds: {
          ids: [
            {
              orIds: {
                ids: [
                  authn({ safeRegex: { regex: 'spiffe://[^/]+/ns/a\\.b/sa/[^/]+' } }),
                  authn({ safeRegex: { regex: 'spiffe://[^/]+/ns/[^/]+/sa/[^/]+' } }),
                  authn({ safeRegex: { regex: 'spiffe://[^/]+/ns/[^/]*-dev/sa/[^/]+' } }),
                ],
              },
            },
          ],
        },
      },
    ]);
  });

  it("turns serviceAccounts into istiod's SPIFFE ID regex, a bare name in the policy namespace", () => {
    const { rbac } = translate(
      policy({
        rules: [
          {
            from: [
              { source: { serviceAccounts: ['sleep', 'other/a.b'] } },
              { source: { notServiceAccounts: ['istio-system/ztunnel'] } },
            ],
          },
        ],
      }),
    );
    const sa = (ns: string, name: string) =>
      authn({ safeRegex: { regex: `spiffe://.+/ns/${ns}/(.+/|)sa/${name}(/.+)?` } });
    expect(rbac.allow?.policies[NAME]?.principals).toEqual([
      { andIds: { ids: [{ orIds: { ids: [sa('demo', 'sleep'), sa('other', 'a\\.b')] } }] } },
      { andIds: { ids: [{ notId: { orIds: { ids: [sa('istio-system', 'ztunnel')] } } }] } },
    ]);
  });

  it('matches a service account regex against whole SPIFFE IDs only (Envoy safe_regex is a full match)', () => {
    const { rbac } = translate(
      policy({ rules: [{ from: [{ source: { serviceAccounts: ['sleep', 'other/a.b'] } }] }] }),
    );
    // The regexes of the one source's service accounts, in order.
    const regexes: string[] = [];
    JSON.stringify(rbac.allow?.policies[NAME]?.principals, (k, v) => {
      if (k === 'regex') regexes.push(v as string);
      return v;
    });
    expect(regexes).toHaveLength(2);
    const [sleep, ab] = regexes.map((r) => RE2JS.compile(r));
    const matches = (re: RE2JS | undefined, id: string) => re?.matches(id) ?? false;
    expect(matches(sleep, 'spiffe://cluster.local/ns/demo/sa/sleep')).toBe(true);
    expect(matches(sleep, 'spiffe://other.domain/ns/demo/sa/sleep')).toBe(true);
    expect(matches(sleep, 'spiffe://cluster.local/ns/demo/sa/sleepy')).toBe(false);
    expect(matches(sleep, 'spiffe://cluster.local/ns/demo/sa/sleep-x')).toBe(false);
    expect(matches(sleep, 'spiffe://cluster.local/ns/demo2/sa/sleep')).toBe(false);
    expect(matches(sleep, 'spiffe://cluster.local/ns/other/sa/sleep')).toBe(false);
    expect(matches(ab, 'spiffe://cluster.local/ns/other/sa/a.b')).toBe(true);
    expect(matches(ab, 'spiffe://cluster.local/ns/other/sa/a-b')).toBe(false);
  });

  it('turns the source.serviceAccount condition into the same regex, ANDed into every principal', () => {
    const { rbac, notices } = translate(
      policy({
        rules: [
          {
            from: [{ source: { namespaces: ['demo'] } }],
            when: [{ key: 'source.serviceAccount', values: ['sleep'], notValues: ['other/curl'] }],
          },
        ],
      }),
    );
    const sa = (ns: string, name: string) =>
      authn({ safeRegex: { regex: `spiffe://.+/ns/${ns}/(.+/|)sa/${name}(/.+)?` } });
    expect(notices).toEqual([]);
    expect(rbac.allow?.policies[NAME]?.principals).toEqual([
      {
        andIds: {
          ids: [
            { orIds: { ids: [authn({ safeRegex: { regex: 'spiffe://[^/]+/ns/demo/sa/[^/]+' } })] } },
            { orIds: { ids: [sa('demo', 'sleep')] } },
            { notId: { orIds: { ids: [sa('other', 'curl')] } } },
          ],
        },
      },
    ]);
  });

  it('turns methods, paths, hosts and ports into permissions, with not_rule for the not* forms', () => {
    const { rbac } = translate(
      policy({
        action: 'DENY',
        rules: [
          {
            to: [
              {
                operation: {
                  methods: ['DELETE', 'PUT'],
                  paths: ['/admin/*', '*.php', '/exact'],
                  notPaths: ['/admin/health'],
                  hosts: ['echo.demo.svc.cluster.local', '*'],
                  notHosts: ['*.internal'],
                  ports: ['8080'],
                  notMethods: ['GET'],
                },
              },
              { operation: { notPorts: ['9090'] } },
            ],
          },
        ],
      }),
    );
    expect(rbac.allow).toBeUndefined();
    expect(rbac.deny?.action).toBe('DENY');
    const header = (name: string, m: Record<string, unknown>) => ({ header: { name, stringMatch: m } });
    expect(rbac.deny?.policies[NAME]).toEqual({
      principals: [{ any: true }],
      permissions: [
        {
          andRules: {
            rules: [
              {
                orRules: {
                  rules: [
                    header(':authority', { exact: 'echo.demo.svc.cluster.local', ignoreCase: true }),
                    { header: { name: ':authority', presentMatch: true } },
                  ],
                },
              },
              {
                notRule: {
                  orRules: { rules: [header(':authority', { suffix: '.internal', ignoreCase: true })] },
                },
              },
              {
                orRules: {
                  rules: [header(':method', { exact: 'DELETE' }), header(':method', { exact: 'PUT' })],
                },
              },
              { notRule: { orRules: { rules: [header(':method', { exact: 'GET' })] } } },
              {
                orRules: {
                  rules: [
                    { urlPath: { path: { prefix: '/admin/' } } },
                    { urlPath: { path: { suffix: '.php' } } },
                    { urlPath: { path: { exact: '/exact' } } },
                  ],
                },
              },
              { notRule: { orRules: { rules: [{ urlPath: { path: { exact: '/admin/health' } } }] } } },
              { orRules: { rules: [{ destinationPort: 8080 }] } },
            ],
          },
        },
        { andRules: { rules: [{ notRule: { orRules: { rules: [{ destinationPort: 9090 }] } } }] } },
      ],
    });
  });

  it('ANDs when conditions into every principal (source keys) and every permission (request keys)', () => {
    const { rbac, notices } = translate(
      policy({
        rules: [
          {
            from: [{ source: { principals: ['a'] } }, { source: { principals: ['b'] } }],
            to: [{ operation: { methods: ['GET'] } }],
            when: [
              { key: 'request.headers[X-Version]', values: ['v1', 'beta*'], notValues: ['*'] },
              { key: 'source.namespace', notValues: ['test'] },
              { key: 'source.principal', values: ['c'] },
              { key: 'source.ip', values: ['10.1.0.0/16'] },
              { key: 'destination.port', values: ['80'] },
            ],
          },
        ],
      }),
    );
    expect(notices).toEqual([]);
    const p = rbac.allow?.policies[NAME] as { principals: unknown[]; permissions: unknown[] };
    const whenPrincipals = [
      { notId: { orIds: { ids: [authn({ safeRegex: { regex: 'spiffe://[^/]+/ns/test/sa/[^/]+' } })] } } },
      { orIds: { ids: [authn({ exact: 'spiffe://c' })] } },
      { orIds: { ids: [{ directRemoteIp: { addressPrefix: '10.1.0.0', prefixLen: { value: 16 } } }] } },
    ];
    expect(p.principals).toEqual([
      { andIds: { ids: [{ orIds: { ids: [authn({ exact: 'spiffe://a' })] } }, ...whenPrincipals] } },
      { andIds: { ids: [{ orIds: { ids: [authn({ exact: 'spiffe://b' })] } }, ...whenPrincipals] } },
    ]);
    expect(p.permissions).toEqual([
      {
        andRules: {
          rules: [
            { orRules: { rules: [{ header: { name: ':method', stringMatch: { exact: 'GET' } } }] } },
            {
              orRules: {
                rules: [
                  { header: { name: 'x-version', stringMatch: { exact: 'v1' } } },
                  { header: { name: 'x-version', stringMatch: { prefix: 'beta' } } },
                ],
              },
            },
            { notRule: { orRules: { rules: [{ header: { name: 'x-version', presentMatch: true } }] } } },
            { orRules: { rules: [{ destinationPort: 80 }] } },
          ],
        },
      },
    ]);
  });
});

describe('waypoint RBAC: actions and fields a waypoint cannot check', () => {
  it('drops an ALLOW rule using request principals or an unsupported condition, and says why', () => {
    const { rbac, notices } = translate(
      policy({
        rules: [
          { from: [{ source: { requestPrincipals: ['issuer/sub'] } }] },
          { when: [{ key: 'request.auth.claims[group]', values: ['admin'] }] },
          { to: [{ operation: { methods: ['GET'] } }] },
        ],
      }),
    );
    expect(Object.keys(rbac.allow?.policies ?? {})).toEqual([rbacPolicyName('demo', 'policy', 2)]);
    expect(notices).toEqual([
      {
        ref: 'AuthorizationPolicy demo/policy',
        path: 'spec.rules[0].from[0].source.requestPrincipals',
        message: 'requestPrincipals cannot be checked by the waypoint: the ALLOW rule is left out',
      },
      {
        ref: 'AuthorizationPolicy demo/policy',
        path: 'spec.rules[1].when[0].key',
        message:
          'condition request.auth.claims[group] cannot be checked by the waypoint: the ALLOW rule is left out',
      },
    ]);
  });

  it('keeps a DENY rule without the fields it cannot check, so it denies more rather than less', () => {
    const { rbac, notices } = translate(
      policy({
        action: 'DENY',
        rules: [{ from: [{ source: { remoteIpBlocks: ['1.2.3.4'], namespaces: ['evil'] } }] }],
      }),
    );
    expect(rbac.deny?.policies[NAME]?.principals).toEqual([
      {
        andIds: {
          ids: [{ orIds: { ids: [authn({ safeRegex: { regex: 'spiffe://[^/]+/ns/evil/sa/[^/]+' } })] } }],
        },
      },
    ]);
    expect(notices[0]?.message).toBe(
      'remoteIpBlocks cannot be checked by the waypoint: the DENY rule ignores it',
    );
  });

  it('keeps an ALLOW filter without policies for an ALLOW policy without rules: it denies everything', () => {
    const { rbac } = translate(policy({}));
    expect(rbac).toEqual({ allow: { action: 'ALLOW', policies: {} } });
  });

  it('allows everything for one empty rule, and treats empty from and to lists as absent', () => {
    const { rbac } = translate(policy({ rules: [{}, { from: [], to: [] }] }));
    expect(rbac.allow?.policies).toEqual({
      [rbacPolicyName('demo', 'policy', 0)]: { permissions: [{ any: true }], principals: [{ any: true }] },
      [rbacPolicyName('demo', 'policy', 1)]: { permissions: [{ any: true }], principals: [{ any: true }] },
    });
  });

  it('leaves out a DENY filter whose policies have no rules, and AUDIT, CUSTOM and dry-run policies', () => {
    const { rbac, notices } = translate(
      policy({ action: 'DENY' }, { name: 'deny-nothing' }),
      policy({ action: 'AUDIT', rules: [{}] }, { name: 'audit' }),
      policy({ action: 'CUSTOM', rules: [{}] }, { name: 'custom' }),
      policy({ action: 'DENY', rules: [{}] }, { name: 'dry', annotations: { 'istio.io/dry-run': 'true' } }),
      // Read as Go's ParseBool, as istiod reads it.
      policy({ action: 'DENY', rules: [{}] }, { name: 'dry-1', annotations: { 'istio.io/dry-run': '1' } }),
    );
    expect(rbac).toEqual({});
    expect(notices.map((n) => `${n.ref}: ${n.message}`)).toEqual([
      'AuthorizationPolicy demo/audit: action AUDIT is not enforced by the waypoint',
      'AuthorizationPolicy demo/custom: action CUSTOM is not enforced by the waypoint',
      'AuthorizationPolicy demo/dry: dry-run policies are not enforced by the waypoint',
      'AuthorizationPolicy demo/dry-1: dry-run policies are not enforced by the waypoint',
    ]);
  });

  it('puts DENY and ALLOW rules of several policies in their own filters, by policy and rule', () => {
    const { rbac } = translate(
      policy({ action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin'] } }] }] }, { name: 'a-deny' }),
      policy({ rules: [{ from: [{ source: { namespaces: ['demo'] } }] }] }, { name: 'b-allow' }),
      policy({ rules: [{}, {}] }, { name: 'c-allow' }),
    );
    expect(Object.keys(rbac.deny?.policies ?? {})).toEqual(['ns[demo]-policy[a-deny]-rule[0]']);
    expect(Object.keys(rbac.allow?.policies ?? {})).toEqual([
      'ns[demo]-policy[b-allow]-rule[0]',
      'ns[demo]-policy[c-allow]-rule[0]',
      'ns[demo]-policy[c-allow]-rule[1]',
    ]);
  });
});

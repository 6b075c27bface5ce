import { AUTHORIZATION_CODEC } from '@ambient/shared';
import { describe, expect, it } from 'vitest';
import {
  type AuthorizationPolicyObject,
  decodeManifest,
  type MtlsMode,
  type PeerAuthenticationObject,
} from '../manifests/kube-objects.js';
import {
  convertedPeerAuthentication,
  ipBytes,
  parseDryRun,
  STATIC_STRICT_NAME,
  staticStrictPolicy,
  stringMatch,
  translateAuthorizationPolicy,
  type WireAuthorization,
  type WireMatch,
} from './authorization-translate.js';

const ROOT = 'istio-system';

function policy(
  spec: Record<string, unknown>,
  opts: { namespace?: string; name?: string; annotations?: Record<string, string> } = {},
): AuthorizationPolicyObject {
  const r = decodeManifest({
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: {
      name: opts.name ?? 'policy',
      namespace: opts.namespace ?? 'demo',
      annotations: opts.annotations ?? {},
    },
    spec,
  });
  if (r.ok !== true || r.value.kind !== 'AuthorizationPolicy') throw new Error(JSON.stringify(r));
  return r.value;
}

function peerAuth(spec: Record<string, unknown>, name = 'mtls'): PeerAuthenticationObject {
  const r = decodeManifest({
    apiVersion: 'security.istio.io/v1',
    kind: 'PeerAuthentication',
    metadata: { name, namespace: 'demo' },
    spec,
  });
  if (r.ok !== true || r.value.kind !== 'PeerAuthentication') throw new Error(JSON.stringify(r));
  return r.value;
}

/** Translates a policy that ztunnel must enforce. */
function translate(p: AuthorizationPolicyObject): WireAuthorization {
  const t = translateAuthorizationPolicy(p, ROOT);
  if (t.kind !== 'ztunnel') throw new Error(`skipped: ${t.reason}`);
  return t.authorization;
}

/** The matches of each clause of the only rule. */
function onlyRule(a: WireAuthorization): WireMatch[][] {
  expect(a.rules).toHaveLength(1);
  return a.rules[0]!.clauses.map((c) => c.matches);
}

const v4 = (...bytes: number[]) => Buffer.from(bytes);
const hex = (h: string) => Buffer.from(h, 'hex');

describe('translateAuthorizationPolicy: scope, name and action', () => {
  it.each([
    ['GLOBAL for a root-namespace policy without selector', ROOT, undefined, 0],
    ['NAMESPACE for a policy without selector elsewhere', 'demo', undefined, 1],
    ['WORKLOAD_SELECTOR for a policy with a selector', 'demo', { app: 'web' }, 2],
    ['WORKLOAD_SELECTOR for a root-namespace policy with a selector', ROOT, { app: 'web' }, 2],
  ])('scope is %s', (_what, namespace, matchLabels, scope) => {
    const a = translate(policy(matchLabels ? { selector: { matchLabels } } : {}, { namespace }));
    expect(a.scope).toBe(scope);
    expect(a.namespace).toBe(namespace);
  });

  it('keeps the name and namespace and maps ALLOW to 0 and DENY to 1', () => {
    expect(translate(policy({ action: 'ALLOW', rules: [{}] }, { name: 'allow-all' }))).toEqual({
      name: 'allow-all',
      namespace: 'demo',
      scope: 1,
      action: 0,
      rules: [{ clauses: [] }],
    });
    expect(translate(policy({ action: 'DENY', rules: [{}] })).action).toBe(1);
  });

  it('gives a policy without a rules key no rules (an ALLOW that matches nothing)', () => {
    expect(translate(policy({})).rules).toEqual([]);
    expect(translate(policy({ action: 'DENY' })).rules).toEqual([]);
  });

  it('gives an empty rule no clauses (a rule that matches everything)', () => {
    expect(translate(policy({ rules: [{}] })).rules).toEqual([{ clauses: [] }]);
    expect(translate(policy({ rules: [{}, {}] })).rules).toEqual([{ clauses: [] }, { clauses: [] }]);
  });

  it('does not send a dry-run policy to ztunnel unless sending them is enabled', () => {
    const dry = policy({ rules: [{}] }, { annotations: { 'istio.io/dry-run': 'true' } });
    expect(translateAuthorizationPolicy(dry, ROOT)).toEqual({
      kind: 'skipped',
      reason: 'dry-run policy, and sending dry-run policies to ztunnel is not enabled',
      binding: {
        bound: false,
        status: {
          reason: 'UnsupportedValue',
          message:
            'found policy "demo/policy" using dry-run annotation, but support for ambient dry-run authorizationPolicies isn\'t enabled',
        },
      },
    });
    const sent = translateAuthorizationPolicy(dry, ROOT, { sendDryRun: true });
    expect(sent.kind === 'ztunnel' && sent.authorization).toMatchObject({ name: 'policy', dryRun: true });
  });

  it('reads the dry-run annotation as Go booleans: 1, t, TRUE, True are dry run; 0, f, False, empty are not', () => {
    for (const v of ['1', 't', 'T', 'TRUE', 'true', 'True']) {
      expect(parseDryRun({ 'istio.io/dry-run': v }), v).toEqual({ dryRun: true });
      const t = translateAuthorizationPolicy(policy({}, { annotations: { 'istio.io/dry-run': v } }), ROOT);
      expect(t.kind, v).toBe('skipped');
    }
    for (const v of ['0', 'f', 'F', 'FALSE', 'false', 'False', '']) {
      expect(parseDryRun({ 'istio.io/dry-run': v }), v).toEqual({ dryRun: false });
      const a = translate(policy({}, { annotations: { 'istio.io/dry-run': v } }));
      expect(a, v).not.toHaveProperty('dryRun');
    }
    expect(translate(policy({}))).not.toHaveProperty('dryRun');
  });

  it('enforces a policy whose dry-run annotation is not a boolean, with a notice', () => {
    const t = translateAuthorizationPolicy(
      policy({ action: 'DENY', rules: [{}] }, { annotations: { 'istio.io/dry-run': 'yes' } }),
      ROOT,
    );
    expect(t).toMatchObject({
      kind: 'ztunnel',
      notice: 'istio.io/dry-run: "yes" is not a boolean; the policy is enforced',
    });
    expect(t.kind === 'ztunnel' && t.authorization).not.toHaveProperty('dryRun');
  });

  it('skips a dry-run policy for being dry run before looking at its targetRefs or action', () => {
    const t = translateAuthorizationPolicy(
      policy(
        { action: 'AUDIT', targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'w' }] },
        { annotations: { 'istio.io/dry-run': 'true' } },
      ),
      ROOT,
    );
    expect(t).toEqual({
      kind: 'skipped',
      reason: 'dry-run policy, and sending dry-run policies to ztunnel is not enabled',
      binding: {
        bound: false,
        status: {
          reason: 'UnsupportedValue',
          message:
            'found policy "demo/policy" using dry-run annotation, but support for ambient dry-run authorizationPolicies isn\'t enabled',
        },
      },
    });
  });

  it.each(['AUDIT', 'CUSTOM'])('skips action %s, which ztunnel does not enforce', (action) => {
    const t = translateAuthorizationPolicy(policy({ action, rules: [{}] }), ROOT);
    expect(t).toEqual({
      kind: 'skipped',
      reason: `action ${action} is not enforced by ztunnel`,
      binding: {
        bound: false,
        status: { reason: 'UnsupportedValue', message: `ztunnel does not support the ${action} action` },
      },
    });
  });

  it('skips a policy attached to a waypoint by targetRefs', () => {
    const t = translateAuthorizationPolicy(
      policy({ targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'waypoint' }] }),
      ROOT,
    );
    expect(t).toEqual({ kind: 'skipped', reason: 'attached to a waypoint by targetRefs' });
  });
});

describe('translateAuthorizationPolicy: rules', () => {
  it.each([
    ['hosts', { to: [{ operation: { hosts: ['web.demo'] } }] }],
    ['notHosts', { to: [{ operation: { notHosts: ['web.demo'] } }] }],
    ['methods', { to: [{ operation: { methods: ['GET'] } }] }],
    ['paths', { to: [{ operation: { paths: ['/api'] } }] }],
    [
      'L7 in one of several operations',
      { to: [{ operation: { ports: ['80'] } }, { operation: { paths: ['/'] } }] },
    ],
    ['requestPrincipals', { from: [{ source: { requestPrincipals: ['issuer/sub'] } }] }],
    ['remoteIpBlocks', { from: [{ source: { remoteIpBlocks: ['10.0.0.0/8'] } }] }],
    ['a request.headers condition', { when: [{ key: 'request.headers[x-user]', values: ['bob'] }] }],
    ['a request.auth.claims condition', { when: [{ key: 'request.auth.claims[iss]', values: ['x'] }] }],
    [
      'L7 next to L4 fields',
      { from: [{ source: { namespaces: ['a'] } }], to: [{ operation: { ports: ['80'], methods: ['GET'] } }] },
    ],
  ])('drops an ALLOW rule using %s, so a policy with only that rule denies', (_what, rule) => {
    expect(translate(policy({ rules: [rule] })).rules).toEqual([]);
  });

  it('keeps the L4 rules of an ALLOW policy and drops only its L7 rules', () => {
    const a = translate(
      policy({
        rules: [
          { to: [{ operation: { methods: ['GET'] } }] },
          { from: [{ source: { namespaces: ['a'] } }] },
          { when: [{ key: 'request.headers[x]', values: ['y'] }] },
        ],
      }),
    );
    expect(a.rules).toEqual([{ clauses: [{ matches: [{ namespaces: [{ exact: 'a' }] }] }] }]);
  });

  it('keeps the L4 parts of a DENY rule and ignores its L7 parts, denying more rather than less', () => {
    const a = translate(
      policy({
        action: 'DENY',
        rules: [
          {
            from: [{ source: { namespaces: ['a'], requestPrincipals: ['issuer/sub'] } }],
            to: [{ operation: { ports: ['8080'], methods: ['POST'] } }],
            when: [
              { key: 'request.headers[x-user]', values: ['bob'] },
              { key: 'source.ip', values: ['10.0.0.0/8'] },
            ],
          },
        ],
      }),
    );
    expect(a.action).toBe(1);
    expect(onlyRule(a)).toEqual([
      [{ destinationPorts: [8080] }],
      [{ namespaces: [{ exact: 'a' }] }],
      [{ sourceIps: [{ address: v4(10, 0, 0, 0), length: 8 }] }],
    ]);
  });

  it('turns a DENY rule with only L7 fields into a match on everything', () => {
    const a = translate(
      policy({ action: 'DENY', rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }] }),
    );
    expect(onlyRule(a)).toEqual([[{}]]);
    expect(Object.keys(onlyRule(a)[0]![0]!)).toEqual([]);
  });

  it('orders clauses operation, source, then one per condition, and ORs the entries of a list', () => {
    const a = translate(
      policy({
        rules: [
          {
            from: [{ source: { namespaces: ['a'] } }, { source: { namespaces: ['b'] } }],
            to: [{ operation: { ports: ['80', '8080'], notPorts: ['9090'] } }],
            when: [
              { key: 'source.namespace', values: ['c'] },
              { key: 'destination.port', values: ['443'] },
            ],
          },
        ],
      }),
    );
    expect(onlyRule(a)).toEqual([
      [{ destinationPorts: [80, 8080], notDestinationPorts: [9090] }],
      [{ namespaces: [{ exact: 'a' }] }, { namespaces: [{ exact: 'b' }] }],
      [{ namespaces: [{ exact: 'c' }] }],
      [{ destinationPorts: [443] }],
    ]);
  });

  it('sends ports as numbers', () => {
    const ports = onlyRule(
      translate(policy({ rules: [{ to: [{ operation: { ports: ['1', '65535'] } }] }] })),
    )[0]![0]!.destinationPorts;
    expect(ports).toEqual([1, 65535]);
    expect(ports?.every((p) => typeof p === 'number')).toBe(true);
  });

  it('translates every L4 source field, stripping spiffe:// from principals only', () => {
    const a = translate(
      policy({
        rules: [
          {
            from: [
              {
                source: {
                  principals: ['spiffe://cluster.local/ns/a/sa/b', 'cluster.local/ns/c/sa/d'],
                  notPrincipals: ['spiffe://cluster.local/ns/a/sa/evil'],
                  namespaces: ['a'],
                  notNamespaces: ['b'],
                  ipBlocks: ['10.0.0.0/8', '10.1.2.3'],
                  notIpBlocks: ['fd00::/8', 'fd00::1'],
                },
              },
            ],
          },
        ],
      }),
    );
    expect(onlyRule(a)).toEqual([
      [
        {
          principals: [{ exact: 'cluster.local/ns/a/sa/b' }, { exact: 'cluster.local/ns/c/sa/d' }],
          notPrincipals: [{ exact: 'cluster.local/ns/a/sa/evil' }],
          namespaces: [{ exact: 'a' }],
          notNamespaces: [{ exact: 'b' }],
          sourceIps: [
            { address: v4(10, 0, 0, 0), length: 8 },
            { address: v4(10, 1, 2, 3), length: 32 },
          ],
          notSourceIps: [
            { address: hex('fd000000000000000000000000000000'), length: 8 },
            { address: hex('fd000000000000000000000000000001'), length: 128 },
          ],
        },
      ],
    ]);
  });

  it('translates an IPv4-mapped IPv6 block to the bytes of its IPv4 tail', () => {
    const a = translate(policy({ rules: [{ from: [{ source: { ipBlocks: ['::ffff:10.0.0.0/104'] } }] }] }));
    expect(onlyRule(a)).toEqual([
      [{ sourceIps: [{ address: hex('00000000000000000000ffff0a000000'), length: 104 }] }],
    ]);
  });

  it('leaves unset and empty fields out of a match', () => {
    const a = translate(policy({ rules: [{ from: [{ source: { namespaces: ['a'], principals: [] } }] }] }));
    expect(Object.keys(onlyRule(a)[0]![0]!)).toEqual(['namespaces']);
  });

  it.each([
    ['*', { presence: {} }],
    ['cluster.local/ns/demo/*', { prefix: 'cluster.local/ns/demo/' }],
    ['*/sa/web', { suffix: '/sa/web' }],
    ['cluster.local/ns/demo/sa/web', { exact: 'cluster.local/ns/demo/sa/web' }],
    ['spiffe://cluster.local/ns/demo/*', { prefix: 'cluster.local/ns/demo/' }],
    ['spiffe://*', { presence: {} }],
  ])('matches principal %s as %j', (value, match) => {
    const a = translate(policy({ rules: [{ from: [{ source: { principals: [value] } }] }] }));
    expect(onlyRule(a)).toEqual([[{ principals: [match] }]]);
  });

  it.each([
    ['*', { presence: {} }],
    ['prod-*', { prefix: 'prod-' }],
    ['*-test', { suffix: '-test' }],
    ['demo', { exact: 'demo' }],
  ])('matches namespace %s as %j', (value, match) => {
    expect(stringMatch(value)).toEqual(match);
    const a = translate(policy({ rules: [{ from: [{ source: { notNamespaces: [value] } }] }] }));
    expect(onlyRule(a)).toEqual([[{ notNamespaces: [match] }]]);
  });

  it('strips spiffe:// only when asked', () => {
    expect(stringMatch('spiffe://td/ns/a/sa/b')).toEqual({ exact: 'spiffe://td/ns/a/sa/b' });
    expect(stringMatch('spiffe://td/ns/a/sa/b', true)).toEqual({ exact: 'td/ns/a/sa/b' });
  });

  it.each<[string, { values?: string[]; notValues?: string[] }, WireMatch]>([
    ['source.namespace', { values: ['a', 'b*'] }, { namespaces: [{ exact: 'a' }, { prefix: 'b' }] }],
    ['source.namespace', { notValues: ['c'] }, { notNamespaces: [{ exact: 'c' }] }],
    [
      'source.principal',
      { values: ['spiffe://td/ns/a/sa/b'], notValues: ['*'] },
      { principals: [{ exact: 'td/ns/a/sa/b' }], notPrincipals: [{ presence: {} }] },
    ],
    [
      'source.ip',
      { values: ['10.0.0.1'], notValues: ['192.168.0.0/16'] },
      {
        sourceIps: [{ address: v4(10, 0, 0, 1), length: 32 }],
        notSourceIps: [{ address: v4(192, 168, 0, 0), length: 16 }],
      },
    ],
    [
      'destination.ip',
      { values: ['fd00::/64'], notValues: ['10.96.0.10'] },
      {
        destinationIps: [{ address: hex('fd000000000000000000000000000000'), length: 64 }],
        notDestinationIps: [{ address: v4(10, 96, 0, 10), length: 32 }],
      },
    ],
    [
      'destination.port',
      { values: ['80', '443'], notValues: ['8080'] },
      { destinationPorts: [80, 443], notDestinationPorts: [8080] },
    ],
  ])('translates condition %s %j', (key, values, match) => {
    for (const action of ['ALLOW', 'DENY']) {
      const a = translate(policy({ action, rules: [{ when: [{ key, ...values }] }] }));
      expect(onlyRule(a)).toEqual([[match]]);
      expect(Object.keys(onlyRule(a)[0]![0]!).sort()).toEqual(Object.keys(match).sort());
    }
  });
});

describe('translateAuthorizationPolicy: source.serviceAccounts', () => {
  it('sends service accounts as istiod does: a ServiceAccountMatch, a bare name in the policy namespace', () => {
    const a = translate(
      policy(
        {
          action: 'DENY',
          rules: [
            {
              from: [
                { source: { serviceAccounts: ['sleep', 'other/curl'] } },
                { source: { notServiceAccounts: ['istio-system/ztunnel', 'web'] } },
              ],
            },
          ],
        },
        { namespace: 'shop' },
      ),
    );
    expect(onlyRule(a)).toEqual([
      [
        {
          serviceAccounts: [
            { namespace: 'shop', serviceAccount: 'sleep' },
            { namespace: 'other', serviceAccount: 'curl' },
          ],
        },
        {
          notServiceAccounts: [
            { namespace: 'istio-system', serviceAccount: 'ztunnel' },
            { namespace: 'shop', serviceAccount: 'web' },
          ],
        },
      ],
    ]);
  });

  it('keeps an ALLOW rule that names only service accounts (they are L4), and leaves empty lists out', () => {
    const a = translate(
      policy({ rules: [{ from: [{ source: { serviceAccounts: ['sleep'], ipBlocks: ['10.0.0.0/8'] } }] }] }),
    );
    const [[match]] = onlyRule(a) as [[WireMatch]];
    expect(Object.keys(match).sort()).toEqual(['serviceAccounts', 'sourceIps']);
  });

  it('encodes them in the Authorization wire fields a node agent decodes (Match.service_accounts = 11, not_service_accounts = 12)', () => {
    const a = translate(
      policy({
        rules: [{ from: [{ source: { serviceAccounts: ['sleep'], notServiceAccounts: ['a/b'] } }] }],
      }),
    );
    const decoded = AUTHORIZATION_CODEC.decode(AUTHORIZATION_CODEC.encode(a));
    const m = decoded.rules[0]!.clauses[0]!.matches[0]!;
    expect(m.serviceAccounts.map((x) => [x.namespace, x.serviceAccount])).toEqual([['demo', 'sleep']]);
    expect(m.notServiceAccounts.map((x) => [x.namespace, x.serviceAccount])).toEqual([['a', 'b']]);
    expect(m.principals).toEqual([]);
  });
});

describe('translateAuthorizationPolicy: the source.serviceAccount condition', () => {
  it('is not an L4 condition for ztunnel, as in istiod: an ALLOW rule using it is dropped, a DENY rule ignores it', () => {
    const when = [{ key: 'source.serviceAccount', values: ['sleep'] }];
    const allow = translate(policy({ rules: [{ from: [{ source: { namespaces: ['a'] } }], when }] }));
    expect(allow.rules).toEqual([]);
    const deny = translate(
      policy({ action: 'DENY', rules: [{ from: [{ source: { namespaces: ['a'] } }], when }] }),
    );
    expect(onlyRule(deny)).toEqual([[{ namespaces: [{ exact: 'a' }] }]]);
  });
});

describe('staticStrictPolicy', () => {
  it('denies connections without a peer principal, as a workload-selector policy in the root namespace', () => {
    expect(STATIC_STRICT_NAME).toBe('istio_converted_static_strict');
    expect(staticStrictPolicy(ROOT)).toEqual({
      name: 'istio_converted_static_strict',
      namespace: ROOT,
      scope: 2,
      action: 1,
      rules: [{ clauses: [{ matches: [{ notPrincipals: [{ presence: {} }] }] }] }],
    });
    expect(staticStrictPolicy('mesh-root').namespace).toBe('mesh-root');
  });
});

describe('convertedPeerAuthentication', () => {
  const converted = (portLevelMtls: Record<string, { mode: MtlsMode }>, base: MtlsMode) =>
    convertedPeerAuthentication(
      peerAuth({ selector: { matchLabels: { app: 'web' } }, portLevelMtls }, 'web-mtls'),
      base,
    );

  it('denies plaintext on every port but the permissive ones when the base mode is STRICT', () => {
    expect(
      converted(
        { 8080: { mode: 'PERMISSIVE' }, 9090: { mode: 'DISABLE' }, 7070: { mode: 'STRICT' } },
        'STRICT',
      ),
    ).toEqual({
      name: 'converted_peer_authentication_web-mtls',
      namespace: 'demo',
      scope: 2,
      action: 1,
      rules: [
        {
          clauses: [{ matches: [{ notPrincipals: [{ presence: {} }], notDestinationPorts: [8080, 9090] }] }],
        },
      ],
    });
  });

  it('denies plaintext on the strict ports only when the base mode is not STRICT', () => {
    for (const base of ['PERMISSIVE', 'DISABLE', 'UNSET'] as const) {
      expect(converted({ 8080: { mode: 'STRICT' }, 9090: { mode: 'PERMISSIVE' } }, base)).toEqual({
        name: 'converted_peer_authentication_web-mtls',
        namespace: 'demo',
        scope: 2,
        action: 1,
        rules: [
          { clauses: [{ matches: [{ notPrincipals: [{ presence: {} }], destinationPorts: [8080] }] }] },
        ],
      });
    }
  });

  it('is undefined when no port ends up strict', () => {
    expect(
      converted({ 8080: { mode: 'PERMISSIVE' }, 9090: { mode: 'DISABLE' } }, 'PERMISSIVE'),
    ).toBeUndefined();
    expect(converted({ 8080: { mode: 'UNSET' } }, 'DISABLE')).toBeUndefined();
    expect(converted({}, 'PERMISSIVE')).toBeUndefined();
  });
});

describe('ipBytes', () => {
  it.each([
    ['10.1.2.3', '0a010203'],
    ['0.0.0.0', '00000000'],
    ['255.255.255.255', 'ffffffff'],
  ])('writes IPv4 %s as 4 bytes', (ip, bytes) => {
    expect(ipBytes(ip)).toEqual(hex(bytes));
    expect(ipBytes(ip)).toHaveLength(4);
  });

  it.each([
    ['::1', '00000000000000000000000000000001'],
    ['::', '00000000000000000000000000000000'],
    ['fd00::1:2', 'fd000000000000000000000000010002'],
    ['fd00::', 'fd000000000000000000000000000000'],
    ['1::', '00010000000000000000000000000000'],
    ['2001:db8:0:0:0:0:0:1', '20010db8000000000000000000000001'],
    ['2001:DB8::AbCd:1', '20010db80000000000000000abcd0001'],
    ['fe80:1:2:3::4:5:6', 'fe800001000200030000000400050006'],
    ['::ffff:10.1.2.3', '00000000000000000000ffff0a010203'],
    ['64:ff9b::192.0.2.33', '0064ff9b0000000000000000c0000221'],
  ])('writes IPv6 %s as 16 bytes', (ip, bytes) => {
    expect(ipBytes(ip)).toEqual(hex(bytes));
    expect(ipBytes(ip)).toHaveLength(16);
  });
});

describe('translateAuthorizationPolicy: the ZtunnelAccepted binding, in istiod words', () => {
  const HTTP = 'ztunnel does not support HTTP attributes (found: ';
  const WAYPOINT = '). In ambient mode you must use a waypoint proxy to enforce HTTP rules. ';

  it('accepts an L4 policy as written (no status message: "attached to ztunnel")', () => {
    const t = translateAuthorizationPolicy(
      policy({ rules: [{ to: [{ operation: { ports: ['80'] } }] }] }),
      ROOT,
    );
    expect(t.kind === 'ztunnel' && t.binding).toEqual({ bound: true });
    expect(t.kind === 'ztunnel' && t.omitted).toEqual([]);
  });

  it('binds an ALLOW policy with HTTP fields, saying which are omitted (sorted, once each) and where', () => {
    const t = translateAuthorizationPolicy(
      policy({
        rules: [
          { to: [{ operation: { methods: ['GET'], paths: ['/a'] } }] },
          {
            from: [{ source: { requestPrincipals: ['*'] } }],
            to: [{ operation: { methods: ['POST'] } }],
            when: [{ key: 'request.headers[x]', values: ['1'] }],
          },
        ],
      }),
      ROOT,
    );
    if (t.kind !== 'ztunnel') throw new Error('not sent');
    expect(t.binding).toEqual({
      bound: true,
      status: {
        reason: 'UnsupportedValue',
        message: `${HTTP}methods, paths, request.headers[x], requestPrincipals${WAYPOINT}Within an ALLOW policy, rules matching HTTP attributes are omitted. This will be more restrictive than requested.`,
      },
    });
    expect(t.omitted.map((a) => a.path)).toEqual([
      'spec.rules[0].to[0].operation.methods',
      'spec.rules[0].to[0].operation.paths',
      'spec.rules[1].to[0].operation.methods',
      'spec.rules[1].from[0].source.requestPrincipals',
      'spec.rules[1].when[0].key',
    ]);
  });

  it('tells a DENY policy whose rules keep an L4 match from one left with nothing to match', () => {
    const mixed = translateAuthorizationPolicy(
      policy({ action: 'DENY', rules: [{ to: [{ operation: { ports: ['80'], methods: ['GET'] } }] }] }),
      ROOT,
    );
    expect(mixed.kind === 'ztunnel' && mixed.binding.status?.message).toBe(
      `${HTTP}methods${WAYPOINT}DENY policy with HTTP attributes is enforced without the HTTP rules. This will be more restrictive than requested.`,
    );
    const none = translateAuthorizationPolicy(
      policy({ action: 'DENY', rules: [{ to: [{ operation: { methods: ['GET'] } }] }] }),
      ROOT,
    );
    expect(none.kind === 'ztunnel' && none.binding).toEqual({
      bound: true,
      status: {
        reason: 'UnsupportedValue',
        message: `${HTTP}methods${WAYPOINT}After omitting unsupported HTTP attributes, this DENY policy has no enforceable rules at ztunnel and will have no effect. Deploy a waypoint proxy and use a targetRef to enforce this policy.`,
      },
    });
  });

  it('gives a waypoint policy (targetRefs) no ztunnel binding at all', () => {
    const t = translateAuthorizationPolicy(
      policy({ targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'waypoint' }] }),
      ROOT,
    );
    expect(t.kind === 'skipped' && t.binding).toBeUndefined();
  });
});

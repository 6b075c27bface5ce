import { describe, expect, it } from 'vitest';
import type { AuthorizationPolicy, PolicyMatch } from '../state/policy.js';
import { applicablePolicies, authorize, type ConnectionFacts, compilePolicy } from './authorization.js';

const SLEEP: ConnectionFacts = {
  principal: 'cluster.local/ns/demo/sa/sleep',
  namespace: 'demo',
  sourceIp: '198.18.16.10',
  destinationIp: '198.18.17.10',
  destinationPort: 8080,
};
const PLAINTEXT: ConnectionFacts = {
  sourceIp: '198.18.16.11',
  destinationIp: '198.18.17.10',
  destinationPort: 8080,
};

function policy(
  action: 'allow' | 'deny',
  matches: PolicyMatch[],
  extra: Partial<AuthorizationPolicy> = {},
): AuthorizationPolicy {
  return {
    name: `p-${action}`,
    namespace: 'demo',
    scope: 'namespace',
    action,
    rules: [{ clauses: [{ matches }] }],
    ...extra,
  };
}

const decide = (policies: AuthorizationPolicy[], conn: ConnectionFacts) =>
  authorize(policies.map(compilePolicy), conn);

describe('authorize: precedence', () => {
  it('allows when no policy applies', () => {
    expect(decide([], SLEEP)).toMatchObject({ allowed: true });
  });

  it('denies on a matching DENY even when an ALLOW also matches', () => {
    const d = decide(
      [policy('allow', [{}]), policy('deny', [{ principals: [{ exact: SLEEP.principal }] }])],
      SLEEP,
    );
    expect(d).toMatchObject({ allowed: false, reason: 'deny', policy: 'demo/p-deny' });
  });

  it('with ALLOW policies present, requires one to match', () => {
    const allowOther = policy('allow', [{ principals: [{ exact: 'cluster.local/ns/demo/sa/other' }] }]);
    expect(decide([allowOther], SLEEP)).toMatchObject({ allowed: false, reason: 'no_allow_match' });
    const allowSleep = policy('allow', [{ principals: [{ exact: SLEEP.principal }] }], { name: 'sleep' });
    expect(decide([allowOther, allowSleep], SLEEP)).toMatchObject({ allowed: true, policy: 'demo/sleep' });
  });

  it('an ALLOW policy without rules allows nothing; a rule without clauses matches everything', () => {
    const none: AuthorizationPolicy = {
      name: 'none',
      namespace: 'demo',
      scope: 'namespace',
      action: 'allow',
      rules: [],
    };
    expect(decide([none], SLEEP)).toMatchObject({ allowed: false });
    const all: AuthorizationPolicy = { ...none, name: 'all', rules: [{ clauses: [] }] };
    expect(decide([all], SLEEP)).toMatchObject({ allowed: true });
  });

  it('never enforces dry-run policies but reports the ones that matched', () => {
    const d = decide([policy('deny', [{}], { dryRun: true, name: 'would-deny' })], SLEEP);
    expect(d).toEqual({ allowed: true, dryRun: ['deny:demo/would-deny'] });
  });
});

describe('authorize: structure', () => {
  const byPort = (port: number): PolicyMatch => ({ destinationPorts: [port] });
  const byNs = (ns: string): PolicyMatch => ({ namespaces: [{ exact: ns }] });
  const allowWith = (rules: AuthorizationPolicy['rules']): AuthorizationPolicy => ({
    name: 'x',
    namespace: 'demo',
    scope: 'namespace',
    action: 'allow',
    rules,
  });

  it('ORs rules', () => {
    const p = allowWith([
      { clauses: [{ matches: [byPort(1)] }] },
      { clauses: [{ matches: [byPort(8080)] }] },
    ]);
    expect(decide([p], SLEEP).allowed).toBe(true);
  });

  it('ANDs the clauses of a rule', () => {
    const both = allowWith([{ clauses: [{ matches: [byPort(8080)] }, { matches: [byNs('demo')] }] }]);
    expect(decide([both], SLEEP).allowed).toBe(true);
    const oneFails = allowWith([{ clauses: [{ matches: [byPort(8080)] }, { matches: [byNs('prod')] }] }]);
    expect(decide([oneFails], SLEEP).allowed).toBe(false);
  });

  it('ORs the matches of a clause, and ANDs the fields of one match', () => {
    const either = allowWith([{ clauses: [{ matches: [byNs('prod'), byPort(8080)] }] }]);
    expect(decide([either], SLEEP).allowed).toBe(true);
    const bothFields = allowWith([
      { clauses: [{ matches: [{ destinationPorts: [8080], namespaces: [{ exact: 'prod' }] }] }] },
    ]);
    expect(decide([bothFields], SLEEP).allowed).toBe(false);
  });
});

describe('authorize: fields', () => {
  const cases: Array<[string, PolicyMatch, boolean]> = [
    ['namespace exact', { namespaces: [{ exact: 'demo' }] }, true],
    ['namespace prefix', { namespaces: [{ prefix: 'de' }] }, true],
    ['namespace suffix miss', { namespaces: [{ suffix: 'prod' }] }, false],
    ['not namespace', { notNamespaces: [{ exact: 'demo' }] }, false],
    ['principal exact', { principals: [{ exact: 'cluster.local/ns/demo/sa/sleep' }] }, true],
    ['principal suffix', { principals: [{ suffix: '/sa/sleep' }] }, true],
    ['principal presence', { principals: [{ presence: true }] }, true],
    ['not principal', { notPrincipals: [{ prefix: 'cluster.local/ns/demo/' }] }, false],
    ['source CIDR', { sourceIps: ['198.18.16.0/24'] }, true],
    ['source single address', { sourceIps: ['198.18.16.10'] }, true],
    ['source CIDR miss', { sourceIps: ['198.18.17.0/24'] }, false],
    ['not source CIDR', { notSourceIps: ['198.18.0.0/15'] }, false],
    ['destination CIDR', { destinationIps: ['198.18.17.0/24'] }, true],
    ['not destination IP', { notDestinationIps: ['198.18.17.10'] }, false],
    ['destination port', { destinationPorts: [8080, 9090] }, true],
    ['destination port miss', { destinationPorts: [9090] }, false],
    ['not destination port', { notDestinationPorts: [8080] }, false],
    ['IPv6 CIDR does not match IPv4', { sourceIps: ['fd00::/8'] }, false],
  ];
  it.each(cases)('%s', (_name, match, allowed) => {
    expect(decide([policy('allow', [match])], SLEEP).allowed).toBe(allowed);
  });

  it("matches service accounts by the identity's namespace and account in any trust domain, as upstream's ServiceAccountMatch", () => {
    const sa = (namespace: string, serviceAccount: string) => ({ namespace, serviceAccount });
    const allowed = (m: PolicyMatch, c: ConnectionFacts = SLEEP) => decide([policy('allow', [m])], c).allowed;
    expect(allowed({ serviceAccounts: [sa('other', 'x'), sa('demo', 'sleep')] })).toBe(true);
    expect(allowed({ serviceAccounts: [sa('demo', 'web')] })).toBe(false);
    expect(
      allowed(
        { serviceAccounts: [sa('demo', 'sleep')] },
        { ...SLEEP, principal: 'example.org/ns/demo/sa/sleep' },
      ),
    ).toBe(true);
    // Not a suffix match: a longer path that ends the same way is another identity.
    expect(
      allowed({ serviceAccounts: [sa('demo', 'sleep')] }, { ...SLEEP, principal: 'td/x/ns/demo/sa/sleep' }),
    ).toBe(false);
    expect(allowed({ notServiceAccounts: [sa('demo', 'sleep')] })).toBe(false);
    expect(allowed({ notServiceAccounts: [sa('demo', 'web')] })).toBe(true);
    expect(allowed({ serviceAccounts: [sa('demo', 'sleep')] }, PLAINTEXT)).toBe(false);
    expect(allowed({ notServiceAccounts: [sa('demo', 'sleep')] }, PLAINTEXT)).toBe(true);
  });

  it('ANDs service accounts with principals in one match, as upstream, never ORs them', () => {
    const both: PolicyMatch = {
      principals: [{ exact: 'cluster.local/ns/demo/sa/admin' }],
      serviceAccounts: [{ namespace: 'demo', serviceAccount: 'sleep' }],
    };
    // sleep names one of the two only: an ALLOW that needs both does not let it in.
    expect(decide([policy('allow', [both])], SLEEP).allowed).toBe(false);
    expect(
      decide(
        [policy('allow', [{ ...both, principals: [{ exact: 'cluster.local/ns/demo/sa/sleep' }] }])],
        SLEEP,
      ).allowed,
    ).toBe(true);
  });

  it('a plaintext connection matches no positive principal or namespace, and every negated one', () => {
    expect(decide([policy('allow', [{ principals: [{ presence: true }] }])], PLAINTEXT).allowed).toBe(false);
    expect(decide([policy('allow', [{ namespaces: [{ prefix: '' }] }])], PLAINTEXT).allowed).toBe(false);
    expect(decide([policy('allow', [{ notPrincipals: [{ exact: 'x' }] }])], PLAINTEXT).allowed).toBe(true);
    expect(decide([policy('allow', [{ notNamespaces: [{ exact: 'demo' }] }])], PLAINTEXT).allowed).toBe(true);
  });

  it('STRICT mTLS as istiod renders it (DENY when no principal is present) refuses only plaintext', () => {
    const strict = policy('deny', [{ notPrincipals: [{ presence: true }] }], {
      name: 'istio_converted_peer_authentication',
    });
    expect(decide([strict], PLAINTEXT)).toMatchObject({ allowed: false, reason: 'deny' });
    expect(decide([strict], SLEEP)).toMatchObject({ allowed: true });
  });
});

describe('applicablePolicies', () => {
  it('takes global policies from the root namespace, the namespace policies, and the workload-named ones', () => {
    const mk = (name: string, namespace: string, scope: AuthorizationPolicy['scope']) =>
      compilePolicy({ name, namespace, scope, action: 'allow', rules: [] });
    const all = [
      mk('mesh', 'istio-system', 'global'),
      mk('ns', 'demo', 'namespace'),
      mk('other-ns', 'prod', 'namespace'),
      mk('mine', 'demo', 'workload'),
      mk('not-mine', 'demo', 'workload'),
    ];
    const keys = applicablePolicies(all, { namespace: 'demo', policies: ['demo/mine'] }).map((p) => p.key);
    expect(keys).toEqual(['istio-system/mesh', 'demo/ns', 'demo/mine']);
  });
});

import { describe, expect, it } from 'vitest';
import type { RbacPermission, RbacPolicy, RbacPrincipal, RbacRules } from '../config/waypoint-config.js';
import { evaluateRbac, matchingPolicy, policyMatches, type RbacRequest } from './rbac.js';

const PRODUCTPAGE = 'spiffe://cluster.local/ns/bookinfo/sa/productpage';

function request(fields: Partial<RbacRequest> = {}, headers: Record<string, string> = {}): RbacRequest {
  return {
    principal: PRODUCTPAGE,
    sourceIp: '10.1.0.5',
    destinationPort: 9080,
    headers: { ':method': 'GET', ':path': '/api/v1/reviews?id=1', ':authority': 'reviews:9080', ...headers },
    ...fields,
  };
}

function policy(
  name: string,
  principals: RbacPrincipal[],
  permissions: RbacPermission[] = [{ any: true }],
): RbacPolicy {
  return { name, principals, permissions };
}

const anyone: RbacPrincipal[] = [{ any: true }];

describe('policyMatches', () => {
  it('needs any principal and any permission', () => {
    const p = policy(
      'p',
      [{ principalName: { exact: 'nobody' } }, { principalName: { exact: PRODUCTPAGE } }],
      [{ destinationPort: 1 }, { destinationPort: 9080 }],
    );
    expect(policyMatches(p, request())).toBe(true);
    expect(policyMatches({ ...p, permissions: [{ destinationPort: 1 }] }, request())).toBe(false);
    expect(policyMatches({ ...p, principals: [{ principalName: { exact: 'nobody' } }] }, request())).toBe(
      false,
    );
  });

  it('matches principal names only for authenticated peers', () => {
    const p = policy('p', [{ principalName: { prefix: '' } }]);
    expect(policyMatches(p, request())).toBe(true);
    expect(policyMatches(p, request({ principal: undefined }))).toBe(false);
    expect(policyMatches(p, request({ principal: '' }))).toBe(false);
    const ns = policy('ns', [{ principalName: { regex: /^spiffe:\/\/[^/]+\/ns\/bookinfo\/sa\/[^/]+$/ } }]);
    expect(policyMatches(ns, request())).toBe(true);
    expect(policyMatches(ns, request({ principal: 'spiffe://cluster.local/ns/other/sa/x' }))).toBe(false);
  });

  it('matches source IPs, headers and combinators of principals', () => {
    const ip = (address: string, prefixLen: number): RbacPrincipal => ({ sourceIp: { address, prefixLen } });
    expect(policyMatches(policy('p', [ip('10.1.0.0', 16)]), request())).toBe(true);
    expect(policyMatches(policy('p', [ip('10.2.0.0', 16)]), request())).toBe(false);
    expect(
      policyMatches(
        policy('p', [{ andIds: [ip('10.0.0.0', 8), { principalName: { exact: PRODUCTPAGE } }] }]),
        request(),
      ),
    ).toBe(true);
    expect(
      policyMatches(
        policy('p', [{ andIds: [ip('10.0.0.0', 8), { principalName: { exact: 'x' } }] }]),
        request(),
      ),
    ).toBe(false);
    expect(policyMatches(policy('p', [{ orIds: [ip('10.2.0.0', 16), ip('10.1.0.0', 16)] }]), request())).toBe(
      true,
    );
    expect(policyMatches(policy('p', [{ notId: ip('10.1.0.0', 16) }]), request())).toBe(false);
    expect(
      policyMatches(
        policy('p', [{ header: { name: 'x-user', match: { exact: 'a' }, invert: false } }]),
        request({}, { 'x-user': 'a' }),
      ),
    ).toBe(true);
    expect(policyMatches(policy('p', [{ andIds: [] }]), request())).toBe(true);
    expect(policyMatches(policy('p', [{ orIds: [] }]), request())).toBe(false);
  });

  it('matches methods, hosts, paths without the query, ports and combinators of permissions', () => {
    const m = (permissions: RbacPermission[], req = request()) =>
      policyMatches(policy('p', anyone, permissions), req);
    expect(m([{ header: { name: ':method', match: { exact: 'GET' }, invert: false } }])).toBe(true);
    expect(m([{ header: { name: ':method', match: { exact: 'POST' }, invert: false } }])).toBe(false);
    expect(m([{ header: { name: ':authority', match: { prefix: 'reviews' }, invert: false } }])).toBe(true);
    expect(m([{ urlPath: { exact: '/api/v1/reviews' } }])).toBe(true);
    expect(m([{ urlPath: { suffix: 'id=1' } }])).toBe(false);
    expect(m([{ urlPath: { prefix: '/api/' } }])).toBe(true);
    expect(m([{ urlPath: { exact: '/a' } }], request({}, { ':path': '/a#frag' }))).toBe(true);
    expect(m([{ header: { name: ':path', match: { suffix: 'id=1' }, invert: false } }])).toBe(true);
    expect(m([{ andRules: [{ destinationPort: 9080 }, { urlPath: { prefix: '/api' } }] }])).toBe(true);
    expect(m([{ andRules: [{ destinationPort: 9080 }, { urlPath: { prefix: '/admin' } }] }])).toBe(false);
    expect(m([{ orRules: [{ destinationPort: 1 }, { destinationPort: 9080 }] }])).toBe(true);
    expect(m([{ notRule: { urlPath: { prefix: '/admin' } } }])).toBe(true);
    expect(m([{ andRules: [] }])).toBe(true);
    expect(m([{ orRules: [] }])).toBe(false);
    expect(m([{ urlPath: { exact: '' } }], request({ headers: {} }))).toBe(true);
  });
});

describe('matchingPolicy', () => {
  it('returns the first matching policy in order', () => {
    const rules: RbacRules = {
      action: 'ALLOW',
      policies: [policy('a', [{ principalName: { exact: 'x' } }]), policy('b', anyone), policy('c', anyone)],
    };
    expect(matchingPolicy(rules, request())).toBe('b');
  });
});

describe('evaluateRbac', () => {
  const denyDelete: RbacRules = {
    action: 'DENY',
    policies: [
      policy('ns[bookinfo]-policy[no-delete]-rule[0]', anyone, [
        { header: { name: ':method', match: { exact: 'DELETE' }, invert: false } },
      ]),
    ],
  };
  const allowProductpage: RbacRules = {
    action: 'ALLOW',
    policies: [policy('ns[bookinfo]-policy[allow-pp]-rule[0]', [{ principalName: { exact: PRODUCTPAGE } }])],
  };

  it('allows everything without filters', () => {
    expect(evaluateRbac([], request())).toEqual({ allowed: true });
  });

  it('denies on a DENY match, naming the policy', () => {
    expect(evaluateRbac([denyDelete], request({}, { ':method': 'DELETE' }))).toEqual({
      allowed: false,
      action: 'DENY',
      policy: 'ns[bookinfo]-policy[no-delete]-rule[0]',
    });
    expect(evaluateRbac([denyDelete], request())).toEqual({ allowed: true });
  });

  it('denies when no ALLOW policy matches, and names the one that allowed', () => {
    expect(
      evaluateRbac([allowProductpage], request({ principal: 'spiffe://cluster.local/ns/x/sa/y' })),
    ).toEqual({
      allowed: false,
      action: 'ALLOW',
    });
    expect(evaluateRbac([allowProductpage], request())).toEqual({
      allowed: true,
      policy: 'ns[bookinfo]-policy[allow-pp]-rule[0]',
    });
    expect(evaluateRbac([{ action: 'ALLOW', policies: [] }], request())).toEqual({
      allowed: false,
      action: 'ALLOW',
    });
  });

  it('runs DENY before ALLOW in filter order: a denied request never reaches ALLOW', () => {
    expect(evaluateRbac([denyDelete, allowProductpage], request({}, { ':method': 'DELETE' }))).toMatchObject({
      allowed: false,
      action: 'DENY',
    });
    expect(evaluateRbac([denyDelete, allowProductpage], request())).toEqual({
      allowed: true,
      policy: 'ns[bookinfo]-policy[allow-pp]-rule[0]',
    });
    expect(evaluateRbac([denyDelete, allowProductpage], request({ principal: undefined }))).toEqual({
      allowed: false,
      action: 'ALLOW',
    });
  });
});

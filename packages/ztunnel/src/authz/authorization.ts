/**
 * L4 authorization with the semantics of Istio's ztunnel (src/rbac.rs):
 *   - a DENY policy that matches refuses the connection, before anything else;
 *   - with no ALLOW policy for the workload, the connection is allowed;
 *   - otherwise some ALLOW policy must match.
 * A policy's rules are ORed, a rule's clauses ANDed, a clause's matches ORed, and the fields of
 * one match ANDed. A connection without a peer identity (plaintext) matches no positive principal
 * or namespace pattern, and every negated one. Dry-run policies are evaluated and reported but
 * never enforced. Policies are compiled once; decisions are pure functions of the connection.
 */
import { BlockList, isIP } from 'node:net';
import type { AuthorizationPolicy, PolicyMatch, ServiceAccountMatch, StringMatch } from '../state/policy.js';

/** What is known about a connection when it is authorized. */
export interface ConnectionFacts {
  /** Source principal without the scheme (`td/ns/N/sa/S`), absent for plaintext. */
  readonly principal?: string;
  /** Source namespace, from the identity; absent for plaintext. */
  readonly namespace?: string;
  readonly sourceIp: string;
  readonly destinationIp: string;
  readonly destinationPort: number;
}

export type Decision =
  | { readonly allowed: true; readonly policy?: string; readonly dryRun: readonly string[] }
  | {
      readonly allowed: false;
      readonly reason: 'deny' | 'no_allow_match';
      readonly policy?: string;
      readonly dryRun: readonly string[];
    };

type Predicate = (c: ConnectionFacts) => boolean;

function stringMatcher(m: StringMatch): (v: string | undefined) => boolean {
  if (m.presence) return (v) => v !== undefined && v !== '';
  if (m.exact !== undefined) return (v) => v === m.exact;
  if (m.prefix !== undefined) return (v) => v?.startsWith(m.prefix as string) === true;
  if (m.suffix !== undefined) return (v) => v?.endsWith(m.suffix as string) === true;
  return () => false;
}

function anyString(list: readonly StringMatch[]): (v: string | undefined) => boolean {
  const ms = list.map(stringMatcher);
  return (v) => ms.some((m) => m(v));
}

/** Upstream's `ServiceAccountMatch::matches`: namespace and account of the identity, any trust domain. */
function anyServiceAccount(list: readonly ServiceAccountMatch[]): (principal: string | undefined) => boolean {
  const wanted = new Set(list.map((sa) => `${sa.namespace}/${sa.serviceAccount}`));
  return (principal) => {
    const parts = principal?.split('/');
    if (parts?.length !== 5 || parts[1] !== 'ns' || parts[3] !== 'sa') return false;
    return wanted.has(`${parts[2]}/${parts[4]}`);
  };
}

function cidrs(list: readonly string[]): (ip: string) => boolean {
  const block = new BlockList();
  for (const entry of list) {
    const [addr = '', len] = entry.split('/');
    const family = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
    if (len === undefined) block.addAddress(addr, family);
    else block.addSubnet(addr, Number(len), family);
  }
  return (ip) => {
    const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
    return block.check(ip, family);
  };
}

function compileMatch(m: PolicyMatch): Predicate {
  const checks: Predicate[] = [];
  const nonEmpty = <T>(l: readonly T[] | undefined): l is readonly T[] => l !== undefined && l.length > 0;
  if (nonEmpty(m.namespaces)) {
    const f = anyString(m.namespaces);
    checks.push((c) => f(c.namespace));
  }
  if (nonEmpty(m.notNamespaces)) {
    const f = anyString(m.notNamespaces);
    checks.push((c) => !f(c.namespace));
  }
  if (nonEmpty(m.serviceAccounts)) {
    const f = anyServiceAccount(m.serviceAccounts);
    checks.push((c) => f(c.principal));
  }
  if (nonEmpty(m.notServiceAccounts)) {
    const f = anyServiceAccount(m.notServiceAccounts);
    checks.push((c) => !f(c.principal));
  }
  if (nonEmpty(m.principals)) {
    const f = anyString(m.principals);
    checks.push((c) => f(c.principal));
  }
  if (nonEmpty(m.notPrincipals)) {
    const f = anyString(m.notPrincipals);
    checks.push((c) => !f(c.principal));
  }
  if (nonEmpty(m.sourceIps)) {
    const f = cidrs(m.sourceIps);
    checks.push((c) => f(c.sourceIp));
  }
  if (nonEmpty(m.notSourceIps)) {
    const f = cidrs(m.notSourceIps);
    checks.push((c) => !f(c.sourceIp));
  }
  if (nonEmpty(m.destinationIps)) {
    const f = cidrs(m.destinationIps);
    checks.push((c) => f(c.destinationIp));
  }
  if (nonEmpty(m.notDestinationIps)) {
    const f = cidrs(m.notDestinationIps);
    checks.push((c) => !f(c.destinationIp));
  }
  if (nonEmpty(m.destinationPorts)) {
    const ports = new Set(m.destinationPorts);
    checks.push((c) => ports.has(c.destinationPort));
  }
  if (nonEmpty(m.notDestinationPorts)) {
    const ports = new Set(m.notDestinationPorts);
    checks.push((c) => !ports.has(c.destinationPort));
  }
  return (c) => checks.every((check) => check(c));
}

export interface CompiledPolicy {
  readonly key: string;
  readonly policy: AuthorizationPolicy;
  readonly matches: Predicate;
}

/** Compiles a policy once (CIDR sets, port sets, string matchers). */
export function compilePolicy(policy: AuthorizationPolicy): CompiledPolicy {
  const rules = policy.rules.map((rule) => {
    const clauses = rule.clauses.map((clause) => {
      const ms = clause.matches.map(compileMatch);
      return (c: ConnectionFacts) => ms.some((m) => m(c));
    });
    return (c: ConnectionFacts) => clauses.every((cl) => cl(c));
  });
  return {
    key: `${policy.namespace}/${policy.name}`,
    policy,
    matches: (c) => rules.some((r) => r(c)),
  };
}

/** Decides one connection against the policies that apply to its destination workload. */
export function authorize(policies: readonly CompiledPolicy[], conn: ConnectionFacts): Decision {
  const dryRun: string[] = [];
  const enforced = policies.filter((p) => {
    if (!p.policy.dryRun) return true;
    if (p.matches(conn)) dryRun.push(`${p.policy.action}:${p.key}`);
    return false;
  });
  for (const p of enforced) {
    if (p.policy.action === 'deny' && p.matches(conn))
      return { allowed: false, reason: 'deny', policy: p.key, dryRun };
  }
  const allows = enforced.filter((p) => p.policy.action === 'allow');
  if (allows.length === 0) return { allowed: true, dryRun };
  const hit = allows.find((p) => p.matches(conn));
  return hit
    ? { allowed: true, policy: hit.key, dryRun }
    : { allowed: false, reason: 'no_allow_match', dryRun };
}

/** The policies that apply to a workload: global ones, its namespace's, and those it names. */
export function applicablePolicies(
  all: readonly CompiledPolicy[],
  workload: { readonly namespace: string; readonly policies: readonly string[] },
  rootNamespace = 'istio-system',
): CompiledPolicy[] {
  const named = new Set(workload.policies);
  return all.filter(
    (p) =>
      (p.policy.scope === 'global' && p.policy.namespace === rootNamespace) ||
      (p.policy.scope === 'namespace' && p.policy.namespace === workload.namespace) ||
      (p.policy.scope === 'workload' && named.has(p.key)),
  );
}

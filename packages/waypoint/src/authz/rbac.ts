/**
 * L7 authorization as Envoy's RBAC HTTP filters evaluate it, filter by filter in chain order: a
 * DENY filter denies when any of its policies matches; an ALLOW filter denies when none does. A
 * policy matches when any principal and any permission match. Policies are tried in name order,
 * and the first match names the result (what Envoy reports as the effective policy).
 */
import type { RbacPermission, RbacPolicy, RbacPrincipal, RbacRules } from '../config/waypoint-config.js';
import { matchCidr } from '../match/cidr-match.js';
import { matchHeader } from '../match/header-match.js';
import { matchString } from '../match/string-match.js';

export interface RbacRequest {
  /** The peer's SPIFFE identity; absent when the client is not authenticated. */
  readonly principal?: string;
  readonly sourceIp: string;
  readonly destinationPort: number;
  /** Lower-case names, with `:method`, `:path` (query included) and `:authority`. */
  readonly headers: Readonly<Record<string, string>>;
}

export type RbacDecision =
  | {
      readonly allowed: true /** The ALLOW policy that matched last, if an ALLOW filter ran. */;
      readonly policy?: string;
    }
  | {
      readonly allowed: false;
      /** The action of the filter that denied. */
      readonly action: 'ALLOW' | 'DENY';
      /** The DENY policy that matched; absent when no ALLOW policy did. */
      readonly policy?: string;
    };

function urlPath(req: RbacRequest): string {
  const path = req.headers[':path'] ?? '';
  const end = path.search(/[?#]/);
  return end < 0 ? path : path.slice(0, end);
}

function permissionMatches(p: RbacPermission, req: RbacRequest): boolean {
  if ('any' in p) return true;
  if ('header' in p) return matchHeader(p.header, (name) => req.headers[name]);
  if ('urlPath' in p) return matchString(p.urlPath, urlPath(req));
  if ('destinationPort' in p) return p.destinationPort === req.destinationPort;
  if ('andRules' in p) return p.andRules.every((r) => permissionMatches(r, req));
  if ('orRules' in p) return p.orRules.some((r) => permissionMatches(r, req));
  return !permissionMatches(p.notRule, req);
}

function principalMatches(p: RbacPrincipal, req: RbacRequest): boolean {
  if ('any' in p) return true;
  if ('principalName' in p)
    return req.principal !== undefined && req.principal !== '' && matchString(p.principalName, req.principal);
  if ('header' in p) return matchHeader(p.header, (name) => req.headers[name]);
  if ('sourceIp' in p) return matchCidr(req.sourceIp, p.sourceIp);
  if ('andIds' in p) return p.andIds.every((i) => principalMatches(i, req));
  if ('orIds' in p) return p.orIds.some((i) => principalMatches(i, req));
  return !principalMatches(p.notId, req);
}

export function policyMatches(policy: RbacPolicy, req: RbacRequest): boolean {
  return (
    policy.principals.some((p) => principalMatches(p, req)) &&
    policy.permissions.some((p) => permissionMatches(p, req))
  );
}

/** The first matching policy of one filter, in name order. */
export function matchingPolicy(rules: RbacRules, req: RbacRequest): string | undefined {
  return rules.policies.find((p) => policyMatches(p, req))?.name;
}

export function evaluateRbac(filters: readonly RbacRules[], req: RbacRequest): RbacDecision {
  let allowedBy: string | undefined;
  for (const rules of filters) {
    const matched = matchingPolicy(rules, req);
    if (rules.action === 'DENY') {
      if (matched !== undefined) return { allowed: false, action: 'DENY', policy: matched };
    } else if (matched === undefined) {
      return { allowed: false, action: 'ALLOW' };
    } else {
      allowedBy = matched;
    }
  }
  return allowedBy === undefined ? { allowed: true } : { allowed: true, policy: allowedBy };
}

/**
 * The RBAC HTTP filter (envoy.extensions.filters.http.rbac.v3.RBAC) to RbacRules. Rules the
 * waypoint cannot evaluate are problems rather than silently ignored: a skipped permission or
 * principal would widen or narrow access.
 */

import type { WirePermission, WirePrincipal, WireRbacFilter, WireRbacPolicy } from '@ambient/shared';
import { allFieldsHandled } from '@ambient/shared';
import type { RbacPermission, RbacPolicy, RbacPrincipal, RbacRules } from '../config/waypoint-config.js';
import { at, cidr, type DecodeContext } from './decode-context.js';
import { headerMatch, stringMatch } from './decode-matchers.js';

const ALLOW = 0;
const DENY = 1;
const LOG = 2;

const SNAKE: Record<string, string> = {
  destinationIp: 'destination_ip',
  destinationPortRange: 'destination_port_range',
  requestedServerName: 'requested_server_name',
  uriTemplate: 'uri_template',
  filterState: 'filter_state',
  urlPath: 'url_path',
};

function permission(p: WirePermission, path: string, ctx: DecodeContext): RbacPermission | undefined {
  const { rule, andRules, orRules, any, header: wireHeader, urlPath, destinationPort, notRule, ...rest } = p;
  allFieldsHandled(rest);
  switch (rule) {
    case 'any':
      if (!any) ctx.problem(at(path, 'any'), 'must be true');
      return { any: true };
    case 'andRules':
      return { andRules: permissions(rules(andRules), at(path, 'and_rules.rules'), ctx) };
    case 'orRules':
      return { orRules: permissions(rules(orRules), at(path, 'or_rules.rules'), ctx) };
    case 'notRule': {
      const inner = notRule && permission(notRule, at(path, 'not_rule'), ctx);
      return inner && { notRule: inner };
    }
    case 'header': {
      const header = wireHeader && headerMatch(wireHeader, at(path, 'header'), ctx);
      return header && { header };
    }
    case 'urlPath': {
      // PathMatcher's rule is its oneof case; path is its only member.
      const { rule: _pathRule, path: pathMatcher, ...pathRest } = urlPath ?? {};
      allFieldsHandled(pathRest);
      if (!pathMatcher) {
        ctx.problem(at(path, 'url_path.path'), 'is required');
        return undefined;
      }
      const m = stringMatch(pathMatcher, at(path, 'url_path.path'), ctx);
      return m && { urlPath: m };
    }
    case 'destinationPort':
      if (!destinationPort || destinationPort > 65535)
        ctx.problem(at(path, 'destination_port'), `${destinationPort} is not a port from 1 to 65535`);
      return { destinationPort: destinationPort ?? 0 };
    case undefined:
      ctx.problem(path, 'must set a rule');
      return undefined;
    default:
      ctx.problem(at(path, SNAKE[rule] ?? rule), 'is not supported');
      return undefined;
  }
}

function rules(set: WirePermission['andRules']): WirePermission[] {
  if (!set) return [];
  const { rules: list, ...rest } = set;
  allFieldsHandled(rest);
  return list;
}

function ids(set: WirePrincipal['andIds']): WirePrincipal[] {
  if (!set) return [];
  const { ids: list, ...rest } = set;
  allFieldsHandled(rest);
  return list;
}

function permissions(list: readonly WirePermission[], path: string, ctx: DecodeContext): RbacPermission[] {
  return list.flatMap((p, i) => permission(p, `${path}[${i}]`, ctx) ?? []);
}

function principal(p: WirePrincipal, path: string, ctx: DecodeContext): RbacPrincipal | undefined {
  const {
    identifier,
    andIds,
    orIds,
    any,
    authenticated,
    sourceIp,
    directRemoteIp,
    remoteIp,
    header: wireHeader,
    notId,
    ...rest
  } = p;
  allFieldsHandled(rest);
  switch (identifier) {
    case 'any':
      if (!any) ctx.problem(at(path, 'any'), 'must be true');
      return { any: true };
    case 'andIds':
      return { andIds: principals(ids(andIds), at(path, 'and_ids.ids'), ctx) };
    case 'orIds':
      return { orIds: principals(ids(orIds), at(path, 'or_ids.ids'), ctx) };
    case 'notId': {
      const inner = notId && principal(notId, at(path, 'not_id'), ctx);
      return inner && { notId: inner };
    }
    case 'authenticated': {
      const { principalName: name, ...authenticatedRest } = authenticated ?? { principalName: null };
      allFieldsHandled(authenticatedRest);
      // Without principal_name Envoy matches any authenticated peer: any non-empty principal.
      if (!name) return { principalName: { prefix: '' } };
      const m = stringMatch(name, at(path, 'authenticated.principal_name'), ctx);
      return m && { principalName: m };
    }
    case 'header': {
      const header = wireHeader && headerMatch(wireHeader, at(path, 'header'), ctx);
      return header && { header };
    }
    // The waypoint takes the client address from HBONE and never from x-forwarded-for, so the
    // downstream, direct and remote addresses are one and the same.
    case 'sourceIp':
    case 'directRemoteIp':
    case 'remoteIp': {
      const field =
        identifier === 'sourceIp'
          ? 'source_ip'
          : identifier === 'remoteIp'
            ? 'remote_ip'
            : 'direct_remote_ip';
      const range = { sourceIp, directRemoteIp, remoteIp }[identifier];
      const r = range && cidr(range, at(path, field), ctx);
      return r && { sourceIp: r };
    }
    case undefined:
      ctx.problem(path, 'must set an identifier');
      return undefined;
    default:
      ctx.problem(at(path, SNAKE[identifier] ?? identifier), 'is not supported');
      return undefined;
  }
}

function principals(list: readonly WirePrincipal[], path: string, ctx: DecodeContext): RbacPrincipal[] {
  return list.flatMap((p, i) => principal(p, `${path}[${i}]`, ctx) ?? []);
}

function policy(name: string, p: WireRbacPolicy, path: string, ctx: DecodeContext): RbacPolicy {
  const {
    permissions: wirePermissions,
    principals: wirePrincipals,
    condition,
    checkedCondition,
    ...rest
  } = p;
  allFieldsHandled(rest);
  if (!wirePermissions.length) ctx.problem(at(path, 'permissions'), 'must not be empty');
  if (!wirePrincipals.length) ctx.problem(at(path, 'principals'), 'must not be empty');
  if (condition || checkedCondition) ctx.problem(at(path, 'condition'), 'CEL conditions are not supported');
  return {
    name,
    permissions: permissions(wirePermissions, at(path, 'permissions'), ctx),
    principals: principals(wirePrincipals, at(path, 'principals'), ctx),
  };
}

/**
 * One RBAC filter's rules; undefined when the filter enforces nothing (no `rules`, or action LOG,
 * which Envoy never denies on). Policies are sorted by name: Envoy keeps them in an ordered map and
 * reports the first match in that order.
 */
export function decodeRbacFilter(f: WireRbacFilter, path: string, ctx: DecodeContext): RbacRules | undefined {
  const { rules: wireRules, matcher, ...rest } = f;
  allFieldsHandled(rest);
  if (matcher) ctx.problem(at(path, 'matcher'), 'is not supported: use rules');
  if (!wireRules) return undefined;
  const { action, policies: wirePolicies, ...rulesRest } = wireRules;
  allFieldsHandled(rulesRest);
  if (action === LOG) return undefined;
  if (action !== ALLOW && action !== DENY) {
    ctx.problem(at(path, 'rules.action'), `${action} is not ALLOW, DENY or LOG`);
    return undefined;
  }
  const names = Object.keys(wirePolicies).sort();
  const policies = names.map((name) =>
    policy(name, wirePolicies[name] as WireRbacPolicy, `${path}.rules.policies[${name}]`, ctx),
  );
  return { action: action === ALLOW ? 'ALLOW' : 'DENY', policies };
}

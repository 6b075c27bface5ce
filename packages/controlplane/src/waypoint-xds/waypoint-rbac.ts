/**
 * AuthorizationPolicies attached to a waypoint (by targetRefs) to Envoy RBAC, as istiod writes them
 * for a waypoint: one RBAC policy per rule, named `ns[<ns>]-policy[<name>]-rule[<i>]`, whose
 * principals (OR) are one per `from` source and whose permissions (OR) are one per `to` operation;
 * each is an AND of the source's or operation's fields, each field an OR of its values, and the
 * rule's `when` conditions are ANDed into every principal (source conditions) or permission
 * (request conditions).
 *
 * Fields the waypoint cannot check (request principals, remote IPs, claims, ...) drop an ALLOW rule
 * (it then allows nothing more) and are left out of a DENY rule (it then denies more, never less).
 * Output is envoy.config.rbac.v3.RBAC in the shared wire types, for the protobuf encoder.
 */

import type {
  EnvoyInput,
  WireHeaderMatcher,
  WirePermission,
  WirePrincipal,
  WireRbacPolicy,
  WireStringMatcher,
} from '@ambient/shared';
import { parseDryRun } from '../ambient/authorization-translate.js';
import {
  type AuthorizationPolicyObject,
  type PolicyCondition,
  type PolicyOperation,
  type PolicySource,
  parseServiceAccount,
  type ServiceAccountRef,
} from '../manifests/kube-objects.js';

type Principal = EnvoyInput<WirePrincipal>;
type Permission = EnvoyInput<WirePermission>;

export interface RbacRulesPlain {
  readonly action: 'ALLOW' | 'DENY';
  /** envoy.config.rbac.v3.Policy by name. */
  readonly policies: Readonly<Record<string, EnvoyInput<WireRbacPolicy>>>;
}

export interface WaypointRbac {
  /** Present only when a DENY rule applies. */
  readonly deny?: RbacRulesPlain;
  /** Present when an ALLOW policy applies, even one without rules (which then denies everything). */
  readonly allow?: RbacRulesPlain;
}

export type RbacNotice = (ref: string, path: string, message: string) => void;

export function rbacPolicyName(namespace: string, name: string, rule: number): string {
  return `ns[${namespace}]-policy[${name}]-rule[${rule}]`;
}

/** RE2 (and JavaScript) escaping of regex metacharacters. */
export function quoteRegex(s: string): string {
  return s.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
}

/**
 * Istio's StringMatcherWithPrefix: `*` is any non-empty value, `x*` a prefix, `*x` a suffix
 * (a regex after a prefix), anything else exact; `prefix` is prepended to the value.
 */
export function istioStringMatcher(
  value: string,
  prefix = '',
  ignoreCase = false,
): EnvoyInput<WireStringMatcher> {
  const ic = ignoreCase ? { ignoreCase: true } : {};
  if (value === '*') return { safeRegex: { regex: '.+' } };
  if (value.startsWith('*')) {
    const rest = value.slice(1);
    return prefix
      ? { safeRegex: { regex: `${quoteRegex(prefix)}.*${quoteRegex(rest)}` } }
      : { suffix: rest, ...ic };
  }
  if (value.endsWith('*')) return { prefix: `${prefix}${value.slice(0, -1)}`, ...ic };
  return { exact: `${prefix}${value}`, ...ic };
}

function principalName(value: string): Principal {
  const v = value.startsWith('spiffe://') ? value.slice('spiffe://'.length) : value;
  return { authenticated: { principalName: istioStringMatcher(v, 'spiffe://') } };
}

/** A source namespace as a match on the peer's SPIFFE ID. */
function namespacePrincipal(ns: string): Principal {
  let nsRegex: string;
  if (ns === '*') nsRegex = '[^/]+';
  else if (ns.endsWith('*')) nsRegex = `${quoteRegex(ns.slice(0, -1))}[^/]*`;
  else if (ns.startsWith('*')) nsRegex = `[^/]*${quoteRegex(ns.slice(1))}`;
  else nsRegex = quoteRegex(ns);
  return {
    authenticated: { principalName: { safeRegex: { regex: `spiffe://[^/]+/ns/${nsRegex}/sa/[^/]+` } } },
  };
}

/**
 * A source service account as a match on the peer's SPIFFE ID, in the form istiod writes
 * (istio/istio pilot/pkg/security/authz/model/generator.go serviceAccountRegex): any trust domain,
 * `/ns/<ns>/`, optional segments, `sa/<sa>`, then the end or further segments. Names are quoted,
 * so that a `.` in a service account name matches only itself.
 */
function serviceAccountPrincipal(sa: ServiceAccountRef): Principal {
  const regex = `spiffe://.+/ns/${quoteRegex(sa.namespace)}/(.+/|)sa/${quoteRegex(sa.serviceAccount)}(/.+)?`;
  return { authenticated: { principalName: { safeRegex: { regex } } } };
}

/** Never a Kubernetes name, so never matches: the decoder refuses such values before this point. */
const NO_SUCH_SERVICE_ACCOUNT: ServiceAccountRef = { namespace: '-', serviceAccount: '-' };

function cidrPrincipal(cidr: string): Principal {
  const [address = '', len] = cidr.split('/');
  const prefixLen = len === undefined ? (address.includes(':') ? 128 : 32) : Number(len);
  return { directRemoteIp: { addressPrefix: address, prefixLen: { value: prefixLen } } };
}

function headerMatcher(
  name: string,
  value: string,
  ignoreCase = false,
): { header: EnvoyInput<WireHeaderMatcher> } {
  if (value === '*') return { header: { name, presentMatch: true } };
  return { header: { name, stringMatch: istioStringMatcher(value, '', ignoreCase) } };
}

const orIds = (ids: Principal[]): Principal => ({ orIds: { ids } });
const orRules = (rules: Permission[]): Permission => ({ orRules: { rules } });
const notId = (id: Principal): Principal => ({ notId: id });
const notRule = (rule: Permission): Permission => ({ notRule: rule });

/** Appends `f(values)` (an OR) to `out`, negated for the not* forms. */
function field<T, M>(
  out: M[],
  values: readonly T[] | undefined,
  f: (v: T) => M,
  or: (x: M[]) => M,
  not?: (x: M) => M,
): void {
  if (!values || values.length === 0) return;
  const m = or(values.map(f));
  out.push(not ? not(m) : m);
}

interface RuleContext {
  readonly allow: boolean;
  /** The policy's namespace, for service accounts named without one. */
  readonly namespace: string;
  readonly ref: string;
  readonly path: string;
  readonly notice: RbacNotice;
  /** Set when an ALLOW rule uses a field the waypoint cannot check. */
  dropped: boolean;
}

function unsupported(ctx: RuleContext, path: string, what: string): void {
  ctx.notice(
    ctx.ref,
    path,
    ctx.allow
      ? `${what} cannot be checked by the waypoint: the ALLOW rule is left out`
      : `${what} cannot be checked by the waypoint: the DENY rule ignores it`,
  );
  if (ctx.allow) ctx.dropped = true;
}

function sourceFields(src: PolicySource, ctx: RuleContext, path: string): Principal[] {
  const out: Principal[] = [];
  field(out, src.principals, principalName, orIds);
  field(out, src.notPrincipals, principalName, orIds, notId);
  field(out, src.namespaces, namespacePrincipal, orIds);
  field(out, src.notNamespaces, namespacePrincipal, orIds, notId);
  field(out, src.ipBlocks, cidrPrincipal, orIds);
  field(out, src.notIpBlocks, cidrPrincipal, orIds, notId);
  field(out, src.serviceAccounts, serviceAccountPrincipal, orIds);
  field(out, src.notServiceAccounts, serviceAccountPrincipal, orIds, notId);
  for (const k of src.l7Fields) unsupported(ctx, `${path}.${k}`, k);
  return out;
}

function operationFields(op: PolicyOperation): Permission[] {
  const out: Permission[] = [];
  const host = (v: string) => headerMatcher(':authority', v, true);
  const method = (v: string) => ({ header: { name: ':method', stringMatch: { exact: v } } });
  const urlPath = (v: string) => ({ urlPath: { path: istioStringMatcher(v) } });
  const port = (v: string) => ({ destinationPort: Number(v) });
  field(out, op.hosts, host, orRules);
  field(out, op.notHosts, host, orRules, notRule);
  field(out, op.methods, method, orRules);
  field(out, op.notMethods, method, orRules, notRule);
  field(out, op.paths, urlPath, orRules);
  field(out, op.notPaths, urlPath, orRules, notRule);
  field(out, op.ports, port, orRules);
  field(out, op.notPorts, port, orRules, notRule);
  return out;
}

const HEADER_KEY = /^request\.headers\[(.+)\]$/;

/** Splits `when` conditions into principal and permission fields. */
function conditionFields(
  when: readonly PolicyCondition[],
  ctx: RuleContext,
  path: string,
): { principals: Principal[]; permissions: Permission[] } {
  const principals: Principal[] = [];
  const permissions: Permission[] = [];
  when.forEach((c, i) => {
    const values = c.values;
    const notValues = c.notValues;
    const header = HEADER_KEY.exec(c.key);
    if (header?.[1]) {
      const name = header[1].toLowerCase();
      const m = (v: string) => headerMatcher(name, v);
      field(permissions, values, m, orRules);
      field(permissions, notValues, m, orRules, notRule);
      return;
    }
    switch (c.key) {
      case 'source.principal':
        field(principals, values, principalName, orIds);
        field(principals, notValues, principalName, orIds, notId);
        return;
      case 'source.namespace':
        field(principals, values, namespacePrincipal, orIds);
        field(principals, notValues, namespacePrincipal, orIds, notId);
        return;
      case 'source.serviceAccount': {
        // Values were checked by the decoder; a bare name is the policy's namespace.
        const sa = (v: string) => parseServiceAccount(v, ctx.namespace) ?? NO_SUCH_SERVICE_ACCOUNT;
        field(principals, values, (v) => serviceAccountPrincipal(sa(v)), orIds);
        field(principals, notValues, (v) => serviceAccountPrincipal(sa(v)), orIds, notId);
        return;
      }
      case 'source.ip':
        field(principals, values, cidrPrincipal, orIds);
        field(principals, notValues, cidrPrincipal, orIds, notId);
        return;
      case 'destination.port': {
        const port = (v: string) => ({ destinationPort: Number(v) });
        field(permissions, values, port, orRules);
        field(permissions, notValues, port, orRules, notRule);
        return;
      }
      default:
        unsupported(ctx, `${path}[${i}].key`, `condition ${c.key}`);
    }
  });
  return { principals, permissions };
}

function andIds(ids: Principal[]): Principal {
  return ids.length === 0 ? { any: true } : { andIds: { ids } };
}

function andRules(rules: Permission[]): Permission {
  return rules.length === 0 ? { any: true } : { andRules: { rules } };
}

/** Translates the policies attached to one filter chain; `policies` in evaluation order. */
export function waypointRbac(
  policies: readonly AuthorizationPolicyObject[],
  notice: RbacNotice,
): WaypointRbac {
  const deny: Record<string, EnvoyInput<WireRbacPolicy>> = {};
  const allow: Record<string, EnvoyInput<WireRbacPolicy>> = {};
  let anyAllow = false;
  for (const p of policies) {
    const { namespace, name, annotations } = p.metadata;
    const ref = `AuthorizationPolicy ${namespace}/${name}`;
    if (p.action !== 'ALLOW' && p.action !== 'DENY') {
      notice(ref, 'spec.action', `action ${p.action} is not enforced by the waypoint`);
      continue;
    }
    // A dry-run policy must not change what is allowed.
    if (parseDryRun(annotations).dryRun) {
      notice(ref, 'metadata.annotations', 'dry-run policies are not enforced by the waypoint');
      continue;
    }
    const isAllow = p.action === 'ALLOW';
    if (isAllow) anyAllow = true;
    (p.rules ?? []).forEach((rule, i) => {
      const path = `spec.rules[${i}]`;
      const ctx: RuleContext = { allow: isAllow, namespace, ref, path, notice, dropped: false };
      const when = conditionFields(rule.when ?? [], ctx, `${path}.when`);
      // An empty list is no list: the rule then matches any source or any operation.
      const from = rule.from?.length ? rule.from : [undefined];
      const to = rule.to?.length ? rule.to : [undefined];
      const principals = from.map((src, j) =>
        andIds([...(src ? sourceFields(src, ctx, `${path}.from[${j}].source`) : []), ...when.principals]),
      );
      const permissions = to.map((op) => andRules([...(op ? operationFields(op) : []), ...when.permissions]));
      if (ctx.dropped) return;
      (isAllow ? allow : deny)[rbacPolicyName(namespace, name, i)] = { permissions, principals };
    });
  }
  return {
    ...(Object.keys(deny).length > 0 && { deny: { action: 'DENY', policies: deny } }),
    ...(anyAllow && { allow: { action: 'ALLOW', policies: allow } }),
  };
}

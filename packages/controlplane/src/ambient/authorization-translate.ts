/**
 * AuthorizationPolicy and PeerAuthentication to `istio.security.Authorization`, as istiod
 * translates them for ztunnel:
 * - HTTP-only fields (hosts, methods, paths, request principals, remote IPs, request.* conditions)
 *   cannot be checked at L4: an ALLOW rule using them is dropped (so a policy left without rules
 *   denies), and a DENY rule ignores them (denying more, never less).
 * - `source.serviceAccounts` become ServiceAccountMatch (a bare name in the policy's namespace).
 * - STRICT mTLS becomes a DENY of connections without a principal, `<root>/istio_converted_static_strict`;
 *   port-level modes become `<ns>/converted_peer_authentication_<name>`.
 * Pure functions over decoded objects; output is the wire shape for the protobuf encoder.
 */
import { isIP } from 'node:net';
import { type Always, type Input, securityapi, type Written, type WrittenFields } from '@ambient/shared';
import type {
  AuthorizationPolicyObject,
  MtlsMode,
  PeerAuthenticationObject,
  PolicyRuleSpec,
  ServiceAccountRef,
} from '../manifests/kube-objects.js';
import {
  actionNotSupported,
  dryRunNotEnabled,
  httpAttributesOmitted,
  type PolicyBinding,
} from './binding-status.js';

export type WireStringMatch = Input<securityapi.StringMatch>;

export type WireIpMatch = WrittenFields<securityapi.Address, 'address' | 'length'>;

/** Only the fields in use are present (no empty lists). */
export type WireMatch = Input<securityapi.Match>;

export type WireClause = Written<securityapi.Clause, { matches: WireMatch[] }>;

export type WireRule = Written<securityapi.Rule, { clauses: WireClause[] }>;

/** An Authorization as the translation writes it. */
export type WireAuthorization = Written<
  securityapi.Authorization,
  Always<securityapi.Authorization, 'name' | 'namespace' | 'scope' | 'action'> & { rules: WireRule[] }
>;

export const STATIC_STRICT_NAME = 'istio_converted_static_strict';
export const DRY_RUN_ANNOTATION = 'istio.io/dry-run';

const SCOPE_GLOBAL = securityapi.Scope.GLOBAL;
const SCOPE_NAMESPACE = securityapi.Scope.NAMESPACE;
const SCOPE_WORKLOAD = securityapi.Scope.WORKLOAD_SELECTOR;
const ALLOW = securityapi.Action.ALLOW;
const DENY = securityapi.Action.DENY;

/** Istio's string match forms: `*` presence, `x*` prefix, `*x` suffix, else exact. */
export function stringMatch(value: string, stripSpiffe = false): WireStringMatch {
  const v = stripSpiffe && value.startsWith('spiffe://') ? value.slice('spiffe://'.length) : value;
  if (v === '*') return { presence: {} };
  if (v.endsWith('*')) return { prefix: v.slice(0, -1) };
  if (v.startsWith('*')) return { suffix: v.slice(1) };
  return { exact: v };
}

export function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  // IPv6: an embedded IPv4 tail (`::ffff:10.0.0.1`) is the last two groups; expand "::" and write
  // 8 groups of 16 bits.
  let text = ip;
  const tail4 = ip.slice(ip.lastIndexOf(':') + 1);
  if (isIP(tail4) === 4) {
    const [a = 0, b = 0, c = 0, d = 0] = tail4.split('.').map(Number);
    text = `${ip.slice(0, ip.length - tail4.length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  for (const [i, g] of groups.entries()) out.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  return out;
}

function cidr(value: string): WireIpMatch {
  const [addr = '', len] = value.split('/');
  return { address: ipBytes(addr), length: len === undefined ? (isIP(addr) === 6 ? 128 : 32) : Number(len) };
}

function serviceAccountMatch(sa: ServiceAccountRef): Input<securityapi.ServiceAccountMatch> {
  return { namespace: sa.namespace, serviceAccount: sa.serviceAccount };
}

const L4_CONDITIONS = new Set([
  'source.ip',
  'source.namespace',
  'source.principal',
  'destination.ip',
  'destination.port',
]);

function nonEmpty<T>(list: T[] | undefined): T[] | undefined {
  return list && list.length > 0 ? list : undefined;
}

function compact(m: WireMatch): WireMatch {
  return Object.fromEntries(Object.entries(m).filter(([, v]) => v !== undefined)) as WireMatch;
}

/** An HTTP attribute ztunnel cannot check: its name (as istiod reports it) and its field path. */
export interface HttpAttribute {
  readonly name: string;
  readonly path: string;
}

/** Every HTTP-only attribute of a rule, with its field path. */
function httpAttributes(rule: PolicyRuleSpec, path: string): HttpAttribute[] {
  const out: HttpAttribute[] = [];
  rule.to?.forEach((t, j) => {
    for (const name of t.l7Fields) out.push({ name, path: `${path}.to[${j}].operation.${name}` });
  });
  rule.from?.forEach((f, j) => {
    for (const name of f.l7Fields) out.push({ name, path: `${path}.from[${j}].source.${name}` });
  });
  rule.when?.forEach((w, j) => {
    if (!L4_CONDITIONS.has(w.key)) out.push({ name: w.key, path: `${path}.when[${j}].key` });
  });
  return out;
}

/** One rule, or undefined when an ALLOW rule uses fields only an L7 proxy can check. */
function translateRule(rule: PolicyRuleSpec, allow: boolean): WireRule | undefined {
  const clauses: WireClause[] = [];
  if (rule.to) {
    if (allow && rule.to.some((t) => t.l7Fields.length > 0)) return undefined;
    const matches = rule.to.map((t) =>
      compact({
        destinationPorts: nonEmpty(t.ports?.map(Number)),
        notDestinationPorts: nonEmpty(t.notPorts?.map(Number)),
      }),
    );
    if (matches.length) clauses.push({ matches });
  }
  if (rule.from) {
    if (allow && rule.from.some((f) => f.l7Fields.length > 0)) return undefined;
    const matches = rule.from.map((f) =>
      compact({
        namespaces: nonEmpty(f.namespaces?.map((v) => stringMatch(v))),
        notNamespaces: nonEmpty(f.notNamespaces?.map((v) => stringMatch(v))),
        principals: nonEmpty(f.principals?.map((v) => stringMatch(v, true))),
        notPrincipals: nonEmpty(f.notPrincipals?.map((v) => stringMatch(v, true))),
        sourceIps: nonEmpty(f.ipBlocks?.map(cidr)),
        notSourceIps: nonEmpty(f.notIpBlocks?.map(cidr)),
        // Sent as istiod sends them (ServiceAccountMatch, namespace already resolved): ztunnel
        // matches the peer identity's namespace and service account in any trust domain.
        serviceAccounts: nonEmpty(f.serviceAccounts?.map(serviceAccountMatch)),
        notServiceAccounts: nonEmpty(f.notServiceAccounts?.map(serviceAccountMatch)),
      }),
    );
    if (matches.length) clauses.push({ matches });
  }
  for (const when of rule.when ?? []) {
    if (!L4_CONDITIONS.has(when.key)) {
      if (allow) return undefined;
      continue;
    }
    const values = when.values ?? [];
    const notValues = when.notValues ?? [];
    const match: WireMatch = {};
    switch (when.key) {
      case 'source.namespace':
        match.namespaces = nonEmpty(values.map((v) => stringMatch(v)));
        match.notNamespaces = nonEmpty(notValues.map((v) => stringMatch(v)));
        break;
      case 'source.principal':
        match.principals = nonEmpty(values.map((v) => stringMatch(v, true)));
        match.notPrincipals = nonEmpty(notValues.map((v) => stringMatch(v, true)));
        break;
      case 'source.ip':
        match.sourceIps = nonEmpty(values.map(cidr));
        match.notSourceIps = nonEmpty(notValues.map(cidr));
        break;
      case 'destination.ip':
        match.destinationIps = nonEmpty(values.map(cidr));
        match.notDestinationIps = nonEmpty(notValues.map(cidr));
        break;
      case 'destination.port':
        match.destinationPorts = nonEmpty(values.map(Number));
        match.notDestinationPorts = nonEmpty(notValues.map(Number));
        break;
    }
    clauses.push({ matches: [compact(match)] });
  }
  return { clauses };
}

/** Go's strconv.ParseBool, which istiod applies to the dry-run annotation. */
const GO_TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const GO_FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

export interface DryRunValue {
  readonly dryRun: boolean;
  /** Set when the annotation is not a boolean: the policy is then enforced (fail closed). */
  readonly problem?: string;
}

/** The `istio.io/dry-run` annotation read as istiod reads it: absent or empty is not dry run. */
export function parseDryRun(annotations: Readonly<Record<string, string>>): DryRunValue {
  const v = annotations[DRY_RUN_ANNOTATION];
  if (v === undefined || v === '' || GO_FALSE.has(v)) return { dryRun: false };
  if (GO_TRUE.has(v)) return { dryRun: true };
  return {
    dryRun: false,
    problem: `${DRY_RUN_ANNOTATION}: ${JSON.stringify(v)} is not a boolean; the policy is enforced`,
  };
}

export interface TranslateOptions {
  /**
   * Send dry-run policies to ztunnel marked `dry_run` (istiod's
   * AMBIENT_ENABLE_DRY_RUN_AUTHORIZATION_POLICY); off, they are not sent at all.
   */
  readonly sendDryRun?: boolean;
}

export type TranslatedPolicy =
  | {
      readonly kind: 'ztunnel';
      readonly authorization: WireAuthorization;
      readonly notice?: string;
      /** HTTP attributes left out, with their field paths. */
      readonly omitted: readonly HttpAttribute[];
      readonly binding: PolicyBinding;
    }
  /**
   * Not a ztunnel policy: for a waypoint (targetRefs), an action ztunnel does not enforce, or a
   * dry-run policy while those are not sent. `binding` is absent for a waypoint's policy (istiod
   * writes no ZtunnelAccepted condition on it).
   */
  | { readonly kind: 'skipped'; readonly reason: string; readonly binding?: PolicyBinding };

/** Whether a rule can match at ztunnel: no clauses matches all; a clause of empty matches, nothing. */
function ruleHasEffect(r: WireRule): boolean {
  return r.clauses.every((c) => c.matches.some((m) => Object.keys(m).length > 0));
}

export function translateAuthorizationPolicy(
  p: AuthorizationPolicyObject,
  rootNamespace: string,
  options: TranslateOptions = {},
): TranslatedPolicy {
  const dry = parseDryRun(p.metadata.annotations);
  // istiod checks this before anything else, so such a policy is never sent to ztunnel, where
  // a node agent that predates dry_run would enforce it.
  if (dry.dryRun && !options.sendDryRun)
    return {
      kind: 'skipped',
      reason: 'dry-run policy, and sending dry-run policies to ztunnel is not enabled',
      binding: { bound: false, status: dryRunNotEnabled(p.metadata.namespace, p.metadata.name) },
    };
  if (p.targetRefs.length > 0) return { kind: 'skipped', reason: 'attached to a waypoint by targetRefs' };
  if (p.action !== 'ALLOW' && p.action !== 'DENY')
    return {
      kind: 'skipped',
      reason: `action ${p.action} is not enforced by ztunnel`,
      binding: { bound: false, status: actionNotSupported(p.action) },
    };
  const allow = p.action === 'ALLOW';
  const rules = (p.rules ?? []).flatMap((r) => translateRule(r, allow) ?? []);
  const omitted = (p.rules ?? []).flatMap((r, i) => httpAttributes(r, `spec.rules[${i}]`));
  const scope = p.selector
    ? SCOPE_WORKLOAD
    : p.metadata.namespace === rootNamespace
      ? SCOPE_GLOBAL
      : SCOPE_NAMESPACE;
  return {
    kind: 'ztunnel',
    authorization: {
      name: p.metadata.name,
      namespace: p.metadata.namespace,
      scope,
      action: allow ? ALLOW : DENY,
      rules,
      ...(dry.dryRun && { dryRun: true }),
    },
    ...(dry.problem && { notice: dry.problem }),
    omitted,
    binding: {
      bound: true,
      ...(omitted.length > 0 && {
        status: httpAttributesOmitted(
          omitted.map((a) => a.name),
          p.action,
          rules.some(ruleHasEffect),
        ),
      }),
    },
  };
}

const NO_PRINCIPAL: WireMatch = { notPrincipals: [{ presence: {} }] };

/** The DENY that STRICT mTLS becomes: connections without a peer principal are refused. */
export function staticStrictPolicy(rootNamespace: string): WireAuthorization {
  return {
    name: STATIC_STRICT_NAME,
    namespace: rootNamespace,
    scope: SCOPE_WORKLOAD,
    action: DENY,
    rules: [{ clauses: [{ matches: [NO_PRINCIPAL] }] }],
  };
}

/**
 * A PeerAuthentication with port-level modes, given the mode in force for the rest of the ports:
 * a DENY of plaintext on the strict ports only. Undefined when no port ends up strict.
 */
export function convertedPeerAuthentication(
  p: PeerAuthenticationObject,
  baseMode: MtlsMode,
): WireAuthorization | undefined {
  const ports = Object.entries(p.portLevel).map(([port, mode]) => [Number(port), mode] as const);
  const strictBase = baseMode === 'STRICT';
  const match: WireMatch = strictBase
    ? {
        ...NO_PRINCIPAL,
        notDestinationPorts: ports.filter(([, m]) => m === 'PERMISSIVE' || m === 'DISABLE').map(([n]) => n),
      }
    : { ...NO_PRINCIPAL, destinationPorts: ports.filter(([, m]) => m === 'STRICT').map(([n]) => n) };
  if (!strictBase && (match.destinationPorts?.length ?? 0) === 0) return undefined;
  return {
    name: `converted_peer_authentication_${p.metadata.name}`,
    namespace: p.metadata.namespace,
    scope: SCOPE_WORKLOAD,
    action: DENY,
    rules: [{ clauses: [{ matches: [compact(match)] }] }],
  };
}

/**
 * The RouteConfiguration of an HTTP service port: its HTTPRoutes (Gateway API, ordered by Istio's
 * precedence), else the VirtualService for its host, else one default route to its own cluster.
 * Every route gets Istio's default retry policy unless it says otherwise, and the consistent hash
 * of its destination's DestinationRule.
 */
import {
  type EnvoyInput,
  FAULT_FILTER,
  FAULT_TYPE,
  type WireHeaderMatcher,
  type WireHeaderValueOption,
  type WireRedirectAction,
  type WireRequestMirrorPolicy,
  type WireRetryPolicy,
  type WireRoute,
  type WireRouteAction,
  type WireRouteConfiguration,
  type WireRouteMatch,
  type WireStringMatcher,
} from '@ambient/shared';
import type {
  BackendRef,
  HeaderModifier,
  HttpRouteMatch,
  HttpRouteObject,
  HttpRouteRule,
  IstioStringMatch,
  VirtualServiceObject,
  VsDestination,
  VsHeaderOperations,
  VsHttpRoute,
  VsMatch,
} from '../manifests/kube-objects.js';
import {
  type BuildContext,
  type ClusterEntry,
  DEFAULT_RETRIES,
  DEFAULT_RETRY_ON,
  duration,
  fractionalPercent,
  type SvcPort,
} from './build-context.js';
import type { ClusterSet } from './cluster-builder.js';

type RedirectCode = NonNullable<EnvoyInput<WireRedirectAction>['responseCode']>;
const REDIRECT_CODES: Readonly<Record<number, RedirectCode>> = {
  301: 'MOVED_PERMANENTLY',
  302: 'FOUND',
  303: 'SEE_OTHER',
  307: 'TEMPORARY_REDIRECT',
  308: 'PERMANENT_REDIRECT',
};

/** A PathPrefix without its trailing `/`, which Gateway API ignores (`/` stays). */
function normalPrefix(value: string): string {
  return value.replace(/\/+$/, '') || '/';
}

/** Istio's route precedence for Gateway API: path kind, path length, method, headers, query. */
function matchRank(m: HttpRouteMatch): [number, number, number, number, number] {
  const kind = m.path.type === 'Exact' ? 3 : m.path.type === 'PathPrefix' ? 2 : 1;
  const length = m.path.type === 'PathPrefix' ? normalPrefix(m.path.value).length : m.path.value.length;
  return [kind, length, m.method ? 1 : 0, m.headers.length, m.queryParams.length];
}

function compareRank(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return (b[i] ?? 0) - (a[i] ?? 0);
  return 0;
}

function headerMutations(
  set: readonly { name: string; value: string }[],
  add: readonly { name: string; value: string }[],
): EnvoyInput<WireHeaderValueOption>[] {
  return [
    ...set.map((h) => ({
      header: { key: h.name.toLowerCase(), value: h.value },
      appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' as const,
    })),
    ...add.map((h) => ({
      header: { key: h.name.toLowerCase(), value: h.value },
      appendAction: 'APPEND_IF_EXISTS_OR_ADD' as const,
    })),
  ];
}

function istioMatch(m: IstioStringMatch): EnvoyInput<WireStringMatcher> {
  if ('exact' in m) return { exact: m.exact };
  if ('prefix' in m) return { prefix: m.prefix };
  return { safeRegex: { regex: m.regex } };
}

export class RouteBuilder {
  constructor(
    private readonly b: BuildContext,
    private readonly clusters: ClusterSet,
  ) {}

  routeConfiguration(sp: SvcPort): EnvoyInput<WireRouteConfiguration> {
    const routes = this.routes(sp);
    return {
      name: sp.name,
      virtualHosts: [{ name: `${sp.host}:${sp.port.port}`, domains: ['*'], routes }],
    };
  }

  private routes(sp: SvcPort): EnvoyInput<WireRoute>[] {
    const { namespace, name } = sp.svc.metadata;
    const attached: HttpRouteObject[] = [];
    // Traffic addressed to a pod gets the default route to it: service routes are for its VIP.
    for (const r of sp.pod ? [] : this.b.ix.httpRoutes) {
      const refs = r.parentRefs.filter(
        (p) =>
          p.kind === 'Service' &&
          (p.group === '' || p.group === 'core') &&
          p.name === name &&
          (p.namespace ?? r.metadata.namespace) === namespace,
      );
      if (refs.length === 0) continue;
      if (r.metadata.namespace !== namespace) {
        this.b.notice(
          `HTTPRoute ${r.metadata.namespace}/${r.metadata.name}`,
          'spec.parentRefs',
          `a route for Service ${namespace}/${name} from another namespace is not applied by its waypoint`,
        );
        continue;
      }
      if (refs.some((p) => p.port === undefined || p.port === sp.port.port)) attached.push(r);
    }
    if (attached.length > 0) return this.httpRouteRoutes(attached);
    const vs = sp.pod ? undefined : this.virtualService(sp);
    if (vs) return this.vsRoutes(vs, sp);
    return [
      {
        name: 'default',
        match: { prefix: '/' },
        route: {
          cluster: sp.name,
          timeout: duration(0),
          retryPolicy: defaultRetryPolicy(),
          ...this.hashPolicy(sp),
        },
      },
    ];
  }

  private virtualService(sp: SvcPort): VirtualServiceObject | undefined {
    const matching = this.b.ix.virtualServices.filter(
      (vs) =>
        (vs.gateways.length === 0 || vs.gateways.includes('mesh')) &&
        vs.hosts.some((h) => this.b.resolveHost(h, vs.metadata.namespace) === sp.svc),
    );
    for (const vs of matching.slice(1))
      this.b.notice(
        `VirtualService ${vs.metadata.namespace}/${vs.metadata.name}`,
        'spec.hosts',
        `ignored for ${sp.host}: VirtualService ${matching[0]?.metadata.namespace}/${matching[0]?.metadata.name} already applies`,
      );
    return matching[0];
  }

  /** hash_policy from the consistent hash of a cluster's DestinationRule. */
  private hashPolicy(sp: SvcPort, subset?: string): Pick<EnvoyInput<WireRouteAction>, 'hashPolicy'> {
    const policy = this.b.trafficPolicy(
      sp.svc,
      subset ? this.b.destinationRule(sp.svc)?.subsets.find((s) => s.name === subset) : undefined,
    );
    const lb = policy?.loadBalancer;
    if (!lb || !('consistentHash' in lb)) return {};
    const ch = lb.consistentHash;
    return {
      hashPolicy: [
        'httpHeaderName' in ch
          ? { header: { headerName: ch.httpHeaderName.toLowerCase() } }
          : { connectionProperties: { sourceIp: true } },
      ],
    };
  }

  private backendRef(ref: BackendRef, routeNs: string, refName: string, path: string): SvcPort | undefined {
    if (ref.kind !== 'Service' || (ref.group !== '' && ref.group !== 'core')) {
      this.b.notice(refName, path, `backend kind ${ref.kind} is not supported`);
      return undefined;
    }
    const ns = ref.namespace ?? routeNs;
    if (ns !== routeNs) {
      this.b.notice(
        refName,
        path,
        `backend ${ns}/${ref.name} is in another namespace (ReferenceGrant is not supported)`,
      );
      return undefined;
    }
    const svc = this.b.ix.services.get(`${ns}/${ref.name}`);
    if (!svc) {
      this.b.notice(refName, path, `backend Service ${ns}/${ref.name} does not exist`);
      return undefined;
    }
    const port = svc.ports.find((p) => p.port === ref.port);
    if (!port) {
      this.b.notice(refName, path, `backend Service ${ns}/${ref.name} has no port ${ref.port}`);
      return undefined;
    }
    return this.b.svcPort(svc, port);
  }

  private httpRouteRoutes(attached: readonly HttpRouteObject[]): EnvoyInput<WireRoute>[] {
    const entries: Array<{
      route: HttpRouteObject;
      rule: HttpRouteRule;
      ruleIndex: number;
      match: HttpRouteMatch;
      matchIndex: number;
    }> = [];
    for (const route of attached)
      route.rules.forEach((rule, ruleIndex) => {
        rule.matches.forEach((match, matchIndex) => {
          entries.push({ route, rule, ruleIndex, match, matchIndex });
        });
      });
    // Stable: ties keep route name order, then rule and match order.
    entries.sort((a, b) => compareRank(matchRank(a.match), matchRank(b.match)));
    return entries.flatMap((e) => this.httpRouteEntry(e.route, e.rule, e.ruleIndex, e.match, e.matchIndex));
  }

  private httpRouteEntry(
    route: HttpRouteObject,
    rule: HttpRouteRule,
    ruleIndex: number,
    match: HttpRouteMatch,
    matchIndex: number,
  ): EnvoyInput<WireRoute>[] {
    const { namespace, name } = route.metadata;
    const ref = `HTTPRoute ${namespace}/${name}`;
    const rulePath = `spec.rules[${ruleIndex}]`;
    const headers: EnvoyInput<WireHeaderMatcher>[] = match.headers.map((h) => ({
      name: h.name.toLowerCase(),
      stringMatch: h.type === 'Exact' ? { exact: h.value } : { safeRegex: { regex: h.value } },
    }));
    if (match.method) headers.push({ name: ':method', stringMatch: { exact: match.method } });
    const queryParameters = match.queryParams.map((q) => ({
      name: q.name,
      stringMatch: q.type === 'Exact' ? { exact: q.value } : { safeRegex: { regex: q.value } },
    }));
    // Gateway API prefixes match whole path segments (`/foo` matches `/foo` and `/foo/x`, not
    // `/foobar`): an exact route and a `/foo/` prefix route express that with plain prefixes.
    type PathVariant = { path: string } | { prefix: string } | { safeRegex: { regex: string } };
    let variants: PathVariant[];
    if (match.path.type === 'Exact') variants = [{ path: match.path.value }];
    else if (match.path.type === 'RegularExpression') variants = [{ safeRegex: { regex: match.path.value } }];
    else {
      const v = normalPrefix(match.path.value);
      variants = v === '/' ? [{ prefix: '/' }] : [{ path: v }, { prefix: `${v}/` }];
    }
    const prefixReplacement = (variant: PathVariant, replacement: string): string =>
      'path' in variant ? replacement : replacement.endsWith('/') ? replacement : `${replacement}/`;

    const requestHeadersToAdd: EnvoyInput<WireHeaderValueOption>[] = [];
    const requestHeadersToRemove: string[] = [];
    const responseHeadersToAdd: EnvoyInput<WireHeaderValueOption>[] = [];
    const responseHeadersToRemove: string[] = [];
    const addMods = (m: HeaderModifier, add: EnvoyInput<WireHeaderValueOption>[], remove: string[]) => {
      add.push(...headerMutations(m.set, m.add));
      remove.push(...m.remove.map((h) => h.toLowerCase()));
    };
    let redirect: Extract<HttpRouteRule['filters'][number], { type: 'RequestRedirect' }> | undefined;
    let rewrite: Extract<HttpRouteRule['filters'][number], { type: 'URLRewrite' }> | undefined;
    const mirrors: EnvoyInput<WireRequestMirrorPolicy>[] = [];
    rule.filters.forEach((f, i) => {
      switch (f.type) {
        case 'RequestHeaderModifier':
          addMods(f.modifier, requestHeadersToAdd, requestHeadersToRemove);
          break;
        case 'ResponseHeaderModifier':
          addMods(f.modifier, responseHeadersToAdd, responseHeadersToRemove);
          break;
        case 'RequestRedirect':
          redirect = f;
          break;
        case 'URLRewrite':
          rewrite = f;
          break;
        case 'RequestMirror': {
          const msp = this.backendRef(
            f.backendRef,
            namespace,
            ref,
            `${rulePath}.filters[${i}].requestMirror.backendRef`,
          );
          if (msp) {
            this.clusters.add(msp);
            mirrors.push({
              cluster: msp.name,
              runtimeFraction: { defaultValue: fractionalPercent(f.percent) },
            });
          }
          break;
        }
      }
    });

    // Backends: invalid ones are left out with a notice; none left answers 500, as istiod does.
    const backends = rule.backendRefs.flatMap((b, i) => {
      const bsp = this.backendRef(b, namespace, ref, `${rulePath}.backendRefs[${i}]`);
      return bsp && b.weight > 0 ? [{ sp: bsp, weight: b.weight }] : [];
    });
    for (const b of backends) this.clusters.add(b.sp);

    return variants.map((variant): EnvoyInput<WireRoute> => {
      const base: EnvoyInput<WireRoute> = {
        name: `${namespace}.${name}.${ruleIndex}.${matchIndex}`,
        match: {
          ...variant,
          ...(headers.length > 0 && { headers }),
          ...(queryParameters.length > 0 && { queryParameters }),
        },
        ...(requestHeadersToAdd.length > 0 && { requestHeadersToAdd }),
        ...(requestHeadersToRemove.length > 0 && { requestHeadersToRemove }),
        ...(responseHeadersToAdd.length > 0 && { responseHeadersToAdd }),
        ...(responseHeadersToRemove.length > 0 && { responseHeadersToRemove }),
      };
      if (redirect) {
        const r = redirect;
        return {
          ...base,
          redirect: {
            ...(r.scheme && { schemeRedirect: r.scheme }),
            ...(r.hostname && { hostRedirect: r.hostname }),
            ...(r.port !== undefined && { portRedirect: r.port }),
            ...(r.path?.type === 'ReplaceFullPath' && { pathRedirect: r.path.value }),
            ...(r.path?.type === 'ReplacePrefixMatch' && {
              prefixRewrite: prefixReplacement(variant, r.path.value),
            }),
            responseCode: REDIRECT_CODES[r.statusCode] ?? 'FOUND',
          },
        };
      }
      if (backends.length === 0) {
        if (rule.backendRefs.length === 0)
          this.b.notice(ref, `${rulePath}.backendRefs`, 'a rule without backends answers 500');
        return { ...base, directResponse: { status: 500 } };
      }
      const retryPolicy = defaultRetryPolicy();
      if (rule.timeouts.backendRequestMs)
        retryPolicy.perTryTimeout = duration(rule.timeouts.backendRequestMs);
      const first = backends[0] as { sp: SvcPort };
      return {
        ...base,
        route: {
          ...(backends.length === 1
            ? { cluster: first.sp.name }
            : {
                weightedClusters: {
                  clusters: backends.map((b) => ({ name: b.sp.name, weight: { value: b.weight } })),
                },
              }),
          timeout: duration(rule.timeouts.requestMs ?? 0),
          retryPolicy,
          ...(rewrite?.path?.type === 'ReplacePrefixMatch' && {
            prefixRewrite: prefixReplacement(variant, rewrite.path.value),
          }),
          ...(rewrite?.path?.type === 'ReplaceFullPath' && {
            regexRewrite: { pattern: { regex: '^/.*$' }, substitution: rewrite.path.value },
          }),
          ...(rewrite?.hostname && { hostRewriteLiteral: rewrite.hostname }),
          ...(mirrors.length > 0 && { requestMirrorPolicies: mirrors }),
          ...this.hashPolicy(first.sp),
        },
      };
    });
  }

  /** A VirtualService destination: its service port (explicit, this port, or the only one). */
  private destination(
    d: VsDestination,
    vs: VirtualServiceObject,
    sp: SvcPort,
    path: string,
  ): string | undefined {
    const ref = `VirtualService ${vs.metadata.namespace}/${vs.metadata.name}`;
    const svc = this.b.resolveHost(d.host, vs.metadata.namespace);
    if (!svc) {
      this.b.notice(ref, `${path}.host`, `host ${d.host} is not a Service in the mesh`);
      return undefined;
    }
    const port =
      d.port !== undefined
        ? svc.ports.find((p) => p.port === d.port)
        : (svc.ports.find((p) => p.port === sp.port.port) ??
          (svc.ports.length === 1 ? svc.ports[0] : undefined));
    if (!port) {
      this.b.notice(
        ref,
        `${path}.port`,
        d.port !== undefined
          ? `Service ${d.host} has no port ${d.port}`
          : `Service ${d.host} has several ports: name one`,
      );
      return undefined;
    }
    return this.clusters.clusterFor(this.b.svcPort(svc, port), d.subset, ref, `${path}.subset`);
  }

  private vsRoutes(vs: VirtualServiceObject, sp: SvcPort): EnvoyInput<WireRoute>[] {
    return vs.http.flatMap((http, i) => {
      const matches = http.match.length > 0 ? http.match : [undefined];
      const applicable = matches.filter((m) => m?.port === undefined || m.port === sp.port.port);
      if (applicable.length === 0) return [];
      const action = this.vsAction(vs, http, i, sp);
      return applicable.map((m) => ({
        name: http.name ?? `${vs.metadata.namespace}.${vs.metadata.name}.${i}`,
        match: vsMatch(m),
        ...action,
      }));
    });
  }

  private vsAction(
    vs: VirtualServiceObject,
    http: VsHttpRoute,
    i: number,
    sp: SvcPort,
  ): EnvoyInput<WireRoute> {
    const path = `spec.http[${i}]`;
    const out: EnvoyInput<WireRoute> = {};
    const req = headerOps(http.headers.request);
    const res = headerOps(http.headers.response);
    if (req.add.length > 0) out.requestHeadersToAdd = req.add;
    if (req.remove.length > 0) out.requestHeadersToRemove = req.remove;
    if (res.add.length > 0) out.responseHeadersToAdd = res.add;
    if (res.remove.length > 0) out.responseHeadersToRemove = res.remove;
    if (http.fault) {
      const { delay, abort } = http.fault;
      out.typedPerFilterConfig = {
        [FAULT_FILTER]: this.b.encoder.any(FAULT_TYPE, {
          ...(delay && {
            delay: { fixedDelay: duration(delay.fixedDelayMs), percentage: fractionalPercent(delay.percent) },
          }),
          ...(abort && {
            abort: {
              ...(abort.httpStatus !== undefined && { httpStatus: abort.httpStatus }),
              ...(abort.grpcStatus !== undefined && { grpcStatus: abort.grpcStatus }),
              percentage: fractionalPercent(abort.percent),
            },
          }),
        }),
      };
    }
    if (http.redirect) {
      const r = http.redirect;
      out.redirect = {
        ...(r.scheme && { schemeRedirect: r.scheme }),
        ...(r.authority && { hostRedirect: r.authority }),
        ...(r.port !== undefined && { portRedirect: r.port }),
        ...(r.uri && { pathRedirect: r.uri }),
        responseCode: REDIRECT_CODES[r.redirectCode] ?? 'MOVED_PERMANENTLY',
      };
      return out;
    }
    if (http.directResponse) {
      const d = http.directResponse;
      out.directResponse = {
        status: d.status,
        ...(d.body !== undefined && { body: { inlineString: d.body } }),
      };
      return out;
    }
    const anyWeight = http.route.some((r) => r.weight !== undefined);
    const clusters = http.route.flatMap((r, j) => {
      const cluster = this.destination(r.destination, vs, sp, `${path}.route[${j}].destination`);
      const weight = anyWeight ? (r.weight ?? 0) : 1;
      return cluster && weight > 0 ? [{ name: cluster, weight, dest: r.destination }] : [];
    });
    if (clusters.length === 0) {
      this.b.notice(
        `VirtualService ${vs.metadata.namespace}/${vs.metadata.name}`,
        `${path}.route`,
        'no valid destination: answers 500',
      );
      out.directResponse = { status: 500 };
      return out;
    }
    const first = clusters[0] as (typeof clusters)[number];
    const firstEntry = this.clusters.entries.get(first.name) as ClusterEntry;
    let retryPolicy: EnvoyInput<WireRetryPolicy> | undefined = defaultRetryPolicy();
    const retries = http.retries;
    if (retries) {
      retryPolicy =
        retries.attempts === 0
          ? undefined
          : {
              retryOn: (retries.retryOn ?? DEFAULT_RETRY_ON.split(',')).join(','),
              numRetries: { value: retries.attempts },
              ...(retries.perTryTimeoutMs !== undefined && {
                perTryTimeout: duration(retries.perTryTimeoutMs),
              }),
              ...(retries.backoffMs !== undefined && {
                retryBackOff: {
                  baseInterval: duration(retries.backoffMs),
                  maxInterval: duration(retries.backoffMs * 10),
                },
              }),
              retriableStatusCodes: retries.retryOn ? [...retries.retriableStatusCodes] : [503],
            };
    }
    const mirror = http.mirror && this.destination(http.mirror, vs, sp, `${path}.mirror`);
    const rw = http.rewrite;
    out.route = {
      ...(clusters.length === 1
        ? { cluster: first.name }
        : {
            weightedClusters: {
              clusters: clusters.map((c) => ({ name: c.name, weight: { value: c.weight } })),
            },
          }),
      timeout: duration(http.timeoutMs ?? 0),
      ...(retryPolicy && { retryPolicy }),
      ...(rw?.uri && { prefixRewrite: rw.uri }),
      ...(rw?.uriRegexRewrite && {
        regexRewrite: {
          pattern: { regex: rw.uriRegexRewrite.match },
          substitution: rw.uriRegexRewrite.rewrite,
        },
      }),
      ...(rw?.authority && { hostRewriteLiteral: rw.authority }),
      ...(mirror && {
        requestMirrorPolicies: [
          {
            cluster: mirror,
            runtimeFraction: { defaultValue: fractionalPercent(http.mirrorPercent ?? 100) },
          },
        ],
      }),
      ...this.hashPolicy(firstEntry.sp, first.dest.subset),
    };
    return out;
  }
}

function defaultRetryPolicy(): EnvoyInput<WireRetryPolicy> {
  return { retryOn: DEFAULT_RETRY_ON, numRetries: { value: DEFAULT_RETRIES }, retriableStatusCodes: [503] };
}

function headerOps(ops: VsHeaderOperations): { add: EnvoyInput<WireHeaderValueOption>[]; remove: string[] } {
  return { add: headerMutations(ops.set, ops.add), remove: ops.remove.map((h) => h.toLowerCase()) };
}

function vsMatch(m: VsMatch | undefined): EnvoyInput<WireRouteMatch> {
  if (!m) return { prefix: '/' };
  const path = !m.uri
    ? { prefix: '/' }
    : 'exact' in m.uri
      ? { path: m.uri.exact }
      : 'prefix' in m.uri
        ? { prefix: m.uri.prefix }
        : { safeRegex: { regex: m.uri.regex } };
  const headers: EnvoyInput<WireHeaderMatcher>[] = m.headers.map((h) => ({
    name: h.name.toLowerCase(),
    ...(h.match ? { stringMatch: istioMatch(h.match) } : { presentMatch: true }),
    ...(h.invert && { invertMatch: true }),
  }));
  if (m.method) headers.push({ name: ':method', stringMatch: istioMatch(m.method) });
  if (m.authority) headers.push({ name: ':authority', stringMatch: istioMatch(m.authority) });
  const queryParameters = m.queryParams.map((q) => ({
    name: q.name,
    ...(q.match ? { stringMatch: istioMatch(q.match) } : { presentMatch: true }),
  }));
  return {
    ...path,
    ...(m.ignoreUriCase && { caseSensitive: { value: false } }),
    ...(headers.length > 0 && { headers }),
    ...(queryParameters.length > 0 && { queryParameters }),
  };
}

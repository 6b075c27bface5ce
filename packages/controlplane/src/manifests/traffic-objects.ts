/**
 * The traffic kinds a waypoint acts on, decoded from parsed manifests: Gateway API HTTPRoute, and
 * Istio VirtualService and DestinationRule. Durations become milliseconds, defaults are filled in
 * as the APIs define them, and every problem is reported with its field path.
 *
 * Keys the waypoint cannot honour (CORS, delegation, port-level settings, ...) are refused rather
 * than ignored: a route or policy applied only in part would do something its author did not write.
 */
import type { ManifestFields, Obj, ObjectMeta } from './manifest-fields.js';

// ---------------------------------------------------------------------------------------------
// HTTPRoute (gateway.networking.k8s.io)

export interface ParentRef {
  readonly group: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
  readonly port?: number;
}

export type HttpPathMatchType = 'Exact' | 'PathPrefix' | 'RegularExpression';

export interface HttpPathMatch {
  readonly type: HttpPathMatchType;
  readonly value: string;
}

export interface HttpValueMatch {
  readonly type: 'Exact' | 'RegularExpression';
  readonly name: string;
  readonly value: string;
}

export interface HttpRouteMatch {
  readonly path: HttpPathMatch;
  readonly headers: readonly HttpValueMatch[];
  readonly queryParams: readonly HttpValueMatch[];
  readonly method?: string;
}

export interface BackendRef {
  readonly group: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
  readonly port?: number;
}

export interface WeightedBackendRef extends BackendRef {
  readonly weight: number;
}

export interface HeaderValue {
  readonly name: string;
  readonly value: string;
}

export interface HeaderModifier {
  /** Overwrite (or add) these headers. */
  readonly set: readonly HeaderValue[];
  /** Append these values to any existing ones. */
  readonly add: readonly HeaderValue[];
  readonly remove: readonly string[];
}

export type PathModifier =
  | { readonly type: 'ReplaceFullPath'; readonly value: string }
  | { readonly type: 'ReplacePrefixMatch'; readonly value: string };

export type HttpRouteFilter =
  | { readonly type: 'RequestHeaderModifier'; readonly modifier: HeaderModifier }
  | { readonly type: 'ResponseHeaderModifier'; readonly modifier: HeaderModifier }
  | {
      readonly type: 'RequestRedirect';
      readonly scheme?: string;
      readonly hostname?: string;
      readonly path?: PathModifier;
      readonly port?: number;
      readonly statusCode: number;
    }
  | { readonly type: 'URLRewrite'; readonly hostname?: string; readonly path?: PathModifier }
  | { readonly type: 'RequestMirror'; readonly backendRef: BackendRef; readonly percent: number };

export interface HttpRouteRule {
  readonly name?: string;
  readonly matches: readonly HttpRouteMatch[];
  readonly filters: readonly HttpRouteFilter[];
  readonly backendRefs: readonly WeightedBackendRef[];
  /** 0 disables the timeout; undefined leaves the default (none). */
  readonly timeouts: { readonly requestMs?: number; readonly backendRequestMs?: number };
}

export interface HttpRouteObject {
  readonly kind: 'HTTPRoute';
  readonly metadata: ObjectMeta;
  readonly parentRefs: readonly ParentRef[];
  readonly rules: readonly HttpRouteRule[];
}

const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;
const REDIRECT_CODES = [301, 302, 303, 307, 308];
const FILTER_KEYS: Record<HttpRouteFilter['type'], string> = {
  RequestHeaderModifier: 'requestHeaderModifier',
  ResponseHeaderModifier: 'responseHeaderModifier',
  RequestRedirect: 'requestRedirect',
  URLRewrite: 'urlRewrite',
  RequestMirror: 'requestMirror',
};
const FILTER_TYPES = Object.keys(FILTER_KEYS) as Array<HttpRouteFilter['type']>;

function headerName(f: ManifestFields, v: unknown, path: string): string {
  const name = f.str(v, path);
  if (name && !HEADER_NAME.test(name)) f.add(path, `${JSON.stringify(name)} is not a valid header name`);
  return name;
}

function decodeHeaderModifier(f: ManifestFields, v: unknown, path: string): HeaderModifier {
  const o = f.obj(v, path, false) ?? {};
  f.only(o, path, ['set', 'add', 'remove']);
  const values = (key: string): HeaderValue[] =>
    (f.list(o[key], `${path}.${key}`) ?? []).flatMap((h, i) => {
      const p = `${path}.${key}[${i}]`;
      const e = f.obj(h, p);
      if (!e) return [];
      return [{ name: headerName(f, e.name, `${p}.name`), value: f.str(e.value, `${p}.value`, '') }];
    });
  const remove = f.strings(o.remove, `${path}.remove`) ?? [];
  remove.forEach((n, i) => {
    headerName(f, n, `${path}.remove[${i}]`);
  });
  return { set: values('set'), add: values('add'), remove };
}

function decodePathModifier(f: ManifestFields, v: unknown, path: string): PathModifier | undefined {
  const o = f.obj(v, path);
  if (!o) return undefined;
  const type = f.oneOf(o.type, `${path}.type`, ['ReplaceFullPath', 'ReplacePrefixMatch'] as const);
  if (!type) {
    if (o.type === undefined) f.add(`${path}.type`, 'is required');
    return undefined;
  }
  const key = type === 'ReplaceFullPath' ? 'replaceFullPath' : 'replacePrefixMatch';
  const value = f.str(o[key], `${path}.${key}`);
  if (value && !value.startsWith('/')) f.add(`${path}.${key}`, `${JSON.stringify(value)} must start with /`);
  return { type, value };
}

function decodeBackendRef(f: ManifestFields, o: Obj, path: string): BackendRef {
  const group = f.str(o.group, `${path}.group`, '');
  const kind = f.str(o.kind, `${path}.kind`, 'Service');
  const namespace = f.optStr(o.namespace, `${path}.namespace`);
  const port = f.optPort(o.port, `${path}.port`);
  // Gateway API: a Service reference must say which port (a Service may have several).
  if (kind === 'Service' && (group === '' || group === 'core') && o.port === undefined)
    f.add(`${path}.port`, 'is required for a Service');
  return {
    group,
    kind,
    name: f.name(o.name, `${path}.name`),
    ...(namespace !== undefined && { namespace }),
    ...(port !== undefined && { port }),
  };
}

function decodeHttpFilter(f: ManifestFields, v: unknown, path: string): HttpRouteFilter | undefined {
  const o = f.obj(v, path);
  if (!o) return undefined;
  if (o.type === undefined) {
    f.add(`${path}.type`, 'is required');
    return undefined;
  }
  const type = f.str(o.type, `${path}.type`);
  if (!FILTER_TYPES.includes(type as HttpRouteFilter['type'])) {
    f.add(`${path}.type`, `${JSON.stringify(type)} is not supported (supported: ${FILTER_TYPES.join(', ')})`);
    return undefined;
  }
  const key = FILTER_KEYS[type as HttpRouteFilter['type']];
  f.only(o, path, ['type', key]);
  const cp = `${path}.${key}`;
  switch (type as HttpRouteFilter['type']) {
    case 'RequestHeaderModifier':
      return { type: 'RequestHeaderModifier', modifier: decodeHeaderModifier(f, o[key], cp) };
    case 'ResponseHeaderModifier':
      return { type: 'ResponseHeaderModifier', modifier: decodeHeaderModifier(f, o[key], cp) };
    case 'RequestRedirect': {
      const c = f.obj(o[key], cp, false) ?? {};
      f.only(c, cp, ['scheme', 'hostname', 'path', 'port', 'statusCode']);
      const scheme = f.oneOf(c.scheme, `${cp}.scheme`, ['http', 'https'] as const);
      const hostname = f.optStr(c.hostname, `${cp}.hostname`);
      const p = decodePathModifier(f, c.path, `${cp}.path`);
      const port = f.optPort(c.port, `${cp}.port`);
      let statusCode = 302;
      if (c.statusCode !== undefined) {
        if (typeof c.statusCode === 'number' && REDIRECT_CODES.includes(c.statusCode))
          statusCode = c.statusCode;
        else
          f.add(
            `${cp}.statusCode`,
            `${JSON.stringify(c.statusCode)} must be one of ${REDIRECT_CODES.join(', ')}`,
          );
      }
      return {
        type: 'RequestRedirect',
        ...(scheme && { scheme }),
        ...(hostname && { hostname }),
        ...(p && { path: p }),
        ...(port !== undefined && { port }),
        statusCode,
      };
    }
    case 'URLRewrite': {
      const c = f.obj(o[key], cp, false) ?? {};
      f.only(c, cp, ['hostname', 'path']);
      const hostname = f.optStr(c.hostname, `${cp}.hostname`);
      const p = decodePathModifier(f, c.path, `${cp}.path`);
      if (!hostname && !p) f.add(cp, 'must set hostname or path');
      return { type: 'URLRewrite', ...(hostname && { hostname }), ...(p && { path: p }) };
    }
    case 'RequestMirror': {
      const c = f.obj(o[key], cp, false) ?? {};
      f.only(c, cp, ['backendRef', 'percent', 'fraction']);
      const ref = f.obj(c.backendRef, `${cp}.backendRef`, false);
      const backendRef = decodeBackendRef(f, ref ?? {}, `${cp}.backendRef`);
      let percent = f.int(c.percent, `${cp}.percent`, 0, 100);
      const fraction = f.obj(c.fraction, `${cp}.fraction`);
      if (fraction) {
        if (percent !== undefined) f.add(cp, 'cannot set both percent and fraction');
        const numerator = f.int(fraction.numerator, `${cp}.fraction.numerator`, 0, 2 ** 31 - 1);
        const denominator = f.int(fraction.denominator, `${cp}.fraction.denominator`, 1, 2 ** 31 - 1) ?? 100;
        if (numerator === undefined && fraction.numerator === undefined)
          f.add(`${cp}.fraction.numerator`, 'is required');
        if (numerator !== undefined && numerator > denominator)
          f.add(`${cp}.fraction`, 'numerator must not exceed denominator');
        percent = ((numerator ?? 0) / denominator) * 100;
      }
      return { type: 'RequestMirror', backendRef, percent: percent ?? 100 };
    }
  }
}

function decodeValueMatches(f: ManifestFields, v: unknown, path: string, header: boolean): HttpValueMatch[] {
  return (f.list(v, path) ?? []).flatMap((m, i) => {
    const p = `${path}[${i}]`;
    const o = f.obj(m, p);
    if (!o) return [];
    f.only(o, p, ['type', 'name', 'value']);
    const type = f.oneOf(o.type, `${p}.type`, ['Exact', 'RegularExpression'] as const) ?? 'Exact';
    const name = header ? headerName(f, o.name, `${p}.name`) : f.str(o.name, `${p}.name`);
    const value =
      type === 'RegularExpression' ? f.regex(o.value, `${p}.value`) : f.str(o.value, `${p}.value`);
    return [{ type, name, value }];
  });
}

const DEFAULT_MATCH: HttpRouteMatch = {
  path: { type: 'PathPrefix', value: '/' },
  headers: [],
  queryParams: [],
};

function decodeHttpRouteMatch(f: ManifestFields, v: unknown, path: string): HttpRouteMatch | undefined {
  const o = f.obj(v, path);
  if (!o) return undefined;
  f.only(o, path, ['path', 'headers', 'queryParams', 'method']);
  let pathMatch: HttpPathMatch = DEFAULT_MATCH.path;
  const po = f.obj(o.path, `${path}.path`);
  if (po) {
    f.only(po, `${path}.path`, ['type', 'value']);
    const type =
      f.oneOf(po.type, `${path}.path.type`, ['Exact', 'PathPrefix', 'RegularExpression'] as const) ??
      'PathPrefix';
    const value =
      type === 'RegularExpression'
        ? f.regex(po.value, `${path}.path.value`)
        : f.str(po.value, `${path}.path.value`, '/');
    if (type !== 'RegularExpression' && !value.startsWith('/'))
      f.add(`${path}.path.value`, `${JSON.stringify(value)} must start with /`);
    pathMatch = { type, value };
  }
  const method = f.oneOf(o.method, `${path}.method`, METHODS);
  return {
    path: pathMatch,
    headers: decodeValueMatches(f, o.headers, `${path}.headers`, true),
    queryParams: decodeValueMatches(f, o.queryParams, `${path}.queryParams`, false),
    ...(method && { method }),
  };
}

function decodeHttpRouteRule(f: ManifestFields, v: unknown, path: string): HttpRouteRule | undefined {
  const o = f.obj(v, path);
  if (!o) return undefined;
  f.only(o, path, ['name', 'matches', 'filters', 'backendRefs', 'timeouts'], ['retry', 'sessionPersistence']);
  const listed = f.list(o.matches, `${path}.matches`);
  const matches =
    listed === undefined || listed.length === 0
      ? [DEFAULT_MATCH]
      : listed.flatMap((m, i) => decodeHttpRouteMatch(f, m, `${path}.matches[${i}]`) ?? []);
  // Kept by index so later checks name the filter where the user wrote it.
  const indexed = (f.list(o.filters, `${path}.filters`) ?? []).map((x, i) =>
    decodeHttpFilter(f, x, `${path}.filters[${i}]`),
  );
  const filters = indexed.flatMap((x) => x ?? []);
  const backendRefs = (f.list(o.backendRefs, `${path}.backendRefs`) ?? []).flatMap((b, i) => {
    const p = `${path}.backendRefs[${i}]`;
    const bo = f.obj(b, p);
    if (!bo) return [];
    f.only(bo, p, ['group', 'kind', 'name', 'namespace', 'port', 'weight'], ['filters']);
    return [{ ...decodeBackendRef(f, bo, p), weight: f.int(bo.weight, `${p}.weight`, 0, 1_000_000) ?? 1 }];
  });
  const to = f.obj(o.timeouts, `${path}.timeouts`) ?? {};
  f.only(to, `${path}.timeouts`, ['request', 'backendRequest']);
  const requestMs = f.duration(to.request, `${path}.timeouts.request`);
  const backendRequestMs = f.duration(to.backendRequest, `${path}.timeouts.backendRequest`);
  // The combinations Gateway API forbids, each at the filter that breaks it.
  const types = indexed.map((x) => x?.type);
  indexed.forEach((x, i) => {
    if (!x) return;
    const fp = `${path}.filters[${i}]`;
    if (x.type !== 'RequestMirror' && types.indexOf(x.type) !== i)
      f.add(`${fp}.type`, `${x.type} may appear only once in a rule`);
    if (x.type === 'RequestRedirect' && types.includes('URLRewrite'))
      f.add(`${fp}.type`, 'RequestRedirect cannot be combined with URLRewrite');
    if (x.type === 'RequestRedirect' && backendRefs.length > 0)
      f.add(`${fp}.type`, 'RequestRedirect cannot be combined with backendRefs');
    if (
      (x.type === 'RequestRedirect' || x.type === 'URLRewrite') &&
      x.path?.type === 'ReplacePrefixMatch' &&
      matches.some((m) => m.path.type !== 'PathPrefix')
    )
      f.add(
        `${fp}.${FILTER_KEYS[x.type]}.path.type`,
        'ReplacePrefixMatch needs every match to be a PathPrefix',
      );
  });
  if (
    requestMs !== undefined &&
    backendRequestMs !== undefined &&
    requestMs > 0 &&
    backendRequestMs > requestMs
  )
    f.add(`${path}.timeouts.backendRequest`, 'must not exceed timeouts.request');
  const name = f.optStr(o.name, `${path}.name`);
  return {
    ...(name && { name }),
    matches,
    filters,
    backendRefs,
    timeouts: {
      ...(requestMs !== undefined && { requestMs }),
      ...(backendRequestMs !== undefined && { backendRequestMs }),
    },
  };
}

export function decodeHttpRoute(f: ManifestFields, o: Obj, metadata: ObjectMeta): HttpRouteObject {
  const spec = f.obj(o.spec, 'spec', false) ?? {};
  const parentRefs = (f.list(spec.parentRefs, 'spec.parentRefs') ?? []).flatMap((r, i): ParentRef[] => {
    const p = `spec.parentRefs[${i}]`;
    const ro = f.obj(r, p);
    if (!ro) return [];
    const namespace = f.optStr(ro.namespace, `${p}.namespace`);
    const port = f.optPort(ro.port, `${p}.port`);
    return [
      {
        // An explicit empty group is the core group (a Service); absent means Gateway API's.
        group: ro.group === undefined ? 'gateway.networking.k8s.io' : f.str(ro.group, `${p}.group`, ''),
        kind: f.str(ro.kind, `${p}.kind`, 'Gateway'),
        name: f.name(ro.name, `${p}.name`),
        ...(namespace !== undefined && { namespace }),
        ...(port !== undefined && { port }),
      },
    ];
  });
  const listed = f.list(spec.rules, 'spec.rules');
  const rules =
    listed === undefined
      ? [{ matches: [DEFAULT_MATCH], filters: [], backendRefs: [], timeouts: {} }]
      : listed.flatMap((r, i) => decodeHttpRouteRule(f, r, `spec.rules[${i}]`) ?? []);
  return { kind: 'HTTPRoute', metadata, parentRefs, rules };
}

// ---------------------------------------------------------------------------------------------
// VirtualService (networking.istio.io)

export type IstioStringMatch =
  | { readonly exact: string }
  | { readonly prefix: string }
  | { readonly regex: string };

export interface VsValueMatch {
  readonly name: string;
  /** Undefined: the header or parameter must be present. */
  readonly match?: IstioStringMatch;
  readonly invert: boolean;
}

export interface VsMatch {
  readonly name?: string;
  readonly uri?: IstioStringMatch;
  /** Match `uri` (exact or prefix) without regard to case. */
  readonly ignoreUriCase: boolean;
  readonly headers: readonly VsValueMatch[];
  readonly queryParams: readonly VsValueMatch[];
  readonly method?: IstioStringMatch;
  readonly authority?: IstioStringMatch;
  readonly port?: number;
}

export interface VsDestination {
  readonly host: string;
  readonly subset?: string;
  readonly port?: number;
}

export interface VsRouteDestination {
  readonly destination: VsDestination;
  /** Undefined: not given (an even share when no destination of the route has one). */
  readonly weight?: number;
}

export interface VsHeaderOperations {
  readonly set: readonly HeaderValue[];
  readonly add: readonly HeaderValue[];
  readonly remove: readonly string[];
}

/** Retry conditions the waypoint implements. */
export const RETRY_ON = [
  '5xx',
  'gateway-error',
  'connect-failure',
  'reset',
  'refused-stream',
  'retriable-status-codes',
  'unavailable',
  'cancelled',
] as const;
export type RetryOnValue = (typeof RETRY_ON)[number];

export interface VsRetries {
  readonly attempts: number;
  readonly perTryTimeoutMs?: number;
  /** Undefined: Istio's default conditions. */
  readonly retryOn?: readonly RetryOnValue[];
  /** Status codes listed in retryOn (`503`), retried as retriable-status-codes. */
  readonly retriableStatusCodes: readonly number[];
  readonly backoffMs?: number;
}

export interface VsFault {
  readonly delay?: { readonly fixedDelayMs: number; readonly percent: number };
  readonly abort?: { readonly httpStatus?: number; readonly grpcStatus?: number; readonly percent: number };
}

export interface VsHttpRoute {
  readonly name?: string;
  readonly match: readonly VsMatch[];
  readonly route: readonly VsRouteDestination[];
  readonly redirect?: {
    readonly uri?: string;
    readonly authority?: string;
    readonly port?: number;
    readonly scheme?: string;
    readonly redirectCode: number;
  };
  readonly directResponse?: { readonly status: number; readonly body?: string };
  readonly rewrite?: {
    readonly uri?: string;
    readonly authority?: string;
    readonly uriRegexRewrite?: { readonly match: string; readonly rewrite: string };
  };
  readonly timeoutMs?: number;
  readonly retries?: VsRetries;
  readonly fault?: VsFault;
  readonly mirror?: VsDestination;
  readonly mirrorPercent?: number;
  readonly headers: { readonly request: VsHeaderOperations; readonly response: VsHeaderOperations };
}

export interface VirtualServiceObject {
  readonly kind: 'VirtualService';
  readonly metadata: ObjectMeta;
  readonly hosts: readonly string[];
  /** Empty: the mesh (sidecars and waypoints) only. */
  readonly gateways: readonly string[];
  readonly http: readonly VsHttpRoute[];
}

export const GRPC_STATUS: Readonly<Record<string, number>> = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
};

/** An Istio StringMatch; `{}` is presence when `presence` allows it (headers, query parameters). */
function decodeIstioMatch(
  f: ManifestFields,
  v: unknown,
  path: string,
  presence: boolean,
): IstioStringMatch | undefined {
  const o = f.obj(v, path);
  if (!o) return undefined;
  f.only(o, path, ['exact', 'prefix', 'regex']);
  const keys = (['exact', 'prefix', 'regex'] as const).filter((k) => o[k] !== undefined);
  if (keys.length === 0) {
    if (!presence) f.add(path, 'must have one of exact, prefix or regex');
    return undefined;
  }
  if (keys.length > 1) f.add(path, `must have only one of exact, prefix or regex, not ${keys.join(' and ')}`);
  const key = keys[0] as 'exact' | 'prefix' | 'regex';
  const value = key === 'regex' ? f.regex(o[key], `${path}.regex`) : f.str(o[key], `${path}.${key}`, '');
  return { [key]: value } as IstioStringMatch;
}

function decodeValueMap(f: ManifestFields, v: unknown, path: string, invert: boolean): VsValueMatch[] {
  return Object.entries(f.obj(v, path) ?? {}).map(([name, m]) => {
    const match = decodeIstioMatch(f, m ?? {}, `${path}.${name}`, true);
    return { name, ...(match && { match }), invert };
  });
}

function decodeVsMatch(f: ManifestFields, v: unknown, path: string): VsMatch | undefined {
  const o = f.obj(v, path);
  if (!o) return undefined;
  f.only(
    o,
    path,
    [
      'name',
      'uri',
      'ignoreUriCase',
      'headers',
      'withoutHeaders',
      'method',
      'queryParams',
      'authority',
      'port',
    ],
    ['scheme', 'sourceLabels', 'gateways', 'sourceNamespace', 'statPrefix'],
  );
  const name = f.optStr(o.name, `${path}.name`);
  const uri = decodeIstioMatch(f, o.uri, `${path}.uri`, false);
  const method = decodeIstioMatch(f, o.method, `${path}.method`, false);
  const authority = decodeIstioMatch(f, o.authority, `${path}.authority`, false);
  const port = f.optPort(o.port, `${path}.port`);
  for (const key of ['headers', 'withoutHeaders'])
    for (const h of Object.keys(f.obj(o[key], `${path}.${key}`) ?? {}))
      if (!HEADER_NAME.test(h))
        f.add(`${path}.${key}.${h}`, `${JSON.stringify(h)} is not a valid header name`);
  return {
    ...(name && { name }),
    ...(uri && { uri }),
    ignoreUriCase: f.bool(o.ignoreUriCase, `${path}.ignoreUriCase`) ?? false,
    headers: [
      ...decodeValueMap(f, o.headers, `${path}.headers`, false),
      ...decodeValueMap(f, o.withoutHeaders, `${path}.withoutHeaders`, true),
    ],
    queryParams: decodeValueMap(f, o.queryParams, `${path}.queryParams`, false),
    ...(method && { method }),
    ...(authority && { authority }),
    ...(port !== undefined && { port }),
  };
}

function decodeDestination(f: ManifestFields, v: unknown, path: string): VsDestination {
  const o = f.obj(v, path, false) ?? {};
  f.only(o, path, ['host', 'subset', 'port']);
  const subset = f.optStr(o.subset, `${path}.subset`);
  const po = f.obj(o.port, `${path}.port`);
  f.only(po, `${path}.port`, ['number']);
  const port = po ? f.port(po.number, `${path}.port.number`) : undefined;
  return {
    host: f.str(o.host, `${path}.host`),
    ...(subset && { subset }),
    ...(port !== undefined && { port }),
  };
}

function decodeHeaderOperations(f: ManifestFields, v: unknown, path: string): VsHeaderOperations {
  const o = f.obj(v, path) ?? {};
  f.only(o, path, ['set', 'add', 'remove']);
  const values = (key: string): HeaderValue[] =>
    Object.entries(f.obj(o[key], `${path}.${key}`) ?? {}).map(([name, value]) => {
      if (!HEADER_NAME.test(name))
        f.add(`${path}.${key}.${name}`, `${JSON.stringify(name)} is not a valid header name`);
      return { name, value: f.str(value, `${path}.${key}.${name}`, '') };
    });
  const remove = f.strings(o.remove, `${path}.remove`) ?? [];
  remove.forEach((n, i) => {
    headerName(f, n, `${path}.remove[${i}]`);
  });
  return { set: values('set'), add: values('add'), remove };
}

/** Istio's `percentage: {value}` (0-100, fractions allowed), or the older integer `percent`. */
function decodePercentage(f: ManifestFields, o: Obj, path: string): number {
  const pct = f.obj(o.percentage, `${path}.percentage`);
  if (pct) {
    f.only(pct, `${path}.percentage`, ['value']);
    return f.num(pct.value, `${path}.percentage.value`, 0, 100) ?? 0;
  }
  return f.int(o.percent, `${path}.percent`, 0, 100) ?? 100;
}

function decodeRetries(f: ManifestFields, v: unknown, path: string): VsRetries | undefined {
  const o = f.obj(v, path);
  if (!o) return undefined;
  f.only(
    o,
    path,
    ['attempts', 'perTryTimeout', 'retryOn', 'backoff', 'retryRemoteLocalities'],
    ['retryIgnorePreviousHosts'],
  );
  const attempts = f.int(o.attempts, `${path}.attempts`, 0, 2 ** 31 - 1);
  if (o.attempts === undefined) f.add(`${path}.attempts`, 'is required');
  const perTryTimeoutMs = f.duration(o.perTryTimeout, `${path}.perTryTimeout`);
  const backoffMs = f.duration(o.backoff, `${path}.backoff`);
  f.bool(o.retryRemoteLocalities, `${path}.retryRemoteLocalities`);
  let retryOn: RetryOnValue[] | undefined;
  const retriableStatusCodes: number[] = [];
  if (o.retryOn !== undefined) {
    retryOn = [];
    for (const token of f
      .str(o.retryOn, `${path}.retryOn`)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)) {
      if (/^\d{3}$/.test(token) && Number(token) >= 100 && Number(token) <= 599) {
        retriableStatusCodes.push(Number(token));
        if (!retryOn.includes('retriable-status-codes')) retryOn.push('retriable-status-codes');
      } else if ((RETRY_ON as readonly string[]).includes(token)) {
        if (!retryOn.includes(token as RetryOnValue)) retryOn.push(token as RetryOnValue);
      } else {
        f.add(
          `${path}.retryOn`,
          `${JSON.stringify(token)} is not supported (supported: ${RETRY_ON.join(', ')}, or a status code)`,
        );
      }
    }
  }
  return {
    attempts: attempts ?? 0,
    ...(perTryTimeoutMs !== undefined && { perTryTimeoutMs }),
    ...(retryOn && { retryOn }),
    retriableStatusCodes,
    ...(backoffMs !== undefined && { backoffMs }),
  };
}

function decodeFault(f: ManifestFields, v: unknown, path: string): VsFault | undefined {
  const o = f.obj(v, path);
  if (!o) return undefined;
  f.only(o, path, ['delay', 'abort']);
  let delay: VsFault['delay'];
  const d = f.obj(o.delay, `${path}.delay`);
  if (d) {
    f.only(d, `${path}.delay`, ['fixedDelay', 'percentage', 'percent'], ['exponentialDelay']);
    const fixedDelayMs = f.duration(d.fixedDelay, `${path}.delay.fixedDelay`);
    if (d.fixedDelay === undefined) f.add(`${path}.delay.fixedDelay`, 'is required');
    delay = { fixedDelayMs: fixedDelayMs ?? 0, percent: decodePercentage(f, d, `${path}.delay`) };
  }
  let abort: VsFault['abort'];
  const a = f.obj(o.abort, `${path}.abort`);
  if (a) {
    const ap = `${path}.abort`;
    f.only(a, ap, ['httpStatus', 'grpcStatus', 'percentage'], ['http2Error']);
    const httpStatus = f.int(a.httpStatus, `${ap}.httpStatus`, 200, 599);
    let grpcStatus: number | undefined;
    if (a.grpcStatus !== undefined) {
      const name = f.str(a.grpcStatus, `${ap}.grpcStatus`);
      grpcStatus = GRPC_STATUS[name];
      if (grpcStatus === undefined && name)
        f.add(`${ap}.grpcStatus`, `${JSON.stringify(name)} is not a gRPC status name`);
    }
    if ((a.httpStatus === undefined) === (a.grpcStatus === undefined))
      f.add(ap, 'must have exactly one of httpStatus or grpcStatus');
    abort = {
      ...(httpStatus !== undefined && { httpStatus }),
      ...(grpcStatus !== undefined && { grpcStatus }),
      percent: decodePercentage(f, a, ap),
    };
  }
  if (!delay && !abort) f.add(path, 'must have delay or abort');
  return { ...(delay && { delay }), ...(abort && { abort }) };
}

function decodeVsHttpRoute(f: ManifestFields, v: unknown, path: string): VsHttpRoute | undefined {
  const o = f.obj(v, path);
  if (!o) return undefined;
  f.only(
    o,
    path,
    [
      'name',
      'match',
      'route',
      'redirect',
      'directResponse',
      'rewrite',
      'timeout',
      'retries',
      'fault',
      'mirror',
      'mirrorPercentage',
      'headers',
    ],
    ['corsPolicy', 'delegate', 'mirrors', 'mirrorPercent', 'mirror_percent'],
  );
  const name = f.optStr(o.name, `${path}.name`);
  const match = (f.list(o.match, `${path}.match`) ?? []).flatMap(
    (m, i) => decodeVsMatch(f, m, `${path}.match[${i}]`) ?? [],
  );
  const route = (f.list(o.route, `${path}.route`) ?? []).flatMap((r, i): VsRouteDestination[] => {
    const p = `${path}.route[${i}]`;
    const ro = f.obj(r, p);
    if (!ro) return [];
    f.only(ro, p, ['destination', 'weight'], ['headers']);
    const weight = f.int(ro.weight, `${p}.weight`, 0, 2 ** 31 - 1);
    return [
      {
        destination: decodeDestination(f, ro.destination, `${p}.destination`),
        ...(weight !== undefined && { weight }),
      },
    ];
  });
  let redirect: VsHttpRoute['redirect'];
  const ro = f.obj(o.redirect, `${path}.redirect`);
  if (ro) {
    const rp = `${path}.redirect`;
    f.only(ro, rp, ['uri', 'authority', 'port', 'scheme', 'redirectCode'], ['derivePort']);
    const uri = f.optStr(ro.uri, `${rp}.uri`);
    const authority = f.optStr(ro.authority, `${rp}.authority`);
    const port = f.optPort(ro.port, `${rp}.port`);
    const scheme = f.optStr(ro.scheme, `${rp}.scheme`);
    let redirectCode = 301;
    if (ro.redirectCode !== undefined) {
      if (typeof ro.redirectCode === 'number' && REDIRECT_CODES.includes(ro.redirectCode))
        redirectCode = ro.redirectCode;
      else
        f.add(
          `${rp}.redirectCode`,
          `${JSON.stringify(ro.redirectCode)} must be one of ${REDIRECT_CODES.join(', ')}`,
        );
    }
    redirect = {
      ...(uri && { uri }),
      ...(authority && { authority }),
      ...(port !== undefined && { port }),
      ...(scheme && { scheme }),
      redirectCode,
    };
  }
  let directResponse: VsHttpRoute['directResponse'];
  const dr = f.obj(o.directResponse, `${path}.directResponse`);
  if (dr) {
    const dp = `${path}.directResponse`;
    f.only(dr, dp, ['status', 'body']);
    const status = f.int(dr.status, `${dp}.status`, 200, 599);
    if (dr.status === undefined) f.add(`${dp}.status`, 'is required');
    const body = f.obj(dr.body, `${dp}.body`);
    f.only(body, `${dp}.body`, ['string'], ['bytes']);
    const text = body ? f.str(body.string, `${dp}.body.string`, '') : undefined;
    directResponse = { status: status ?? 200, ...(text !== undefined && { body: text }) };
  }
  let rewrite: VsHttpRoute['rewrite'];
  const rw = f.obj(o.rewrite, `${path}.rewrite`);
  if (rw) {
    const wp = `${path}.rewrite`;
    f.only(rw, wp, ['uri', 'authority', 'uriRegexRewrite']);
    const uri = f.optStr(rw.uri, `${wp}.uri`);
    const authority = f.optStr(rw.authority, `${wp}.authority`);
    const rr = f.obj(rw.uriRegexRewrite, `${wp}.uriRegexRewrite`);
    f.only(rr, `${wp}.uriRegexRewrite`, ['match', 'rewrite']);
    const uriRegexRewrite = rr && {
      match: f.regex(rr.match, `${wp}.uriRegexRewrite.match`),
      rewrite: f.str(rr.rewrite, `${wp}.uriRegexRewrite.rewrite`, ''),
    };
    if (uri && uriRegexRewrite) f.add(wp, 'cannot set both uri and uriRegexRewrite');
    rewrite = {
      ...(uri && { uri }),
      ...(authority && { authority }),
      ...(uriRegexRewrite && { uriRegexRewrite }),
    };
  }
  const actions = [
    route.length > 0 && 'route',
    redirect && 'redirect',
    directResponse && 'directResponse',
  ].filter(Boolean);
  if (actions.length === 0) f.add(path, 'must have route, redirect or directResponse');
  if (actions.length > 1)
    f.add(path, `must have only one of route, redirect or directResponse, not ${actions.join(' and ')}`);
  if (rewrite && !route.length) f.add(`${path}.rewrite`, 'needs a route');
  const timeoutMs = f.duration(o.timeout, `${path}.timeout`);
  const retries = decodeRetries(f, o.retries, `${path}.retries`);
  const fault = decodeFault(f, o.fault, `${path}.fault`);
  const mirror = o.mirror === undefined ? undefined : decodeDestination(f, o.mirror, `${path}.mirror`);
  let mirrorPercent: number | undefined;
  const mp = f.obj(o.mirrorPercentage, `${path}.mirrorPercentage`);
  if (mp) {
    f.only(mp, `${path}.mirrorPercentage`, ['value']);
    mirrorPercent = f.num(mp.value, `${path}.mirrorPercentage.value`, 0, 100);
  }
  const ho = f.obj(o.headers, `${path}.headers`) ?? {};
  f.only(ho, `${path}.headers`, ['request', 'response']);
  return {
    ...(name && { name }),
    match,
    route,
    ...(redirect && { redirect }),
    ...(directResponse && { directResponse }),
    ...(rewrite && { rewrite }),
    ...(timeoutMs !== undefined && { timeoutMs }),
    ...(retries && { retries }),
    ...(fault && { fault }),
    ...(mirror && { mirror }),
    ...(mirrorPercent !== undefined && { mirrorPercent }),
    headers: {
      request: decodeHeaderOperations(f, ho.request, `${path}.headers.request`),
      response: decodeHeaderOperations(f, ho.response, `${path}.headers.response`),
    },
  };
}

export function decodeVirtualService(f: ManifestFields, o: Obj, metadata: ObjectMeta): VirtualServiceObject {
  const spec = f.obj(o.spec, 'spec', false) ?? {};
  // TCP and TLS routes would be dropped without a word: refuse them instead.
  f.only(spec, 'spec', ['hosts', 'gateways', 'http', 'exportTo'], ['tcp', 'tls']);
  const hosts = f.strings(spec.hosts, 'spec.hosts') ?? [];
  if (hosts.length === 0) f.add('spec.hosts', 'must name at least one host');
  return {
    kind: 'VirtualService',
    metadata,
    hosts,
    gateways: f.strings(spec.gateways, 'spec.gateways') ?? [],
    http: (f.list(spec.http, 'spec.http') ?? []).flatMap(
      (h, i) => decodeVsHttpRoute(f, h, `spec.http[${i}]`) ?? [],
    ),
  };
}

// ---------------------------------------------------------------------------------------------
// DestinationRule (networking.istio.io)

export type LoadBalancerSetting =
  | { readonly simple: 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' }
  | { readonly consistentHash: { readonly httpHeaderName: string } | { readonly useSourceIp: true } };

export interface TrafficPolicy {
  readonly loadBalancer?: LoadBalancerSetting;
  readonly connectionPool?: {
    readonly tcp?: { readonly maxConnections?: number; readonly connectTimeoutMs?: number };
    readonly http?: {
      readonly http1MaxPendingRequests?: number;
      readonly http2MaxRequests?: number;
      readonly maxRetries?: number;
    };
  };
  readonly outlierDetection?: {
    readonly consecutive5xxErrors?: number;
    readonly intervalMs?: number;
    readonly baseEjectionTimeMs?: number;
    readonly maxEjectionPercent?: number;
  };
}

export interface DestinationSubset {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly trafficPolicy?: TrafficPolicy;
}

export interface DestinationRuleObject {
  readonly kind: 'DestinationRule';
  readonly metadata: ObjectMeta;
  readonly host: string;
  readonly trafficPolicy?: TrafficPolicy;
  readonly subsets: readonly DestinationSubset[];
}

const INT32 = 2 ** 31 - 1;
const SUBSET_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Drops undefined values so an absent setting stays absent. */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function decodeTrafficPolicy(f: ManifestFields, v: unknown, path: string): TrafficPolicy | undefined {
  const o = f.obj(v, path);
  if (!o) return undefined;
  // tls is accepted and ignored: between waypoint and workload it is always HBONE mTLS.
  f.only(
    o,
    path,
    ['loadBalancer', 'connectionPool', 'outlierDetection', 'tls'],
    ['portLevelSettings', 'tunnel', 'proxyProtocol'],
  );
  let loadBalancer: LoadBalancerSetting | undefined;
  const lb = f.obj(o.loadBalancer, `${path}.loadBalancer`);
  if (lb) {
    const lp = `${path}.loadBalancer`;
    f.only(lb, lp, ['simple', 'consistentHash'], ['localityLbSetting', 'warmupDurationSecs', 'warmup']);
    if ((lb.simple === undefined) === (lb.consistentHash === undefined))
      f.add(lp, 'must have exactly one of simple or consistentHash');
    if (lb.simple !== undefined) {
      const simple = f.oneOf(lb.simple, `${lp}.simple`, [
        'UNSPECIFIED',
        'ROUND_ROBIN',
        'LEAST_REQUEST',
        'LEAST_CONN',
        'RANDOM',
      ] as const);
      // LEAST_CONN is the deprecated name of LEAST_REQUEST; UNSPECIFIED is the default.
      if (simple)
        loadBalancer = {
          simple:
            simple === 'LEAST_CONN' ? 'LEAST_REQUEST' : simple === 'UNSPECIFIED' ? 'ROUND_ROBIN' : simple,
        };
    }
    const ch = f.obj(lb.consistentHash, `${lp}.consistentHash`);
    if (ch) {
      const cp = `${lp}.consistentHash`;
      f.only(
        ch,
        cp,
        ['httpHeaderName', 'useSourceIp'],
        ['httpCookie', 'httpQueryParameterName', 'ringHash', 'maglev', 'minimumRingSize'],
      );
      const header = f.optStr(ch.httpHeaderName, `${cp}.httpHeaderName`);
      const sourceIp = f.bool(ch.useSourceIp, `${cp}.useSourceIp`);
      if (header && sourceIp) f.add(cp, 'must have only one of httpHeaderName or useSourceIp');
      if (header) {
        if (!HEADER_NAME.test(header))
          f.add(`${cp}.httpHeaderName`, `${JSON.stringify(header)} is not a valid header name`);
        loadBalancer = { consistentHash: { httpHeaderName: header } };
      } else if (sourceIp) loadBalancer = { consistentHash: { useSourceIp: true } };
      else f.add(cp, 'must have httpHeaderName or useSourceIp: true');
    }
  }
  let connectionPool: TrafficPolicy['connectionPool'];
  const cpo = f.obj(o.connectionPool, `${path}.connectionPool`);
  if (cpo) {
    const pp = `${path}.connectionPool`;
    f.only(cpo, pp, ['tcp', 'http']);
    const tcp = f.obj(cpo.tcp, `${pp}.tcp`);
    f.only(
      tcp,
      `${pp}.tcp`,
      ['maxConnections', 'connectTimeout'],
      ['tcpKeepalive', 'maxConnectionDuration', 'idleTimeout'],
    );
    const http = f.obj(cpo.http, `${pp}.http`);
    f.only(
      http,
      `${pp}.http`,
      ['http1MaxPendingRequests', 'http2MaxRequests', 'maxRetries'],
      [
        'maxRequestsPerConnection',
        'idleTimeout',
        'h2UpgradePolicy',
        'useClientProtocol',
        'maxConcurrentStreams',
      ],
    );
    connectionPool = defined({
      tcp:
        tcp &&
        defined({
          maxConnections: f.int(tcp.maxConnections, `${pp}.tcp.maxConnections`, 1, INT32),
          connectTimeoutMs: f.duration(tcp.connectTimeout, `${pp}.tcp.connectTimeout`),
        }),
      http:
        http &&
        defined({
          http1MaxPendingRequests: f.int(
            http.http1MaxPendingRequests,
            `${pp}.http.http1MaxPendingRequests`,
            1,
            INT32,
          ),
          http2MaxRequests: f.int(http.http2MaxRequests, `${pp}.http.http2MaxRequests`, 1, INT32),
          maxRetries: f.int(http.maxRetries, `${pp}.http.maxRetries`, 0, INT32),
        }),
    });
  }
  let outlierDetection: TrafficPolicy['outlierDetection'];
  const od = f.obj(o.outlierDetection, `${path}.outlierDetection`);
  if (od) {
    const op = `${path}.outlierDetection`;
    f.only(
      od,
      op,
      ['consecutive5xxErrors', 'interval', 'baseEjectionTime', 'maxEjectionPercent'],
      [
        'consecutiveErrors',
        'consecutiveGatewayErrors',
        'consecutiveLocalOriginFailures',
        'splitExternalLocalOriginErrors',
        'minHealthPercent',
      ],
    );
    outlierDetection = defined({
      consecutive5xxErrors: f.int(od.consecutive5xxErrors, `${op}.consecutive5xxErrors`, 0, INT32),
      intervalMs: f.duration(od.interval, `${op}.interval`),
      baseEjectionTimeMs: f.duration(od.baseEjectionTime, `${op}.baseEjectionTime`),
      maxEjectionPercent: f.int(od.maxEjectionPercent, `${op}.maxEjectionPercent`, 0, 100),
    });
  }
  return defined({ loadBalancer, connectionPool, outlierDetection });
}

export function decodeDestinationRule(
  f: ManifestFields,
  o: Obj,
  metadata: ObjectMeta,
): DestinationRuleObject {
  const spec = f.obj(o.spec, 'spec', false) ?? {};
  f.only(spec, 'spec', ['host', 'trafficPolicy', 'subsets', 'exportTo'], ['workloadSelector']);
  const trafficPolicy = decodeTrafficPolicy(f, spec.trafficPolicy, 'spec.trafficPolicy');
  const seen = new Set<string>();
  const subsets = (f.list(spec.subsets, 'spec.subsets') ?? []).flatMap((s, i): DestinationSubset[] => {
    const p = `spec.subsets[${i}]`;
    const so = f.obj(s, p);
    if (!so) return [];
    f.only(so, p, ['name', 'labels', 'trafficPolicy']);
    const name = f.str(so.name, `${p}.name`);
    if (name && !SUBSET_NAME.test(name))
      f.add(`${p}.name`, `${JSON.stringify(name)} is not a valid subset name`);
    if (seen.has(name)) f.add(`${p}.name`, `${JSON.stringify(name)} is defined twice`);
    seen.add(name);
    const tp = decodeTrafficPolicy(f, so.trafficPolicy, `${p}.trafficPolicy`);
    return [{ name, labels: f.labels(so.labels, `${p}.labels`), ...(tp && { trafficPolicy: tp }) }];
  });
  return {
    kind: 'DestinationRule',
    metadata,
    host: f.str(spec.host, 'spec.host'),
    ...(trafficPolicy && { trafficPolicy }),
    subsets,
  };
}

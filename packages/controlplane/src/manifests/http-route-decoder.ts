/**
 * Gateway API HTTPRoute (gateway.networking.k8s.io), decoded from a parsed manifest. Defaults are
 * filled in as the API defines them, and every problem is reported with its field path.
 *
 * Keys the waypoint cannot honour are refused rather than ignored: a route applied only in part
 * would do something its author did not write.
 */
import type { ManifestFields, Obj, ObjectMeta } from './manifest-fields.js';
import { type HeaderValue, headerName, REDIRECT_CODES } from './traffic-fields.js';

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

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;
const FILTER_KEYS: Record<HttpRouteFilter['type'], string> = {
  RequestHeaderModifier: 'requestHeaderModifier',
  ResponseHeaderModifier: 'responseHeaderModifier',
  RequestRedirect: 'requestRedirect',
  URLRewrite: 'urlRewrite',
  RequestMirror: 'requestMirror',
};
const FILTER_TYPES = Object.keys(FILTER_KEYS) as Array<HttpRouteFilter['type']>;

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

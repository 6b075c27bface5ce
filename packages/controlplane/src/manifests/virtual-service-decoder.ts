/**
 * Istio VirtualService (networking.istio.io), decoded from a parsed manifest. Durations become
 * milliseconds, defaults are filled in as Istio defines them, and every problem is reported with
 * its field path.
 *
 * Keys the waypoint cannot honour (CORS, delegation, ...) are refused rather than ignored: a route
 * applied only in part would do something its author did not write.
 */
import { ENVOY_RETRY_ON, type EnvoyRetryOn } from '@ambient/shared';
import type { ManifestFields, Obj, ObjectMeta } from './manifest-fields.js';
import { HEADER_NAME, type HeaderValue, headerName, REDIRECT_CODES } from './traffic-fields.js';

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
export const RETRY_ON = ENVOY_RETRY_ON;
export type RetryOnValue = EnvoyRetryOn;

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

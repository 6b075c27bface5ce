/**
 * Route selection as Envoy's router does it: routes in order, the first whose path, headers and
 * query parameters all match wins. Paths are matched without their query; prefixes are plain,
 * case-sensitive string prefixes (`/foo` matches `/foobar`) unless the route ignores case.
 */
import type { PathMatch, QueryMatch, Route, RouteMatch, RouteTable } from '../config/waypoint-config.js';
import { matchHeader } from '../match/header-match.js';
import { matchString } from '../match/string-match.js';
import { pathOnly, type RequestView, requestHeader } from './request-view.js';

export function matchPath(m: PathMatch, path: string): boolean {
  if ('regex' in m) return m.regex.test(path);
  if ('prefix' in m)
    return m.ignoreCase ? path.toLowerCase().startsWith(m.prefix.toLowerCase()) : path.startsWith(m.prefix);
  return m.ignoreCase ? path.toLowerCase() === m.exact.toLowerCase() : path === m.exact;
}

/**
 * Query parameters by name, first value kept, values not percent-decoded: Envoy's route matching
 * reads them with QueryParamsMulti::parseQueryString and takes the first value.
 */
export function parseQuery(path: string): Map<string, string> {
  const out = new Map<string, string>();
  const q = path.indexOf('?');
  if (q < 0) return out;
  const hash = path.indexOf('#', q);
  const query = path.slice(q + 1, hash < 0 ? undefined : hash);
  for (const part of query.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const name = eq < 0 ? part : part.slice(0, eq);
    if (!out.has(name)) out.set(name, eq < 0 ? '' : part.slice(eq + 1));
  }
  return out;
}

function matchQuery(list: readonly QueryMatch[], path: string): boolean {
  if (!list.length) return true;
  const params = parseQuery(path);
  return list.every((q) => {
    const v = params.get(q.name);
    if (v === undefined) return false;
    return q.match ? matchString(q.match, v) : true;
  });
}

export function matchRoute(m: RouteMatch, req: RequestView): boolean {
  return (
    matchPath(m.path, pathOnly(req.path)) &&
    m.headers.every((h) => matchHeader(h, (name) => requestHeader(req, name))) &&
    matchQuery(m.query, req.path)
  );
}

/** The first route of the table matching the request; undefined means 404 NR. */
export function selectRoute(table: RouteTable, req: RequestView): Route | undefined {
  return table.routes.find((r) => matchRoute(r.match, req));
}

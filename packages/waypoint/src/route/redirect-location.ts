/**
 * The Location of a redirect route, as Envoy's Http::Utility::newUri builds it: scheme, host and
 * port from the action or the request; the path from path_redirect (keeping the request's query
 * unless path_redirect has its own), or from the request path after the action's prefix or regex
 * rewrite; then strip_query. The request's port is dropped when the action sets a port, or when the
 * scheme changes and the port was the old scheme's default.
 */
import type { PathMatch, RedirectAction } from '../config/waypoint-config.js';
import { rewritePath } from './path-rewrite.js';

export interface RedirectRequest {
  /** `:path` with its query. */
  readonly path: string;
  /** `:authority` (Host). */
  readonly authority: string;
  /** `:scheme` of the request: `http` inside HBONE. */
  readonly scheme: string;
  /** x-forwarded-proto; Envoy's connection manager sets it to the scheme when absent. */
  readonly forwardedProto?: string;
}

function requestHost(req: RedirectRequest, newScheme: string, newPort: string): string {
  const host = req.authority;
  if (!host) return host;
  let end = host.startsWith('[') ? host.lastIndexOf(']:') : host.lastIndexOf(':');
  if (end < 0) return host;
  if (host.startsWith('[')) end += 1;
  const port = host.slice(end);
  const proto = (req.forwardedProto ?? req.scheme).toLowerCase();
  let remove = newPort !== '';
  if (newScheme !== proto) {
    remove ||= proto === 'https' && port === ':443';
    remove ||= proto === 'http' && port === ':80';
  }
  return remove ? host.slice(0, end) : host;
}

export function redirectLocation(action: RedirectAction, match: PathMatch, req: RedirectRequest): string {
  const scheme = action.scheme ?? req.scheme;
  const port = action.port ? `:${action.port}` : '';
  const host = action.host ?? requestHost(req, scheme, port);
  const pathHasQuery = action.path?.includes('?') ?? false;
  let path: string;
  if (action.path) {
    const q = req.path.indexOf('?');
    path = pathHasQuery || q < 0 ? action.path : action.path + req.path.slice(q);
  } else {
    path = rewritePath(req.path, match, {
      ...(action.prefixRewrite && { prefixRewrite: action.prefixRewrite }),
      ...(action.regexRewrite && { regexRewrite: action.regexRewrite }),
    });
  }
  if (!path.startsWith('/')) path = `/${path}`;
  if (action.stripQuery && !pathHasQuery) {
    const q = path.indexOf('?');
    if (q >= 0) path = path.slice(0, q);
  }
  return `${scheme}://${host}${port}${path}`;
}

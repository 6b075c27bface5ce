/**
 * Path rewriting as Envoy's router: prefix_rewrite replaces the part the route matched (its prefix,
 * its exact path, or for a regex route the whole path) and keeps the rest, query included;
 * regex_rewrite replaces every match in the path and keeps the query.
 */
import type { PathMatch, RewriteRegex } from '../config/waypoint-config.js';
import { pathOnly } from './request-view.js';

export interface PathRewrite {
  readonly prefixRewrite?: string;
  readonly regexRewrite?: { readonly pattern: RewriteRegex; readonly substitution: string };
}

/** The rewritten `:path` (with query), or the path unchanged when the route rewrites nothing. */
export function rewritePath(path: string, match: PathMatch, rewrite: PathRewrite): string {
  if (rewrite.prefixRewrite) {
    const matched =
      'prefix' in match ? match.prefix.length : 'exact' in match ? match.exact.length : pathOnly(path).length;
    return rewrite.prefixRewrite + path.slice(matched);
  }
  if (rewrite.regexRewrite) {
    const just = pathOnly(path);
    return (
      rewrite.regexRewrite.pattern.replaceAll(just, rewrite.regexRewrite.substitution) +
      path.slice(just.length)
    );
  }
  return path;
}

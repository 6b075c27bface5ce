/**
 * Envoy's HeaderMatcher semantics (HeaderUtility::matchHeaders). A value matcher never matches an
 * absent header, inverted or not; a presence matcher is inverted like any other.
 */
import type { HeaderMatch } from '../config/waypoint-config.js';
import { matchString } from './string-match.js';

/** Looks up a request header by lower-case name, pseudo-headers (`:path`) included. */
export type HeaderLookup = (name: string) => string | undefined;

export function matchHeader(m: HeaderMatch, lookup: HeaderLookup): boolean {
  const value = lookup(m.name);
  if (!m.match) return (value !== undefined) !== m.invert;
  if (value === undefined) return false;
  return matchString(m.match, value) !== m.invert;
}

/**
 * Applies a route's HeaderMutation as Envoy's HeaderParser does: removals first, then additions in
 * order; an appending addition adds another value, an overwriting one replaces every value.
 */
import type { HeaderMutation } from '../config/waypoint-config.js';

/** Lower-case names; a repeated header holds an array (as Node's http modules report them). */
export type HeaderValues = Readonly<Record<string, string | readonly string[] | undefined>>;

/** A new header object; `headers` is left untouched. */
export function applyHeaderMutation(
  headers: HeaderValues,
  mutation: HeaderMutation,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    out[name] = typeof value === 'string' ? value : [...value];
  }
  return mutateHeaders(out, mutation);
}

/**
 * The mutation applied to `headers` itself, for a caller that built the object and owns it (no
 * copy per request); a value list is replaced, never changed in place, so lists it shares with
 * another object stay as they are.
 */
export function mutateHeaders(
  headers: Record<string, string | string[]>,
  mutation: HeaderMutation,
): Record<string, string | string[]> {
  for (const name of mutation.remove) delete headers[name];
  for (const { name, value, append } of mutation.add) {
    const existing = headers[name];
    if (!append || existing === undefined) headers[name] = value;
    else headers[name] = Array.isArray(existing) ? [...existing, value] : [existing, value];
  }
  return headers;
}

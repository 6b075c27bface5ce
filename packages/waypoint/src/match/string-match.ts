/**
 * Envoy's StringMatcher semantics: exact, prefix, suffix and contains compare code units, with
 * ignore_case folding both sides; regexes were compiled to match the whole value.
 */
import type { StringMatch } from '../config/waypoint-config.js';

export function matchString(m: StringMatch, value: string): boolean {
  if ('regex' in m) return m.regex.test(value);
  const v = m.ignoreCase ? value.toLowerCase() : value;
  if ('exact' in m) return v === (m.ignoreCase ? m.exact.toLowerCase() : m.exact);
  if ('prefix' in m) return v.startsWith(m.ignoreCase ? m.prefix.toLowerCase() : m.prefix);
  if ('suffix' in m) return v.endsWith(m.ignoreCase ? m.suffix.toLowerCase() : m.suffix);
  return v.includes(m.ignoreCase ? m.contains.toLowerCase() : m.contains);
}

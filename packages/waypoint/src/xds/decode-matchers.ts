/**
 * Envoy's matcher and header-option messages, shared by routes and RBAC, to domain values.
 */

import type {
  WireHeaderMatcher,
  WireHeaderValueOption,
  WireQueryParameterMatcher,
  WireRegexMatchAndSubstitute,
  WireRegexMatcher,
  WireStringMatcher,
} from '@ambient/shared';
import type { HeaderMatch, HeaderMutation, QueryMatch, StringMatch } from '../config/waypoint-config.js';
import { at, type DecodeContext } from './decode-context.js';
import { checkRe2Substitution, compileRe2, type Re2Regex, type RegexMode } from './re2-regex.js';

export function regex(
  m: WireRegexMatcher | null | undefined,
  mode: RegexMode,
  path: string,
  ctx: DecodeContext,
): Re2Regex | undefined {
  if (!m?.regex) {
    ctx.problem(at(path, 'regex'), 'is required');
    return undefined;
  }
  const r = compileRe2(m.regex, mode);
  if (r.ok) return r.value;
  for (const p of r.problems) ctx.problem(at(path, 'regex'), p.message);
  return undefined;
}

export function regexRewrite(
  m: WireRegexMatchAndSubstitute,
  path: string,
  ctx: DecodeContext,
): { pattern: Re2Regex; substitution: string } | undefined {
  const pattern = regex(m.pattern, 'global', at(path, 'pattern'), ctx);
  if (!pattern) return undefined;
  const bad = checkRe2Substitution(m.substitution, pattern.groups);
  if (bad) {
    ctx.problem(at(path, 'substitution'), bad);
    return undefined;
  }
  return { pattern, substitution: m.substitution };
}

function nonEmpty(v: string | undefined, path: string, ctx: DecodeContext): string {
  if (!v) ctx.problem(path, 'must not be empty');
  return v ?? '';
}

export function stringMatch(m: WireStringMatcher, path: string, ctx: DecodeContext): StringMatch | undefined {
  const ignoreCase = m.ignoreCase ? { ignoreCase: true } : {};
  switch (m.matchPattern) {
    case 'exact':
      return { exact: m.exact ?? '', ...ignoreCase };
    case 'prefix':
      return { prefix: nonEmpty(m.prefix, at(path, 'prefix'), ctx), ...ignoreCase };
    case 'suffix':
      return { suffix: nonEmpty(m.suffix, at(path, 'suffix'), ctx), ...ignoreCase };
    case 'contains':
      return { contains: nonEmpty(m.contains, at(path, 'contains'), ctx), ...ignoreCase };
    case 'safeRegex': {
      if (m.ignoreCase) ctx.problem(at(path, 'ignore_case'), 'has no effect on safe_regex: Envoy rejects it');
      const r = regex(m.safeRegex, 'full', at(path, 'safe_regex'), ctx);
      return r && { regex: r };
    }
    case 'custom':
      ctx.problem(at(path, 'custom'), 'custom string matchers are not supported');
      return undefined;
    default:
      ctx.problem(path, 'must set exact, prefix, suffix, contains or safe_regex');
      return undefined;
  }
}

export function headerMatch(m: WireHeaderMatcher, path: string, ctx: DecodeContext): HeaderMatch | undefined {
  if (!m.name) ctx.problem(at(path, 'name'), 'is required');
  const name = m.name.toLowerCase();
  if (m.treatMissingHeaderAsEmpty) ctx.problem(at(path, 'treat_missing_header_as_empty'), 'is not supported');
  let match: StringMatch | undefined;
  let invert = m.invertMatch;
  switch (m.headerMatchSpecifier) {
    case 'exactMatch':
      match = { exact: m.exactMatch ?? '' };
      break;
    case 'prefixMatch':
      match = { prefix: nonEmpty(m.prefixMatch, at(path, 'prefix_match'), ctx) };
      break;
    case 'suffixMatch':
      match = { suffix: nonEmpty(m.suffixMatch, at(path, 'suffix_match'), ctx) };
      break;
    case 'containsMatch':
      match = { contains: nonEmpty(m.containsMatch, at(path, 'contains_match'), ctx) };
      break;
    case 'safeRegexMatch': {
      const r = regex(m.safeRegexMatch, 'full', at(path, 'safe_regex_match'), ctx);
      if (!r) return undefined;
      match = { regex: r };
      break;
    }
    case 'stringMatch':
      if (!m.stringMatch) return undefined;
      match = stringMatch(m.stringMatch, at(path, 'string_match'), ctx);
      if (!match) return undefined;
      break;
    case 'presentMatch':
      // present_match: false matches when the header is absent: presence, inverted.
      if (m.presentMatch === false) invert = !invert;
      break;
    case 'rangeMatch':
      ctx.problem(at(path, 'range_match'), 'is not supported');
      return undefined;
    default:
      // No specifier: Envoy matches on presence.
      break;
  }
  return match ? { name, match, invert } : { name, invert };
}

export function queryMatch(
  m: WireQueryParameterMatcher,
  path: string,
  ctx: DecodeContext,
): QueryMatch | undefined {
  if (!m.name) ctx.problem(at(path, 'name'), 'is required');
  if (m.queryParameterMatchSpecifier === 'stringMatch' && m.stringMatch) {
    const match = stringMatch(m.stringMatch, at(path, 'string_match'), ctx);
    return match && { name: m.name, match };
  }
  if (m.queryParameterMatchSpecifier === 'presentMatch' && m.presentMatch === false) {
    ctx.problem(at(path, 'present_match'), 'false is not supported (Envoy requires true)');
    return undefined;
  }
  return { name: m.name };
}

const APPEND_IF_EXISTS_OR_ADD = 0;
const OVERWRITE_IF_EXISTS_OR_ADD = 2;
const APPEND_ACTIONS = [
  'APPEND_IF_EXISTS_OR_ADD',
  'ADD_IF_ABSENT',
  'OVERWRITE_IF_EXISTS_OR_ADD',
  'OVERWRITE_IF_EXISTS',
];

/** Envoy refuses to let route config modify pseudo-headers and Host. */
function modifiable(name: string): boolean {
  return !name.startsWith(':') && name !== 'host';
}

/**
 * Header options and removals to a HeaderMutation: removals apply first, then additions in order,
 * as Envoy's HeaderParser. An empty value is dropped unless keep_empty_value, as Envoy does.
 */
export function headerMutation(
  add: readonly WireHeaderValueOption[],
  remove: readonly string[],
  addPath: string,
  removePath: string,
  ctx: DecodeContext,
): HeaderMutation {
  const adds: Array<{ name: string; value: string; append: boolean }> = [];
  add.forEach((o, i) => {
    const p = `${addPath}[${i}]`;
    if (!o.header) {
      ctx.problem(at(p, 'header'), 'is required');
      return;
    }
    const name = o.header.key.toLowerCase();
    if (!name) ctx.problem(at(p, 'header.key'), 'is required');
    else if (!modifiable(name)) ctx.problem(at(p, 'header.key'), `${name} may not be modified`);
    if (o.append && o.appendAction !== APPEND_IF_EXISTS_OR_ADD)
      ctx.problem(p, 'append and append_action are mutually exclusive');
    let append = o.append ? o.append.value : true;
    if (!o.append) {
      if (o.appendAction === OVERWRITE_IF_EXISTS_OR_ADD) append = false;
      else if (o.appendAction !== APPEND_IF_EXISTS_OR_ADD)
        ctx.problem(
          at(p, 'append_action'),
          `${APPEND_ACTIONS[o.appendAction] ?? o.appendAction} is not supported: use APPEND_IF_EXISTS_OR_ADD or OVERWRITE_IF_EXISTS_OR_ADD`,
        );
    }
    const value =
      o.header.value || (o.header.rawValue?.length ? Buffer.from(o.header.rawValue).toString() : '');
    if (value || o.keepEmptyValue) adds.push({ name, value, append });
  });
  const removes = remove.map((n, i) => {
    const name = n.toLowerCase();
    if (!name) ctx.problem(`${removePath}[${i}]`, 'must not be empty');
    else if (!modifiable(name)) ctx.problem(`${removePath}[${i}]`, `${name} may not be removed`);
    return name;
  });
  return { add: adds, remove: removes };
}

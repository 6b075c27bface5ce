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
import { allFieldsHandled } from '@ambient/shared';
import type { HeaderMatch, HeaderMutation, QueryMatch, StringMatch } from '../config/waypoint-config.js';
import { at, type DecodeContext } from './decode-context.js';
import { checkRe2Substitution, compileRe2, type Re2Regex, type RegexMode } from './re2-regex.js';

export function regex(
  m: WireRegexMatcher | null | undefined,
  mode: RegexMode,
  path: string,
  ctx: DecodeContext,
): Re2Regex | undefined {
  const { regex: source, ...rest } = m ?? { regex: '' };
  allFieldsHandled(rest);
  if (!source) {
    ctx.problem(at(path, 'regex'), 'is required');
    return undefined;
  }
  const r = compileRe2(source, mode);
  if (r.ok) return r.value;
  for (const p of r.problems) ctx.problem(at(path, 'regex'), p.message);
  return undefined;
}

export function regexRewrite(
  m: WireRegexMatchAndSubstitute,
  path: string,
  ctx: DecodeContext,
): { pattern: Re2Regex; substitution: string } | undefined {
  const { pattern: wirePattern, substitution, ...rest } = m;
  allFieldsHandled(rest);
  const pattern = regex(wirePattern, 'global', at(path, 'pattern'), ctx);
  if (!pattern) return undefined;
  const bad = checkRe2Substitution(substitution, pattern.groups);
  if (bad) {
    ctx.problem(at(path, 'substitution'), bad);
    return undefined;
  }
  return { pattern, substitution };
}

function nonEmpty(v: string | undefined, path: string, ctx: DecodeContext): string {
  if (!v) ctx.problem(path, 'must not be empty');
  return v ?? '';
}

export function stringMatch(m: WireStringMatcher, path: string, ctx: DecodeContext): StringMatch | undefined {
  const { matchPattern, exact, prefix, suffix, safeRegex, contains, ignoreCase: wireIgnoreCase, ...rest } = m;
  allFieldsHandled(rest);
  const ignoreCase = wireIgnoreCase ? { ignoreCase: true } : {};
  switch (matchPattern) {
    case 'exact':
      return { exact: exact ?? '', ...ignoreCase };
    case 'prefix':
      return { prefix: nonEmpty(prefix, at(path, 'prefix'), ctx), ...ignoreCase };
    case 'suffix':
      return { suffix: nonEmpty(suffix, at(path, 'suffix'), ctx), ...ignoreCase };
    case 'contains':
      return { contains: nonEmpty(contains, at(path, 'contains'), ctx), ...ignoreCase };
    case 'safeRegex': {
      if (wireIgnoreCase)
        ctx.problem(at(path, 'ignore_case'), 'has no effect on safe_regex: Envoy rejects it');
      const r = regex(safeRegex, 'full', at(path, 'safe_regex'), ctx);
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
  const {
    name: wireName,
    headerMatchSpecifier,
    exactMatch,
    safeRegexMatch,
    presentMatch,
    prefixMatch,
    suffixMatch,
    containsMatch,
    stringMatch: wireStringMatch,
    invertMatch,
    treatMissingHeaderAsEmpty,
    ...rest
  } = m;
  allFieldsHandled(rest);
  if (!wireName) ctx.problem(at(path, 'name'), 'is required');
  const name = wireName.toLowerCase();
  if (treatMissingHeaderAsEmpty) ctx.problem(at(path, 'treat_missing_header_as_empty'), 'is not supported');
  let match: StringMatch | undefined;
  let invert = invertMatch;
  switch (headerMatchSpecifier) {
    case 'exactMatch':
      match = { exact: exactMatch ?? '' };
      break;
    case 'prefixMatch':
      match = { prefix: nonEmpty(prefixMatch, at(path, 'prefix_match'), ctx) };
      break;
    case 'suffixMatch':
      match = { suffix: nonEmpty(suffixMatch, at(path, 'suffix_match'), ctx) };
      break;
    case 'containsMatch':
      match = { contains: nonEmpty(containsMatch, at(path, 'contains_match'), ctx) };
      break;
    case 'safeRegexMatch': {
      const r = regex(safeRegexMatch, 'full', at(path, 'safe_regex_match'), ctx);
      if (!r) return undefined;
      match = { regex: r };
      break;
    }
    case 'stringMatch':
      if (!wireStringMatch) return undefined;
      match = stringMatch(wireStringMatch, at(path, 'string_match'), ctx);
      if (!match) return undefined;
      break;
    case 'presentMatch':
      // present_match: false matches when the header is absent: presence, inverted.
      if (presentMatch === false) invert = !invert;
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
  const { name, queryParameterMatchSpecifier, stringMatch: wireStringMatch, presentMatch, ...rest } = m;
  allFieldsHandled(rest);
  if (!name) ctx.problem(at(path, 'name'), 'is required');
  if (queryParameterMatchSpecifier === 'stringMatch' && wireStringMatch) {
    const match = stringMatch(wireStringMatch, at(path, 'string_match'), ctx);
    return match && { name, match };
  }
  if (queryParameterMatchSpecifier === 'presentMatch' && presentMatch === false) {
    ctx.problem(at(path, 'present_match'), 'false is not supported (Envoy requires true)');
    return undefined;
  }
  return { name };
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
    const { header, append: wireAppend, appendAction, keepEmptyValue, ...rest } = o;
    allFieldsHandled(rest);
    const p = `${addPath}[${i}]`;
    if (!header) {
      ctx.problem(at(p, 'header'), 'is required');
      return;
    }
    const { key, value: text, rawValue, ...headerRest } = header;
    allFieldsHandled(headerRest);
    const name = key.toLowerCase();
    if (!name) ctx.problem(at(p, 'header.key'), 'is required');
    else if (!modifiable(name)) ctx.problem(at(p, 'header.key'), `${name} may not be modified`);
    if (wireAppend && appendAction !== APPEND_IF_EXISTS_OR_ADD)
      ctx.problem(p, 'append and append_action are mutually exclusive');
    let append = wireAppend ? wireAppend.value : true;
    if (!wireAppend) {
      if (appendAction === OVERWRITE_IF_EXISTS_OR_ADD) append = false;
      else if (appendAction !== APPEND_IF_EXISTS_OR_ADD)
        ctx.problem(
          at(p, 'append_action'),
          `${APPEND_ACTIONS[appendAction] ?? appendAction} is not supported: use APPEND_IF_EXISTS_OR_ADD or OVERWRITE_IF_EXISTS_OR_ADD`,
        );
    }
    const value = text || (rawValue?.length ? Buffer.from(rawValue).toString() : '');
    if (value || keepEmptyValue) adds.push({ name, value, append });
  });
  const removes = remove.map((n, i) => {
    const name = n.toLowerCase();
    if (!name) ctx.problem(`${removePath}[${i}]`, 'must not be empty');
    else if (!modifiable(name)) ctx.problem(`${removePath}[${i}]`, `${name} may not be removed`);
    return name;
  });
  return { add: adds, remove: removes };
}

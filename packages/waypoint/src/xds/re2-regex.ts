/**
 * Envoy's regexes are RE2. JavaScript's differ in a few places, so a pattern is translated before
 * compiling (with the `u` flag, which is strict and code-point based like RE2):
 * - RE2-only syntax becomes its JS equivalent: `(?P<name>`, `\A`, `\z`, `\pL`, `\x{...}`, `\Q...\E`,
 *   POSIX classes (`[[:alpha:]]`), leading flag groups (`(?i)`), literal `{`/`}`/`]`, and escaped
 *   punctuation JS would reject;
 * - what RE2 rejects is rejected here too (backreferences, lookaround, ungreedy mode), so a config
 *   behaves the same on Envoy and on this waypoint.
 * JS regexes backtrack where RE2 does not; config comes from the trusted control plane.
 */
import { fail, ok, type Result } from '@ambient/shared';

/** `full`: the whole input must match (Envoy's matchers). `global`: every match, for rewrites. */
export type RegexMode = 'full' | 'global';

const JS_SYNTAX = new Set('^$\\.*+?()[]{}|/');
const POSIX: Record<string, string> = {
  alnum: '0-9A-Za-z',
  alpha: 'A-Za-z',
  ascii: '\\x00-\\x7F',
  blank: '\\t ',
  cntrl: '\\x00-\\x1F\\x7F',
  digit: '0-9',
  graph: '!-~',
  lower: 'a-z',
  print: ' -~',
  punct: '!-\\/:-@\\[-`{-~',
  space: '\\t\\n\\v\\f\\r ',
  upper: 'A-Z',
  word: '0-9A-Za-z_',
  xdigit: '0-9A-Fa-f',
};

/** A literal character; `-` needs escaping only inside a class, where it could form a range. */
function escapeLiteral(c: string, inClass: boolean): string {
  return JS_SYNTAX.has(c) || (inClass && c === '-') ? `\\${c}` : c;
}

function translate(source: string): { pattern: string; flags: string } | string {
  let i = 0;
  let flags = '';
  const lead = /^\(\?([a-zA-Z]+)\)/.exec(source);
  if (lead) {
    for (const f of lead[1] ?? '') {
      if (f === 'i' || f === 'm' || f === 's') flags += flags.includes(f) ? '' : f;
      else return `flag ${f} is not supported`;
    }
    i = lead[0].length;
  }
  let out = '';
  let inClass = false;
  let classStart = false;
  while (i < source.length) {
    const c = source[i] as string;
    const atClassStart = classStart;
    classStart = false;
    if (c === '\\') {
      const n = source[i + 1];
      if (n === undefined) return 'trailing backslash';
      if (n >= '1' && n <= '9') return 'backreferences are not supported (RE2)';
      if (n === 'Q') {
        const end = source.indexOf('\\E', i + 2);
        const literal = source.slice(i + 2, end < 0 ? source.length : end);
        out += [...literal].map((ch) => escapeLiteral(ch, inClass)).join('');
        i = end < 0 ? source.length : end + 2;
        continue;
      }
      if (n === 'C') return '\\C is not supported';
      if (n === 'A' || n === 'z') {
        if (inClass) return `\\${n} inside a character class`;
        out += n === 'A' ? '(?<![\\s\\S])' : '(?![\\s\\S])';
        i += 2;
        continue;
      }
      if (n === 'a') {
        out += '\\x07';
        i += 2;
        continue;
      }
      if (n === 'p' || n === 'P') {
        if (source[i + 2] === '{') {
          const end = source.indexOf('}', i + 3);
          if (end < 0) return `unterminated \\${n}{`;
          out += source.slice(i, end + 1);
          i = end + 1;
          continue;
        }
        const name = source[i + 2];
        if (!name) return `\\${n} without a class name`;
        out += `\\${n}{${name}}`;
        i += 3;
        continue;
      }
      if (n === 'x' && source[i + 2] === '{') {
        const end = source.indexOf('}', i + 3);
        if (end < 0) return 'unterminated \\x{';
        out += `\\u{${source.slice(i + 3, end)}}`;
        i = end + 1;
        continue;
      }
      if (!/[0-9A-Za-z]/.test(n)) {
        // RE2 lets any punctuation be escaped; JS (u flag) only its own syntax characters.
        out += escapeLiteral(n, inClass);
        i += 2;
        continue;
      }
      out += `\\${n}`;
      i += 2;
      continue;
    }
    if (inClass) {
      if (c === '[' && source[i + 1] === ':') {
        const end = source.indexOf(':]', i + 2);
        const name = end < 0 ? undefined : source.slice(i + 2, end);
        if (name?.startsWith('^')) return `negated POSIX class [:${name}:] is not supported`;
        const range = name === undefined ? undefined : POSIX[name];
        if (range === undefined) return `unknown POSIX class at ${i}`;
        out += range;
        i = end + 2;
        continue;
      }
      if (c === ']' && !atClassStart) inClass = false;
      out += c === ']' && atClassStart ? '\\]' : c === '[' ? '\\[' : c;
      if (c === '^' && atClassStart && source[i - 1] === '[') classStart = true;
      i++;
      continue;
    }
    if (c === '[') {
      inClass = true;
      classStart = true;
      out += c;
      i++;
      continue;
    }
    if (c === '(' && source[i + 1] === '?') {
      const rest = source.slice(i + 2);
      if (rest.startsWith('P<')) {
        out += '(?<';
        i += 4;
        continue;
      }
      if (rest.startsWith('P=')) return 'backreferences are not supported (RE2)';
      if (/^(=|!|<=|<!)/.test(rest)) return 'lookaround is not supported (RE2)';
      if (rest.startsWith(':') || /^<[A-Za-z_]/.test(rest)) {
        out += '(?';
        i += 2;
        continue;
      }
      return 'flag groups are only supported at the start of the pattern';
    }
    if (c === '{') {
      // RE2 reads a brace that is not a repetition as a literal; JS (u flag) rejects it.
      const rep = /^\{\d+(,\d*)?\}/.exec(source.slice(i));
      if (rep) {
        out += rep[0];
        i += rep[0].length;
        continue;
      }
      out += '\\{';
      i++;
      continue;
    }
    out += c === '}' || c === ']' ? `\\${c}` : c;
    i++;
  }
  if (inClass) return 'missing ]';
  return { pattern: out, flags };
}

/** Compiles an RE2 pattern for the given use; the problem (with an empty path) says why it cannot. */
export function compileRe2(source: string, mode: RegexMode): Result<RegExp> {
  const t = translate(source);
  if (typeof t === 'string') return fail({ path: '', message: `regex ${JSON.stringify(source)}: ${t}` });
  const multiline = t.flags.includes('m');
  const pattern =
    mode === 'full'
      ? multiline
        ? `(?<![\\s\\S])(?:${t.pattern})(?![\\s\\S])`
        : `^(?:${t.pattern})$`
      : t.pattern;
  try {
    return ok(new RegExp(pattern, `${t.flags}u${mode === 'global' ? 'g' : ''}`));
  } catch (err) {
    return fail({ path: '', message: `regex ${JSON.stringify(source)}: ${(err as Error).message}` });
  }
}

/**
 * RE2 substitutions name groups `\1` (`\0` the whole match, `\\` a backslash); JavaScript's
 * replace names them `$1` and `$&` and reads every `$` specially.
 */
export function re2Substitution(substitution: string): string {
  return substitution.replace(/\\(\d)|\\\\|\$/g, (m, digit: string | undefined) => {
    if (digit !== undefined) return digit === '0' ? '$&' : `$${digit}`;
    return m === '$' ? '$$' : '\\';
  });
}

/**
 * Envoy's regexes are RE2: every regex that comes from config is compiled by re2js, a port of
 * RE2 that matches in time linear in the input. A JavaScript RegExp backtracks, so a valid RE2
 * pattern such as `(a+)+b` could take seconds of CPU on one crafted request; never use one here.
 * What RE2 accepts is accepted and what it rejects is rejected, with RE2's own message.
 */
import { fail, ok, type Result } from '@ambient/shared';
import { RE2JS } from 're2js';
import type { ConfigRegex, RewriteRegex } from '../config/waypoint-config.js';

/** `full`: the whole input must match (Envoy's matchers). `global`: every match, for rewrites. */
export type RegexMode = 'full' | 'global';

/** A compiled RE2 pattern: full-match `test` for matchers, `replaceAll` for regex_rewrite. */
export class Re2Regex implements ConfigRegex, RewriteRegex {
  readonly #re: RE2JS;

  constructor(
    readonly source: string,
    readonly mode: RegexMode,
    re: RE2JS,
  ) {
    this.#re = re;
  }

  /** Full mode: whether the whole input matches. Global mode: whether any part does. */
  test(input: string): boolean {
    return this.mode === 'full' ? this.#re.testExact(input) : this.#re.test(input);
  }

  /**
   * Every non-overlapping match replaced by an RE2 substitution: `\0` the match, `\1`..`\9` its
   * groups (empty when a group did not take part), `\\` a backslash, anything else literal.
   */
  replaceAll(input: string, substitution: string): string {
    const parts = parseSubstitution(substitution);
    return this.#re.matcher(input).replaceAll((...args: unknown[]) => {
      let out = '';
      for (const p of parts) {
        if (typeof p === 'string') out += p;
        else {
          const g = args[p];
          out += typeof g === 'string' ? g : '';
        }
      }
      return out;
    });
  }

  /** How many capturing groups the pattern has. */
  get groups(): number {
    return this.#re.groupCount();
  }

  /** Config dumps show the pattern. */
  toJSON(): string {
    return this.source;
  }
}

/** Compiles an RE2 pattern for the given use; the problem (with an empty path) says why it cannot. */
export function compileRe2(source: string, mode: RegexMode): Result<Re2Regex> {
  try {
    return ok(new Re2Regex(source, mode, RE2JS.compile(source)));
  } catch (err) {
    return fail({ path: '', message: `regex ${JSON.stringify(source)}: ${(err as Error).message}` });
  }
}

/** An RE2 substitution as literal text and group numbers (checked at decode time). */
function parseSubstitution(substitution: string): Array<string | number> {
  const parts: Array<string | number> = [];
  let text = '';
  for (let i = 0; i < substitution.length; i++) {
    const c = substitution[i] as string;
    const n = substitution[i + 1];
    if (c === '\\' && n !== undefined && n >= '0' && n <= '9') {
      if (text) parts.push(text);
      text = '';
      parts.push(Number(n));
      i++;
    } else if (c === '\\' && n === '\\') {
      text += '\\';
      i++;
    } else text += c;
  }
  if (text) parts.push(text);
  return parts;
}

/**
 * Checks a regex_rewrite substitution as RE2::Rewrite does: a backslash is followed by a digit
 * naming a group the pattern has, or by another backslash.
 */
export function checkRe2Substitution(substitution: string, groups: number): string | undefined {
  for (let i = 0; i < substitution.length; i++) {
    if (substitution[i] !== '\\') continue;
    const n = substitution[i + 1];
    if (n === '\\') {
      i++;
      continue;
    }
    if (n === undefined || n < '0' || n > '9')
      return `invalid rewrite pattern: ${JSON.stringify(substitution)}`;
    if (Number(n) > groups)
      return `rewrite ${JSON.stringify(substitution)} names group \\${n}; the pattern has ${groups}`;
    i++;
  }
  return undefined;
}

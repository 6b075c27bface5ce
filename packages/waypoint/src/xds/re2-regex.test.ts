import { describe, expect, it } from 'vitest';
import { checkRe2Substitution, compileRe2, type Re2Regex } from './re2-regex.js';

function full(source: string): Re2Regex {
  const r = compileRe2(source, 'full');
  if (!r.ok) throw new Error(r.problems[0]?.message);
  return r.value;
}

function error(source: string): string {
  const r = compileRe2(source, 'full');
  if (r.ok) throw new Error(`${source} compiled`);
  return r.problems[0]?.message ?? '';
}

describe('compileRe2', () => {
  it('matches the whole input in full mode, as Envoy matchers do', () => {
    const r = full('/api/v[0-9]+');
    expect(r.test('/api/v1')).toBe(true);
    expect(r.test('/api/v1/x')).toBe(false);
    expect(r.test('x/api/v1')).toBe(false);
    expect(full('a|b').test('ab')).toBe(false);
    expect(full('a|b').test('b')).toBe(true);
  });

  it('finds every match in global mode, for rewrites', () => {
    const r = compileRe2('o', 'global');
    expect(r.ok && r.value.replaceAll('foo', '0')).toBe('f00');
  });

  it('accepts RE2 syntax', () => {
    expect(full('(?P<ver>v[0-9])/x').test('v1/x')).toBe(true);
    expect(full('(?i)abc').test('ABC')).toBe(true);
    expect(full('(?s)a.b').test('a\nb')).toBe(true);
    expect(full('(?m)a$').test('a')).toBe(true);
    expect(full('\\Aab\\z').test('ab')).toBe(true);
    expect(full('\\pL+').test('héllo')).toBe(true);
    expect(full('\\PL').test('1')).toBe(true);
    expect(full('\\p{Lu}').test('A')).toBe(true);
    expect(full('\\x{41}').test('A')).toBe(true);
    expect(full('\\x41').test('A')).toBe(true);
    expect(full('\\Qa.b*\\E').test('a.b*')).toBe(true);
    expect(full('\\Qa.b*\\E').test('axbb')).toBe(false);
    expect(full('\\Qa.b').test('a.b')).toBe(true);
    expect(full('[[:digit:]]+').test('123')).toBe(true);
    expect(full('[[:alpha:][:digit:]_]+').test('a_1')).toBe(true);
    expect(full('[]a]+').test(']a')).toBe(true);
    expect(full('[^]a]').test('b')).toBe(true);
    expect(full('[^]a]').test(']')).toBe(false);
    expect(full('a{,2}').test('a{,2}')).toBe(true);
    expect(full('a{2}').test('aa')).toBe(true);
    expect(full('a{1,}').test('aaa')).toBe(true);
    expect(full('}').test('}')).toBe(true);
    expect(full(']').test(']')).toBe(true);
    expect(full('\\-\\#\\:\\<').test('-#:<')).toBe(true);
    expect(full('[a\\-z]+').test('-')).toBe(true);
    expect(full('[a\\-z]+').test('b')).toBe(false);
    expect(full('\\a').test('\x07')).toBe(true);
    expect(full('a\\.b/c').test('a.b/c')).toBe(true);
    expect(full('(?:ab)+').test('abab')).toBe(true);
    expect(full('(?<n>a)').test('a')).toBe(true);
  });

  it('keeps . from matching newlines, as RE2', () => {
    expect(full('a.b').test('a\nb')).toBe(false);
  });

  it('rejects what RE2 rejects, with its message', () => {
    expect(error('(a)\\1')).toContain('invalid escape sequence: `\\1`');
    expect(error('(?P<x>a)(?P=x)')).toContain('invalid or unsupported Perl syntax');
    expect(error('a(?=b)')).toContain('invalid or unsupported Perl syntax');
    expect(error('a(?!b)')).toContain('invalid or unsupported Perl syntax');
    expect(error('(?<=a)b')).toContain('invalid named capture');
    expect(error('(?<!a)b')).toContain('invalid named capture');
    expect(error('\\C')).toContain('invalid escape sequence');
  });

  it('accepts what RE2 accepts that a translation to JavaScript did not', () => {
    // RE2 has the ungreedy flag, flag groups anywhere and negated POSIX classes.
    expect(full('(?U)a+').test('aaa')).toBe(true);
    expect(full('a(?i)b').test('aB')).toBe(true);
    expect(full('a(?i)b').test('AB')).toBe(false);
    expect(full('[[:^alpha:]]').test('1')).toBe(true);
    expect(full('[[:^alpha:]]').test('a')).toBe(false);
  });

  it('reports patterns that do not compile', () => {
    expect(error('a(')).toMatch(/^regex "a\(": /);
    expect(error('[a')).toContain('missing closing ]');
    expect(error('a\\')).toContain('trailing backslash');
    expect(error('[[:nope:]]')).toContain('invalid character class range');
    expect(error('\\x{41')).toContain('invalid escape sequence');
    expect(error('\\p')).toContain('invalid character class range');
    expect(error('[\\A]')).toContain('invalid escape sequence');
    expect(error('*')).toMatch(/regex "\*"/);
  });

  it('matches in linear time: a nested quantifier does not backtrack', () => {
    // A backtracking engine takes exponential time here (2^5000 paths); RE2 answers at once.
    const r = full('/(a+)+b');
    expect(r.test(`/${'a'.repeat(5000)}c`)).toBe(false);
    expect(r.test(`/${'a'.repeat(5000)}b`)).toBe(true);
    const rewrite = compileRe2('(a+)+b', 'global');
    expect(rewrite.ok && rewrite.value.replaceAll(`/${'a'.repeat(5000)}c`, 'x')).toBe(
      `/${'a'.repeat(5000)}c`,
    );
  });
});

describe('RE2 substitutions', () => {
  const rewrite = (source: string, input: string, substitution: string) => {
    const r = compileRe2(source, 'global');
    if (!r.ok) throw new Error(r.problems[0]?.message);
    return r.value.replaceAll(input, substitution);
  };

  it('replace \\N with group N and \\0 with the whole match', () => {
    expect(rewrite('^/service/([^/]+)(/.*)$', '/service/foo/v1/api', '\\2/instance/\\1')).toBe(
      '/v1/api/instance/foo',
    );
    expect(rewrite('b+', 'abbc', '[\\0]')).toBe('a[bb]c');
    expect(rewrite('(x)?b', 'ab', '<\\1>')).toBe('a<>');
  });

  it('keep dollars literal and read \\\\ as one backslash', () => {
    expect(rewrite('x', 'x', '$1 costs $$')).toBe('$1 costs $$');
    expect(rewrite('x', 'x', '$&\\\\')).toBe('$&\\');
  });

  it('are checked against the pattern as RE2::Rewrite does', () => {
    expect(checkRe2Substitution('\\1/\\0\\\\', 1)).toBeUndefined();
    expect(checkRe2Substitution('\\2', 1)).toContain('names group \\2');
    expect(checkRe2Substitution('\\x', 1)).toContain('invalid rewrite pattern');
    expect(checkRe2Substitution('a\\', 1)).toContain('invalid rewrite pattern');
  });
});

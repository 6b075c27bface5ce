import { describe, expect, it } from 'vitest';
import { compileRe2, re2Substitution } from './re2-regex.js';

function full(source: string): RegExp {
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
    expect(r.ok && 'foo'.replace(r.value, '0')).toBe('f00');
  });

  it('translates RE2-only syntax', () => {
    expect(full('(?P<ver>v[0-9])/x').exec('v1/x')?.groups?.ver).toBe('v1');
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

  it('rejects what RE2 rejects', () => {
    expect(error('(a)\\1')).toContain('backreferences are not supported');
    expect(error('(?P<x>a)(?P=x)')).toContain('backreferences are not supported');
    expect(error('a(?=b)')).toContain('lookaround is not supported');
    expect(error('a(?!b)')).toContain('lookaround is not supported');
    expect(error('(?<=a)b')).toContain('lookaround is not supported');
    expect(error('(?<!a)b')).toContain('lookaround is not supported');
    expect(error('(?U)a+')).toContain('flag U is not supported');
    expect(error('a(?i)b')).toContain('flag groups are only supported at the start');
    expect(error('\\C')).toContain('\\C is not supported');
  });

  it('reports patterns that do not compile', () => {
    expect(error('a(')).toMatch(/^regex "a\(": /);
    expect(error('[a')).toContain('missing ]');
    expect(error('a\\')).toContain('trailing backslash');
    expect(error('[[:nope:]]')).toContain('unknown POSIX class');
    expect(error('[[:^alpha:]]')).toContain('negated POSIX class');
    expect(error('\\x{41')).toContain('unterminated');
    expect(error('\\p')).toContain('without a class name');
    expect(error('[\\A]')).toContain('inside a character class');
    expect(error('*')).toMatch(/regex "\*"/);
  });
});

describe('re2Substitution', () => {
  it('turns RE2 group references into JavaScript ones', () => {
    expect(re2Substitution('\\2/instance/\\1')).toBe('$2/instance/$1');
    expect(re2Substitution('[\\0]')).toBe('[$&]');
  });

  it('keeps dollars and backslashes literal', () => {
    expect(re2Substitution('$1 costs $$')).toBe('$$1 costs $$$$');
    expect('x'.replace(/x/, re2Substitution('$1\\\\'))).toBe('$1\\');
  });
});

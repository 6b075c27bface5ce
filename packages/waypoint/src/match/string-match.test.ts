import { describe, expect, it } from 'vitest';
import { matchString } from './string-match.js';

describe('matchString', () => {
  it('matches exact, prefix, suffix and contains case-sensitively by default', () => {
    expect(matchString({ exact: 'abc' }, 'abc')).toBe(true);
    expect(matchString({ exact: 'abc' }, 'ABC')).toBe(false);
    expect(matchString({ exact: '' }, '')).toBe(true);
    expect(matchString({ prefix: 'ab' }, 'abc')).toBe(true);
    expect(matchString({ prefix: 'ab' }, 'xabc')).toBe(false);
    expect(matchString({ suffix: 'bc' }, 'abc')).toBe(true);
    expect(matchString({ suffix: 'bc' }, 'bcx')).toBe(false);
    expect(matchString({ contains: 'b' }, 'abc')).toBe(true);
    expect(matchString({ contains: 'B' }, 'abc')).toBe(false);
  });

  it('folds case on both sides with ignoreCase', () => {
    expect(matchString({ exact: 'AbC', ignoreCase: true }, 'aBc')).toBe(true);
    expect(matchString({ prefix: 'AB', ignoreCase: true }, 'abc')).toBe(true);
    expect(matchString({ suffix: 'BC', ignoreCase: true }, 'abc')).toBe(true);
    expect(matchString({ contains: 'B', ignoreCase: true }, 'abc')).toBe(true);
    expect(matchString({ contains: 'X', ignoreCase: true }, 'abc')).toBe(false);
  });

  it('tests regexes as compiled', () => {
    expect(matchString({ regex: /^a+$/ }, 'aaa')).toBe(true);
    expect(matchString({ regex: /^a+$/ }, 'aab')).toBe(false);
  });
});

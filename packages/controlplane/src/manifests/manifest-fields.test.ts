import { describe, expect, it } from 'vitest';
import { ManifestFields } from './manifest-fields.js';

function regexProblems(source: string): string[] {
  const f = new ManifestFields();
  f.regex(source, 'spec.value');
  return f.problems.map((p) => p.message);
}

describe('ManifestFields.regex', () => {
  it('accepts RE2 patterns, including those a JavaScript RegExp would reject', () => {
    expect(regexProblems('/api/v[0-9]+/(?P<rest>.*)')).toEqual([]);
    expect(regexProblems('(?U)a+\\z')).toEqual([]);
    expect(regexProblems('/(a+)+b')).toEqual([]);
  });

  it('refuses what RE2 refuses even where JavaScript would compile it, so the proxies never get it', () => {
    for (const source of ['(a)\\1', 'a(?=b)', '(?<!a)b', '\\C']) {
      expect(regexProblems(source)).toEqual([expect.stringContaining(`is not a valid regular expression`)]);
    }
    expect(regexProblems('(')).toEqual([expect.stringContaining('"(" is not a valid regular expression')]);
  });
});

import { describe, expect, it } from 'vitest';
import { compileRe2 } from '../xds/re2-regex.js';
import { rewritePath } from './path-rewrite.js';

function rewriteRegex(source: string) {
  const r = compileRe2(source, 'global');
  if (!r.ok) throw new Error(r.problems[0]?.message);
  return r.value;
}

describe('rewritePath', () => {
  it('replaces the matched prefix and keeps the rest, query included', () => {
    expect(rewritePath('/old/a/b?x=1', { prefix: '/old/' }, { prefixRewrite: '/new/' })).toBe('/new/a/b?x=1');
    expect(rewritePath('/old', { prefix: '/old' }, { prefixRewrite: '/' })).toBe('/');
    expect(rewritePath('/prefix/x', { prefix: '/prefix' }, { prefixRewrite: '/' })).toBe('//x');
  });

  it('replaces by length under a case-insensitive prefix', () => {
    expect(rewritePath('/OLD/a', { prefix: '/old/', ignoreCase: true }, { prefixRewrite: '/new/' })).toBe(
      '/new/a',
    );
  });

  it('replaces the whole path of an exact route, keeping the query', () => {
    expect(rewritePath('/a?q=1', { exact: '/a' }, { prefixRewrite: '/b' })).toBe('/b?q=1');
  });

  it('replaces the whole path of a regex route, keeping the query', () => {
    expect(rewritePath('/v1/x?q', { regex: /^\/v1\/.*$/ }, { prefixRewrite: '/all' })).toBe('/all?q');
  });

  it('applies regex_rewrite to every match in the path, not the query', () => {
    const regexRewrite = { pattern: rewriteRegex('o'), substitution: '0' };
    expect(rewritePath('/foo/boo?o=o', { prefix: '/' }, { regexRewrite })).toBe('/f00/b00?o=o');
    const groups = { pattern: rewriteRegex('^/service/([^/]+)(/.*)$'), substitution: '\\2/instance/\\1' };
    expect(rewritePath('/service/foo/v1/api?x', { prefix: '/' }, { regexRewrite: groups })).toBe(
      '/v1/api/instance/foo?x',
    );
  });

  it('leaves the path alone without a rewrite', () => {
    expect(rewritePath('/a?b', { prefix: '/' }, {})).toBe('/a?b');
  });
});

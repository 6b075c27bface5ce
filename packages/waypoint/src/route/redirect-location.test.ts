import { describe, expect, it } from 'vitest';
import type { RedirectAction } from '../config/waypoint-config.js';
import { compileRe2 } from '../xds/re2-regex.js';
import { redirectLocation } from './redirect-location.js';

const base = { path: '/a/b?x=1', authority: 'reviews:9080', scheme: 'http' };
const redirect = (fields: Partial<RedirectAction>): RedirectAction => ({
  kind: 'redirect',
  status: 301,
  ...fields,
});

describe('redirectLocation', () => {
  it('keeps everything of the request when the action changes nothing', () => {
    expect(redirectLocation(redirect({}), { prefix: '/' }, base)).toBe('http://reviews:9080/a/b?x=1');
  });

  it('replaces the host and keeps the request port only when no port is given', () => {
    expect(redirectLocation(redirect({ host: 'example.com' }), { prefix: '/' }, base)).toBe(
      'http://example.com/a/b?x=1',
    );
    expect(redirectLocation(redirect({ port: 8443 }), { prefix: '/' }, base)).toBe(
      'http://reviews:8443/a/b?x=1',
    );
    expect(redirectLocation(redirect({ host: 'e.com', port: 81 }), { prefix: '/' }, base)).toBe(
      'http://e.com:81/a/b?x=1',
    );
  });

  it('drops the default port of the old scheme when the scheme changes', () => {
    const req = { ...base, authority: 'reviews:80' };
    expect(redirectLocation(redirect({ scheme: 'https' }), { prefix: '/' }, req)).toBe(
      'https://reviews/a/b?x=1',
    );
    expect(redirectLocation(redirect({ scheme: 'https' }), { prefix: '/' }, base)).toBe(
      'https://reviews:9080/a/b?x=1',
    );
    expect(redirectLocation(redirect({}), { prefix: '/' }, req)).toBe('http://reviews:80/a/b?x=1');
    const tls = { ...base, authority: 'reviews:443', forwardedProto: 'https' };
    expect(redirectLocation(redirect({ scheme: 'http' }), { prefix: '/' }, tls)).toBe(
      'http://reviews/a/b?x=1',
    );
  });

  it('handles IPv6 authorities', () => {
    const req = { ...base, authority: '[fd00::1]:80' };
    expect(redirectLocation(redirect({ scheme: 'https' }), { prefix: '/' }, req)).toBe(
      'https://[fd00::1]/a/b?x=1',
    );
    expect(
      redirectLocation(redirect({ port: 1 }), { prefix: '/' }, { ...base, authority: '[fd00::1]' }),
    ).toBe('http://[fd00::1]:1/a/b?x=1');
  });

  it('keeps the request query with path_redirect, unless the redirect has its own', () => {
    expect(redirectLocation(redirect({ path: '/new' }), { prefix: '/' }, base)).toBe(
      'http://reviews:9080/new?x=1',
    );
    expect(redirectLocation(redirect({ path: '/new?y=2' }), { prefix: '/' }, base)).toBe(
      'http://reviews:9080/new?y=2',
    );
    expect(redirectLocation(redirect({ path: '/new' }), { prefix: '/' }, { ...base, path: '/a' })).toBe(
      'http://reviews:9080/new',
    );
  });

  it('strips the query on request, but never the redirect path own query', () => {
    expect(redirectLocation(redirect({ stripQuery: true }), { prefix: '/' }, base)).toBe(
      'http://reviews:9080/a/b',
    );
    expect(redirectLocation(redirect({ path: '/n', stripQuery: true }), { prefix: '/' }, base)).toBe(
      'http://reviews:9080/n',
    );
    expect(redirectLocation(redirect({ path: '/n?k', stripQuery: true }), { prefix: '/' }, base)).toBe(
      'http://reviews:9080/n?k',
    );
  });

  it('rewrites the matched prefix or by regex', () => {
    expect(redirectLocation(redirect({ prefixRewrite: '/v2/' }), { prefix: '/a/' }, base)).toBe(
      'http://reviews:9080/v2/b?x=1',
    );
    const compiled = compileRe2('b', 'global');
    if (!compiled.ok) throw new Error('b');
    const regexRewrite = { pattern: compiled.value, substitution: 'c' };
    expect(redirectLocation(redirect({ regexRewrite }), { prefix: '/' }, base)).toBe(
      'http://reviews:9080/a/c?x=1',
    );
  });

  it('adds a leading slash to a relative path', () => {
    expect(redirectLocation(redirect({ path: 'rel' }), { prefix: '/' }, { ...base, path: '/a' })).toBe(
      'http://reviews:9080/rel',
    );
  });
});

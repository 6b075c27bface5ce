import { describe, expect, it } from 'vitest';
import type { HeaderMatch, PathMatch, QueryMatch, Route, RouteTable } from '../config/waypoint-config.js';
import type { RequestView } from './request-view.js';
import { matchPath, matchRoute, parseQuery, selectRoute } from './route-select.js';

function route(name: string, path: PathMatch, headers: HeaderMatch[] = [], query: QueryMatch[] = []): Route {
  return {
    name,
    match: { path, headers, query },
    action: { kind: 'direct', status: 200 },
    requestHeaders: { add: [], remove: [] },
    responseHeaders: { add: [], remove: [] },
  };
}

function req(path: string, headers: Record<string, string> = {}, method = 'GET'): RequestView {
  return { method, path, authority: 'reviews:9080', headers };
}

describe('matchPath', () => {
  it('matches prefixes as plain, case-sensitive string prefixes', () => {
    expect(matchPath({ prefix: '/foo' }, '/foobar')).toBe(true);
    expect(matchPath({ prefix: '/foo' }, '/foo/bar')).toBe(true);
    expect(matchPath({ prefix: '/foo' }, '/Foo')).toBe(false);
    expect(matchPath({ prefix: '/' }, '/')).toBe(true);
    expect(matchPath({ prefix: '' }, '/anything')).toBe(true);
    expect(matchPath({ prefix: '/FOO', ignoreCase: true }, '/foo/x')).toBe(true);
  });

  it('matches exact paths, optionally ignoring case', () => {
    expect(matchPath({ exact: '/a' }, '/a')).toBe(true);
    expect(matchPath({ exact: '/a' }, '/a/')).toBe(false);
    expect(matchPath({ exact: '/A', ignoreCase: true }, '/a')).toBe(true);
  });

  it('matches regexes', () => {
    expect(matchPath({ regex: /^\/v[0-9]+$/ }, '/v2')).toBe(true);
    expect(matchPath({ regex: /^\/v[0-9]+$/ }, '/v2/x')).toBe(false);
  });
});

describe('parseQuery', () => {
  it('keeps the first value of each parameter, undecoded', () => {
    expect([...parseQuery('/p?a=1&b=&c&a=2&d=x%20y#frag')]).toEqual([
      ['a', '1'],
      ['b', ''],
      ['c', ''],
      ['d', 'x%20y'],
    ]);
    expect(parseQuery('/p').size).toBe(0);
    expect(parseQuery('/p?&&').size).toBe(0);
    expect(parseQuery('/p?x=a=b').get('x')).toBe('a=b');
  });
});

describe('matchRoute', () => {
  it('matches the path without its query or fragment', () => {
    const m = route('r', { exact: '/a' }).match;
    expect(matchRoute(m, req('/a?x=1'))).toBe(true);
    expect(matchRoute(m, req('/a#top'))).toBe(true);
    expect(matchRoute(route('r', { prefix: '/a?x' }).match, req('/a?x=1'))).toBe(false);
    expect(matchRoute(route('r', { regex: /^\/a$/ }).match, req('/a?b'))).toBe(true);
  });

  it('requires every header matcher, reading pseudo-headers from the request line', () => {
    const m = route('r', { prefix: '/' }, [
      { name: ':method', match: { exact: 'POST' }, invert: false },
      { name: ':authority', match: { prefix: 'reviews' }, invert: false },
      { name: ':path', match: { suffix: '?v=1' }, invert: false },
      { name: 'x-canary', invert: true },
    ]).match;
    expect(matchRoute(m, req('/a?v=1', {}, 'POST'))).toBe(true);
    expect(matchRoute(m, req('/a?v=1', {}, 'GET'))).toBe(false);
    expect(matchRoute(m, req('/a?v=1', { 'x-canary': '1' }, 'POST'))).toBe(false);
    expect(matchRoute(m, req('/a?v=2', {}, 'POST'))).toBe(false);
  });

  it('requires every query matcher', () => {
    const m = route(
      'r',
      { prefix: '/' },
      [],
      [{ name: 'debug' }, { name: 'v', match: { exact: '2' } }],
    ).match;
    expect(matchRoute(m, req('/?debug&v=2'))).toBe(true);
    expect(matchRoute(m, req('/?debug=0&v=2'))).toBe(true);
    expect(matchRoute(m, req('/?v=2'))).toBe(false);
    expect(matchRoute(m, req('/?debug&v=3'))).toBe(false);
    expect(matchRoute(m, req('/'))).toBe(false);
  });
});

describe('selectRoute', () => {
  const table: RouteTable = {
    name: 't',
    routes: [
      route('canary', { prefix: '/' }, [{ name: 'x-canary', match: { exact: 'true' }, invert: false }]),
      route('api', { prefix: '/api' }),
      route('exact', { exact: '/health' }),
      route('catch-all', { prefix: '/' }),
    ],
  };

  it('returns the first matching route in order', () => {
    expect(selectRoute(table, req('/api/x', { 'x-canary': 'true' }))?.name).toBe('canary');
    expect(selectRoute(table, req('/api/x'))?.name).toBe('api');
    expect(selectRoute(table, req('/apix'))?.name).toBe('api');
    expect(selectRoute(table, req('/health'))?.name).toBe('exact');
    expect(selectRoute(table, req('/other'))?.name).toBe('catch-all');
  });

  it('returns undefined when nothing matches', () => {
    expect(selectRoute({ name: 't', routes: [route('a', { prefix: '/a' })] }, req('/b'))).toBeUndefined();
    expect(selectRoute({ name: 't', routes: [] }, req('/'))).toBeUndefined();
  });
});

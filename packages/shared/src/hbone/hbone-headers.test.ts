import { describe, expect, it } from 'vitest';
import { uriSans } from '../identity/x509.js';
import {
  formatForwarded,
  forwardedIp,
  newTraceparent,
  parseAuthority,
  parseForwardedFor,
  parseForwardedHost,
  parseHboneAddress,
  validTraceparent,
} from './hbone-headers.js';

describe('parseAuthority', () => {
  it('accepts IPv4 and bracketed IPv6 with a port', () => {
    expect(parseAuthority('10.1.2.3:8080')).toEqual({ ok: true, value: { host: '10.1.2.3', port: 8080 } });
    expect(parseAuthority('[fd00::1]:80')).toEqual({ ok: true, value: { host: 'fd00::1', port: 80 } });
  });

  it.each([
    [undefined, 'missing'],
    ['', 'missing'],
    ['10.1.2.3', 'has no port'],
    ['reviews.demo:80', 'not an IPv4 address'],
    ['10.1.2.3:http', 'is not a number'],
    ['10.1.2.3:0', 'out of range'],
    ['10.1.2.3:70000', 'out of range'],
    ['[fd00::1]80', 'is not [ipv6]:port'],
    ['[zz::1]:80', 'not an IPv6 address'],
    ['999.1.2.3:80', 'not an IPv4 address'],
  ])('refuses %s', (value, reason) => {
    const r = parseAuthority(value);
    expect(r.ok).toBe(false);
    if (!r.ok)
      expect(r.problems[0]).toMatchObject({ path: ':authority', message: expect.stringContaining(reason) });
  });
});

describe('parseHboneAddress', () => {
  it('accepts addresses as parseAuthority does, and a service host name with a port', () => {
    expect(parseHboneAddress('10.1.2.3:8080')).toEqual({ ok: true, value: { host: '10.1.2.3', port: 8080 } });
    expect(parseHboneAddress('[fd00::1]:80')).toEqual({ ok: true, value: { host: 'fd00::1', port: 80 } });
    expect(parseHboneAddress('echo.demo.svc.cluster.local:80')).toEqual({
      ok: true,
      value: { host: 'echo.demo.svc.cluster.local', port: 80, hostname: true },
    });
    expect(parseHboneAddress('Echo.Demo:80')).toEqual({
      ok: true,
      value: { host: 'echo.demo', port: 80, hostname: true },
    });
  });

  it.each([
    ['999.1.2.3:80', 'not an IPv4 address or a host name'],
    ['-bad.demo:80', 'not an IPv4 address or a host name'],
    ['a..b:80', 'not an IPv4 address or a host name'],
    ['a_b.demo:80', 'not an IPv4 address or a host name'],
    [`${'a'.repeat(64)}.demo:80`, 'not an IPv4 address or a host name'],
    ['echo.demo', 'has no port'],
    ['echo.demo:', 'is not a number'],
    ['echo.demo:0', 'out of range'],
    ['echo.demo:99999', 'out of range'],
  ])('refuses %s', (value, reason) => {
    const r = parseHboneAddress(value);
    expect(r.ok).toBe(false);
    if (!r.ok)
      expect(r.problems[0]).toMatchObject({ path: ':authority', message: expect.stringContaining(reason) });
  });
});

describe('forwarded host', () => {
  it('adds host= only when the client addressed a service', () => {
    expect(formatForwarded({ host: '127.0.0.1', port: 80 })).toBe('for="127.0.0.1:80"');
    expect(formatForwarded({ host: '::1', port: 80 })).toBe('for="[::1]:80"');
    expect(formatForwarded({ host: '127.0.0.1', port: 80 }, 'example.com')).toBe(
      'for="127.0.0.1:80";host=example.com',
    );
  });

  it('reads host= as upstream parse_forwarded_host does', () => {
    expect(parseForwardedHost('by=identifier;for=identifier;host=example.com;proto=https')).toBe(
      'example.com',
    );
    expect(parseForwardedHost('by=identifier;for=identifier;host="example.com";proto=https')).toBe(
      'example.com',
    );
    expect(parseForwardedHost('by=identifier;for=identifier;proto=https')).toBeUndefined();
    expect(parseForwardedHost('by=identifier;for=identifier;host=;proto=https')).toBeUndefined();
    expect(parseForwardedHost('for=for;by=by;host=host;proto="pr\u00f6to"')).toBeUndefined();
    expect(parseForwardedHost(formatForwarded({ host: '10.0.0.1', port: 5 }, 'echo.demo.svc'))).toBe(
      'echo.demo.svc',
    );
    expect(parseForwardedHost(undefined)).toBeUndefined();
  });
});

describe('forwarded and traceparent', () => {
  it('extracts the first for= address and its IP', () => {
    expect(parseForwardedFor('for="198.18.1.2:41234"')).toBe('198.18.1.2:41234');
    expect(parseForwardedFor('proto=https;for=198.18.1.2, for=10.0.0.1')).toBe('198.18.1.2');
    expect(parseForwardedFor('by=x')).toBeUndefined();
    expect(forwardedIp('198.18.1.2:41234')).toBe('198.18.1.2');
    expect(forwardedIp('[fd00::2]:5')).toBe('fd00::2');
    expect(forwardedIp('fd00::2')).toBe('fd00::2');
    expect(forwardedIp('garbage')).toBeUndefined();
  });

  it('keeps only well-formed, non-zero traceparents', () => {
    const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    expect(validTraceparent(tp)).toBe(tp);
    expect(validTraceparent('00-00000000000000000000000000000000-00f067aa0ba902b7-01')).toBeUndefined();
    expect(validTraceparent('nonsense')).toBeUndefined();
  });

  it('makes a fresh, valid, unsampled traceparent each time', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const tp = newTraceparent();
      expect(tp).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
      expect(validTraceparent(tp)).toBe(tp);
      seen.add(tp.split('-')[1] ?? '');
    }
    expect(seen.size).toBe(100);
  });
});

describe('uriSans', () => {
  it('reads URI entries from a subjectAltName string, quoted or not', () => {
    expect(uriSans('URI:spiffe://td/ns/a/sa/b')).toEqual(['spiffe://td/ns/a/sa/b']);
    expect(uriSans('DNS:x.y, URI:spiffe://td/ns/a/sa/b, IP Address:1.2.3.4')).toEqual([
      'spiffe://td/ns/a/sa/b',
    ]);
    expect(uriSans('URI:"spiffe://td/ns/a, b/sa/c", URI:u2')).toEqual(['spiffe://td/ns/a, b/sa/c', 'u2']);
    expect(uriSans(undefined)).toEqual([]);
  });
});

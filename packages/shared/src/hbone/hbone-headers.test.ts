import { describe, expect, it } from 'vitest';
import { uriSans } from '../identity/x509.js';
import { forwardedIp, parseAuthority, parseForwardedFor, validTraceparent } from './hbone-headers.js';

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

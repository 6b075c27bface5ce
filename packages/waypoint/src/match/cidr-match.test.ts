import { describe, expect, it } from 'vitest';
import { ipBytes, matchCidr } from './cidr-match.js';

describe('matchCidr', () => {
  it('matches IPv4 prefixes at any length', () => {
    expect(matchCidr('10.1.2.3', { address: '10.0.0.0', prefixLen: 8 })).toBe(true);
    expect(matchCidr('11.1.2.3', { address: '10.0.0.0', prefixLen: 8 })).toBe(false);
    expect(matchCidr('10.1.2.3', { address: '10.1.2.0', prefixLen: 25 })).toBe(true);
    expect(matchCidr('10.1.2.200', { address: '10.1.2.0', prefixLen: 25 })).toBe(false);
    expect(matchCidr('10.1.2.3', { address: '10.1.2.3', prefixLen: 32 })).toBe(true);
    expect(matchCidr('10.1.2.4', { address: '10.1.2.3', prefixLen: 32 })).toBe(false);
    expect(matchCidr('1.2.3.4', { address: '0.0.0.0', prefixLen: 0 })).toBe(true);
  });

  it('matches IPv6 prefixes', () => {
    expect(matchCidr('fd00::1', { address: 'fd00::', prefixLen: 64 })).toBe(true);
    expect(matchCidr('fd01::1', { address: 'fd00::', prefixLen: 16 })).toBe(false);
    expect(matchCidr('2001:db8:0:0:0:0:0:1', { address: '2001:db8::1', prefixLen: 128 })).toBe(true);
  });

  it('keeps families apart, except IPv4-mapped addresses against IPv4 ranges', () => {
    expect(matchCidr('10.1.2.3', { address: '::', prefixLen: 0 })).toBe(false);
    expect(matchCidr('fd00::1', { address: '0.0.0.0', prefixLen: 0 })).toBe(false);
    expect(matchCidr('::ffff:10.1.2.3', { address: '10.0.0.0', prefixLen: 8 })).toBe(true);
    expect(matchCidr('::ffff:11.1.2.3', { address: '10.0.0.0', prefixLen: 8 })).toBe(false);
  });

  it('never matches what is not an IP', () => {
    expect(matchCidr('host', { address: '0.0.0.0', prefixLen: 0 })).toBe(false);
    expect(matchCidr('10.0.0.1', { address: 'nope', prefixLen: 0 })).toBe(false);
  });
});

describe('ipBytes', () => {
  it('parses both families, embedded IPv4 and zones included', () => {
    expect(ipBytes('1.2.3.4')).toEqual([1, 2, 3, 4]);
    expect(ipBytes('::1')).toEqual([...new Array(15).fill(0), 1]);
    expect(ipBytes('::ffff:1.2.3.4')).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 1, 2, 3, 4]);
    expect(ipBytes('fe80::1%eth0')?.[0]).toBe(0xfe);
    expect(ipBytes('1:2:3:4:5:6:7:8')?.[15]).toBe(8);
    expect(ipBytes('x')).toBeUndefined();
  });
});

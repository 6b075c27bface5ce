import { describe, expect, it } from 'vitest';
import { murmur3 } from './murmur3.js';

describe('murmur3', () => {
  it('matches the reference MurmurHash3_x86_32 vectors', () => {
    expect(murmur3('')).toBe(0);
    expect(murmur3('', 1)).toBe(0x514e28b7);
    expect(murmur3('a')).toBe(0x3c2569b2);
    expect(murmur3('abc')).toBe(0xb3dd93fa);
    expect(murmur3('abcd')).toBe(0x43ed676a);
    expect(murmur3('Hello, world!', 1234)).toBe(0xfaf6cdb3);
    expect(murmur3('The quick brown fox jumps over the lazy dog')).toBe(0x2e4ff723);
  });

  it('hashes UTF-8 bytes', () => {
    expect(murmur3('é')).toBe(murmur3('\u00e9'));
    expect(murmur3('é')).not.toBe(murmur3('e'));
  });
});

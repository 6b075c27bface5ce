import { describe, expect, it } from 'vitest';
import { hashKey } from './hash-key.js';

describe('hashKey', () => {
  const input = { headers: { 'x-user': 'alice', 'x-multi': ['b', 'a'] }, sourceIp: '10.0.0.7' };

  it('takes a header value or the source IP', () => {
    expect(hashKey([{ header: 'x-user' }], input)).toBe('h:alice');
    expect(hashKey([{ sourceIp: true }], input)).toBe('ip:10.0.0.7');
  });

  it('combines every policy that yields a value, skipping those that do not', () => {
    expect(hashKey([{ header: 'x-missing' }, { header: 'x-user' }, { sourceIp: true }], input)).toBe(
      'h:alice\u0000ip:10.0.0.7',
    );
  });

  it('ignores the order of a repeated header', () => {
    expect(hashKey([{ header: 'x-multi' }], input)).toBe(
      hashKey([{ header: 'x-multi' }], { ...input, headers: { 'x-multi': ['a', 'b'] } }),
    );
  });

  it('yields no key when nothing applies', () => {
    expect(hashKey([], input)).toBeUndefined();
    expect(hashKey([{ header: 'x-missing' }], input)).toBeUndefined();
    expect(hashKey([{ sourceIp: true }], { headers: {}, sourceIp: '' })).toBeUndefined();
  });
});

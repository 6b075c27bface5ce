import { describe, expect, it } from 'vitest';
import { matchHeader } from './header-match.js';

const headers: Record<string, string> = { 'x-user': 'alice', 'x-empty': '' };
const lookup = (name: string) => headers[name];

describe('matchHeader', () => {
  it('matches presence, and absence when inverted', () => {
    expect(matchHeader({ name: 'x-user', invert: false }, lookup)).toBe(true);
    expect(matchHeader({ name: 'x-empty', invert: false }, lookup)).toBe(true);
    expect(matchHeader({ name: 'x-missing', invert: false }, lookup)).toBe(false);
    expect(matchHeader({ name: 'x-user', invert: true }, lookup)).toBe(false);
    expect(matchHeader({ name: 'x-missing', invert: true }, lookup)).toBe(true);
  });

  it('matches values, and inverts them', () => {
    expect(matchHeader({ name: 'x-user', match: { exact: 'alice' }, invert: false }, lookup)).toBe(true);
    expect(matchHeader({ name: 'x-user', match: { exact: 'bob' }, invert: false }, lookup)).toBe(false);
    expect(matchHeader({ name: 'x-user', match: { exact: 'bob' }, invert: true }, lookup)).toBe(true);
    expect(matchHeader({ name: 'x-user', match: { exact: 'alice' }, invert: true }, lookup)).toBe(false);
  });

  it('never matches an absent header with a value matcher, inverted or not (Envoy)', () => {
    expect(matchHeader({ name: 'x-missing', match: { exact: 'a' }, invert: false }, lookup)).toBe(false);
    expect(matchHeader({ name: 'x-missing', match: { exact: 'a' }, invert: true }, lookup)).toBe(false);
  });
});

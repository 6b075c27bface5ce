import { describe, expect, it } from 'vitest';
import { applyHeaderMutation } from './header-mutation.js';

describe('applyHeaderMutation', () => {
  const headers = { 'x-a': '1', 'x-multi': ['a', 'b'], 'x-gone': 'g', 'x-undef': undefined };

  it('removes first, then adds in order', () => {
    const out = applyHeaderMutation(headers, {
      remove: ['x-gone', 'x-a'],
      add: [{ name: 'x-a', value: 'new', append: true }],
    });
    expect(out).toEqual({ 'x-a': 'new', 'x-multi': ['a', 'b'] });
  });

  it('appends another value or overwrites every value', () => {
    const out = applyHeaderMutation(headers, {
      remove: [],
      add: [
        { name: 'x-a', value: '2', append: true },
        { name: 'x-multi', value: 'c', append: true },
        { name: 'x-gone', value: 'over', append: false },
        { name: 'x-new', value: 'n', append: true },
        { name: 'x-new', value: 'm', append: true },
        { name: 'x-set', value: 's1', append: false },
        { name: 'x-set', value: 's2', append: false },
      ],
    });
    expect(out).toEqual({
      'x-a': ['1', '2'],
      'x-multi': ['a', 'b', 'c'],
      'x-gone': 'over',
      'x-new': ['n', 'm'],
      'x-set': 's2',
    });
  });

  it('leaves the input untouched', () => {
    const input = { 'x-multi': ['a'] };
    applyHeaderMutation(input, { remove: [], add: [{ name: 'x-multi', value: 'b', append: true }] });
    expect(input).toEqual({ 'x-multi': ['a'] });
  });
});

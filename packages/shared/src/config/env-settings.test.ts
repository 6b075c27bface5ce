import { describe, expect, it } from 'vitest';
import { EnvSettings, parseDurationMs } from './env-settings.js';

const read = <T>(env: Record<string, string>, f: (e: EnvSettings) => T) => {
  const e = new EnvSettings(env);
  const value = f(e);
  return { value, problems: e.problems };
};

describe('EnvSettings', () => {
  it('reads an empty value as unset: optional ones take the default, required ones are refused', () => {
    expect(read({ A: '' }, (e) => e.optional('A'))).toEqual({ value: undefined, problems: [] });
    expect(read({ A: '' }, (e) => e.required('A', 'dflt'))).toEqual({ value: 'dflt', problems: [] });
    expect(read({ A: '' }, (e) => e.required('A')).problems).toEqual([{ path: 'A', message: 'is required' }]);
    expect(read({ A: '' }, (e) => e.integer('A', 7, 0, 10))).toEqual({ value: 7, problems: [] });
    expect(read({ A: '' }, (e) => e.boolean('A', true))).toEqual({ value: true, problems: [] });
    expect(read({ A: '' }, (e) => e.durationMs('A', 1500))).toEqual({ value: 1500, problems: [] });
    expect(read({ A: '' }, (e) => e.optionalHostPort('A'))).toEqual({ value: undefined, problems: [] });
    expect(read({ A: '' }, (e) => e.hostPort('A')).problems).toEqual([{ path: 'A', message: 'is required' }]);
    expect(read({ A: '' }, (e) => e.logLevel('A'))).toEqual({ value: 'info', problems: [] });
  });

  it('accepts integers inside the range and refuses the rest, naming the setting', () => {
    expect(read({ A: '0' }, (e) => e.integer('A', 5, 0, 10)).value).toBe(0);
    expect(read({ A: '10' }, (e) => e.integer('A', 5, 0, 10)).value).toBe(10);
    for (const bad of ['-1', '11', '1.5', 'ten', '1e1', '0x0a', ' 3']) {
      expect(read({ A: bad }, (e) => e.integer('A', 5, 0, 10)).problems, bad).toEqual([
        { path: 'A', message: 'must be an integer from 0 to 10' },
      ]);
    }
  });

  it('accepts only true and false as booleans', () => {
    expect(read({ A: 'true' }, (e) => e.boolean('A', false)).value).toBe(true);
    expect(read({ A: 'false' }, (e) => e.boolean('A', true)).value).toBe(false);
    for (const bad of ['yes', 'TRUE', '1', 'off']) {
      expect(read({ A: bad }, (e) => e.boolean('A', true)).problems, bad).toEqual([
        { path: 'A', message: 'must be true or false' },
      ]);
    }
  });

  it('reads Go-style durations in milliseconds and refuses the rest', () => {
    expect(parseDurationMs('20s')).toBe(20_000);
    expect(parseDurationMs('1h30m')).toBe(5_400_000);
    expect(parseDurationMs('250ms')).toBe(250);
    expect(parseDurationMs('1.5s')).toBe(1500);
    for (const bad of ['20', 'soon', '-5s', '5 s', 's']) {
      const r = read({ A: bad }, (e) => e.durationMs('A', 42));
      expect(r.value, bad).toBe(42);
      expect(
        r.problems.map((p) => p.path),
        bad,
      ).toEqual(['A']);
    }
  });

  it('accepts host:port and refuses anything else', () => {
    expect(read({ A: 'istiod:15012' }, (e) => e.hostPort('A')).value).toBe('istiod:15012');
    expect(read({}, (e) => e.hostPort('A', '10.0.0.1:15012'))).toEqual({
      value: '10.0.0.1:15012',
      problems: [],
    });
    for (const bad of ['istiod', ':15012', 'istiod:port', 'a b:1', '[::1]:15012']) {
      expect(read({ A: bad }, (e) => e.optionalHostPort('A')).problems, bad).toEqual([
        { path: 'A', message: 'must be host:port' },
      ]);
    }
  });

  it('accepts the logger levels only', () => {
    expect(read({ A: 'warn' }, (e) => e.logLevel('A')).value).toBe('warn');
    expect(read({ A: 'verbose' }, (e) => e.logLevel('A')).problems.map((p) => p.path)).toEqual(['A']);
  });

  it('reports every problem at once and freezes the settings it returns', () => {
    const e = new EnvSettings({ A: 'x', B: 'maybe' });
    e.integer('A', 1, 0, 9);
    e.boolean('B', false);
    e.required('C');
    const r = e.result({ a: 1 });
    expect(!r.ok && r.problems.map((p) => p.path)).toEqual(['A', 'B', 'C']);
    const good = new EnvSettings({}).result({ a: 1 });
    expect(good.ok && Object.isFrozen(good.value)).toBe(true);
  });
});

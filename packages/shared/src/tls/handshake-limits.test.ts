import { describe, expect, it } from 'vitest';
import { admitHandshake, HandshakeGate, validateHandshakeLimits } from './handshake-limits.js';

const limits = { timeoutMs: 1_000, maxPending: 3, maxPendingPerSource: 2 };

describe('admitHandshake', () => {
  it('admits below both caps and names the cap that refuses', () => {
    expect(admitHandshake(0, 0, limits)).toEqual({ ok: true });
    expect(admitHandshake(2, 1, limits)).toEqual({ ok: true });
    expect(admitHandshake(3, 0, limits)).toEqual({ ok: false, reason: 'handshake_limit' });
    expect(admitHandshake(1, 2, limits)).toEqual({ ok: false, reason: 'handshake_source_limit' });
    // The listener cap is checked first: one label per refusal.
    expect(admitHandshake(3, 2, limits)).toEqual({ ok: false, reason: 'handshake_limit' });
  });
});

describe('HandshakeGate', () => {
  it('counts per source and in total, and a release frees exactly one slot however often it is called', () => {
    const gate = new HandshakeGate(limits);
    const a1 = gate.enter('10.0.0.1');
    const a2 = gate.enter('10.0.0.1');
    expect(a1.ok && a2.ok).toBe(true);
    expect(gate.enter('10.0.0.1')).toEqual({ ok: false, reason: 'handshake_source_limit' });
    const b1 = gate.enter('10.0.0.2');
    expect(b1.ok).toBe(true);
    expect(gate.size).toBe(3);
    expect(gate.enter('10.0.0.3')).toEqual({ ok: false, reason: 'handshake_limit' });
    if (!a1.ok) throw new Error('unreachable');
    a1.release();
    a1.release();
    expect(gate.size).toBe(2);
    expect(gate.enter('10.0.0.1').ok).toBe(true);
    expect(gate.enter('10.0.0.3')).toEqual({ ok: false, reason: 'handshake_limit' });
  });
});

describe('validateHandshakeLimits', () => {
  it('names every field out of range', () => {
    const r = validateHandshakeLimits({ timeoutMs: 5, maxPending: 0, maxPendingPerSource: 1.5 }, 'hbone');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems.map((p) => p.path)).toEqual([
      'hbone.timeoutMs',
      'hbone.maxPending',
      'hbone.maxPendingPerSource',
    ]);
    expect(validateHandshakeLimits(limits).ok).toBe(true);
  });
});

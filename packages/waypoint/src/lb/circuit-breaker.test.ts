import { describe, expect, it } from 'vitest';
import { type CircuitBreakers, UNLIMITED } from '../config/waypoint-config.js';
import { CircuitBreaker } from './circuit-breaker.js';

const LIMITS: CircuitBreakers = { maxConnections: 2, maxPendingRequests: 1, maxRequests: 3, maxRetries: 1 };

describe('CircuitBreaker', () => {
  it('refuses each resource at its limit (overflow: 503 UO)', () => {
    const cb = new CircuitBreaker(LIMITS);
    expect([
      cb.tryAcquire('connections'),
      cb.tryAcquire('connections'),
      cb.tryAcquire('connections'),
    ]).toEqual([true, true, false]);
    expect([cb.tryAcquire('pendingRequests'), cb.tryAcquire('pendingRequests')]).toEqual([true, false]);
    expect([1, 2, 3, 4].map(() => cb.tryAcquire('requests'))).toEqual([true, true, true, false]);
    expect([cb.tryAcquire('retries'), cb.tryAcquire('retries')]).toEqual([true, false]);
    expect(cb.count('requests')).toBe(3);
    expect(cb.remaining('requests')).toBe(0);
  });

  it('frees capacity on release and never counts below zero', () => {
    const cb = new CircuitBreaker(LIMITS);
    cb.tryAcquire('retries');
    cb.release('retries');
    cb.release('retries');
    expect(cb.count('retries')).toBe(0);
    expect(cb.tryAcquire('retries')).toBe(true);
  });

  it('refuses everything at a zero limit and nothing at the unlimited one', () => {
    expect(new CircuitBreaker({ ...LIMITS, maxRequests: 0 }).tryAcquire('requests')).toBe(false);
    const open = new CircuitBreaker({
      maxConnections: UNLIMITED,
      maxPendingRequests: UNLIMITED,
      maxRequests: UNLIMITED,
      maxRetries: UNLIMITED,
    });
    for (let i = 0; i < 10_000; i++) expect(open.tryAcquire('requests')).toBe(true);
    expect(open.remaining('requests')).toBe(UNLIMITED - 10_000);
  });

  it('limits retries by the budget instead of max_retries', () => {
    const cb = new CircuitBreaker({
      ...LIMITS,
      maxRequests: UNLIMITED,
      maxPendingRequests: UNLIMITED,
      retryBudget: { percent: 20, minRetryConcurrency: 2 },
    });
    expect(cb.limit('retries')).toBe(2);
    for (let i = 0; i < 20; i++) cb.tryAcquire('requests');
    for (let i = 0; i < 5; i++) cb.tryAcquire('pendingRequests');
    expect(cb.limit('retries')).toBe(5);
    expect([1, 2, 3, 4, 5, 6].map(() => cb.tryAcquire('retries'))).toEqual([
      true,
      true,
      true,
      true,
      true,
      false,
    ]);
    for (let i = 0; i < 20; i++) cb.release('requests');
    expect(cb.limit('retries')).toBe(2);
    expect(cb.tryAcquire('retries')).toBe(false);
    for (let i = 0; i < 4; i++) cb.release('retries');
    expect(cb.count('retries')).toBe(1);
    expect(cb.tryAcquire('retries')).toBe(true);
  });
});

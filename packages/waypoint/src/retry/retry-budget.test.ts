import { describe, expect, it } from 'vitest';
import { RetryBudget } from './retry-budget.js';

describe('RetryBudget', () => {
  it('allows min_retry_concurrency retries with no traffic', () => {
    const b = new RetryBudget(20, 3);
    expect(b.limit()).toBe(3);
    expect([b.tryStartRetry(), b.tryStartRetry(), b.tryStartRetry(), b.tryStartRetry()]).toEqual([
      true,
      true,
      true,
      false,
    ]);
    expect(b.activeRetries).toBe(3);
  });

  it('grows with active requests: percent of them, floored', () => {
    const b = new RetryBudget(20, 3);
    for (let i = 0; i < 24; i++) b.requestStarted();
    expect(b.activeRequests).toBe(24);
    expect(b.limit()).toBe(4);
    b.requestStarted();
    expect(b.limit()).toBe(5);
  });

  it('frees a slot when a retry finishes', () => {
    const b = new RetryBudget(0, 1);
    expect(b.tryStartRetry()).toBe(true);
    expect(b.canRetry()).toBe(false);
    b.retryFinished();
    expect(b.canRetry()).toBe(true);
  });

  it('shrinks as requests finish and never counts below zero', () => {
    const b = new RetryBudget(50, 0);
    b.requestStarted();
    b.requestStarted();
    expect(b.limit()).toBe(1);
    b.requestFinished();
    b.requestFinished();
    b.requestFinished();
    b.retryFinished();
    expect(b.activeRequests).toBe(0);
    expect(b.activeRetries).toBe(0);
    expect(b.canRetry()).toBe(false);
  });
});

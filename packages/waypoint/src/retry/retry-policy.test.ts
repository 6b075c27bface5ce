import { describe, expect, it } from 'vitest';
import type { RetryOn, RetryPolicy } from '../config/waypoint-config.js';
import { type AttemptOutcome, isRetriable, retryBackoffMs } from './retry-policy.js';

function policy(retryOn: RetryOn[], codes: number[] = []): RetryPolicy {
  return {
    retryOn: new Set(retryOn),
    numRetries: 2,
    perTryTimeoutMs: 0,
    retriableStatusCodes: new Set(codes),
    backoffBaseMs: 25,
    backoffMaxMs: 250,
  };
}

const outcomes: Record<string, AttemptOutcome> = {
  connect: { connectFailure: true },
  reset: { reset: true },
  refused: { refusedStream: true },
  s500: { status: 500 },
  s502: { status: 502 },
  s503: { status: 503 },
  s504: { status: 504 },
  s501: { status: 501 },
  s409: { status: 409 },
  s200: { status: 200 },
  grpcCancelled: { status: 200, grpcStatus: 1 },
  grpcUnavailable: { status: 200, grpcStatus: 14 },
  grpcInternal: { status: 200, grpcStatus: 13 },
  overflow: { overflow: true },
};

function retriable(p: RetryPolicy): string[] {
  return Object.entries(outcomes)
    .filter(([, o]) => isRetriable(p, o))
    .map(([k]) => k);
}

describe('isRetriable', () => {
  it('5xx: any 5xx and any reset, connect failures and refused streams included', () => {
    expect(retriable(policy(['5xx']))).toEqual([
      'connect',
      'reset',
      'refused',
      's500',
      's502',
      's503',
      's504',
      's501',
    ]);
  });

  it('gateway-error: 502, 503, 504 and resets', () => {
    expect(retriable(policy(['gateway-error']))).toEqual([
      'connect',
      'reset',
      'refused',
      's502',
      's503',
      's504',
    ]);
  });

  it('reset: every reset, no status', () => {
    expect(retriable(policy(['reset']))).toEqual(['connect', 'reset', 'refused']);
  });

  it('connect-failure: only connect failures', () => {
    expect(retriable(policy(['connect-failure']))).toEqual(['connect']);
  });

  it('refused-stream: only refused streams', () => {
    expect(retriable(policy(['refused-stream']))).toEqual(['refused']);
  });

  it('retriable-status-codes: the listed statuses', () => {
    expect(retriable(policy(['retriable-status-codes'], [409, 503]))).toEqual(['s503', 's409']);
    expect(retriable(policy([], [503]))).toEqual([]);
  });

  it('cancelled and unavailable: gRPC statuses 1 and 14', () => {
    expect(retriable(policy(['cancelled']))).toEqual(['grpcCancelled']);
    expect(retriable(policy(['unavailable']))).toEqual(['grpcUnavailable']);
  });

  it("Istio's default policy", () => {
    const p = policy(
      ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes'],
      [503],
    );
    expect(retriable(p)).toEqual(['connect', 'refused', 's503', 'grpcCancelled', 'grpcUnavailable']);
  });

  it('never retries an overflow or without conditions', () => {
    expect(
      isRetriable(policy(['5xx', 'reset', 'connect-failure']), { overflow: true, connectFailure: true }),
    ).toBe(false);
    expect(retriable(policy([]))).toEqual([]);
  });
});

describe('retryBackoffMs', () => {
  const p = { backoffBaseMs: 25, backoffMaxMs: 250 };

  it('draws uniformly below base * 2^retry (full jitter)', () => {
    expect(retryBackoffMs(p, 0, () => 0)).toBe(0);
    expect(retryBackoffMs(p, 0, () => 0.999)).toBe(24);
    expect(retryBackoffMs(p, 1, () => 0.999)).toBe(49);
    expect(retryBackoffMs(p, 2, () => 0.5)).toBe(50);
    expect(retryBackoffMs(p, 3, () => 0.999)).toBe(199);
  });

  it('caps the ceiling at the max interval', () => {
    expect(retryBackoffMs(p, 4, () => 0.999)).toBe(249);
    expect(retryBackoffMs(p, 60, () => 0.999)).toBe(249);
    expect(retryBackoffMs(p, 1_000_000, () => 0.5)).toBe(125);
  });

  it('treats a negative retry number as the first', () => {
    expect(retryBackoffMs(p, -1, () => 0.999)).toBe(24);
  });

  it('defaults to Math.random within bounds', () => {
    for (let i = 0; i < 100; i++) {
      const d = retryBackoffMs(p, 2);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(100);
    }
  });
});

import { describe, expect, it } from 'vitest';
import { decideFault } from './fault-decision.js';

function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[i++] ?? 0;
}

describe('decideFault', () => {
  it('decides nothing without a policy', () => {
    expect(decideFault(undefined, () => 0)).toEqual({});
  });

  it('delays the given share of requests', () => {
    const p = { delay: { ms: 500, percent: 30 } };
    expect(decideFault(p, () => 0.29)).toEqual({ delayMs: 500 });
    expect(decideFault(p, () => 0.3)).toEqual({});
  });

  it('aborts with an HTTP or gRPC status', () => {
    expect(decideFault({ abort: { httpStatus: 503, percent: 100 } }, () => 0.999)).toEqual({
      abort: { httpStatus: 503 },
    });
    expect(decideFault({ abort: { grpcStatus: 14, percent: 100 } }, () => 0.5)).toEqual({
      abort: { grpcStatus: 14 },
    });
    expect(decideFault({ abort: { httpStatus: 503, percent: 0 } }, () => 0)).toEqual({});
  });

  it('draws delay and abort independently; both may apply', () => {
    const p = { delay: { ms: 10, percent: 50 }, abort: { httpStatus: 500, percent: 50 } };
    expect(decideFault(p, sequence(0.1, 0.1))).toEqual({ delayMs: 10, abort: { httpStatus: 500 } });
    expect(decideFault(p, sequence(0.9, 0.1))).toEqual({ abort: { httpStatus: 500 } });
    expect(decideFault(p, sequence(0.1, 0.9))).toEqual({ delayMs: 10 });
    expect(decideFault(p, sequence(0.9, 0.9))).toEqual({});
  });

  it('honours fractional percentages', () => {
    const p = { abort: { httpStatus: 500, percent: 0.05 } };
    expect(decideFault(p, () => 0.0004)).toEqual({ abort: { httpStatus: 500 } });
    expect(decideFault(p, () => 0.0005)).toEqual({});
  });

  it('applies a zero delay when selected', () => {
    expect(decideFault({ delay: { ms: 0, percent: 100 } }, () => 0)).toEqual({ delayMs: 0 });
  });
});

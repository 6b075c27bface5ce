import { describe, expect, it } from 'vitest';
import { type ConditionSet, conditionsToWrite, readConditions } from './status-conditions.js';

const T0 = '2026-01-01T00:00:00Z';
const NOW = '2026-02-02T00:00:00Z';
const want = (
  status: boolean,
  reason = 'Accepted',
  message = 'attached to ztunnel',
  observedGeneration = 1,
) => ({
  status,
  reason,
  message,
  observedGeneration,
});
const set = (entries: Array<[string, ReturnType<typeof want> | null]>): ConditionSet => new Map(entries);

describe('conditionsToWrite: a write only when our conditions differ', () => {
  it('writes a condition that is not there, stamped now', () => {
    expect(conditionsToWrite(set([['ZtunnelAccepted', want(true)]]), undefined, NOW)).toEqual([
      {
        type: 'ZtunnelAccepted',
        status: 'True',
        reason: 'Accepted',
        message: 'attached to ztunnel',
        observedGeneration: 1,
        lastTransitionTime: NOW,
      },
    ]);
  });

  it('writes nothing when status, reason, message and observedGeneration are already those', () => {
    const status = {
      conditions: [
        {
          type: 'ZtunnelAccepted',
          status: 'True',
          reason: 'Accepted',
          message: 'attached to ztunnel',
          observedGeneration: 1,
          lastTransitionTime: T0,
        },
        { type: 'SomeoneElses', status: 'False', reason: 'X', message: 'y', lastTransitionTime: T0 },
      ],
    };
    expect(conditionsToWrite(set([['ZtunnelAccepted', want(true)]]), status, NOW)).toBeUndefined();
  });

  it('writes on a new generation or message, keeping lastTransitionTime while the status stays', () => {
    const status = {
      conditions: [
        {
          type: 'ZtunnelAccepted',
          status: 'True',
          reason: 'Accepted',
          message: 'attached to ztunnel',
          observedGeneration: 1,
          lastTransitionTime: T0,
        },
      ],
    };
    expect(
      conditionsToWrite(
        set([['ZtunnelAccepted', want(true, 'Accepted', 'attached to ztunnel', 2)]]),
        status,
        NOW,
      )?.[0],
    ).toMatchObject({ observedGeneration: 2, lastTransitionTime: T0 });
    const flipped = conditionsToWrite(
      set([['ZtunnelAccepted', want(false, 'UnsupportedValue', 'no')]]),
      status,
      NOW,
    );
    expect(flipped?.[0]).toMatchObject({
      status: 'False',
      reason: 'UnsupportedValue',
      lastTransitionTime: NOW,
    });
  });

  it('removes a condition of ours that should not be there, and writes nothing for one that is already absent', () => {
    const status = {
      conditions: [
        {
          type: 'istio.io/WaypointBound',
          status: 'False',
          reason: 'WaypointIsNotReady',
          message: 'm',
          lastTransitionTime: T0,
        },
      ],
    };
    expect(conditionsToWrite(set([['istio.io/WaypointBound', null]]), status, NOW)).toEqual([]);
    expect(conditionsToWrite(set([['istio.io/WaypointBound', null]]), {}, NOW)).toBeUndefined();
  });

  it('reads only well-formed conditions', () => {
    expect(readConditions({ conditions: [null, 3, { status: 'True' }, { type: 'A' }] })).toEqual([
      { type: 'A' },
    ]);
    expect(readConditions({ conditions: 'no' })).toEqual([]);
    expect(readConditions(undefined)).toEqual([]);
  });
});

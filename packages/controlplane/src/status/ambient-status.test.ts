import { describe, expect, it } from 'vitest';
import { waypointNotReady } from '../ambient/binding-status.js';
import { waypointBoundConditions, ztunnelAcceptedConditions } from './ambient-status.js';

describe('the conditions istiod writes, from bindings', () => {
  it('ZtunnelAccepted: Accepted "attached to ztunnel", or the binding message with its bound status', () => {
    expect([...ztunnelAcceptedConditions({ bound: true }, 3)]).toEqual([
      [
        'ZtunnelAccepted',
        { status: true, reason: 'Accepted', message: 'attached to ztunnel', observedGeneration: 3 },
      ],
    ]);
    const refused = {
      bound: false,
      status: { reason: 'UnsupportedValue', message: 'ztunnel does not support the AUDIT action' },
    };
    expect(ztunnelAcceptedConditions(refused, 1).get('ZtunnelAccepted')).toEqual({
      status: false,
      reason: 'UnsupportedValue',
      message: 'ztunnel does not support the AUDIT action',
      observedGeneration: 1,
    });
  });

  it('istio.io/WaypointBound: WaypointAccepted with the ingress note, the error, or nothing (pruned)', () => {
    const bound = (ingressLabelPresent: boolean, ingressUseWaypoint: boolean) =>
      waypointBoundConditions({ waypoint: 'demo/wp', ingressLabelPresent, ingressUseWaypoint }, 1).get(
        'istio.io/WaypointBound',
      )?.message;
    expect(bound(false, false)).toBe('Successfully attached to waypoint demo/wp');
    expect(bound(true, true)).toBe(
      'Successfully attached to waypoint demo/wp. Ingress traffic will traverse the waypoint',
    );
    expect(bound(true, false)).toBe(
      'Successfully attached to waypoint demo/wp. Ingress traffic is not using the waypoint, set the istio.io/ingress-use-waypoint label to true if desired.',
    );
    const failed = waypointBoundConditions(
      { ingressLabelPresent: false, ingressUseWaypoint: false, error: waypointNotReady('demo/nope') },
      2,
    );
    expect(failed.get('istio.io/WaypointBound')).toEqual({
      status: false,
      reason: 'WaypointIsNotReady',
      message: 'waypoint "demo/nope" is not ready',
      observedGeneration: 2,
    });
    expect([
      ...waypointBoundConditions({ ingressLabelPresent: false, ingressUseWaypoint: false }, 1),
    ]).toEqual([['istio.io/WaypointBound', null]]);
  });
});

import { describe, expect, it } from 'vitest';
import type { AuthorizationPolicyObject, TargetRef } from '../manifests/kube-objects.js';
import {
  flattenPolicyBindings,
  type WaypointPolicyLookups,
  waypointPolicyBindings,
} from './waypoint-policy-status.js';

const policy = (targetRefs: TargetRef[], namespace = 'demo'): AuthorizationPolicyObject => ({
  kind: 'AuthorizationPolicy',
  metadata: { name: 'p', namespace, labels: {}, annotations: {} },
  targetRefs,
  action: 'ALLOW',
  rules: [],
});
const look: WaypointPolicyLookups = {
  rootNamespace: 'istio-system',
  waypoint: (key) => (key === 'demo/wp' ? key : undefined),
  serviceExists: (key) => key === 'demo/bound' || key === 'demo/plain',
  serviceWaypoint: (key) => (key === 'demo/bound' ? 'demo/wp' : undefined),
};
const GW = 'gateway.networking.k8s.io';
const condition = (refs: TargetRef[], namespace?: string) =>
  flattenPolicyBindings(waypointPolicyBindings(policy(refs, namespace), 4, look));

describe('WaypointAccepted of an AuthorizationPolicy with targetRefs (istiod policies.go)', () => {
  it('a waypoint Gateway or a Service bound to one: Accepted "bound to <ns>/<waypoint>"', () => {
    expect(condition([{ group: GW, kind: 'Gateway', name: 'wp' }])).toEqual({
      status: true,
      reason: 'Accepted',
      message: 'bound to demo/wp',
      observedGeneration: 4,
    });
    expect(condition([{ group: '', kind: 'Service', name: 'bound' }])).toMatchObject({
      status: true,
      reason: 'Accepted',
      message: 'bound to demo/wp',
    });
  });

  it('a missing or non-waypoint target, and a Service without a waypoint, in istiod words', () => {
    expect(condition([{ group: GW, kind: 'Gateway', name: 'ingress' }])).toEqual({
      status: false,
      reason: 'TargetNotFound',
      message: 'not bound',
      observedGeneration: 4,
    });
    expect(condition([{ group: '', kind: 'Service', name: 'gone' }])).toMatchObject({
      status: false,
      reason: 'TargetNotFound',
      message: 'Service demo/gone was not found',
    });
    expect(condition([{ group: '', kind: 'Service', name: 'plain' }])).toMatchObject({
      status: false,
      reason: 'AncestorNotBound',
      message: 'Service demo/plain is not bound to a waypoint',
    });
    // A kind (or group) the waypoints do not enforce: istiod's defaults.
    expect(condition([{ group: 'networking.istio.io', kind: 'ServiceEntry', name: 'x' }])).toMatchObject({
      status: false,
      reason: 'unknown',
      message: 'not bound',
    });
    expect(condition([{ group: 'example.com', kind: 'Service', name: 'bound' }])).toMatchObject({
      status: false,
      reason: 'unknown',
    });
  });

  it('a GatewayClass target: outside the root namespace Invalid as istiod says; inside, not enforced here', () => {
    expect(condition([{ group: GW, kind: 'GatewayClass', name: 'istio-waypoint' }])).toMatchObject({
      status: false,
      reason: 'Invalid',
      message:
        'AuthorizationPolicy must be in the root namespace `istio-system` when referencing a GatewayClass',
    });
    const root = condition([{ group: GW, kind: 'GatewayClass', name: 'istio-waypoint' }], 'istio-system');
    expect(root.status).toBe(false);
    expect(root.reason).toBe('Invalid');
    expect(root.message).toContain('not enforced');
  });

  it('several targets flatten: Accepted, PartiallyInvalid or Invalid with the unbound ancestors', () => {
    expect(
      condition([
        { group: GW, kind: 'Gateway', name: 'wp' },
        { group: '', kind: 'Service', name: 'bound' },
      ]),
    ).toEqual({ status: true, reason: 'Accepted', message: '', observedGeneration: 4 });
    expect(
      condition([
        { group: GW, kind: 'Gateway', name: 'wp' },
        { group: '', kind: 'Service', name: 'gone' },
      ]),
    ).toEqual({
      status: true,
      reason: 'PartiallyInvalid',
      message: 'Invalid targetRefs: Service.core:demo/gone',
      observedGeneration: 4,
    });
    expect(
      condition([
        { group: GW, kind: 'Gateway', name: 'nope' },
        { group: '', kind: 'Service', name: 'plain' },
      ]),
    ).toEqual({
      status: false,
      reason: 'Invalid',
      message: `Invalid targetRefs: Gateway.${GW}:demo/nope, Service.core:demo/plain`,
      observedGeneration: 4,
    });
  });
});

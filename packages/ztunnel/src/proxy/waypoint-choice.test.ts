import { describe, expect, it } from 'vitest';
import type { GatewayAddress } from '../state/workload.js';
import { chooseWaypoint, type WaypointChoice, type WaypointChoiceInput } from './waypoint-choice.js';

const SVC_WP: GatewayAddress = { namespace: 'demo', hostname: 'svc-wp.demo.svc.cluster.local', port: 15008 };
const POD_WP: GatewayAddress = { namespace: 'demo', hostname: 'pod-wp.demo.svc.cluster.local', port: 15008 };

describe('chooseWaypoint (upstream ztunnel build_request)', () => {
  it.each<[string, WaypointChoiceInput, WaypointChoice]>([
    [
      'VIP of a service with a waypoint: the service waypoint',
      { addressedService: { waypoint: SVC_WP }, fromWorkloadWaypoint: false },
      { via: 'service-waypoint', gateway: SVC_WP },
    ],
    [
      'VIP of a service without a waypoint: direct, never the endpoint’s workload waypoint',
      { addressedService: {}, fromWorkloadWaypoint: false },
      { via: 'direct' },
    ],
    [
      'VIP of a service with a waypoint, from a pod of some workload waypoint: still the service waypoint',
      { addressedService: { waypoint: SVC_WP }, fromWorkloadWaypoint: true },
      { via: 'service-waypoint', gateway: SVC_WP },
    ],
    [
      'pod IP of a workload with a waypoint: the workload waypoint',
      { addressedWorkload: { waypoint: POD_WP }, fromWorkloadWaypoint: false },
      { via: 'workload-waypoint', gateway: POD_WP },
    ],
    [
      'pod IP of a workload with a waypoint, from that waypoint: direct (the waypoint’s own leg)',
      { addressedWorkload: { waypoint: POD_WP }, fromWorkloadWaypoint: true },
      { via: 'direct' },
    ],
    [
      'pod IP of a workload without a waypoint (its service has one): direct',
      { addressedWorkload: {}, fromWorkloadWaypoint: false },
      { via: 'direct' },
    ],
    [
      'an address the mesh does not know: direct (passthrough)',
      { fromWorkloadWaypoint: false },
      { via: 'direct' },
    ],
  ])('%s', (_case, input, expected) => {
    expect(chooseWaypoint(input)).toEqual(expected);
  });
});

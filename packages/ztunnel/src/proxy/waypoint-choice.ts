/**
 * Whether an outbound connection goes through a waypoint, and which one, as upstream ztunnel's
 * `build_request` decides it (src/proxy/outbound.rs):
 * - the client addressed a service VIP: the service's waypoint if it has one, else straight to
 *   the picked endpoint; never the endpoint's own workload waypoint;
 * - the client addressed a workload's own IP: the workload's waypoint if it has one, unless the
 *   client is that waypoint (its leg towards the workload); else straight to the workload.
 */
import type { GatewayAddress } from '../state/workload.js';

export type WaypointChoice =
  | { readonly via: 'service-waypoint'; readonly gateway: GatewayAddress }
  | { readonly via: 'workload-waypoint'; readonly gateway: GatewayAddress }
  | { readonly via: 'direct' };

export interface WaypointChoiceInput {
  /** The service whose VIP the client connected to, when it connected to one. */
  readonly addressedService?: { readonly waypoint?: GatewayAddress };
  /** The workload whose own IP the client connected to, when it connected to one. */
  readonly addressedWorkload?: { readonly waypoint?: GatewayAddress };
  /** The client is a pod of the addressed workload's waypoint (same identity and address). */
  readonly fromWorkloadWaypoint: boolean;
}

const DIRECT: WaypointChoice = { via: 'direct' };

export function chooseWaypoint(input: WaypointChoiceInput): WaypointChoice {
  const { addressedService, addressedWorkload } = input;
  if (addressedService) {
    const gateway = addressedService.waypoint;
    return gateway ? { via: 'service-waypoint', gateway } : DIRECT;
  }
  const gateway = addressedWorkload?.waypoint;
  if (gateway && !input.fromWorkloadWaypoint) return { via: 'workload-waypoint', gateway };
  return DIRECT;
}

import type { EnvMap, EnvSettings } from '@ambient/shared';
import { DEFAULT_LEASE_TIMINGS, type LeaseTimings } from './lease-elector.js';

/** Settings of the waypoint deployment controller (CP_WAYPOINT_CONTROLLER=true), parsed with the rest. */
export interface WaypointControllerConfig {
  /** This replica's name in the Lease: its pod name. */
  readonly identity: string;
  /** Where the Lease lives: the control plane's own namespace. */
  readonly leaseNamespace: string;
  readonly timings: LeaseTimings;
  readonly resyncMs: number;
  readonly image: string;
  readonly xdsAddress: string;
  readonly rootCertConfigMap: string;
}

export const DEFAULT_WAYPOINT_IMAGE = 'ambient-mesh/waypoint:0.1.0';

/** Who this replica is in the Lease, where the Lease lives, and its timings. */
export interface LeaderElectionConfig {
  readonly identity: string;
  readonly leaseNamespace: string;
  readonly timings: LeaseTimings;
}

/**
 * The controller's settings when CP_WAYPOINT_CONTROLLER is on (`leader` given: the election's
 * settings, parsed once); undefined when off, the default.
 */
export function parseWaypointControllerConfig(
  e: EnvSettings,
  rootNamespace: string,
  leader: LeaderElectionConfig | undefined,
  caCertConfigMap = 'istio-ca-root-cert',
): WaypointControllerConfig | undefined {
  if (!leader) return undefined;
  return {
    ...leader,
    resyncMs: e.durationMs('CP_WAYPOINT_RESYNC', 60_000),
    image: e.required('CP_WAYPOINT_IMAGE', DEFAULT_WAYPOINT_IMAGE),
    xdsAddress: e.hostPort('CP_WAYPOINT_XDS_ADDRESS', `istiod.${rootNamespace}.svc:15012`),
    rootCertConfigMap: e.required('CP_WAYPOINT_ROOT_CERT_CONFIGMAP', caCertConfigMap),
  };
}

/** The leader election every writer of this replica shares (the waypoint controller, status, root-cert ConfigMaps). */
export function parseLeaderElection(
  e: EnvSettings,
  env: EnvMap,
  rootNamespace: string,
): LeaderElectionConfig {
  const timings: LeaseTimings = {
    leaseDurationMs: e.durationMs('CP_LEADER_ELECTION_LEASE_DURATION', DEFAULT_LEASE_TIMINGS.leaseDurationMs),
    renewDeadlineMs: e.durationMs('CP_LEADER_ELECTION_RENEW_DEADLINE', DEFAULT_LEASE_TIMINGS.renewDeadlineMs),
    retryPeriodMs: e.durationMs('CP_LEADER_ELECTION_RETRY_PERIOD', DEFAULT_LEASE_TIMINGS.retryPeriodMs),
  };
  // client-go's rule: a leader must give up (renew deadline) before a candidate may take over (lease duration).
  if (!(timings.retryPeriodMs > 0 && timings.retryPeriodMs < timings.renewDeadlineMs)) {
    e.add(
      'CP_LEADER_ELECTION_RETRY_PERIOD',
      'must be more than 0 and less than CP_LEADER_ELECTION_RENEW_DEADLINE',
    );
  }
  if (!(timings.renewDeadlineMs < timings.leaseDurationMs)) {
    e.add('CP_LEADER_ELECTION_RENEW_DEADLINE', 'must be less than CP_LEADER_ELECTION_LEASE_DURATION');
  }
  if (timings.leaseDurationMs % 1000 !== 0) {
    e.add('CP_LEADER_ELECTION_LEASE_DURATION', 'must be whole seconds (the Lease counts seconds)');
  }
  const identity = e.optional('CP_POD_NAME') ?? env.HOSTNAME ?? '';
  if (!identity) e.add('CP_POD_NAME', 'is required for leader election (HOSTNAME is not set either)');
  return { identity, leaseNamespace: e.required('CP_POD_NAMESPACE', rootNamespace), timings };
}

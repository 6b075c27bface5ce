/**
 * A service as the proxy sees it, from the local config file or from xDS (upstream ztunnel's
 * `state::service::Service`). Optional fields are absent when the source leaves them at their
 * default.
 */
import type { GatewayAddress } from './workload.js';

/** istio.workload.AppProtocol, UNKNOWN left out (an unknown protocol is no entry). */
export type AppProtocol = 'HTTP11' | 'HTTP2' | 'GRPC' | 'TCP' | 'TLS';

export type LoadBalancerScope = 'Region' | 'Zone' | 'Subzone' | 'Node' | 'Cluster' | 'Network';

/** Endpoint selection for direct (non-waypoint) connections, as upstream ztunnel's `LoadBalancer`. */
export interface LoadBalancer {
  readonly routingPreferences: readonly LoadBalancerScope[];
  readonly mode: 'Standard' | 'Strict' | 'Failover' | 'Passthrough';
  readonly healthPolicy: 'OnlyHealthy' | 'AllowAll';
}

/** A VIP that is a whole prefix: every address in `address/length` (on `network`) is the service. */
export interface CidrVip {
  readonly network: string;
  /** An address in the prefix, as the source gave it (host bits may be set). */
  readonly address: string;
  readonly length: number;
}

export interface WeightedWaypoint {
  readonly destination: GatewayAddress;
  /** Share of connections: weight / sum of the set's weights; 0 receives none. */
  readonly weight: number;
}

export interface Service {
  readonly name: string;
  readonly namespace: string;
  readonly hostname: string;
  readonly vips: ReadonlyArray<{ readonly network: string; readonly address: string }>;
  /** VIPs given with a prefix length shorter than the address (istio.workload.NetworkAddress.length). */
  readonly cidrVips?: readonly CidrVip[];
  readonly ports: ReadonlyMap<number, number>;
  /** Service port to its application protocol, for the ports that name one. */
  readonly appProtocols?: ReadonlyMap<number, AppProtocol>;
  readonly subjectAltNames: readonly string[];
  readonly waypoint?: GatewayAddress;
  /** When present, one of these is chosen per connection by weight; `waypoint` names the primary. */
  readonly weightedWaypoints?: readonly WeightedWaypoint[];
  readonly loadBalancer?: LoadBalancer;
  /** Absent: inferred from the addresses (AUTOMATIC). */
  readonly ipFamilies?: 'IPv4' | 'IPv6' | 'Dual';
  /** Preferred among services sharing a hostname or VIP when none is in the client's namespace. */
  readonly canonical?: boolean;
  /** Ingress gateways send this service's traffic through its waypoint. */
  readonly ingressUseWaypoint?: boolean;
  /** 'Namespace': only clients in the service's namespace resolve it; absent: every client. */
  readonly visibility?: 'Public' | 'Namespace';
}

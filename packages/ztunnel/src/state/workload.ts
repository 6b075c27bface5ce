/** A workload (pod) as the proxy sees it, from the local config file or from xDS. */
export type TunnelProtocol = 'HBONE' | 'TCP';

/** Where a waypoint is reached: a service hostname or a network address, and its HBONE port. */
export interface GatewayAddress {
  readonly namespace?: string;
  readonly hostname?: string;
  readonly network?: string;
  readonly address?: string;
  readonly port: number;
}

export interface Workload {
  readonly uid: string;
  readonly name: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly ips: readonly string[];
  readonly protocol: TunnelProtocol;
  readonly node: string;
  readonly network: string;
  /** Service key `namespace/hostname` to port map (service port -> target port). */
  readonly services: ReadonlyMap<string, ReadonlyMap<number, number>>;
  /** `namespace/name` of workload-scoped policies that select this workload. */
  readonly authorizationPolicies: readonly string[];
  /**
   * The pod's network namespace (a path, or a name under /var/run/netns). Our extension for local
   * runs: in a cluster, Istio's CNI hands ztunnel the namespace instead.
   */
  readonly netns?: string;
  /** Set when the control plane names a trust domain other than the node agent's. */
  readonly trustDomain?: string;
  readonly waypoint?: GatewayAddress;
}

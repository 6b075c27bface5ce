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
  /** East-west gateway through which clients on other networks reach the workload. */
  readonly networkGateway?: GatewayAddress;
  /** The workload terminates the tunnel protocol itself (istio.workload.Workload.native_tunnel). */
  readonly nativeTunnel?: boolean;
  /** How tunnel metadata is handed to the application (e.g. a sandwiched waypoint). */
  readonly applicationTunnel?: ApplicationTunnel;
  /** Traffic the workload takes relative to others; absent means 1. */
  readonly capacity?: number;
  /**
   * What telemetry and `config_dump` report of the workload, as the control plane sends it
   * (istio.workload.Workload fields 10-13, 17, 18, 21, 24, 25). Absent when the source names none.
   */
  readonly meta?: WorkloadMeta;
}

export interface ApplicationTunnel {
  /** NONE copies bytes as they are; PROXY prefixes a PROXY protocol header. */
  readonly protocol: 'NONE' | 'PROXY';
  /** Port to deliver to after the last ztunnel hop; absent: the original port. */
  readonly port?: number;
}

export type WorkloadType = 'deployment' | 'cronjob' | 'pod' | 'job';

export interface WorkloadMeta {
  /** The owner's name (a Deployment's, a Job's), else the pod's. */
  readonly workloadName?: string;
  readonly workloadType?: WorkloadType;
  readonly canonicalName?: string;
  readonly canonicalRevision?: string;
  readonly clusterId?: string;
  readonly hostname?: string;
  readonly status?: 'Healthy' | 'Unhealthy';
  readonly locality?: { readonly region: string; readonly zone: string; readonly subzone: string };
  readonly networkMode?: 'Standard' | 'HostNetwork';
}

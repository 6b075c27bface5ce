/**
 * `istio.workload` (packages/shared/proto/istio/workload/workload.proto; field numbers as upstream
 * istio/ztunnel proto/workload.proto) as protobufjs decodes it: camelCase field names, every scalar,
 * repeated and map field present (defaults when unset), message fields null when unset, enums as
 * numbers, and each oneof's set member named by its discriminator. Encoders write `Input<T>` of
 * these types; decoders read them. The proto field number follows each field.
 */

/** A value of an `as const` enum object. Decoded enums may hold numbers the enum lacks: check them. */
type EnumValue<E> = E[keyof E];

export const TunnelProtocol = { NONE: 0, HBONE: 1, LEGACY_ISTIO_MTLS: 2 } as const;
export type TunnelProtocol = EnumValue<typeof TunnelProtocol>;

export const IPFamilies = { AUTOMATIC: 0, IPV4_ONLY: 1, IPV6_ONLY: 2, DUAL: 3 } as const;
export type IPFamilies = EnumValue<typeof IPFamilies>;

export const AppProtocol = { UNKNOWN: 0, HTTP11: 1, HTTP2: 2, GRPC: 3, TCP: 4, TLS: 5 } as const;
export type AppProtocol = EnumValue<typeof AppProtocol>;

/** Service.Visibility */
export const ServiceVisibility = { PUBLIC: 0, NAMESPACE: 1 } as const;
export type ServiceVisibility = EnumValue<typeof ServiceVisibility>;

export const NetworkMode = { STANDARD: 0, HOST_NETWORK: 1 } as const;
export type NetworkMode = EnumValue<typeof NetworkMode>;

export const WorkloadStatus = { HEALTHY: 0, UNHEALTHY: 1 } as const;
export type WorkloadStatus = EnumValue<typeof WorkloadStatus>;

export const WorkloadType = { DEPLOYMENT: 0, CRONJOB: 1, POD: 2, JOB: 3 } as const;
export type WorkloadType = EnumValue<typeof WorkloadType>;

/** LoadBalancing.Scope */
export const LoadBalancingScope = {
  UNSPECIFIED_SCOPE: 0,
  REGION: 1,
  ZONE: 2,
  SUBZONE: 3,
  NODE: 4,
  CLUSTER: 5,
  NETWORK: 6,
} as const;
export type LoadBalancingScope = EnumValue<typeof LoadBalancingScope>;

/** LoadBalancing.Mode */
export const LoadBalancingMode = { UNSPECIFIED_MODE: 0, STRICT: 1, FAILOVER: 2, PASSTHROUGH: 3 } as const;
export type LoadBalancingMode = EnumValue<typeof LoadBalancingMode>;

/** LoadBalancing.HealthPolicy */
export const LoadBalancingHealthPolicy = { ONLY_HEALTHY: 0, ALLOW_ALL: 1 } as const;
export type LoadBalancingHealthPolicy = EnumValue<typeof LoadBalancingHealthPolicy>;

/** ApplicationTunnel.Protocol */
export const ApplicationTunnelProtocol = { NONE: 0, PROXY: 1 } as const;
export type ApplicationTunnelProtocol = EnumValue<typeof ApplicationTunnelProtocol>;

/** google.protobuf.Any: protobufjs's built-in definition keeps the proto field name `type_url`. */
export interface Any {
  readonly type_url: string; // 1
  readonly value: Uint8Array; // 2
}

/** google.protobuf.UInt32Value */
export interface UInt32Value {
  readonly value: number; // 1
}

/** The resource behind `type.googleapis.com/istio.workload.Address`. */
export interface Address {
  /** oneof type */
  readonly type?: 'workload' | 'service';
  readonly workload: Workload | null; // 1
  readonly service: Service | null; // 2
}

export interface Service {
  readonly name: string; // 1
  readonly namespace: string; // 2
  readonly hostname: string; // 3
  readonly addresses: readonly NetworkAddress[]; // 4
  readonly ports: readonly Port[]; // 5
  readonly subjectAltNames: readonly string[]; // 6
  readonly waypoint: GatewayAddress | null; // 7
  readonly loadBalancing: LoadBalancing | null; // 8
  readonly ipFamilies: IPFamilies; // 9
  readonly extensions: readonly Extension[]; // 10
  readonly canonical: boolean; // 11
  readonly ingressUseWaypoint: boolean; // 12
  readonly weightedWaypoints: readonly WeightedWaypoint[]; // 13
  readonly visibility: ServiceVisibility; // 14
}

export interface WeightedWaypoint {
  readonly destination: GatewayAddress | null; // 1
  readonly weight: number; // 2
}

export interface LoadBalancing {
  readonly routingPreference: readonly LoadBalancingScope[]; // 1
  readonly mode: LoadBalancingMode; // 2
  readonly healthPolicy: LoadBalancingHealthPolicy; // 3
}

export interface Workload {
  readonly uid: string; // 20
  readonly name: string; // 1
  readonly namespace: string; // 2
  /** 4 bytes (IPv4) or 16 (IPv6) each. */
  readonly addresses: readonly Uint8Array[]; // 3
  readonly hostname: string; // 21
  readonly network: string; // 4
  readonly tunnelProtocol: TunnelProtocol; // 5
  readonly trustDomain: string; // 6
  readonly serviceAccount: string; // 7
  readonly waypoint: GatewayAddress | null; // 8
  readonly networkGateway: GatewayAddress | null; // 19
  readonly node: string; // 9
  readonly canonicalName: string; // 10
  readonly canonicalRevision: string; // 11
  readonly workloadType: WorkloadType; // 12
  readonly workloadName: string; // 13
  readonly nativeTunnel: boolean; // 14
  readonly applicationTunnel: ApplicationTunnel | null; // 23
  /** Keyed by `namespace/hostname` of each service the workload is an endpoint of. */
  readonly services: Readonly<Record<string, PortList>>; // 22
  readonly authorizationPolicies: readonly string[]; // 16
  readonly status: WorkloadStatus; // 17
  readonly clusterId: string; // 18
  readonly locality: Locality | null; // 24
  readonly networkMode: NetworkMode; // 25
  readonly extensions: readonly Extension[]; // 26
  readonly capacity: UInt32Value | null; // 27
}

export interface Locality {
  readonly region: string; // 1
  readonly zone: string; // 2
  readonly subzone: string; // 3
}

export interface PortList {
  readonly ports: readonly Port[]; // 1
}

export interface Port {
  readonly servicePort: number; // 1
  /** 0: the same as servicePort. */
  readonly targetPort: number; // 2
  readonly appProtocol: AppProtocol; // 3
}

export interface ApplicationTunnel {
  readonly protocol: ApplicationTunnelProtocol; // 1
  readonly port: number; // 2
}

export interface GatewayAddress {
  /** oneof destination */
  readonly destination?: 'hostname' | 'address';
  readonly hostname: NamespacedHostname | null; // 1
  readonly address: NetworkAddress | null; // 2
  readonly hboneMtlsPort: number; // 3
}

export interface NetworkAddress {
  readonly network: string; // 1
  readonly address: Uint8Array; // 2
  /** proto3 `optional`: null when unset (a host address), else the CIDR prefix length. */
  readonly length: number | null; // 3
}

export interface NamespacedHostname {
  readonly namespace: string; // 1
  readonly hostname: string; // 2
}

export interface Extension {
  readonly name: string; // 1
  readonly config: Any | null; // 2
}

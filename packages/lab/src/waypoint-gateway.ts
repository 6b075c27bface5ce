/**
 * The `istio-waypoint` Gateway of a waypoint, in the form `istioctl waypoint apply` writes it
 * (istio/istio istioctl/pkg/waypoint/waypoint.go, makeGateway): one listener `mesh`, HBONE on
 * 15008; `istio.io/waypoint-for` only when asked, so the control plane's default (service) holds
 * otherwise. The lab writes it to its manifests; ambientctl applies it to a cluster.
 */

export const WAYPOINT_FOR_LABEL = 'istio.io/waypoint-for';
export const FOR_SERVICE_ACCOUNT = 'istio.io/for-service-account';

export interface WaypointGatewaySpec {
  readonly namespace: string;
  readonly name: string;
  /** `istio.io/waypoint-for`: service, workload, all or none. */
  readonly waypointFor?: string;
  /** Legacy: serve this service account's workloads (`istio.io/for-service-account`). */
  readonly forServiceAccount?: string;
}

export type WaypointGatewayManifest = {
  readonly apiVersion: 'gateway.networking.k8s.io/v1';
  readonly kind: 'Gateway';
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
  };
  readonly spec: {
    readonly gatewayClassName: 'istio-waypoint';
    readonly listeners: ReadonlyArray<{
      readonly name: string;
      readonly port: number;
      readonly protocol: string;
    }>;
  };
};

export function waypointGateway(spec: WaypointGatewaySpec): WaypointGatewayManifest {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: {
      name: spec.name,
      namespace: spec.namespace,
      ...(spec.waypointFor && { labels: { [WAYPOINT_FOR_LABEL]: spec.waypointFor } }),
      ...(spec.forServiceAccount && { annotations: { [FOR_SERVICE_ACCOUNT]: spec.forServiceAccount } }),
    },
    spec: {
      gatewayClassName: 'istio-waypoint',
      listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
    },
  };
}

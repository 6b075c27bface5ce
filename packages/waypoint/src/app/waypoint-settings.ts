import { DEFAULT_HBONE_CLIENT_TIMINGS, type EnvMap, EnvSettings, type Result } from '@ambient/shared';

/** The waypoint's settings, parsed once from an environment map and frozen. */
export interface WaypointSettings {
  /** Control plane for config (Delta ADS) and certificates, host:port. */
  readonly xdsAddress: string;
  readonly caAddress: string;
  /** PEM root the control plane's and every workload's certificate chains to. */
  readonly rootCertFile: string;
  /** Name the control plane's certificate is checked against. */
  readonly controlPlaneName: string;
  /** Bearer token file: a service-account token bound to the waypoint's identity. */
  readonly tokenFile: string;
  readonly clusterId: string;
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly podName: string;
  readonly gatewayName: string;
  readonly instanceIp: string;
  /** Where HBONE is accepted (15008). */
  readonly listenAddress: string;
  readonly hbonePort: number;
  readonly adminAddress: string;
  readonly adminPort: number;
  readonly metricsAddress: string;
  readonly metricsPort: number;
  readonly readinessPort: number;
  readonly drainMs: number;
  readonly accessLog: boolean;
  readonly logLevel: string;
  /**
   * Most request header fields a request may carry (a listener's max_headers_count overrides);
   * more is refused with 431. Envoy's default, 100.
   */
  readonly maxHeadersCount: number;
  /**
   * Liveness of HBONE connections to endpoints: ping after this much silence, give up this much
   * later. (Their connect deadline is each cluster's connect_timeout.)
   */
  readonly hbonePingIntervalMs: number;
  readonly hbonePingTimeoutMs: number;
  /**
   * HTTP/1.1 served directly on the tunnel's bytes (the waypoint's own parser and upstream
   * client) rather than through Node's HTTP server and client. Default on.
   */
  readonly http1Direct: boolean;
}

export function parseWaypointSettings(env: EnvMap): Result<WaypointSettings> {
  const e = new EnvSettings(env);
  const xdsAddress = e.hostPort('WP_XDS_ADDRESS');
  const namespace = e.required('WP_NAMESPACE');
  const gatewayName = e.required('WP_GATEWAY_NAME');
  return e.result<WaypointSettings>({
    xdsAddress,
    caAddress: e.hostPort('WP_CA_ADDRESS', xdsAddress || undefined),
    rootCertFile: e.required('WP_ROOT_CERT'),
    controlPlaneName: e.required('WP_CONTROL_PLANE_NAME', 'istiod.istio-system.svc'),
    tokenFile: e.required('WP_TOKEN_FILE'),
    clusterId: e.required('WP_CLUSTER_ID', 'Kubernetes'),
    trustDomain: e.required('WP_TRUST_DOMAIN', 'cluster.local'),
    namespace,
    serviceAccount: e.required('WP_SERVICE_ACCOUNT', gatewayName),
    podName: e.required('WP_POD_NAME', `${gatewayName}-0`),
    gatewayName,
    instanceIp: e.required('WP_INSTANCE_IP'),
    listenAddress: e.required('WP_LISTEN_ADDRESS', '0.0.0.0'),
    hbonePort: e.integer('WP_HBONE_PORT', 15008, 0, 65535),
    adminAddress: e.required('WP_ADMIN_ADDRESS', '127.0.0.1'),
    adminPort: e.integer('WP_ADMIN_PORT', 15000, 0, 65535),
    metricsAddress: e.required('WP_METRICS_ADDRESS', '0.0.0.0'),
    metricsPort: e.integer('WP_METRICS_PORT', 15020, 0, 65535),
    readinessPort: e.integer('WP_READINESS_PORT', 15021, 0, 65535),
    drainMs: e.integer('WP_DRAIN_SECONDS', 5, 0, 3600) * 1000,
    accessLog: e.boolean('WP_ACCESS_LOG', true),
    logLevel: e.logLevel('WP_LOG_LEVEL'),
    maxHeadersCount: e.integer('WP_MAX_HEADERS_COUNT', 100, 1, 4096),
    hbonePingIntervalMs: e.integer(
      'WP_HBONE_PING_INTERVAL_MS',
      DEFAULT_HBONE_CLIENT_TIMINGS.pingIntervalMs,
      100,
      3_600_000,
    ),
    hbonePingTimeoutMs: e.integer(
      'WP_HBONE_PING_TIMEOUT_MS',
      DEFAULT_HBONE_CLIENT_TIMINGS.pingTimeoutMs,
      100,
      600_000,
    ),
    http1Direct: e.boolean('WP_HTTP1_DIRECT', true),
  });
}

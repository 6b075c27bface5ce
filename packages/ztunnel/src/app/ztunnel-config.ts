import {
  DEFAULT_HANDSHAKE_LIMITS,
  DEFAULT_HBONE_CLIENT_TIMINGS,
  type EnvMap,
  EnvSettings,
  type HandshakeLimits,
  type HboneClientTimings,
  type Result,
} from '@ambient/shared';

/** The node agent's settings, parsed once from an environment map and frozen. */
export interface ZtunnelConfig {
  readonly nodeName: string;
  /** Local config file; used when no control plane address is set. */
  readonly configFile?: string;
  /** Directory of the built-in CA's root (local runs without a control plane CA). */
  readonly caDir?: string;
  /** Control plane for config (Delta ADS), host:port. */
  readonly xdsAddress?: string;
  /** Control plane CA (IstioCertificateService), host:port. */
  readonly caAddress?: string;
  /** PEM root the control plane's certificate chains to. */
  readonly rootCertFile?: string;
  /** Name the control plane's certificate is checked against. */
  readonly controlPlaneName: string;
  /** Bearer token file presented to the control plane and the CA. */
  readonly tokenFile?: string;
  readonly clusterId: string;
  readonly podName: string;
  readonly podNamespace: string;
  readonly instanceIp: string;
  /**
   * JSON map of `namespace/name` to the pod's network namespace, written by the node's pod
   * runtime (in a cluster, Istio's CNI agent hands ztunnel each pod's namespace instead).
   */
  readonly podNetnsFile?: string;
  /**
   * Where pods and their network namespaces come from: `file` (the local config's `netns` and
   * `podNetnsFile`; this process installs the capture rules) or `zds` (the CNI node agent hands
   * each pod's netns over `zdsSocket`, and owns the capture rules).
   */
  readonly podSource: 'file' | 'zds';
  /** The CNI node agent's ZDS socket (upstream's default path). */
  readonly zdsSocket: string;
  readonly trustDomain: string;
  readonly adminAddress: string;
  readonly adminPort: number;
  readonly metricsAddress: string;
  readonly metricsPort: number;
  readonly readinessPort: number;
  readonly drainMs: number;
  readonly logLevel: string;
  /**
   * Our extension, off by default: deliver a connection from this pod's own waypoint to the app
   * from the client address the waypoint names (Forwarded `for=`), so the app sees the original
   * client. Authorization and telemetry still use the verified socket address (the waypoint's).
   * Upstream ztunnel has no such option: the app sees the waypoint's address.
   */
  readonly preserveClientIpThroughWaypoint: boolean;
  /** Bounds on TLS handshakes in progress at each pod's inbound HBONE listener (15008). */
  readonly hboneHandshake: HandshakeLimits;
  /** Outbound HBONE: connect deadline and liveness of pooled connections. */
  readonly hboneClient: HboneClientTimings;
  /**
   * Read a peer's `baggage` for telemetry when its workload is not known here, and answer CONNECT
   * with the destination's `baggage`: upstream's ENABLE_RESPONSE_BAGGAGE, on by default.
   */
  readonly enableResponseBaggage: boolean;
  /**
   * Diagnostics, off by default: event-loop delay, GC pauses by kind and malloc_trim durations,
   * served at the admin endpoint's `/debug/loop_stats` (see loop-stats.ts).
   */
  readonly loopStats: boolean;
}

export function parseZtunnelConfig(env: EnvMap): Result<ZtunnelConfig> {
  const e = new EnvSettings(env);
  const xdsAddress = e.optionalHostPort('ZT_XDS_ADDRESS');
  const caAddress = e.optionalHostPort('ZT_CA_ADDRESS', xdsAddress);
  const configFile = e.optional('ZT_CONFIG_FILE');
  const caDir = e.optional('ZT_CA_DIR');
  const rootCertFile = e.optional('ZT_ROOT_CERT');
  const tokenFile = e.optional('ZT_TOKEN_FILE');
  const podNetnsFile = e.optional('ZT_POD_NETNS_FILE');
  if (!xdsAddress && !configFile) e.add('ZT_CONFIG_FILE', 'is required when ZT_XDS_ADDRESS is not set');
  if (!caAddress && !caDir) e.add('ZT_CA_DIR', 'is required when ZT_CA_ADDRESS is not set');
  if ((xdsAddress || caAddress) && !rootCertFile)
    e.add('ZT_ROOT_CERT', 'is required with a control plane address');
  if ((xdsAddress || caAddress) && !tokenFile)
    e.add('ZT_TOKEN_FILE', 'is required with a control plane address');
  const podSource = e.required('ZT_POD_SOURCE', 'file');
  if (podSource !== 'file' && podSource !== 'zds') e.add('ZT_POD_SOURCE', 'must be file or zds');
  const nodeName = e.required('ZT_NODE_NAME');
  return e.result<ZtunnelConfig>({
    nodeName,
    ...(configFile && { configFile }),
    ...(caDir && { caDir }),
    ...(xdsAddress && { xdsAddress }),
    ...(caAddress && { caAddress }),
    ...(rootCertFile && { rootCertFile }),
    controlPlaneName: e.required('ZT_CONTROL_PLANE_NAME', 'istiod.istio-system.svc'),
    ...(tokenFile && { tokenFile }),
    clusterId: e.required('ZT_CLUSTER_ID', 'Kubernetes'),
    podName: e.required('ZT_POD_NAME', `ztunnel-${nodeName}`),
    podNamespace: e.required('ZT_POD_NAMESPACE', 'istio-system'),
    instanceIp: e.required('ZT_INSTANCE_IP', '127.0.0.1'),
    ...(podNetnsFile && { podNetnsFile }),
    podSource: podSource === 'zds' ? 'zds' : 'file',
    zdsSocket: e.required('ZT_ZDS_SOCKET', '/var/run/ztunnel/ztunnel.sock'),
    trustDomain: e.required('ZT_TRUST_DOMAIN', 'cluster.local'),
    adminAddress: e.required('ZT_ADMIN_ADDRESS', '127.0.0.1'),
    adminPort: e.integer('ZT_ADMIN_PORT', 15000, 0, 65535),
    metricsAddress: e.required('ZT_METRICS_ADDRESS', '0.0.0.0'),
    metricsPort: e.integer('ZT_METRICS_PORT', 15020, 0, 65535),
    readinessPort: e.integer('ZT_READINESS_PORT', 15021, 0, 65535),
    drainMs: e.integer('ZT_DRAIN_SECONDS', 5, 0, 3600) * 1000,
    logLevel: e.logLevel('ZT_LOG_LEVEL'),
    preserveClientIpThroughWaypoint: e.boolean('ZT_PRESERVE_CLIENT_IP_THROUGH_WAYPOINT', false),
    enableResponseBaggage: e.boolean('ZT_ENABLE_RESPONSE_BAGGAGE', true),
    loopStats: e.boolean('ZT_LOOP_STATS', false),
    hboneHandshake: Object.freeze({
      timeoutMs: e.integer('ZT_HBONE_HANDSHAKE_TIMEOUT_MS', DEFAULT_HANDSHAKE_LIMITS.timeoutMs, 100, 120_000),
      maxPending: e.integer('ZT_HBONE_MAX_HANDSHAKES', DEFAULT_HANDSHAKE_LIMITS.maxPending, 1, 1_000_000),
      maxPendingPerSource: e.integer(
        'ZT_HBONE_MAX_HANDSHAKES_PER_SOURCE',
        DEFAULT_HANDSHAKE_LIMITS.maxPendingPerSource,
        1,
        1_000_000,
      ),
    }),
    hboneClient: Object.freeze({
      connectTimeoutMs: e.integer(
        'ZT_HBONE_CONNECT_TIMEOUT_MS',
        DEFAULT_HBONE_CLIENT_TIMINGS.connectTimeoutMs,
        100,
        600_000,
      ),
      pingIntervalMs: e.integer(
        'ZT_HBONE_PING_INTERVAL_MS',
        DEFAULT_HBONE_CLIENT_TIMINGS.pingIntervalMs,
        100,
        3_600_000,
      ),
      pingTimeoutMs: e.integer(
        'ZT_HBONE_PING_TIMEOUT_MS',
        DEFAULT_HBONE_CLIENT_TIMINGS.pingTimeoutMs,
        100,
        600_000,
      ),
    }),
  });
}

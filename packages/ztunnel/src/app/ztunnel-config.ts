import {
  DEFAULT_HANDSHAKE_LIMITS,
  fail,
  type HandshakeLimits,
  ok,
  type Problem,
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
}

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export function parseZtunnelConfig(env: Readonly<Record<string, string | undefined>>): Result<ZtunnelConfig> {
  const problems: Problem[] = [];
  const str = (key: string, fallback?: string): string => {
    const v = env[key] ?? fallback;
    if (v === undefined || v === '') problems.push({ path: key, message: 'is required' });
    return v ?? '';
  };
  const num = (key: string, fallback: number, min: number, max: number): number => {
    const raw = env[key];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max)
      problems.push({ path: key, message: `must be an integer from ${min} to ${max}` });
    return n;
  };
  const logLevel = env.ZT_LOG_LEVEL ?? 'info';
  if (!LEVELS.includes(logLevel))
    problems.push({ path: 'ZT_LOG_LEVEL', message: `must be one of ${LEVELS.join(', ')}` });
  const opt = (key: string): string | undefined => (env[key] === '' ? undefined : env[key]);
  const xdsAddress = opt('ZT_XDS_ADDRESS');
  const caAddress = opt('ZT_CA_ADDRESS') ?? xdsAddress;
  if (!xdsAddress && !opt('ZT_CONFIG_FILE'))
    problems.push({ path: 'ZT_CONFIG_FILE', message: 'is required when ZT_XDS_ADDRESS is not set' });
  if (!caAddress && !opt('ZT_CA_DIR'))
    problems.push({ path: 'ZT_CA_DIR', message: 'is required when ZT_CA_ADDRESS is not set' });
  if ((xdsAddress || caAddress) && !opt('ZT_ROOT_CERT'))
    problems.push({ path: 'ZT_ROOT_CERT', message: 'is required with a control plane address' });
  if ((xdsAddress || caAddress) && !opt('ZT_TOKEN_FILE'))
    problems.push({ path: 'ZT_TOKEN_FILE', message: 'is required with a control plane address' });
  for (const [key, v] of [
    ['ZT_XDS_ADDRESS', xdsAddress],
    ['ZT_CA_ADDRESS', caAddress],
  ] as const) {
    if (v !== undefined && !/^[^\s:]+:\d{1,5}$/.test(v))
      problems.push({ path: key, message: 'must be host:port' });
  }
  const bool = (key: string, fallback: boolean): boolean => {
    const v = opt(key);
    if (v === undefined) return fallback;
    if (v !== 'true' && v !== 'false') problems.push({ path: key, message: 'must be true or false' });
    return v === 'true';
  };
  const nodeName = str('ZT_NODE_NAME');
  const config: ZtunnelConfig = {
    nodeName,
    ...(opt('ZT_CONFIG_FILE') && { configFile: opt('ZT_CONFIG_FILE') }),
    ...(opt('ZT_CA_DIR') && { caDir: opt('ZT_CA_DIR') }),
    ...(xdsAddress && { xdsAddress }),
    ...(caAddress && { caAddress }),
    ...(opt('ZT_ROOT_CERT') && { rootCertFile: opt('ZT_ROOT_CERT') }),
    controlPlaneName: opt('ZT_CONTROL_PLANE_NAME') ?? 'istiod.istio-system.svc',
    ...(opt('ZT_TOKEN_FILE') && { tokenFile: opt('ZT_TOKEN_FILE') }),
    clusterId: opt('ZT_CLUSTER_ID') ?? 'Kubernetes',
    podName: opt('ZT_POD_NAME') ?? `ztunnel-${nodeName}`,
    podNamespace: opt('ZT_POD_NAMESPACE') ?? 'istio-system',
    instanceIp: opt('ZT_INSTANCE_IP') ?? '127.0.0.1',
    ...(opt('ZT_POD_NETNS_FILE') && { podNetnsFile: opt('ZT_POD_NETNS_FILE') }),
    trustDomain: str('ZT_TRUST_DOMAIN', 'cluster.local'),
    adminAddress: env.ZT_ADMIN_ADDRESS ?? '127.0.0.1',
    adminPort: num('ZT_ADMIN_PORT', 15000, 0, 65535),
    metricsAddress: env.ZT_METRICS_ADDRESS ?? '0.0.0.0',
    metricsPort: num('ZT_METRICS_PORT', 15020, 0, 65535),
    readinessPort: num('ZT_READINESS_PORT', 15021, 0, 65535),
    drainMs: num('ZT_DRAIN_SECONDS', 5, 0, 3600) * 1000,
    logLevel,
    preserveClientIpThroughWaypoint: bool('ZT_PRESERVE_CLIENT_IP_THROUGH_WAYPOINT', false),
    hboneHandshake: Object.freeze({
      timeoutMs: num('ZT_HBONE_HANDSHAKE_TIMEOUT_MS', DEFAULT_HANDSHAKE_LIMITS.timeoutMs, 100, 120_000),
      maxPending: num('ZT_HBONE_MAX_HANDSHAKES', DEFAULT_HANDSHAKE_LIMITS.maxPending, 1, 1_000_000),
      maxPendingPerSource: num(
        'ZT_HBONE_MAX_HANDSHAKES_PER_SOURCE',
        DEFAULT_HANDSHAKE_LIMITS.maxPendingPerSource,
        1,
        1_000_000,
      ),
    }),
  };
  return problems.length ? fail(problems) : ok(Object.freeze(config));
}

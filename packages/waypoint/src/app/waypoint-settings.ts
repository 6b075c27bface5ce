import { fail, ok, type Problem, type Result } from '@ambient/shared';

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
}

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export function parseWaypointSettings(
  env: Readonly<Record<string, string | undefined>>,
): Result<WaypointSettings> {
  const problems: Problem[] = [];
  const opt = (key: string): string | undefined => (env[key] === '' ? undefined : env[key]);
  const str = (key: string, fallback?: string): string => {
    const v = opt(key) ?? fallback;
    if (v === undefined) problems.push({ path: key, message: 'is required' });
    return v ?? '';
  };
  const num = (key: string, fallback: number, min: number, max: number): number => {
    const raw = opt(key);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max)
      problems.push({ path: key, message: `must be an integer from ${min} to ${max}` });
    return n;
  };
  const hostPort = (key: string, fallback?: string): string => {
    const v = str(key, fallback);
    if (v && !/^[^\s:]+:\d{1,5}$/.test(v)) problems.push({ path: key, message: 'must be host:port' });
    return v;
  };
  const logLevel = opt('WP_LOG_LEVEL') ?? 'info';
  if (!LEVELS.includes(logLevel))
    problems.push({ path: 'WP_LOG_LEVEL', message: `must be one of ${LEVELS.join(', ')}` });
  const xdsAddress = hostPort('WP_XDS_ADDRESS');
  const namespace = str('WP_NAMESPACE');
  const gatewayName = str('WP_GATEWAY_NAME');
  const settings: WaypointSettings = {
    xdsAddress,
    caAddress: hostPort('WP_CA_ADDRESS', xdsAddress || undefined),
    rootCertFile: str('WP_ROOT_CERT'),
    controlPlaneName: opt('WP_CONTROL_PLANE_NAME') ?? 'istiod.istio-system.svc',
    tokenFile: str('WP_TOKEN_FILE'),
    clusterId: opt('WP_CLUSTER_ID') ?? 'Kubernetes',
    trustDomain: opt('WP_TRUST_DOMAIN') ?? 'cluster.local',
    namespace,
    serviceAccount: opt('WP_SERVICE_ACCOUNT') ?? gatewayName,
    podName: opt('WP_POD_NAME') ?? `${gatewayName}-0`,
    gatewayName,
    instanceIp: str('WP_INSTANCE_IP'),
    listenAddress: opt('WP_LISTEN_ADDRESS') ?? '0.0.0.0',
    hbonePort: num('WP_HBONE_PORT', 15008, 0, 65535),
    adminAddress: opt('WP_ADMIN_ADDRESS') ?? '127.0.0.1',
    adminPort: num('WP_ADMIN_PORT', 15000, 0, 65535),
    metricsAddress: opt('WP_METRICS_ADDRESS') ?? '0.0.0.0',
    metricsPort: num('WP_METRICS_PORT', 15020, 0, 65535),
    readinessPort: num('WP_READINESS_PORT', 15021, 0, 65535),
    drainMs: num('WP_DRAIN_SECONDS', 5, 0, 3600) * 1000,
    accessLog: (opt('WP_ACCESS_LOG') ?? 'true') !== 'false',
    logLevel,
    maxHeadersCount: num('WP_MAX_HEADERS_COUNT', 100, 1, 4096),
  };
  return problems.length ? fail(problems) : ok(Object.freeze(settings));
}

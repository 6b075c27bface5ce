import { fail, ok, type Problem, type Result } from '@ambient/shared';

/** The node agent's settings, parsed once from an environment map and frozen. */
export interface ZtunnelConfig {
  readonly nodeName: string;
  readonly configFile: string;
  /** Directory of the built-in CA's root (shared by the node agents of a lab). */
  readonly caDir: string;
  readonly trustDomain: string;
  readonly adminAddress: string;
  readonly adminPort: number;
  readonly metricsAddress: string;
  readonly metricsPort: number;
  readonly readinessPort: number;
  readonly drainMs: number;
  readonly logLevel: string;
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
  const config: ZtunnelConfig = {
    nodeName: str('ZT_NODE_NAME'),
    configFile: str('ZT_CONFIG_FILE'),
    caDir: str('ZT_CA_DIR'),
    trustDomain: str('ZT_TRUST_DOMAIN', 'cluster.local'),
    adminAddress: env.ZT_ADMIN_ADDRESS ?? '127.0.0.1',
    adminPort: num('ZT_ADMIN_PORT', 15000, 0, 65535),
    metricsAddress: env.ZT_METRICS_ADDRESS ?? '0.0.0.0',
    metricsPort: num('ZT_METRICS_PORT', 15020, 0, 65535),
    readinessPort: num('ZT_READINESS_PORT', 15021, 0, 65535),
    drainMs: num('ZT_DRAIN_SECONDS', 5, 0, 3600) * 1000,
    logLevel,
  };
  return problems.length ? fail(problems) : ok(Object.freeze(config));
}

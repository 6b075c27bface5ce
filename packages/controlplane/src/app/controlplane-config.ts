import { fail, ok, type Problem, type Result } from '@ambient/shared';
import { DEFAULT_MANIFEST_LIMITS } from '../manifests/kube-objects.js';
import { ManifestFields } from '../manifests/manifest-fields.js';

/** The control plane's settings, parsed once from an environment map and frozen. */
export interface ControlPlaneConfig {
  /** Directory of Kubernetes manifests (the config source). */
  readonly manifestDir: string;
  /** Directory holding the CA root (created on first start, reused after). */
  readonly caDir: string;
  /** JSON file of bearer tokens and the callers they stand for. */
  readonly tokensFile: string;
  /** gRPC (TLS) for xDS and the CA. */
  readonly grpcAddress: string;
  readonly grpcPort: number;
  /** HTTP monitoring: /metrics, /ready, /debug/*. */
  readonly monitorAddress: string;
  readonly monitorPort: number;
  readonly trustDomain: string;
  readonly clusterId: string;
  readonly rootNamespace: string;
  readonly domainSuffix: string;
  /** DNS names on the serving certificate; clients check the first. */
  readonly serverNames: readonly string[];
  /** Quiet period after a change before pushing, and the longest a push waits. */
  readonly debounceMs: number;
  readonly debounceMaxMs: number;
  /**
   * Lifetime of the workload certificates the CA issues, and the most a CSR may ask for: a longer
   * requested validity_duration is shortened to it, a non-positive one gets it.
   */
  readonly workloadCertTtlSeconds: number;
  readonly logLevel: string;
  /** Largest manifest file read; larger ones are refused unread. */
  readonly maxManifestFileBytes: number;
  /** Largest object, as a Kubernetes API server refuses objects over etcd's request limit (1.5 MiB). */
  readonly maxObjectBytes: number;
  /** Most principals, namespaces, IP blocks, ports and other values in one AuthorizationPolicy. */
  readonly maxPolicyValues: number;
}

/** Istio's DEFAULT_WORKLOAD_CERT_TTL default. */
export const DEFAULT_WORKLOAD_CERT_TTL_SECONDS = 24 * 3600;
/** Istio's MAX_WORKLOAD_CERT_TTL default, and the longest the built-in CA signs. */
export const MAX_WORKLOAD_CERT_TTL_SECONDS = 90 * 24 * 3600;

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export function parseControlPlaneConfig(
  env: Readonly<Record<string, string | undefined>>,
): Result<ControlPlaneConfig> {
  const problems: Problem[] = [];
  const str = (key: string, fallback?: string): string => {
    const v = env[key] || fallback;
    if (!v) problems.push({ path: key, message: 'is required' });
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
  const workloadCertTtlSeconds = (() => {
    const raw = env.CP_WORKLOAD_CERT_TTL;
    if (raw === undefined || raw === '') return DEFAULT_WORKLOAD_CERT_TTL_SECONDS;
    const fields = new ManifestFields();
    const ms = fields.duration(raw, 'CP_WORKLOAD_CERT_TTL');
    problems.push(...fields.problems);
    if (ms === undefined) return DEFAULT_WORKLOAD_CERT_TTL_SECONDS;
    // Certificates count whole seconds: refuse what they cannot carry rather than round it.
    if (ms % 1000 !== 0 || ms < 1000 || ms > MAX_WORKLOAD_CERT_TTL_SECONDS * 1000) {
      problems.push({
        path: 'CP_WORKLOAD_CERT_TTL',
        message: `${JSON.stringify(raw)} must be a whole number of seconds from 1s to 2160h (90 days)`,
      });
    }
    return ms / 1000;
  })();
  const logLevel = env.CP_LOG_LEVEL || 'info';
  if (!LEVELS.includes(logLevel))
    problems.push({ path: 'CP_LOG_LEVEL', message: `must be one of ${LEVELS.join(', ')}` });
  const config: ControlPlaneConfig = {
    manifestDir: str('CP_MANIFEST_DIR'),
    caDir: str('CP_CA_DIR'),
    tokensFile: str('CP_TOKENS_FILE'),
    grpcAddress: env.CP_GRPC_ADDRESS || '0.0.0.0',
    grpcPort: num('CP_GRPC_PORT', 15012, 0, 65535),
    monitorAddress: env.CP_MONITOR_ADDRESS || '0.0.0.0',
    monitorPort: num('CP_MONITOR_PORT', 15014, 0, 65535),
    trustDomain: str('CP_TRUST_DOMAIN', 'cluster.local'),
    clusterId: str('CP_CLUSTER_ID', 'Kubernetes'),
    rootNamespace: str('CP_ROOT_NAMESPACE', 'istio-system'),
    domainSuffix: str('CP_DOMAIN_SUFFIX', 'cluster.local'),
    serverNames: str('CP_SERVER_NAMES', 'istiod.istio-system.svc')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    debounceMs: num('CP_DEBOUNCE_MS', 10, 0, 10_000),
    debounceMaxMs: num('CP_DEBOUNCE_MAX_MS', 100, 0, 60_000),
    workloadCertTtlSeconds,
    logLevel,
    maxManifestFileBytes: num(
      'CP_MAX_MANIFEST_FILE_BYTES',
      DEFAULT_MANIFEST_LIMITS.maxFileBytes,
      1024,
      1024 * 1024 * 1024,
    ),
    maxObjectBytes: num(
      'CP_MAX_OBJECT_BYTES',
      DEFAULT_MANIFEST_LIMITS.maxObjectBytes,
      1024,
      64 * 1024 * 1024,
    ),
    maxPolicyValues: num('CP_MAX_POLICY_VALUES', DEFAULT_MANIFEST_LIMITS.maxPolicyValues, 1, 10_000_000),
  };
  return problems.length ? fail(problems) : ok(Object.freeze(config));
}

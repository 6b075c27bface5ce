import { type EnvMap, EnvSettings, type Result } from '@ambient/shared';
import { type AuthSettings, parseAuthSettings } from '../auth/auth-settings.js';
import { DEFAULT_MANIFEST_LIMITS } from '../manifests/kube-objects.js';
import {
  type LeaderElectionConfig,
  parseLeaderElection,
  parseWaypointControllerConfig,
  type WaypointControllerConfig,
} from '../waypoint-controller/waypoint-controller-config.js';

/** The control plane's settings, parsed once from an environment map and frozen. */
export interface ControlPlaneConfig {
  /** Where resources come from: a manifest directory (the lab) or a Kubernetes API server. */
  readonly configSource: 'directory' | 'kubernetes';
  /** Directory of Kubernetes manifests (the `directory` source); empty otherwise. */
  readonly manifestDir: string;
  /** Kubeconfig for the `kubernetes` source; empty: the pod's service account (in-cluster). */
  readonly kubeconfig: string;
  /** KUBERNETES_SERVICE_HOST / _PORT, for the in-cluster connection. */
  readonly kubernetesServiceHost: string;
  readonly kubernetesServicePort: string;
  /** Directory holding the CA root (created on first start, reused after). */
  readonly caDir: string;
  /** JSON file of bearer tokens and the callers they stand for (required when auth.mode is file). */
  readonly tokensFile: string;
  /** How callers are authenticated: the tokens file or TokenReview. */
  readonly auth: AuthSettings;
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
  /**
   * Send dry-run AuthorizationPolicies to ztunnel marked dry_run, as istiod does with
   * AMBIENT_ENABLE_DRY_RUN_AUTHORIZATION_POLICY; off (the default), they are not sent.
   */
  readonly sendDryRunPolicies: boolean;
  /** The waypoint deployment controller with leader election; undefined: off. */
  readonly waypointController: WaypointControllerConfig | undefined;
  /**
   * The one leader election of every writer (waypoint controller, status, root-cert ConfigMaps);
   * undefined when none is on.
   */
  readonly leaderElection: LeaderElectionConfig | undefined;
  /**
   * The leader writes `status.conditions` (ZtunnelAccepted, istio.io/WaypointBound), as istiod's
   * AMBIENT_ENABLE_STATUS: on by default with the kubernetes source, never with a directory.
   */
  readonly writeStatus: boolean;
  /**
   * The ConfigMap with the CA root (`root-cert.pem`) the leader keeps in every namespace, as
   * istiod's namespace controller: on by default whenever the control plane talks to an API
   * server for objects (the kubernetes source or the waypoint controller); undefined: off.
   */
  readonly rootCertConfigMap: string | undefined;
}

/** Istio's DEFAULT_WORKLOAD_CERT_TTL default. */
export const DEFAULT_WORKLOAD_CERT_TTL_SECONDS = 24 * 3600;
/** Istio's MAX_WORKLOAD_CERT_TTL default, and the longest the built-in CA signs. */
export const MAX_WORKLOAD_CERT_TTL_SECONDS = 90 * 24 * 3600;

export function parseControlPlaneConfig(env: EnvMap): Result<ControlPlaneConfig> {
  const e = new EnvSettings(env);
  const ttlMs = e.durationMs('CP_WORKLOAD_CERT_TTL', DEFAULT_WORKLOAD_CERT_TTL_SECONDS * 1000);
  // Certificates count whole seconds: refuse what they cannot carry rather than round it.
  if (ttlMs % 1000 !== 0 || ttlMs < 1000 || ttlMs > MAX_WORKLOAD_CERT_TTL_SECONDS * 1000) {
    e.add(
      'CP_WORKLOAD_CERT_TTL',
      `${JSON.stringify(env.CP_WORKLOAD_CERT_TTL)} must be a whole number of seconds from 1s to 2160h (90 days)`,
    );
  }
  const auth = parseAuthSettings(e);
  const configSource =
    e.optional('CP_CONFIG_SOURCE') ?? (e.optional('CP_MANIFEST_DIR') ? 'directory' : 'kubernetes');
  if (configSource !== 'directory' && configSource !== 'kubernetes') {
    e.add('CP_CONFIG_SOURCE', `${JSON.stringify(configSource)} must be directory or kubernetes`);
  }
  const kubeconfig = e.optional('CP_KUBECONFIG') ?? '';
  const kubernetesServiceHost = e.optional('KUBERNETES_SERVICE_HOST') ?? '';
  const kubernetesServicePort = e.optional('KUBERNETES_SERVICE_PORT') ?? '443';
  if (
    (configSource === 'kubernetes' ||
      auth.mode === 'tokenreview' ||
      e.optional('CP_WAYPOINT_CONTROLLER') === 'true') &&
    !kubeconfig &&
    !kubernetesServiceHost
  ) {
    e.add(
      'CP_KUBECONFIG',
      'is required outside a cluster: the kubernetes source, TokenReview and the waypoint controller need a kubeconfig, or KUBERNETES_SERVICE_HOST (in a pod)',
    );
  }
  const rootNamespace = env.CP_ROOT_NAMESPACE || 'istio-system';
  const waypointOn = e.boolean('CP_WAYPOINT_CONTROLLER', false);
  const writeStatus = e.boolean('CP_AMBIENT_ENABLE_STATUS', true) && configSource === 'kubernetes';
  const rootCertOn =
    e.boolean('CP_NAMESPACE_CONTROLLER', true) && (configSource === 'kubernetes' || waypointOn);
  const leaderElection =
    writeStatus || rootCertOn || waypointOn ? parseLeaderElection(e, env, rootNamespace) : undefined;
  // One name for the ConfigMap the namespace controller writes and the waypoint pods mount.
  const caCertConfigMap = e.required('CP_CA_CERT_CONFIGMAP', 'istio-ca-root-cert');
  return e.result<ControlPlaneConfig>({
    configSource: configSource === 'kubernetes' ? 'kubernetes' : 'directory',
    manifestDir: configSource === 'directory' ? e.required('CP_MANIFEST_DIR') : '',
    kubeconfig,
    kubernetesServiceHost,
    kubernetesServicePort,
    caDir: e.required('CP_CA_DIR'),
    tokensFile: auth.mode === 'file' ? e.required('CP_TOKENS_FILE') : (e.optional('CP_TOKENS_FILE') ?? ''),
    auth,
    grpcAddress: e.required('CP_GRPC_ADDRESS', '0.0.0.0'),
    grpcPort: e.integer('CP_GRPC_PORT', 15012, 0, 65535),
    monitorAddress: e.required('CP_MONITOR_ADDRESS', '0.0.0.0'),
    monitorPort: e.integer('CP_MONITOR_PORT', 15014, 0, 65535),
    trustDomain: e.required('CP_TRUST_DOMAIN', 'cluster.local'),
    clusterId: e.required('CP_CLUSTER_ID', 'Kubernetes'),
    rootNamespace: e.required('CP_ROOT_NAMESPACE', 'istio-system'),
    domainSuffix: e.required('CP_DOMAIN_SUFFIX', 'cluster.local'),
    serverNames: e
      .required('CP_SERVER_NAMES', 'istiod.istio-system.svc')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    debounceMs: e.integer('CP_DEBOUNCE_MS', 10, 0, 10_000),
    debounceMaxMs: e.integer('CP_DEBOUNCE_MAX_MS', 100, 0, 60_000),
    workloadCertTtlSeconds: ttlMs / 1000,
    logLevel: e.logLevel('CP_LOG_LEVEL'),
    maxManifestFileBytes: e.integer(
      'CP_MAX_MANIFEST_FILE_BYTES',
      DEFAULT_MANIFEST_LIMITS.maxFileBytes,
      1024,
      1024 * 1024 * 1024,
    ),
    maxObjectBytes: e.integer(
      'CP_MAX_OBJECT_BYTES',
      DEFAULT_MANIFEST_LIMITS.maxObjectBytes,
      1024,
      64 * 1024 * 1024,
    ),
    maxPolicyValues: e.integer(
      'CP_MAX_POLICY_VALUES',
      DEFAULT_MANIFEST_LIMITS.maxPolicyValues,
      1,
      10_000_000,
    ),
    sendDryRunPolicies: e.boolean('CP_AMBIENT_ENABLE_DRY_RUN_AUTHORIZATION_POLICY', false),
    waypointController: parseWaypointControllerConfig(
      e,
      rootNamespace,
      waypointOn ? leaderElection : undefined,
      caCertConfigMap,
    ),
    leaderElection,
    writeStatus,
    rootCertConfigMap: rootCertOn ? caCertConfigMap : undefined,
  });
}

/**
 * ambientctl's connection to a Kubernetes API server: the control plane's kubeconfig loader and
 * JSON client (client-node's KubeConfig for credentials and TLS), client-node's CoreV1Api for the
 * pod proxy, and one place that turns every failure into a one-line CliError.
 */

import { CONTENT_APPLY, CONTENT_MERGE, KubeApiError, KubeRest, loadKubeConfig } from '@ambient/controlplane';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { CliError } from '../cli-error.js';
import type { ClusterTarget } from './cluster-target.js';

/** Per-request bound: an API server that accepts and never answers is reported, not waited on. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'EPIPE',
]);

export class KubeClient {
  readonly server: string;
  /** The current context's namespace, else `default` (as kubectl and istioctl). */
  readonly defaultNamespace: string;
  private readonly rest: KubeRest;

  private constructor(
    readonly kubeConfig: KubeConfig,
    timeoutMs: number,
  ) {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster)
      throw new CliError('CLI_ERR_KUBECONFIG', 'kubeconfig has no current context with a cluster');
    this.server = cluster.server;
    this.defaultNamespace =
      kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace || 'default';
    this.rest = new KubeRest(kubeConfig, { timeoutMs });
  }

  static connect(
    target: Extract<ClusterTarget, { kind: 'kube' }>,
    timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS,
  ): KubeClient {
    let kc: KubeConfig;
    try {
      kc = loadKubeConfig({
        kubeconfig: target.kubeconfig,
        serviceHost: target.serviceHost,
        servicePort: target.servicePort,
      });
    } catch (err) {
      const what = target.kubeconfig
        ? `kubeconfig ${target.kubeconfig} (${target.from})`
        : 'in-cluster config';
      throw new CliError('CLI_ERR_KUBECONFIG', `cannot load ${what}: ${(err as Error).message}`);
    }
    return new KubeClient(kc, timeoutMs);
  }

  /** A client for the current context of a kubeconfig file (what the cluster suites use). */
  static fromFile(kubeconfig: string, timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS): KubeClient {
    return KubeClient.connect(
      { kind: 'kube', kubeconfig, from: '--kubeconfig', serviceHost: '', servicePort: '' },
      timeoutMs,
    );
  }

  /** GET; undefined on 404 when `allowMissing`. */
  get<T>(path: string, allowMissing = false): Promise<T | undefined> {
    return this.call(() => this.rest.request<T>('GET', path, undefined, undefined, allowMissing));
  }

  /** Server-side apply as `fieldManager` (not forced: a conflict with another manager is reported). */
  apply<T>(path: string, body: unknown, fieldManager: string): Promise<T | undefined> {
    const sep = path.includes('?') ? '&' : '?';
    return this.call(() =>
      this.rest.request<T>(
        'PATCH',
        `${path}${sep}fieldManager=${encodeURIComponent(fieldManager)}`,
        body,
        CONTENT_APPLY,
      ),
    );
  }

  mergePatch<T>(path: string, body: unknown): Promise<T | undefined> {
    return this.call(() => this.rest.request<T>('PATCH', path, body, CONTENT_MERGE));
  }

  /** DELETE; false when it was already gone. */
  async delete(path: string): Promise<boolean> {
    const r = await this.call(() => this.rest.request('DELETE', path, undefined, undefined, true));
    return r !== undefined;
  }

  /** GET `path` on a pod's port through the API server's pod proxy (text, e.g. Prometheus). */
  podProxyGet(namespace: string, pod: string, port: number, path: string): Promise<string> {
    const api = this.kubeConfig.makeApiClient(CoreV1Api);
    return this.call(() =>
      api.connectGetNamespacedPodProxyWithPath({
        namespace,
        name: `${pod}:${port}`,
        path: path.replace(/^\//, ''),
      }),
    );
  }

  /** Runs an API call, reporting any failure as one line naming the server. */
  async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.describe(err);
    }
  }

  describe(err: unknown): CliError {
    if (err instanceof CliError) return err;
    if (err instanceof KubeApiError)
      return new CliError('CLI_ERR_API', apiMessage(err.status, err.method, err.path, err.body), err.status);
    // `error` is where a WebSocket ErrorEvent (port-forward) keeps the socket's error.
    const e = err as {
      code?: unknown;
      body?: unknown;
      message?: string;
      cause?: { code?: unknown };
      error?: { code?: unknown };
    };
    // client-node's generated APIs: ApiException with the HTTP status as `code` and the body.
    if (typeof e.code === 'number')
      return new CliError(
        'CLI_ERR_API',
        apiMessage(e.code, 'GET', '', typeof e.body === 'string' ? e.body : ''),
        e.code,
      );
    const nested = [e.code, e.cause?.code, e.error?.code].find((c) => typeof c === 'string');
    const code = typeof nested === 'string' ? nested : '';
    const msg = e.message ?? String(err);
    if (
      NETWORK_CODES.has(code) ||
      /timed out|socket hang up|certificate|self[- ]signed|ssl|tls/i.test(msg) ||
      code.startsWith('ERR_TLS') ||
      code.startsWith('UNABLE_') ||
      code.startsWith('DEPTH_') ||
      code.startsWith('CERT_')
    )
      return new CliError(
        'CLI_ERR_API_UNREACHABLE',
        `cannot reach the Kubernetes API server at ${this.server}: ${msg}`,
      );
    if (code === 'ENOENT' || code === 'EACCES')
      return new CliError('CLI_ERR_KUBECONFIG', `cannot read a file the kubeconfig names: ${msg}`);
    return new CliError('CLI_ERR_API', `Kubernetes API request failed: ${msg}`);
  }
}

/** `<status> <reason>: <message>` from a Kubernetes Status body, else the status and the body's start. */
function apiMessage(status: number, method: string, path: string, body: string): string {
  let detail = body.slice(0, 200);
  try {
    const s = JSON.parse(body) as { message?: string; reason?: string };
    if (s.message) detail = s.reason ? `${s.reason}: ${s.message}` : s.message;
  } catch {
    // Not a Status object: keep the text.
  }
  const where = path ? `${method} ${path.split('?')[0]}: ` : '';
  return `${where}${status} ${detail}`.trim();
}

export function isNotFound(err: unknown): boolean {
  return err instanceof CliError && err.status === 404;
}

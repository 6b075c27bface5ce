/**
 * A thin JSON client for the Kubernetes API over the credentials and TLS settings of a client-node
 * KubeConfig: any path, any verb, any patch content type (server-side apply, merge patch on a
 * status subresource), which the generated clients make awkward. Watches use client-node's Watch.
 */
import https from 'node:https';
import { type KubeConfig, Watch } from '@kubernetes/client-node';

export class KubeApiError extends Error {
  readonly code = 'CP_ERR_KUBE_API';
  constructor(
    readonly status: number,
    readonly method: string,
    readonly path: string,
    readonly body: string,
  ) {
    super(`${method} ${path}: ${status} ${body.slice(0, 300)}`);
  }
}

export const CONTENT_APPLY = 'application/apply-patch+yaml';
export const CONTENT_MERGE = 'application/merge-patch+json';

export interface KubeRestOptions {
  /** Per-request timeout. */
  readonly timeoutMs?: number;
}

export class KubeRest {
  private readonly server: string;
  constructor(
    readonly kubeConfig: KubeConfig,
    private readonly options: KubeRestOptions = {},
  ) {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    this.server = cluster.server.replace(/\/$/, '');
  }

  /** The JSON body, or undefined on 404 when `allowMissing`; any other non-2xx rejects. */
  async request<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
    allowMissing = false,
  ): Promise<T | undefined> {
    const url = new URL(this.server + path);
    const opts: https.RequestOptions = {
      method,
      hostname: url.hostname,
      port: url.port,
      path: url.pathname + url.search,
      headers: { accept: 'application/json', ...(body !== undefined && { 'content-type': contentType }) },
      timeout: this.options.timeoutMs ?? 10_000,
    };
    await this.kubeConfig.applyToHTTPSOptions(opts);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = https.request(opts, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on('error', reject);
      req.end(payload);
    });
    if (status === 404 && allowMissing) return undefined;
    if (status < 200 || status >= 300) throw new KubeApiError(status, method, path, text);
    return (text ? JSON.parse(text) : {}) as T;
  }

  /**
   * Watches `path` from `resourceVersion`; `onEvent` gets each event, `onDone` the end (an error,
   * or undefined when the server closed it). Returns a function that stops it.
   */
  async watch(
    path: string,
    resourceVersion: string,
    onEvent: (type: string, object: Record<string, unknown>) => void,
    onDone: (err?: Error) => void,
    query: Readonly<Record<string, string>> = {},
  ): Promise<() => void> {
    const ctl = await new Watch(this.kubeConfig).watch(
      path,
      { ...query, resourceVersion, allowWatchBookmarks: true },
      (type, obj) => onEvent(type, obj as Record<string, unknown>),
      (err) => onDone(err ?? undefined),
    );
    return () => ctl.abort();
  }
}

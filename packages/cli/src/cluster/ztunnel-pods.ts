/**
 * Finding the node agents in a cluster and reading them, as istioctl reaches ztunnel: the admin
 * endpoint (`/config_dump`, bound to 127.0.0.1:15000 inside the pod, so only a port-forward
 * reaches it) and the metrics endpoint (15020, on the pod IP, read through the API server's pod
 * proxy). `fetchFromZtunnel` is the one transport; the cluster suite calls it directly.
 */
import { PassThrough } from 'node:stream';
import { PortForward } from '@kubernetes/client-node';
import { CliError } from '../cli-error.js';
import type { KubeClient } from './kube-client.js';

export const ZTUNNEL_ADMIN_PORT = 15000;
export const ZTUNNEL_METRICS_PORT = 15020;
export const DEFAULT_ZTUNNEL_NAMESPACE = 'istio-system';
export const DEFAULT_ZTUNNEL_SELECTOR = 'app=ztunnel';

export interface ZtunnelPod {
  readonly namespace: string;
  readonly name: string;
  readonly node: string;
}

export interface ZtunnelLocator {
  readonly namespace: string;
  /** A label selector, `app=ztunnel` as the chart labels the DaemonSet's pods. */
  readonly selector: string;
}

interface PodList {
  items: Array<{
    metadata: { name: string; namespace: string; creationTimestamp?: string; deletionTimestamp?: string };
    spec?: { nodeName?: string };
    status?: { phase?: string; conditions?: Array<{ type: string; status: string }> };
  }>;
}

/**
 * The ztunnel pods, one per node (on `node` only when given): a ready running pod first, then the
 * newest, as `kubectl logs` picks a DaemonSet's pod. None is an error naming where it looked.
 */
export async function findZtunnelPods(
  kube: KubeClient,
  where: ZtunnelLocator,
  node?: string,
): Promise<ZtunnelPod[]> {
  const q = new URLSearchParams({ labelSelector: where.selector });
  if (node !== undefined) q.set('fieldSelector', `spec.nodeName=${node}`);
  const list = (await kube.get<PodList>(
    `/api/v1/namespaces/${encodeURIComponent(where.namespace)}/pods?${q}`,
  )) as PodList;
  const rank = (p: PodList['items'][number]) =>
    (p.metadata.deletionTimestamp ? 0 : 4) +
    (p.status?.phase === 'Running' ? 2 : 0) +
    (p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? 1 : 0);
  const best = new Map<string, PodList['items'][number]>();
  for (const p of list.items) {
    const n = p.spec?.nodeName;
    if (!n) continue;
    const cur = best.get(n);
    if (
      !cur ||
      rank(p) > rank(cur) ||
      (rank(p) === rank(cur) && (p.metadata.creationTimestamp ?? '') > (cur.metadata.creationTimestamp ?? ''))
    )
      best.set(n, p);
  }
  const pods = [...best.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([n, p]) => ({ namespace: p.metadata.namespace, name: p.metadata.name, node: n }));
  if (pods.length === 0)
    throw new CliError(
      'CLI_ERR_NO_ZTUNNEL',
      node !== undefined
        ? `no ztunnel pod on node ${node} (pods labelled ${where.selector} in namespace ${where.namespace})`
        : `no ztunnel pods found (pods labelled ${where.selector} in namespace ${where.namespace})`,
    );
  return pods;
}

/** Reads one node agent: its config dump (JSON text) or its metrics (Prometheus text). */
export async function fetchFromZtunnel(
  kube: KubeClient,
  pod: ZtunnelPod,
  endpoint: 'config_dump' | 'metrics',
  timeoutMs = 15_000,
): Promise<string> {
  if (endpoint === 'metrics') {
    try {
      return await kube.podProxyGet(pod.namespace, pod.name, ZTUNNEL_METRICS_PORT, '/metrics');
    } catch (err) {
      throw new CliError(
        'CLI_ERR_ZTUNNEL',
        `failed to read the metrics of ztunnel ${pod.name}.${pod.namespace} on node ${pod.node}: ${(err as Error).message}`,
      );
    }
  }
  try {
    return await portForwardGet(kube, pod, ZTUNNEL_ADMIN_PORT, '/config_dump', timeoutMs);
  } catch (err) {
    if (err instanceof CliError && err.code !== 'CLI_ERR_API') throw err;
    throw new CliError(
      'CLI_ERR_ZTUNNEL',
      `failed to execute command on ${pod.name}.${pod.namespace} Ztunnel: ${(err as Error).message}`,
    );
  }
}

/**
 * One HTTP/1.0 GET over a port-forward stream (client-node's PortForward, the API server's
 * `pods/portforward` over WebSocket): 1.0 so the server answers without chunking and closes.
 */
async function portForwardGet(
  kube: KubeClient,
  pod: ZtunnelPod,
  port: number,
  path: string,
  timeoutMs: number,
): Promise<string> {
  const toPod = new PassThrough();
  const fromPod = new PassThrough();
  const errors = new PassThrough();
  const chunks: Buffer[] = [];
  let errorText = '';
  fromPod.on('data', (c: Buffer) => chunks.push(c));
  errors.on('data', (c: Buffer) => {
    errorText += c.toString('utf8');
  });
  toPod.write(
    `GET ${path} HTTP/1.0\r\nHost: 127.0.0.1:${port}\r\nUser-Agent: ambientctl\r\nAccept: */*\r\n\r\n`,
  );
  let ws: { close(): void; on(ev: string, f: (...a: unknown[]) => void): void } | undefined;
  try {
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no complete answer from port ${port} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const done = (err?: Error) => {
        clearTimeout(timer);
        const response = parseHttpResponse(Buffer.concat(chunks));
        if (response?.complete || (response && !err && !errorText)) {
          if (response.status !== 200)
            reject(
              new Error(
                `GET ${path} on port ${port}: HTTP ${response.status} ${response.body.slice(0, 200)}`,
              ),
            );
          else resolve(response.body);
        } else reject(err ?? new Error(errorText.trim() || `port ${port} closed without an HTTP answer`));
      };
      fromPod.on('data', () => {
        if (parseHttpResponse(Buffer.concat(chunks))?.complete) done();
      });
      errors.on('data', () => {
        if (errorText.trim()) done(new Error(errorText.trim()));
      });
      new PortForward(kube.kubeConfig)
        .portForward(pod.namespace, pod.name, [port], fromPod, errors, toPod)
        .then(
          (w) => {
            ws = w as unknown as typeof ws;
            ws?.on('close', () => done());
            ws?.on('error', (e) => done(e as Error));
          },
          (e: unknown) => done(kube.describe(e)),
        );
    });
  } finally {
    ws?.close();
  }
}

/** Status and body of a buffered HTTP/1.x response; `complete` once Content-Length bytes are in. */
export function parseHttpResponse(
  buf: Buffer,
): { status: number; body: string; complete: boolean } | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const head = buf.subarray(0, end).toString('latin1');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1];
  const body = buf.subarray(end + 4);
  const complete = length !== undefined && body.length >= Number(length);
  return { status, body: body.toString('utf8'), complete };
}

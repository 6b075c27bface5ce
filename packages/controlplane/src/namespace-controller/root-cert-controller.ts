/**
 * The CA root in every namespace, as istiod's namespace controller keeps it
 * (pilot/pkg/serviceregistry/kube/controller/namespacecontroller.go, security/pkg/k8s/configutil.go):
 * a ConfigMap `istio-ca-root-cert` with key `root-cert.pem` and label `istio.io/config: "true"`,
 * created in each namespace but kube-public, kube-node-lease and local-path-storage (kube-system is
 * served: a node agent may run there) and not in one being deleted; put back when deleted, and its
 * `root-cert.pem` restored when edited (other keys are kept, as istiod's insertData keeps them).
 * Waypoint pods mount it. Only the leader writes.
 *
 * While leading, namespaces and the ConfigMaps of that name are listed and watched; each event
 * queues its namespace and one queue reconciles one namespace at a time. A failed reconcile is
 * retried after 1 s; a full resync every `resyncMs` (with backoff when it fails) catches anything
 * missed (leader/leader-work-queue.ts, shared with the waypoint controller).
 */
import type { Logger } from 'pino';
import type { Leadership } from '../leader/leader-election.js';
import { LeaderWorkQueue } from '../leader/leader-work-queue.js';
import { KubeApiError, type KubeRest } from '../waypoint-controller/kube-rest.js';

/** istiod's inject.IgnoredNamespaces without kube-system. */
export const ROOT_CERT_SKIPPED_NAMESPACES: ReadonlySet<string> = new Set([
  'kube-public',
  'kube-node-lease',
  'local-path-storage',
]);
export const ROOT_CERT_KEY = 'root-cert.pem';
export const ROOT_CERT_LABELS: Readonly<Record<string, string>> = { 'istio.io/config': 'true' };

export interface RootCertControllerInputs {
  readonly kube: KubeRest;
  readonly logger: Logger;
  readonly leader: Leadership;
  /** The ConfigMap's name: istio-ca-root-cert. */
  readonly configMapName: string;
  /** The CA root, PEM. */
  readonly rootCertPem: () => string;
  readonly resyncMs?: number;
}

interface Meta {
  name: string;
  namespace?: string;
  resourceVersion?: string;
  labels?: Record<string, string>;
}

interface ConfigMap {
  metadata: Meta;
  data?: Record<string, string>;
}

/** What to do with a namespace's ConfigMap: nothing, create it, or update its data. */
export type RootCertAction =
  | { readonly action: 'none' }
  | { readonly action: 'create'; readonly configMap: ConfigMap }
  | { readonly action: 'update'; readonly configMap: ConfigMap };

/** The decision for one namespace, from what the API holds (pure). */
export function decideRootCert(
  namespace: string,
  phase: string | undefined,
  existing: ConfigMap | undefined,
  name: string,
  pem: string,
): RootCertAction {
  if (ROOT_CERT_SKIPPED_NAMESPACES.has(namespace) || phase === 'Terminating') return { action: 'none' };
  if (!existing)
    return {
      action: 'create',
      configMap: {
        metadata: { name, namespace, labels: { ...ROOT_CERT_LABELS } },
        data: { [ROOT_CERT_KEY]: pem },
      },
    };
  if (existing.data?.[ROOT_CERT_KEY] === pem) return { action: 'none' };
  return {
    action: 'update',
    configMap: { ...existing, data: { ...(existing.data ?? {}), [ROOT_CERT_KEY]: pem } },
  };
}

export interface RootCertWriteCounts {
  created: number;
  updated: number;
}

export class RootCertController {
  readonly writes: RootCertWriteCounts = { created: 0, updated: 0 };
  private readonly work: LeaderWorkQueue;

  constructor(private readonly inputs: RootCertControllerInputs) {
    this.work = new LeaderWorkQueue({
      leader: inputs.leader,
      logger: inputs.logger,
      name: 'root-cert ConfigMap',
      keyField: 'namespace',
      ...(inputs.resyncMs !== undefined && { resyncMs: inputs.resyncMs }),
      resync: (term) => this.resync(term),
      reconcile: (ns, term) => this.reconcile(ns, term),
    });
  }

  close(): void {
    this.work.close();
  }

  private leadingIn(term: number): boolean {
    return this.work.leadingIn(term);
  }

  private enqueue(namespace: string): void {
    if (!ROOT_CERT_SKIPPED_NAMESPACES.has(namespace)) this.work.enqueue(namespace);
  }

  /** Lists namespaces and our ConfigMaps, queues every namespace, and watches both from there. */
  private async resync(term: number): Promise<void> {
    const { kube, logger, configMapName } = this.inputs;
    const selector = { fieldSelector: `metadata.name=${configMapName}` };
    type List<T> = { metadata: { resourceVersion: string }; items: T[] };
    const namespaces = (await kube.request<List<{ metadata: Meta }>>('GET', '/api/v1/namespaces')) as List<{
      metadata: Meta;
    }>;
    const configMaps = (await kube.request<List<ConfigMap>>(
      'GET',
      `/api/v1/configmaps?${new URLSearchParams(selector)}`,
    )) as List<ConfigMap>;
    if (!this.leadingIn(term)) return;
    for (const ns of namespaces.items) this.enqueue(ns.metadata.name);
    const ended = (err?: Error) => {
      if (err && this.leadingIn(term)) logger.debug({ err }, `root-cert watch ended: ${err.message}`);
      this.work.watchEnded(term);
    };
    const stops: Array<() => void> = [];
    try {
      stops.push(
        await kube.watch(
          '/api/v1/namespaces',
          namespaces.metadata.resourceVersion,
          (type, obj) => {
            const name = (obj as { metadata?: Meta }).metadata?.name;
            if (type !== 'BOOKMARK' && type !== 'DELETED' && name && this.leadingIn(term)) this.enqueue(name);
          },
          ended,
        ),
      );
      stops.push(
        await kube.watch(
          '/api/v1/configmaps',
          configMaps.metadata.resourceVersion,
          (type, obj) => {
            const ns = (obj as { metadata?: Meta }).metadata?.namespace;
            // A deletion queues too: the ConfigMap is put back.
            if (type !== 'BOOKMARK' && ns && this.leadingIn(term)) this.enqueue(ns);
          },
          ended,
          selector,
        ),
      );
    } catch (err) {
      for (const s of stops) s();
      throw err;
    }
    this.work.watching(term, stops);
  }

  private async reconcile(namespace: string, term: number): Promise<void> {
    const { kube, configMapName, logger } = this.inputs;
    const ns = await kube.request<{ status?: { phase?: string } }>(
      'GET',
      `/api/v1/namespaces/${namespace}`,
      undefined,
      undefined,
      true,
    );
    if (!ns) return;
    const path = `/api/v1/namespaces/${namespace}/configmaps`;
    const existing = await kube.request<ConfigMap>(
      'GET',
      `${path}/${configMapName}`,
      undefined,
      undefined,
      true,
    );
    const d = decideRootCert(namespace, ns.status?.phase, existing, configMapName, this.inputs.rootCertPem());
    if (d.action === 'none' || !this.leadingIn(term)) return;
    if (d.action === 'create') {
      this.writes.created += 1;
      try {
        await kube.request('POST', path, { apiVersion: 'v1', kind: 'ConfigMap', ...d.configMap });
      } catch (err) {
        // istiod's InsertDataToConfigMap: another writer was first, or the namespace is going or
        // gone; none is retried. Forbidden is logged and left.
        if (err instanceof KubeApiError && [409, 404].includes(err.status)) return;
        if (err instanceof KubeApiError && err.status === 403) {
          if (/NamespaceTerminating|being terminated/.test(err.body)) return;
          logger.info(`not permitted to write ConfigMap ${namespace}/${configMapName}: skipped`);
          return;
        }
        throw err;
      }
      return;
    }
    this.writes.updated += 1;
    // The resourceVersion read makes a concurrent change a conflict, retried from a fresh read.
    await kube.request('PUT', `${path}/${configMapName}`, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      ...d.configMap,
    });
  }
}

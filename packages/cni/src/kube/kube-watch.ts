/**
 * The agent's view of the API server (upstream informers.go): pods on this node
 * (fieldSelector spec.nodeName) and all namespaces, through client-node's ListWatch (list, then
 * watch from its resourceVersion, relisting on 410). A list or watch that fails is started again
 * after a backoff; `synced` turns true once both kinds were listed once.
 */
import {
  CoreV1Api,
  type KubeConfig,
  ListWatch,
  type V1Namespace,
  type V1Pod,
  Watch,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { KubeReader } from '../agent/node-agent.js';
import type { PodView } from '../enroll/enrollment.js';
import { podView } from './pod-view.js';

export interface KubeWatchHandlers {
  podChanged(pod: PodView): void;
  podDeleted(pod: PodView): void;
  namespaceChanged(name: string, labels: Record<string, string> | undefined): void;
}

export interface KubeWatchInputs {
  readonly kubeConfig: KubeConfig;
  readonly nodeName: string;
  readonly handlers: KubeWatchHandlers;
  readonly logger: Logger;
  /** Restart delay after a failed list or watch: doubling from this to 30 s. */
  readonly retryInitialMs?: number;
}

type Informer = ListWatch<V1Pod> | ListWatch<V1Namespace>;

export class KubeWatch implements KubeReader {
  private readonly core: CoreV1Api;
  private readonly pods: ListWatch<V1Pod>;
  private readonly namespaces: ListWatch<V1Namespace>;
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(private readonly inputs: KubeWatchInputs) {
    const kc = inputs.kubeConfig;
    this.core = kc.makeApiClient(CoreV1Api);
    const fieldSelector = `spec.nodeName=${inputs.nodeName}`;
    const watch = new Watch(kc);
    this.pods = new ListWatch<V1Pod>(
      '/api/v1/pods',
      watch,
      () => this.core.listPodForAllNamespaces({ fieldSelector }),
      false,
      undefined,
      fieldSelector,
    );
    this.namespaces = new ListWatch<V1Namespace>(
      '/api/v1/namespaces',
      watch,
      () => this.core.listNamespace(),
      false,
    );
    const h = inputs.handlers;
    this.pods.on('add', (p) => h.podChanged(podView(p)));
    this.pods.on('update', (p) => h.podChanged(podView(p)));
    this.pods.on('delete', (p) => h.podDeleted(podView(p)));
    const nsChanged = (n: V1Namespace) =>
      h.namespaceChanged(n.metadata?.name ?? '', { ...(n.metadata?.labels ?? {}) });
    this.namespaces.on('add', nsChanged);
    this.namespaces.on('update', nsChanged);
    this.namespaces.on('delete', (n) => h.namespaceChanged(n.metadata?.name ?? '', undefined));
    this.restartOnError(this.pods, 'pods');
    this.restartOnError(this.namespaces, 'namespaces');
  }

  /** Both kinds listed at least once. */
  get synced(): boolean {
    return this.pods.latestResourceVersion() !== '' && this.namespaces.latestResourceVersion() !== '';
  }

  /** Starts both informers; resolves once both were listed (retrying failures meanwhile). */
  async start(): Promise<void> {
    // Namespaces first: a pod is decided with its namespace's labels.
    await this.namespaces.start();
    await this.pods.start();
    while (!this.synced && !this.closed) await new Promise((r) => setTimeout(r, 50));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    await this.pods.stop();
    await this.namespaces.stop();
  }

  async getPod(namespace: string, name: string): Promise<PodView | undefined> {
    try {
      return podView(await this.core.readNamespacedPod({ name, namespace }));
    } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined;
      throw err;
    }
  }

  async getNamespaceLabels(name: string): Promise<Record<string, string> | undefined> {
    try {
      return { ...((await this.core.readNamespace({ name })).metadata?.labels ?? {}) };
    } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined;
      throw err;
    }
  }

  private restartOnError(informer: Informer, what: string): void {
    let attempt = 0;
    let errors = 0;
    informer.on('error', (err: unknown) => {
      errors += 1;
      if (this.closed) return;
      const delay = Math.min(30_000, (this.inputs.retryInitialMs ?? 500) * 2 ** attempt);
      attempt += 1;
      this.inputs.logger.warn({ err, what, delayMs: delay }, 'list/watch failed; starting it again');
      const t = setTimeout(() => {
        this.timers.delete(t);
        if (this.closed) return;
        const before = errors;
        // A start that listed and watched without an error resets the backoff.
        void informer.start().then(() => {
          if (errors === before) attempt = 0;
        });
      }, delay);
      t.unref();
      this.timers.add(t);
    });
  }
}

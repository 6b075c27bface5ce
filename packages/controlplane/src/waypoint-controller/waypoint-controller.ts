/**
 * The waypoint deployment controller: for every Gateway of class `istio-waypoint`, applies a
 * ServiceAccount, Deployment and Service owned by the Gateway (server-side apply, forced, as
 * istiod's deployment controller does), writes the Gateway's Accepted/Programmed status and
 * address, and creates and accepts the `istio-waypoint` GatewayClass. Only the replica holding
 * the Lease writes anything; every replica keeps serving xDS and the CA. Deleting a Gateway
 * leaves its objects to the garbage collector through their owner references.
 *
 * Gateways are listed and watched while leading; each event queues its Gateway, and one queue
 * reconciles one Gateway at a time. A failed reconcile is retried with backoff; a full resync
 * every `resyncMs` repairs objects changed behind the controller's back.
 */
import type { Logger } from 'pino';
import { CONTENT_APPLY, CONTENT_MERGE, KubeApiError, type KubeRest } from './kube-rest.js';
import { type Lease, type LeaseApi, LeaseElector, type LeaseTimings, microTime } from './lease-elector.js';
import {
  FIELD_MANAGER,
  type GatewayObject,
  type GatewayStatus,
  gatewayClassStatus,
  isWaypointGateway,
  MESH_CONTROLLER_NAME,
  statusChanged,
  WAYPOINT_GATEWAY_CLASS,
  type WaypointTemplateSettings,
  waypointGatewayClass,
  waypointGatewayStatus,
  waypointObjects,
} from './waypoint-objects.js';

const GW_API = '/apis/gateway.networking.k8s.io/v1';

export interface WaypointControllerInputs {
  readonly kube: KubeRest;
  readonly logger: Logger;
  readonly template: WaypointTemplateSettings;
  /** This replica's name in the Lease (its pod name). */
  readonly identity: string;
  readonly leaseNamespace: string;
  /** istiod's per-revision name: istio-gateway-deployment-default. */
  readonly leaseName?: string;
  readonly timings: LeaseTimings;
  readonly resyncMs?: number;
}

export const DEFAULT_LEASE_NAME = 'istio-gateway-deployment-default';

/** Writes by kind, for tests and metrics: only a leader makes any. */
export interface WriteCounts {
  apply: number;
  status: number;
  gatewayClass: number;
}

export class WaypointController {
  readonly elector: LeaseElector;
  readonly writes: WriteCounts = { apply: 0, status: 0, gatewayClass: 0 };
  private queue = new Set<string>();
  private retries = new Set<string>();
  private draining = false;
  private stopWatch?: () => void;
  private resyncTimer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  /** Bumped on every change of leadership, so work of an older term stops. */
  private term = 0;
  private closed = false;
  private failures = 0;

  constructor(private readonly inputs: WaypointControllerInputs) {
    const ns = inputs.leaseNamespace;
    const name = inputs.leaseName ?? DEFAULT_LEASE_NAME;
    this.elector = new LeaseElector({
      name,
      namespace: ns,
      identity: inputs.identity,
      timings: inputs.timings,
      api: leaseApi(inputs.kube, ns, name),
      onChange: (leading) => this.onLeadership(leading),
      onError: (err) => inputs.logger.debug({ err }, `lease ${ns}/${name}: ${err.message}`),
    });
  }

  get isLeader(): boolean {
    return this.elector.isLeader;
  }

  start(): void {
    this.elector.start();
  }

  /** Stops and releases the Lease. */
  async close(): Promise<void> {
    this.closed = true;
    this.stopWork();
    await this.elector.close();
  }

  /** Stops at once without releasing the Lease, as a killed replica. */
  destroy(): void {
    this.closed = true;
    this.stopWork();
    this.elector.destroy();
  }

  private stopWork(): void {
    this.term += 1;
    this.stopWatch?.();
    this.stopWatch = undefined;
    clearTimeout(this.resyncTimer);
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.retries.clear();
    this.queue.clear();
  }

  private onLeadership(leading: boolean): void {
    this.inputs.logger.info(
      { identity: this.inputs.identity },
      leading ? 'leading: waypoint controller writes' : 'not leading',
    );
    this.stopWork();
    if (leading && !this.closed) void this.resync(this.term);
  }

  private leadingIn(term: number): boolean {
    return this.term === term && this.elector.isLeader && !this.closed;
  }

  /** Ensures the GatewayClass, lists every Gateway, queues the waypoints, and watches from there. */
  private async resync(term: number): Promise<void> {
    const { kube, logger } = this.inputs;
    try {
      await this.ensureGatewayClass(term);
      const list = (await kube.request<{ metadata: { resourceVersion: string }; items: GatewayObject[] }>(
        'GET',
        `${GW_API}/gateways`,
      )) as { metadata: { resourceVersion: string }; items: GatewayObject[] };
      if (!this.leadingIn(term)) return;
      for (const gw of list.items)
        if (isWaypointGateway(gw)) this.enqueue(`${gw.metadata.namespace}/${gw.metadata.name}`);
      this.stopWatch?.();
      this.stopWatch = await kube.watch(
        `${GW_API}/gateways`,
        list.metadata.resourceVersion,
        (type, obj) => {
          if (type === 'BOOKMARK' || type === 'DELETED') return;
          const gw = obj as unknown as GatewayObject;
          if (isWaypointGateway(gw) && this.leadingIn(term))
            this.enqueue(`${gw.metadata.namespace}/${gw.metadata.name}`);
        },
        (err) => {
          // The watch ended (410 Gone, a restart, a timeout): list again from scratch.
          if (!this.leadingIn(term)) return;
          if (err) logger.debug({ err }, `gateway watch ended: ${err.message}`);
          this.scheduleResync(term, 1000);
        },
      );
      if (!this.leadingIn(term)) this.stopWatch();
      this.failures = 0;
      this.scheduleResync(term, this.inputs.resyncMs ?? 60_000);
    } catch (err) {
      if (!this.leadingIn(term)) return;
      logger.warn({ err }, `waypoint controller resync failed, retrying: ${(err as Error).message}`);
      this.failures += 1;
      this.scheduleResync(term, Math.min(30_000, 500 * 2 ** Math.min(this.failures, 6)));
    }
  }

  private scheduleResync(term: number, ms: number): void {
    clearTimeout(this.resyncTimer);
    this.resyncTimer = setTimeout(() => {
      if (this.leadingIn(term)) void this.resync(term);
    }, ms);
    this.resyncTimer.unref();
  }

  private retryLater(key: string, term: number): void {
    this.retries.add(key);
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      const keys = [...this.retries];
      this.retries.clear();
      if (this.leadingIn(term)) for (const k of keys) this.enqueue(k);
    }, 1000);
    this.retryTimer.unref();
  }

  private enqueue(key: string): void {
    this.queue.add(key);
    if (!this.draining) void this.drain(this.term);
  }

  private async drain(term: number): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.size > 0 && this.leadingIn(term)) {
        const key = this.queue.values().next().value as string;
        this.queue.delete(key);
        try {
          await this.reconcile(key, term);
        } catch (err) {
          this.inputs.logger.warn(
            { err, gateway: key },
            `waypoint reconcile failed, retrying: ${(err as Error).message}`,
          );
          this.retryLater(key, term);
        }
      }
    } finally {
      this.draining = false;
      // A new term may have queued work while the old one was finishing.
      if (this.queue.size > 0 && this.leadingIn(this.term)) void this.drain(this.term);
    }
  }

  /** Brings one Gateway's objects and status up to date (a Gateway that is gone needs nothing). */
  private async reconcile(key: string, term: number): Promise<void> {
    const { kube, template } = this.inputs;
    const [ns = '', name = ''] = key.split('/');
    const gw = await kube.request<GatewayObject>(
      'GET',
      `${GW_API}/namespaces/${ns}/gateways/${name}`,
      undefined,
      undefined,
      true,
    );
    if (!gw || !isWaypointGateway(gw) || !this.leadingIn(term)) return;
    const objs = waypointObjects(gw, template);
    const apply = async (path: string, body: unknown) => {
      if (!this.leadingIn(term)) throw new Error('leadership lost');
      this.writes.apply += 1;
      return kube.request<{ spec?: { clusterIP?: string } }>(
        'PATCH',
        `${path}?fieldManager=${encodeURIComponent(FIELD_MANAGER)}&force=true`,
        body,
        CONTENT_APPLY,
      );
    };
    await apply(`/api/v1/namespaces/${ns}/serviceaccounts/${name}`, objs.serviceAccount);
    await apply(`/apis/apps/v1/namespaces/${ns}/deployments/${name}`, objs.deployment);
    const svc = await apply(`/api/v1/namespaces/${ns}/services/${name}`, objs.service);
    const status = waypointGatewayStatus(
      gw,
      svc?.spec?.clusterIP,
      template.domainSuffix,
      microTime(Date.now()),
    );
    if (statusChanged(gw.status, status)) {
      if (!this.leadingIn(term)) return;
      this.writes.status += 1;
      await kube.request(
        'PATCH',
        `${GW_API}/namespaces/${ns}/gateways/${name}/status`,
        { status },
        CONTENT_MERGE,
      );
    }
  }

  /** Creates `istio-waypoint` when missing, and accepts it when it names our controller. */
  private async ensureGatewayClass(term: number): Promise<void> {
    const { kube } = this.inputs;
    const path = `${GW_API}/gatewayclasses/${WAYPOINT_GATEWAY_CLASS}`;
    let gc = await kube.request<{
      metadata: { generation?: number };
      spec?: { controllerName?: string };
      status?: GatewayStatus;
    }>('GET', path, undefined, undefined, true);
    if (!this.leadingIn(term)) return;
    if (!gc) {
      this.writes.gatewayClass += 1;
      try {
        gc = await kube.request('POST', `${GW_API}/gatewayclasses`, waypointGatewayClass());
      } catch (err) {
        // Another writer created it first: read theirs.
        if (!(err instanceof KubeApiError && err.status === 409)) throw err;
        gc = await kube.request('GET', path);
      }
    }
    if (!gc || gc.spec?.controllerName !== MESH_CONTROLLER_NAME) return;
    const status = gatewayClassStatus(gc.status, gc.metadata.generation ?? 1, microTime(Date.now()));
    if (!statusChanged(gc.status, status) || !this.leadingIn(term)) return;
    this.writes.gatewayClass += 1;
    await kube.request('PATCH', `${path}/status`, { status }, CONTENT_MERGE);
  }
}

/** The Lease calls over the API: get, create, and update with the resourceVersion read. */
export function leaseApi(kube: KubeRest, namespace: string, name: string): LeaseApi {
  const base = `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`;
  const body = (l: Lease) => ({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: l.metadata,
    spec: l.spec,
  });
  return {
    get: () => kube.request<Lease>('GET', `${base}/${name}`, undefined, undefined, true),
    create: async (l) => (await kube.request<Lease>('POST', base, body(l))) as Lease,
    update: async (l) => (await kube.request<Lease>('PUT', `${base}/${name}`, body(l))) as Lease,
  };
}

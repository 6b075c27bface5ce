/**
 * The waypoint deployment controller: for every Gateway of class `istio-waypoint`, applies a
 * ServiceAccount, Deployment and Service owned by the Gateway (server-side apply, forced, as
 * istiod's deployment controller does), writes the Gateway's Accepted/Programmed status and
 * address, and creates and accepts the `istio-waypoint` GatewayClass. Only the replica holding
 * the Lease writes anything; every replica keeps serving xDS and the CA. Deleting a Gateway
 * leaves its objects to the garbage collector through their owner references.
 *
 * Gateways are listed and watched while leading; each event queues its Gateway, and one queue
 * reconciles one Gateway at a time. A failed reconcile is retried after 1 s; a full resync
 * every `resyncMs` (with backoff when it fails) repairs objects changed behind the controller's
 * back. The loop is the one the root-cert controller shares (leader/leader-work-queue.ts).
 */
import type { Logger } from 'pino';
import type { LeaderElection } from '../leader/leader-election.js';
import { LeaderWorkQueue } from '../leader/leader-work-queue.js';
import { CONTENT_APPLY, CONTENT_MERGE, KubeApiError, type KubeRest } from './kube-rest.js';
import { microTime } from './lease-elector.js';
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
  /** The replica's election, shared with its other writers. */
  readonly leader: LeaderElection;
  readonly resyncMs?: number;
}

/** Writes by kind, for tests and metrics: only a leader makes any. */
export interface WriteCounts {
  apply: number;
  status: number;
  gatewayClass: number;
}

export class WaypointController {
  private readonly leader: LeaderElection;
  readonly writes: WriteCounts = { apply: 0, status: 0, gatewayClass: 0 };
  private readonly work: LeaderWorkQueue;

  constructor(private readonly inputs: WaypointControllerInputs) {
    this.leader = inputs.leader;
    this.work = new LeaderWorkQueue({
      leader: inputs.leader,
      logger: inputs.logger,
      name: 'waypoint controller',
      keyField: 'gateway',
      ...(inputs.resyncMs !== undefined && { resyncMs: inputs.resyncMs }),
      resync: (term) => this.resync(term),
      reconcile: (key, term) => this.reconcile(key, term),
    });
  }

  get isLeader(): boolean {
    return this.leader.isLeader;
  }

  /** Stops and releases the Lease (the replica's other writers stop with it). */
  async close(): Promise<void> {
    this.work.close();
    await this.leader.close();
  }

  /** Stops at once without releasing the Lease, as a killed replica (its other writers stop too). */
  destroy(): void {
    this.work.close();
    this.leader.destroy();
  }

  private leadingIn(term: number): boolean {
    return this.work.leadingIn(term);
  }

  /** Ensures the GatewayClass, lists every Gateway, queues the waypoints, and watches from there. */
  private async resync(term: number): Promise<void> {
    const { kube, logger } = this.inputs;
    await this.ensureGatewayClass(term);
    const list = (await kube.request<{ metadata: { resourceVersion: string }; items: GatewayObject[] }>(
      'GET',
      `${GW_API}/gateways`,
    )) as { metadata: { resourceVersion: string }; items: GatewayObject[] };
    if (!this.leadingIn(term)) return;
    for (const gw of list.items)
      if (isWaypointGateway(gw)) this.work.enqueue(`${gw.metadata.namespace}/${gw.metadata.name}`);
    const stop = await kube.watch(
      `${GW_API}/gateways`,
      list.metadata.resourceVersion,
      (type, obj) => {
        if (type === 'BOOKMARK' || type === 'DELETED') return;
        const gw = obj as unknown as GatewayObject;
        if (isWaypointGateway(gw) && this.leadingIn(term))
          this.work.enqueue(`${gw.metadata.namespace}/${gw.metadata.name}`);
      },
      (err) => {
        if (err && this.leadingIn(term)) logger.debug({ err }, `gateway watch ended: ${err.message}`);
        this.work.watchEnded(term);
      },
    );
    this.work.watching(term, [stop]);
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

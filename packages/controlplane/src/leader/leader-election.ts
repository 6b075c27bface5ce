/**
 * One Lease per replica for everything the control plane writes to the API server (the waypoint
 * deployment controller, status conditions, the root-cert ConfigMaps): whoever holds it writes,
 * the other replicas only serve. Writers subscribe and start or stop their work on each change.
 */
import type { Logger } from 'pino';
import type { KubeRest } from '../waypoint-controller/kube-rest.js';
import {
  type Lease,
  type LeaseApi,
  LeaseElector,
  type LeaseTimings,
} from '../waypoint-controller/lease-elector.js';

/** istiod's name for its gateway deployment controller's Lease, kept for the one Lease we use. */
export const DEFAULT_LEASE_NAME = 'istio-gateway-deployment-default';

export interface LeaderElectionInputs {
  readonly kube: KubeRest;
  readonly logger: Logger;
  /** This replica's name in the Lease (its pod name). */
  readonly identity: string;
  readonly namespace: string;
  readonly name?: string;
  readonly timings: LeaseTimings;
}

/** What a writer needs to know of the election. */
export interface Leadership {
  readonly isLeader: boolean;
  subscribe(onChange: (leading: boolean) => void): void;
}

export class LeaderElection implements Leadership {
  readonly elector: LeaseElector;
  private readonly subscribers: Array<(leading: boolean) => void> = [];

  constructor(inputs: LeaderElectionInputs) {
    const name = inputs.name ?? DEFAULT_LEASE_NAME;
    this.elector = new LeaseElector({
      name,
      namespace: inputs.namespace,
      identity: inputs.identity,
      timings: inputs.timings,
      api: leaseApi(inputs.kube, inputs.namespace, name),
      onChange: (leading) => {
        inputs.logger.info(
          { identity: inputs.identity },
          leading ? 'leading: this replica writes' : 'not leading',
        );
        for (const s of this.subscribers) s(leading);
      },
      onError: (err) => inputs.logger.debug({ err }, `lease ${inputs.namespace}/${name}: ${err.message}`),
    });
  }

  get isLeader(): boolean {
    return this.elector.isLeader;
  }

  subscribe(onChange: (leading: boolean) => void): void {
    this.subscribers.push(onChange);
  }

  start(): void {
    this.elector.start();
  }

  /** Stops and releases the Lease (idempotent). */
  close(): Promise<void> {
    return this.elector.close();
  }

  /** Stops now without releasing the Lease, as a killed replica. */
  destroy(): void {
    this.elector.destroy();
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

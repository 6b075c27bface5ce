/**
 * Delta ADS for many proxies. It serves the snapshots of a `SnapshotStore` (per scope and type URL:
 * scope '' is what every ztunnel sees, and each waypoint gateway has a scope of its own, so one
 * waypoint never sees another's listener or routes). Per connection it holds what it has sent. A
 * publish tells it which names changed or disappeared since the previous snapshot and it sends
 * each connection only those it subscribes to and holds at another version; a new stream (or one that resumes with initial_resource_versions)
 * gets the difference between what it holds and the snapshot. ACKs and NACKs are tracked per
 * connection, and the time from a config change to each proxy's ACK is recorded as convergence.
 */
import { DELTA_ADS_METHOD, meshProtos } from '@ambient/shared';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Authenticator, Caller } from '../auth/token-authenticator.js';
import type { ControlPlaneMetrics } from '../telemetry/controlplane-metrics.js';
import { deltaResponseBytes, framedResource, wholeSnapshotResponse } from './delta-response.js';
import { HeldVersions } from './held-versions.js';
import { PacedWrites } from './paced-writes.js';
import {
  AdsStreams,
  admitProxy,
  authenticateStream,
  nodeIdentity,
  type ProxyDirectory,
  type WireNode,
} from './proxy-admission.js';
import {
  type ResourceEntry,
  type SnapshotChange,
  SnapshotStore,
  type TypeSnapshot,
} from './snapshot-store.js';

interface Subscription {
  wildcard: boolean;
  readonly names: Set<string>;
  /** name -> version this connection was last sent (or said it holds). */
  readonly sent: HeldVersions;
  responded: boolean;
}

interface Pending {
  readonly typeUrl: string;
  readonly changedAt?: number;
}

interface Connection {
  readonly id: number;
  readonly call: grpc.ServerDuplexStream<Buffer, Buffer>;
  readonly caller: Caller;
  readonly peer: string;
  nodeId: string;
  metadata: Record<string, string>;
  /** The snapshot scope this proxy reads: '' for ztunnel, the gateway's for a waypoint. */
  scope: string;
  /** For a waypoint, its Gateway `namespace/name`. */
  gateway?: string;
  readonly subs: Map<string, Subscription>;
  readonly pending: Map<string, Pending>;
  nonces: number;
  acks: number;
  nacks: number;
  lastNack?: { typeUrl: string; nonce: string; message: string; at: string };
  readonly connectedAt: string;
}

interface WireRequest {
  node?: WireNode;
  typeUrl: string;
  resourceNamesSubscribe: string[];
  resourceNamesUnsubscribe: string[];
  initialResourceVersions: Record<string, string>;
  responseNonce: string;
  errorDetail?: { code?: number; message?: string };
}

export interface ConnectionDump {
  id: number;
  /** Delta (DeltaAggregatedResources) or state of the world (StreamAggregatedResources). */
  protocol: 'delta' | 'sotw';
  nodeId: string;
  node: string;
  peer: string;
  /** For a waypoint, its Gateway `namespace/name`. */
  waypoint?: string;
  connectedAt: string;
  types: Array<{ typeUrl: string; wildcard: boolean; resources: number }>;
  acks: number;
  nacks: number;
  lastNack?: Connection['lastNack'];
}

export interface DeltaAdsServerInputs {
  readonly logger: Logger;
  readonly metrics: ControlPlaneMetrics;
  readonly authenticator: Authenticator;
  /** Short names for metric labels. */
  readonly typeLabels?: Readonly<Record<string, string>>;
  /** Pods and gateways, to admit waypoint proxies; without it waypoint streams are refused. */
  readonly proxies?: ProxyDirectory;
  readonly now?: () => number;
  /** The resources served; one of its own when absent. */
  readonly store?: SnapshotStore;
}

export class DeltaAdsServer {
  readonly store: SnapshotStore;
  private readonly streams: AdsStreams<Connection>;
  private readonly writes = new PacedWrites();
  private nextId = 1;

  constructor(private readonly inputs: DeltaAdsServerInputs) {
    this.streams = new AdsStreams(
      meshProtos().lookupType('envoy.service.discovery.v3.DeltaDiscoveryRequest'),
      inputs.metrics,
      inputs.logger,
    );
    this.store = inputs.store ?? new SnapshotStore();
    this.store.onChange((change) => this.onChange(change));
  }

  /** Adds the DeltaAggregatedResources method to a gRPC server. */
  register(server: grpc.Server): void {
    server.register<Buffer, Buffer>(
      DELTA_ADS_METHOD,
      ((call: grpc.ServerDuplexStream<Buffer, Buffer>) =>
        this.onStream(call)) as grpc.handleBidiStreamingCall<Buffer, Buffer>,
      (b: Buffer) => b,
      (b: Buffer) => b,
      'bidi',
    );
  }

  /**
   * Installs new snapshots of the shared (ztunnel) scope and pushes what changed. `changedAt` is
   * when the change that caused this publish happened, for convergence time; `only` names, per
   * type URL, every resource that can have changed (`SnapshotStore.publish`).
   */
  publish(
    next: ReadonlyMap<string, TypeSnapshot>,
    changedAt?: number,
    only?: ReadonlyMap<string, Iterable<string>>,
  ): void {
    this.store.publish(next, changedAt, only);
  }

  /**
   * Installs the snapshots of every per-proxy scope (one per waypoint gateway) for `typeUrls`:
   * a scope absent from `next` loses all its resources of those types.
   */
  publishScoped(
    typeUrls: readonly string[],
    next: ReadonlyMap<string, ReadonlyMap<string, TypeSnapshot>>,
    changedAt?: number,
  ): void {
    this.store.publishScoped(typeUrls, next, changedAt);
  }

  private onChange({ scope, typeUrl, changed, removed, changedAt }: SnapshotChange): void {
    for (const conn of this.streams.connections.values()) {
      if (conn.scope !== scope) continue;
      const sub = conn.subs.get(typeUrl);
      if (!sub?.responded) continue;
      this.push(conn, typeUrl, sub, changed, removed, changedAt);
    }
  }

  /** The resources currently published for a type, in a scope ('' is the ztunnel scope). */
  snapshot(typeUrl: string, scope = ''): TypeSnapshot {
    return this.store.snapshot(typeUrl, scope);
  }

  connectionCount(): number {
    return this.streams.connections.size;
  }

  dump(): ConnectionDump[] {
    return [...this.streams.connections.values()].map((c) => ({
      id: c.id,
      protocol: 'delta' as const,
      nodeId: c.nodeId,
      node: c.metadata.NODE_NAME ?? '',
      peer: c.peer,
      ...(c.gateway && { waypoint: c.gateway }),
      connectedAt: c.connectedAt,
      types: [...c.subs].map(([typeUrl, s]) => ({ typeUrl, wildcard: s.wildcard, resources: s.sent.size })),
      acks: c.acks,
      nacks: c.nacks,
      ...(c.lastNack && { lastNack: c.lastNack }),
    }));
  }

  /** Ends every stream (proxies reconnect to another instance, or to this one after a restart). */
  closeAll(): void {
    for (const c of this.streams.connections.values()) c.call.end();
  }

  private label(typeUrl: string): string {
    return this.inputs.typeLabels?.[typeUrl] ?? typeUrl;
  }

  private async onStream(call: grpc.ServerDuplexStream<Buffer, Buffer>): Promise<void> {
    const { logger, metrics, authenticator } = this.inputs;
    const caller = await authenticateStream(call, authenticator, metrics, logger);
    if (!caller) return;
    const conn: Connection = {
      id: this.nextId++,
      call,
      caller,
      peer: call.getPeer(),
      nodeId: '',
      metadata: {},
      scope: '',
      subs: new Map(),
      pending: new Map(),
      nonces: 0,
      acks: 0,
      nacks: 0,
      connectedAt: new Date().toISOString(),
    };
    this.streams.serve<WireRequest>(conn, (c, req) => this.onRequest(c, req));
  }

  private refuse(conn: Connection, code: grpc.status, details: string): void {
    this.streams.refuse(conn, code, details);
  }

  private onRequest(conn: Connection, req: WireRequest): void {
    const { logger, metrics } = this.inputs;
    if (req.node?.id && !conn.nodeId) {
      const node = nodeIdentity(req.node);
      conn.nodeId = node.id;
      conn.metadata = node.metadata;
      const admission = admitProxy(conn.caller, conn.nodeId, conn.metadata, this.inputs.proxies);
      if (!admission.ok) {
        metrics.authFailures.inc({ reason: admission.reason });
        this.refuse(conn, admission.code, admission.details);
        return;
      }
      conn.scope = admission.scope;
      if (admission.kind === 'waypoint') conn.gateway = admission.gateway;
      logger.info(
        { id: conn.id, node: conn.nodeId, peer: conn.peer, ...(conn.gateway && { waypoint: conn.gateway }) },
        'xDS stream opened',
      );
    }
    if (!conn.nodeId) {
      this.refuse(conn, grpc.status.INVALID_ARGUMENT, 'the first request must carry the node');
      return;
    }
    const typeUrl = req.typeUrl;
    if (req.responseNonce) {
      const pending = conn.pending.get(req.responseNonce);
      conn.pending.delete(req.responseNonce);
      if (req.errorDetail) {
        conn.nacks += 1;
        conn.lastNack = {
          typeUrl,
          nonce: req.responseNonce,
          message: req.errorDetail.message ?? '',
          at: new Date().toISOString(),
        };
        metrics.rejects.inc({ type: this.label(typeUrl) });
        logger.warn(
          { node: conn.nodeId, typeUrl, nonce: req.responseNonce, error: req.errorDetail.message },
          'xDS NACK',
        );
      } else {
        conn.acks += 1;
        if (pending?.changedAt !== undefined) {
          metrics.convergence.observe(((this.inputs.now ?? Date.now)() - pending.changedAt) / 1000);
        }
      }
    }
    let sub = conn.subs.get(typeUrl);
    const subscribing = req.resourceNamesSubscribe.length > 0 || req.resourceNamesUnsubscribe.length > 0;
    if (!sub) {
      if (req.responseNonce && !subscribing) return; // an ACK for a type this stream never asked for
      sub = { wildcard: false, names: new Set(), sent: new HeldVersions(), responded: false };
      conn.subs.set(typeUrl, sub);
      // No names on the first request is the legacy wildcard form.
      if (req.resourceNamesSubscribe.length === 0) sub.wildcard = true;
      for (const [name, version] of Object.entries(req.initialResourceVersions)) sub.sent.set(name, version);
    }
    for (const n of req.resourceNamesSubscribe) {
      if (n === '*') sub.wildcard = true;
      else sub.names.add(n);
    }
    for (const n of req.resourceNamesUnsubscribe) {
      if (n === '*') sub.wildcard = false;
      else sub.names.delete(n);
    }
    if (!sub.responded || subscribing) this.pushFull(conn, typeUrl, sub);
  }

  /** Sends everything this connection lacks or holds at another version, and removals. */
  private pushFull(conn: Connection, typeUrl: string, sub: Subscription): void {
    const snap = this.snapshot(typeUrl, conn.scope);
    if (sub.wildcard && sub.sent.size === 0 && (snap.size > 0 || !sub.responded)) {
      // A new wildcard stream (the usual first request): it lacks every resource.
      this.sendWhole(conn, typeUrl, sub, snap);
      return;
    }
    const changed: string[] = [];
    for (const [name, e] of snap) {
      if ((sub.wildcard || sub.names.has(name)) && sub.sent.get(name) !== e.version) changed.push(name);
    }
    const removed = [...sub.sent.keys()].filter((n) => !snap.has(n) || !(sub.wildcard || sub.names.has(n)));
    this.send(conn, typeUrl, sub, changed, removed, !sub.responded);
  }

  /** Sends a connection that holds nothing of a type every resource of its snapshot. */
  private sendWhole(conn: Connection, typeUrl: string, sub: Subscription, snap: TypeSnapshot): void {
    // Nonces count per stream (as go-control-plane's delta server does), so every stream that
    // connects to this snapshot is sent the same bytes, built once.
    const nonce = String(++conn.nonces);
    sub.sent.holdAll(snap);
    this.written(
      conn,
      typeUrl,
      sub,
      nonce,
      wholeSnapshotResponse(snap, String(this.store.version), typeUrl, nonce),
    );
  }

  private push(
    conn: Connection,
    typeUrl: string,
    sub: Subscription,
    changed: readonly string[],
    removed: readonly string[],
    changedAt?: number,
  ): void {
    const snap = this.snapshot(typeUrl, conn.scope);
    const send = changed.filter(
      (n) => (sub.wildcard || sub.names.has(n)) && sub.sent.get(n) !== snap.get(n)?.version,
    );
    const gone = removed.filter((n) => sub.sent.has(n));
    this.send(conn, typeUrl, sub, send, gone, false, changedAt);
  }

  private send(
    conn: Connection,
    typeUrl: string,
    sub: Subscription,
    changed: readonly string[],
    removed: readonly string[],
    always: boolean,
    changedAt?: number,
  ): void {
    if (!always && changed.length === 0 && removed.length === 0) return;
    const snap = this.snapshot(typeUrl, conn.scope);
    const nonce = String(++conn.nonces);
    const resources: Buffer[] = [];
    for (const name of changed) {
      const e = snap.get(name) as ResourceEntry;
      resources.push(framedResource(e));
      sub.sent.set(name, e.version);
    }
    for (const name of removed) sub.sent.delete(name);
    const bytes = deltaResponseBytes({
      systemVersionInfo: String(this.store.version),
      resources,
      typeUrl,
      nonce,
      removed,
    });
    this.written(conn, typeUrl, sub, nonce, bytes, changedAt);
  }

  private written(
    conn: Connection,
    typeUrl: string,
    sub: Subscription,
    nonce: string,
    bytes: Buffer,
    changedAt?: number,
  ): void {
    sub.responded = true;
    conn.pending.set(nonce, { typeUrl, ...(changedAt !== undefined && { changedAt }) });
    // Unanswered nonces of a stuck proxy must not grow without bound.
    if (conn.pending.size > 64) conn.pending.delete(conn.pending.keys().next().value as string);
    this.inputs.metrics.pushes.inc({ type: this.label(typeUrl) });
    this.writes.write(conn.call, bytes);
  }
}

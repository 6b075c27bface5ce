/**
 * State-of-the-world ADS (`StreamAggregatedResources`) beside the Delta server, serving the same
 * `SnapshotStore`: the same resources, scopes, admission and metrics. Every response carries the
 * full state of what the stream subscribes to for one type URL, versioned by a digest of its
 * contents, with a nonce per response; the client ACKs by echoing the nonce and NACKs by adding
 * error_detail (it keeps its last good version, and the server sends nothing until the state it
 * would send changes). Subscription rules are the pure decisions of `sotw-watch.ts`.
 */
import { createHash } from 'node:crypto';
import { meshProtos } from '@ambient/shared';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import protobuf from 'protobufjs';
import type { Authenticator, Caller } from '../auth/token-authenticator.js';
import type { ControlPlaneMetrics } from '../telemetry/controlplane-metrics.js';
import type { ConnectionDump } from './delta-ads-server.js';
import {
  AdsStreams,
  admitProxy,
  authenticateStream,
  nodeIdentity,
  type ProxyDirectory,
  type WireNode,
} from './proxy-admission.js';
import type { ResourceEntry, SnapshotChange, SnapshotStore } from './snapshot-store.js';
import { decideSotw, type SotwWatch, watches } from './sotw-watch.js';

export const SOTW_ADS_METHOD =
  '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';

interface TypeState {
  watch: SotwWatch;
  /** Nonce and version of the latest response sent. */
  nonce?: string;
  version?: string;
  /** Resources in the latest response. */
  sent: number;
  /** The config change the latest response carried, for convergence time at its ACK. */
  changedAt?: number;
}

interface Connection {
  readonly id: number;
  readonly call: grpc.ServerDuplexStream<Buffer, Buffer>;
  readonly caller: Caller;
  readonly peer: string;
  nodeId: string;
  metadata: Record<string, string>;
  scope: string;
  gateway?: string;
  readonly types: Map<string, TypeState>;
  nonces: number;
  acks: number;
  nacks: number;
  lastNack?: ConnectionDump['lastNack'];
  readonly connectedAt: string;
}

interface WireRequest {
  versionInfo: string;
  node?: WireNode;
  resourceNames: string[];
  typeUrl: string;
  responseNonce: string;
  errorDetail?: { code?: number; message?: string };
}

export interface SotwAdsServerInputs {
  readonly logger: Logger;
  readonly metrics: ControlPlaneMetrics;
  readonly authenticator: Authenticator;
  readonly store: SnapshotStore;
  /** Short names for metric labels. */
  readonly typeLabels?: Readonly<Record<string, string>>;
  /** Pods and gateways, to admit waypoint proxies; without it waypoint streams are refused. */
  readonly proxies?: ProxyDirectory;
  readonly now?: () => number;
}

/** The `Any` inside an encoded `Resource` (field 2), as a view of its bytes. */
const anyCache = new WeakMap<ResourceEntry, Uint8Array>();
export function resourceAny(entry: ResourceEntry): Uint8Array {
  const hit = anyCache.get(entry);
  if (hit) return hit;
  const r = protobuf.Reader.create(entry.encoded);
  let out: Uint8Array = new Uint8Array(0);
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag === 18) {
      const len = r.uint32();
      out = entry.encoded.subarray(r.pos, r.pos + len);
      break;
    }
    r.skipType(tag & 7);
  }
  anyCache.set(entry, out);
  return out;
}

export class SotwAdsServer {
  private readonly streams: AdsStreams<Connection>;
  private nextId = 1;

  constructor(private readonly inputs: SotwAdsServerInputs) {
    this.streams = new AdsStreams(
      meshProtos().lookupType('envoy.service.discovery.v3.DiscoveryRequest'),
      inputs.metrics,
      inputs.logger,
    );
    inputs.store.onChange((change) => this.onChange(change));
  }

  /** Adds the StreamAggregatedResources method to a gRPC server. */
  register(server: grpc.Server): void {
    server.register<Buffer, Buffer>(
      SOTW_ADS_METHOD,
      ((call: grpc.ServerDuplexStream<Buffer, Buffer>) =>
        this.onStream(call)) as grpc.handleBidiStreamingCall<Buffer, Buffer>,
      (b: Buffer) => b,
      (b: Buffer) => b,
      'bidi',
    );
  }

  connectionCount(): number {
    return this.streams.connections.size;
  }

  dump(): ConnectionDump[] {
    return [...this.streams.connections.values()].map((c) => ({
      id: c.id,
      protocol: 'sotw' as const,
      nodeId: c.nodeId,
      node: c.metadata.NODE_NAME ?? '',
      peer: c.peer,
      ...(c.gateway && { waypoint: c.gateway }),
      connectedAt: c.connectedAt,
      types: [...c.types].map(([typeUrl, t]) => ({ typeUrl, wildcard: t.watch.wildcard, resources: t.sent })),
      acks: c.acks,
      nacks: c.nacks,
      ...(c.lastNack && { lastNack: c.lastNack }),
    }));
  }

  /** Ends every stream. */
  closeAll(): void {
    for (const c of this.streams.connections.values()) c.call.end();
  }

  private label(typeUrl: string): string {
    return this.inputs.typeLabels?.[typeUrl] ?? typeUrl;
  }

  private onChange({ scope, typeUrl, changed, removed, changedAt }: SnapshotChange): void {
    for (const conn of this.streams.connections.values()) {
      if (conn.scope !== scope) continue;
      const state = conn.types.get(typeUrl);
      if (!state?.nonce) continue;
      const w = state.watch;
      if (!changed.some((n) => watches(w, n)) && !removed.some((n) => watches(w, n))) continue;
      this.respond(conn, typeUrl, state, false, changedAt);
    }
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
      types: new Map(),
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
        {
          id: conn.id,
          node: conn.nodeId,
          peer: conn.peer,
          protocol: 'sotw',
          ...(conn.gateway && { waypoint: conn.gateway }),
        },
        'xDS stream opened',
      );
    }
    if (!conn.nodeId) {
      this.refuse(conn, grpc.status.INVALID_ARGUMENT, 'the first request must carry the node');
      return;
    }
    const typeUrl = req.typeUrl;
    const state = conn.types.get(typeUrl);
    const decision = decideSotw(state?.watch, state?.nonce, {
      typeUrl,
      resourceNames: req.resourceNames,
      responseNonce: req.responseNonce,
      hasError: req.errorDetail !== undefined && req.errorDetail !== null,
    });
    if (decision.kind === 'stale') return;
    const ack = decision.kind === 'respond' ? decision.ack : decision.kind;
    if (ack === 'nack') {
      conn.nacks += 1;
      const message = req.errorDetail?.message ?? '';
      conn.lastNack = { typeUrl, nonce: req.responseNonce, message, at: new Date().toISOString() };
      metrics.rejects.inc({ type: this.label(typeUrl) });
      logger.warn(
        { node: conn.nodeId, typeUrl, nonce: req.responseNonce, version: req.versionInfo, error: message },
        'xDS NACK',
      );
    } else if (ack === 'ack' && state) {
      conn.acks += 1;
      if (state.changedAt !== undefined) {
        metrics.convergence.observe(((this.inputs.now ?? Date.now)() - state.changedAt) / 1000);
        state.changedAt = undefined;
      }
    }
    if (decision.kind !== 'respond') return;
    const next: TypeState = state ?? { watch: decision.watch, sent: 0 };
    next.watch = decision.watch;
    conn.types.set(typeUrl, next);
    this.respond(conn, typeUrl, next, true);
  }

  /**
   * Sends the full state the stream subscribes to for a type; unless `always`, only when it
   * differs from the latest response (so a NACKed state is not sent again).
   */
  private respond(
    conn: Connection,
    typeUrl: string,
    state: TypeState,
    always: boolean,
    changedAt?: number,
  ): void {
    const snap = this.inputs.store.snapshot(typeUrl, conn.scope);
    const entries: Array<[string, ResourceEntry]> = [];
    for (const [name, e] of snap) if (watches(state.watch, name)) entries.push([name, e]);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const h = createHash('sha256');
    for (const [name, e] of entries) h.update(name).update('\0').update(e.version).update('\0');
    const version = h.digest('base64url').slice(0, 16);
    if (!always && version === state.version) return;
    const nonce = `${conn.id}-${++conn.nonces}`;
    const w = protobuf.Writer.create();
    w.uint32(10).string(version); // version_info = 1
    for (const [, e] of entries) w.uint32(18).bytes(resourceAny(e)); // resources = 2 (Any)
    w.uint32(34).string(typeUrl); // type_url = 4
    w.uint32(42).string(nonce); // nonce = 5
    const bytes = w.finish();
    state.nonce = nonce;
    state.version = version;
    state.sent = entries.length;
    if (changedAt !== undefined) state.changedAt = changedAt;
    this.inputs.metrics.pushes.inc({ type: this.label(typeUrl) });
    conn.call.write(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }
}

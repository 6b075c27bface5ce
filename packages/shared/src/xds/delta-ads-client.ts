/**
 * A Delta ADS client (envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources)
 * that knows resource types only through XdsResourceType: a decoder that turns one resource's bytes
 * into a domain value or a list of problems with field paths. Wire types stop here.
 *
 * Per response: every resource is decoded; good ones are applied, bad ones keep their last good
 * value, and the response is ACKed, or NACKed with `error_detail` naming each rejected resource.
 * On a broken stream the client reconnects with jittered backoff and sends the versions it holds
 * as `initial_resource_versions`, so the server sends only what changed while it was away.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type protobuf from 'protobufjs';
import { type BackoffPolicy, backoffDelay } from '../backoff.js';
import { formatProblems, type Problem, type Result } from '../result.js';
import { readDeltaResponse } from './delta-response-reader.js';
import type { XdsClientMetrics } from './xds-metrics.js';
import { meshProtos } from './xds-protos.js';

export const DELTA_ADS_METHOD =
  '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources';

/** Reconnect delays: 10 ms doubling to 15 s, jittered. */
export const XDS_BACKOFF: BackoffPolicy = Object.freeze({ initialMs: 10, maxMs: 15_000 });

/** gRPC status code INVALID_ARGUMENT, sent in a NACK's error_detail. */
const INVALID_ARGUMENT = 3;

export interface XdsResourceType<T> {
  readonly typeUrl: string;
  /** Decodes and validates one resource; never throws for bad input. */
  decode(value: Uint8Array, name: string): Result<T>;
}

export interface XdsDelta<T> {
  /** Added or changed resources of this response. */
  readonly updated: ReadonlyMap<string, T>;
  readonly removed: readonly string[];
  /** Every resource of the type held after this response. */
  readonly all: ReadonlyMap<string, T>;
}

export interface XdsSubscription<T> {
  readonly type: XdsResourceType<T>;
  /** Resource names; empty means every resource of the type (wildcard). */
  readonly names?: readonly string[];
  readonly onChange: (delta: XdsDelta<T>) => void;
}

export interface XdsNode {
  readonly id: string;
  readonly cluster?: string;
  readonly metadata: Readonly<Record<string, string>>;
}

export interface DeltaAdsClientInputs {
  /** host:port of the control plane. */
  readonly target: string;
  readonly credentials: grpc.ChannelCredentials;
  readonly channelOptions?: grpc.ChannelOptions;
  /** Call metadata for each new stream, such as `authorization: Bearer <token>`. */
  readonly callMetadata?: () => Promise<Record<string, string>> | Record<string, string>;
  readonly node: XdsNode;
  // biome-ignore lint/suspicious/noExplicitAny: subscriptions of different resource types
  readonly subscriptions: readonly XdsSubscription<any>[];
  readonly logger: Logger;
  readonly metrics?: XdsClientMetrics;
  readonly backoff?: BackoffPolicy;
  readonly random?: () => number;
}

export interface XdsRejection {
  readonly typeUrl: string;
  readonly nonce: string;
  readonly at: string;
  readonly message: string;
}

interface TypeState {
  // biome-ignore lint/suspicious/noExplicitAny: values are whatever the type decodes to
  readonly sub: XdsSubscription<any>;
  readonly values: Map<string, unknown>;
  readonly versions: Map<string, string>;
  synced: boolean;
  acks: number;
  nacks: number;
  lastNonce: string;
}

export interface XdsClientDump {
  readonly target: string;
  readonly connected: boolean;
  readonly streams: number;
  readonly lastError?: string;
  readonly types: Array<{
    typeUrl: string;
    resources: number;
    synced: boolean;
    acks: number;
    nacks: number;
    lastNonce: string;
  }>;
  readonly rejections: readonly XdsRejection[];
}

export class DeltaAdsClient {
  private readonly types = new Map<string, TypeState>();
  private readonly request: protobuf.Type;
  /** A channel per stream attempt (see connect()). */
  private client?: grpc.Client;
  private call?: grpc.ClientDuplexStream<object, Buffer>;
  private closed = false;
  private connected = false;
  private attempt = 0;
  private streams = 0;
  private timer?: NodeJS.Timeout;
  private lastError?: string;
  private readonly rejections: XdsRejection[] = [];
  private readonly syncWaiters: Array<() => void> = [];

  constructor(private readonly inputs: DeltaAdsClientInputs) {
    const root = meshProtos();
    this.request = root.lookupType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
    for (const sub of inputs.subscriptions) {
      this.types.set(sub.type.typeUrl, {
        sub,
        values: new Map(),
        versions: new Map(),
        synced: false,
        acks: 0,
        nacks: 0,
        lastNonce: '',
      });
    }
  }

  /**
   * Each stream attempt gets a channel of its own, as Istio's ztunnel connects afresh for each,
   * so this client's backoff is the only one: a long-lived channel keeps a reconnect backoff of
   * its own (1 s growing to 120 s) during which it fails calls at once with a stale error, and
   * attempts made after the control plane is back would be wasted until it expired. A local
   * subchannel pool keeps a new channel from picking up the old one's connection state.
   */
  private newChannel(): grpc.Client {
    const { inputs } = this;
    return new grpc.Client(inputs.target, inputs.credentials, {
      // Large initial snapshots (tens of thousands of workloads) exceed gRPC's 4 MiB default.
      'grpc.max_receive_message_length': 256 * 1024 * 1024,
      'grpc.keepalive_time_ms': 30_000,
      'grpc.use_local_subchannel_pool': 1,
      ...inputs.channelOptions,
    });
  }

  /** Opens the stream; resolves at once (use `synced()` to wait for the first config). */
  start(): void {
    this.connect();
  }

  /** Resolves when every subscribed type has received its first response. */
  synced(): Promise<void> {
    if (this.isSynced()) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  isSynced(): boolean {
    return [...this.types.values()].every((t) => t.synced);
  }

  isConnected(): boolean {
    return this.connected;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.call?.cancel();
    this.client?.close();
  }

  dump(): XdsClientDump {
    return {
      target: this.inputs.target,
      connected: this.connected,
      streams: this.streams,
      ...(this.lastError !== undefined && { lastError: this.lastError }),
      types: [...this.types.values()].map((t) => ({
        typeUrl: t.sub.type.typeUrl,
        resources: t.values.size,
        synced: t.synced,
        acks: t.acks,
        nacks: t.nacks,
        lastNonce: t.lastNonce,
      })),
      rejections: [...this.rejections],
    };
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const { inputs } = this;
    const metadata = new grpc.Metadata();
    try {
      for (const [k, v] of Object.entries((await inputs.callMetadata?.()) ?? {})) metadata.set(k, v);
    } catch (err) {
      this.lastError = `call metadata: ${(err as Error).message}`;
      this.scheduleReconnect('Error');
      return;
    }
    if (this.closed) return;
    this.client?.close();
    this.client = this.newChannel();
    const call = this.client.makeBidiStreamRequest<object, Buffer>(
      DELTA_ADS_METHOD,
      (req) => Buffer.from(this.request.encode(req).finish()),
      (buf) => buf,
      metadata,
    );
    this.call = call;
    this.streams += 1;
    let ended = false;
    const end = (reason: string, err?: grpc.ServiceError) => {
      if (ended) return;
      ended = true;
      this.connected = false;
      if (this.call === call) this.call = undefined;
      if (this.closed) return;
      if (err) this.lastError = `${grpc.status[err.code] ?? err.code}: ${err.details || err.message}`;
      const retryInMs = Math.round(this.scheduleReconnect(reason));
      // Names the control plane and the next attempt, as upstream ztunnel's "XDS client
      // connection error: ..., retrying in ..." does: the line an operator looks for first.
      inputs.logger.warn(
        { reason, err: this.lastError, target: inputs.target, retryInMs },
        `xDS stream to the control plane at ${inputs.target} ended (${reason}), retrying in ${retryInMs} ms`,
      );
    };
    call.on('data', (buf: Buffer) => {
      this.connected = true;
      this.attempt = 0;
      try {
        this.onResponse(call, buf);
      } catch (err) {
        // A response we cannot even parse as a DeltaDiscoveryResponse: the stream is unusable.
        inputs.logger.error({ err }, 'undecodable xDS response, reconnecting');
        this.lastError = `undecodable response: ${(err as Error).message}`;
        call.cancel();
        end('Error');
      }
    });
    call.on('error', (err: grpc.ServiceError) => {
      end(err.code === grpc.status.UNAVAILABLE ? 'ConnectionError' : 'Error', err);
    });
    call.on('end', () => end('Complete'));
    call.on('status', (s: grpc.StatusObject) => {
      if (s.code !== grpc.status.OK) this.lastError = `${grpc.status[s.code]}: ${s.details}`;
    });
    let first = true;
    for (const t of this.types.values()) {
      const names = t.sub.names ?? [];
      call.write({
        ...(first && { node: this.nodeMessage() }),
        typeUrl: t.sub.type.typeUrl,
        resourceNamesSubscribe: names.length ? [...names] : ['*'],
        initialResourceVersions: Object.fromEntries(t.versions),
      });
      first = false;
    }
  }

  private nodeMessage(): object {
    const { node } = this.inputs;
    return {
      id: node.id,
      ...(node.cluster !== undefined && { cluster: node.cluster }),
      metadata: {
        fields: Object.fromEntries(
          Object.entries(node.metadata).map(([k, v]) => [k, { stringValue: v }] as const),
        ),
      },
    };
  }

  /** Schedules the next attempt; returns its delay. */
  private scheduleReconnect(reason: string): number {
    this.inputs.metrics?.connectionTerminations.inc({ reason });
    if (this.closed) return 0;
    const delay = backoffDelay(this.inputs.backoff ?? XDS_BACKOFF, this.attempt, this.inputs.random);
    this.attempt += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
    this.timer.unref();
    return delay;
  }

  private onResponse(call: grpc.ClientDuplexStream<object, Buffer>, buf: Buffer): void {
    const res = readDeltaResponse(buf);
    const url = res.typeUrl;
    this.inputs.metrics?.messages.inc({ url });
    this.inputs.metrics?.messageBytes.inc(
      { url },
      res.resources.reduce((n, r) => n + (r.value?.length ?? 0), 0),
    );
    const t = this.types.get(url);
    if (!t) {
      // As Istio's ztunnel does: a type we have no handler for is logged and acknowledged.
      this.inputs.logger.error({ typeUrl: url }, 'xDS response for an unknown type');
      this.reply(call, url, res.nonce, []);
      return;
    }
    const problems: Problem[] = [];
    const updated = new Map<string, unknown>();
    for (const r of res.resources) {
      const name = r.name;
      if (!name) {
        problems.push({ path: '(unnamed)', message: 'resource has no name' });
        continue;
      }
      if (!r.value) {
        problems.push({ path: name, message: 'XDS payload without resource' });
        continue;
      }
      // The payload is decoded as the response's type whatever its Any.type_url says, as Istio's
      // ztunnel does; a payload of another type fails to decode or validate and is rejected.
      const decoded = t.sub.type.decode(r.value, name);
      if (!decoded.ok) {
        problems.push({ path: name, message: formatProblems(decoded.problems) });
        continue;
      }
      updated.set(name, decoded.value);
      t.values.set(name, decoded.value);
      t.versions.set(name, r.version);
    }
    const removed: string[] = [];
    for (const name of res.removedResources) {
      if (t.values.delete(name)) removed.push(name);
      t.versions.delete(name);
    }
    t.lastNonce = res.nonce;
    if (updated.size > 0 || removed.length > 0 || !t.synced) {
      try {
        t.sub.onChange({ updated, removed, all: t.values });
      } catch (err) {
        this.inputs.logger.error({ err, typeUrl: url }, 'xDS handler failed');
        problems.push({ path: '', message: `handler: ${(err as Error).message}` });
      }
    }
    if (!t.synced) {
      t.synced = true;
      if (this.isSynced()) for (const w of this.syncWaiters.splice(0)) w();
    }
    this.reply(call, url, res.nonce, problems);
  }

  private reply(
    call: grpc.ClientDuplexStream<object, Buffer>,
    typeUrl: string,
    nonce: string,
    problems: readonly Problem[],
  ): void {
    const t = this.types.get(typeUrl);
    if (problems.length === 0) {
      if (t) t.acks += 1;
      call.write({ typeUrl, responseNonce: nonce });
      return;
    }
    if (t) t.nacks += 1;
    const message = formatProblems(problems);
    this.rejections.push({ typeUrl, nonce, at: new Date().toISOString(), message });
    if (this.rejections.length > 20) this.rejections.shift();
    this.inputs.logger.warn({ typeUrl, nonce, problems }, `xDS resources rejected: ${message}`);
    call.write({ typeUrl, responseNonce: nonce, errorDetail: { code: INVALID_ARGUMENT, message } });
  }
}

/**
 * HBONE client connection pool.
 *
 * Invariant: a pooled connection is keyed by (source identity, destination identity, destination
 * address) and carries streams for exactly that key. A connection authenticated with one workload's
 * certificate is never used for another workload's traffic, and a connection that verified one peer
 * identity is never used to reach another identity, even at the same address.
 */

import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { hboneClientRefusalReason, hboneRefusalCode, MeshError } from '../errors.js';
import {
  ASSUMED_PEER_MAX_CONCURRENT_STREAMS,
  H2Connection,
  type H2Headers,
  type H2IncomingHeaders,
} from '../h2/h2-connection.js';
import { H2_ERROR, H2ConnectionError } from '../h2/h2-frames.js';
import type { H2Stream } from '../h2/h2-stream.js';
import type { WorkloadCertificate } from '../identity/cert-manager.js';
import { uriSans } from '../identity/node-x509.js';
import type { SpiffeId } from '../identity/spiffe-id.js';
import type { HboneMetrics } from '../telemetry/hbone-metrics.js';
import { expectIdentity, HBONE_ALPN, secureContextFor } from '../tls/mesh-tls.js';
import { drainSessions } from './drain-sessions.js';
import { formatAuthority, type HostPort } from './hbone-headers.js';
import { HBONE_CONNECTION_WINDOW, HBONE_MAX_STREAMS, HBONE_STREAM_WINDOW } from './hbone-server.js';

/** The client's deadlines and liveness bounds, as each proxy's settings give them. */
export interface HboneClientTimings {
  /** Default deadline of `connect()`: TCP, TLS and the server's SETTINGS, then the CONNECT response. */
  readonly connectTimeoutMs: number;
  /** A connection whose server sent nothing for this long is pinged, with or without open streams. */
  readonly pingIntervalMs: number;
  /** A pinged server that still sends nothing for this long is given up on; its streams fail. */
  readonly pingTimeoutMs: number;
}

/** 10 s to connect; ping after 10 s of silence, give up 20 s later (istio/ztunnel's PING_INTERVAL and PING_TIMEOUT). */
export const DEFAULT_HBONE_CLIENT_TIMINGS: HboneClientTimings = Object.freeze({
  connectTimeoutMs: 10_000,
  pingIntervalMs: 10_000,
  pingTimeoutMs: 20_000,
});

export interface CertificateSource {
  fetch(identity: SpiffeId): Promise<WorkloadCertificate>;
}

export interface HboneClientInputs {
  readonly certificates: CertificateSource;
  readonly metrics: HboneMetrics;
  readonly logger: Logger;
  readonly maxStreamsPerConnection?: number;
  /** Pooled connections with no stream for this long are closed. Default 5 minutes. */
  readonly idleTimeoutMs?: number;
  /**
   * A pooled connection whose server has sent nothing for this long is pinged, with or without
   * open streams. Default 10 s (istio/ztunnel's PING_INTERVAL).
   */
  readonly pingIntervalMs?: number;
  /**
   * A pinged server that still sends nothing for this long is given up on: the connection closes
   * and its streams fail. Default 20 s (istio/ztunnel's PING_TIMEOUT).
   */
  readonly pingTimeoutMs?: number;
  /** Default deadline of `connect()` when the request names none. Default 10 s. */
  readonly connectTimeoutMs?: number;
  /**
   * Opens the TCP connection under the TLS session. Node agents create it inside the source
   * pod's network namespace; by default it is an ordinary socket of this process.
   */
  readonly dialSocket?: (address: HostPort) => Promise<Duplex>;
}

export interface HboneConnectRequest {
  readonly source: SpiffeId;
  readonly destination: SpiffeId;
  /** Where the HBONE server listens: the destination pod's ip:15008, or a waypoint's. */
  readonly address: HostPort;
  /** `podIP:targetPort` to a workload, or the original `VIP:port` to a waypoint. */
  readonly authority: string;
  readonly forwarded?: string;
  readonly baggage?: string;
  readonly traceparent?: string;
  /**
   * Deadline of this call: TCP connect, TLS handshake and the server's SETTINGS of a new
   * connection, then the CONNECT's response. Default: the client's `connectTimeoutMs`.
   */
  readonly connectTimeoutMs?: number;
}

/** The peer answered CONNECT with `status`; 401 is MESH_ERR_HBONE_PEER_DENIED, others MESH_ERR_HBONE_REFUSED. */
export class HboneRefusedError extends MeshError {
  constructor(readonly status: number) {
    super(hboneRefusalCode(status), `status ${status}`);
  }
}

interface PooledConnection {
  readonly key: string;
  /** Set once dialing starts; streams use it only after `ready` resolved. */
  session?: H2Connection;
  ready: Promise<void>;
  /** Streams open or being opened on this connection. */
  streams: number;
  limit: number;
  lastUsed: number;
  usable: boolean;
  /** The URI SAN and certificate serial the server presented, recorded once they passed verification. */
  peer?: string;
  peerSerial?: string;
}

export interface PoolDump {
  key: string;
  streams: number;
  idleMs: number;
  peer?: string;
  peerSerial?: string;
  /** A liveness PING is unanswered: the server has gone silent, and no new stream goes here. */
  unresponsive?: true;
}

/** How many times a stream that found its connection full is placed again, before giving up. */
const MAX_FULL_RETRIES = 3;

/** One try at a CONNECT stream: the stream, or why not and whether another connection may take it. */
type Attempt =
  | { readonly stream: H2Stream }
  | { readonly error: Error; readonly retry?: 'full' | 'refused'; readonly stream?: undefined };

/** Pooled HBONE client: CONNECT streams multiplexed over mutual-TLS HTTP/2 connections. */
export class HboneClient {
  private readonly pool = new Map<string, PooledConnection[]>();
  private readonly peers = new WeakMap<H2Stream, string>();
  /** The stream limit each key's server last stated, to size its next connections before it speaks. */
  private readonly peerLimits = new Map<string, number>();
  private readonly answers = new WeakMap<H2Stream, H2IncomingHeaders>();
  private readonly maxStreams: number;
  private readonly idleTimeoutMs: number;
  private readonly pingIntervalMs: number;
  private readonly pingTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private sweeper?: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly inputs: HboneClientInputs) {
    this.maxStreams = inputs.maxStreamsPerConnection ?? HBONE_MAX_STREAMS;
    this.idleTimeoutMs = inputs.idleTimeoutMs ?? 5 * 60_000;
    this.pingIntervalMs = inputs.pingIntervalMs ?? DEFAULT_HBONE_CLIENT_TIMINGS.pingIntervalMs;
    this.pingTimeoutMs = inputs.pingTimeoutMs ?? DEFAULT_HBONE_CLIENT_TIMINGS.pingTimeoutMs;
    this.connectTimeoutMs = inputs.connectTimeoutMs ?? DEFAULT_HBONE_CLIENT_TIMINGS.connectTimeoutMs;
  }

  /**
   * Opens a CONNECT stream; resolves once the peer answered 200. A stream the server refused
   * (REFUSED_STREAM, or beyond a GOAWAY's last stream) was not processed (RFC 9113 §8.7), so it
   * is tried once more, on a new connection.
   */
  async connect(request: HboneConnectRequest): Promise<H2Stream> {
    if (this.closed) throw new MeshError('MESH_ERR_CLOSED', 'HBONE client');
    const timeoutMs = request.connectTimeoutMs ?? this.connectTimeoutMs;
    const deadline = Date.now() + timeoutMs;
    let fresh = false;
    for (let full = 0; ; ) {
      const attempt = await this.attempt(request, deadline, timeoutMs, fresh);
      if (attempt.stream) return attempt.stream;
      if (attempt.retry === 'full' && full < MAX_FULL_RETRIES) {
        full += 1;
        continue;
      }
      if (attempt.retry === 'refused' && !fresh) {
        this.inputs.logger.debug(
          { err: attempt.error.message },
          'HBONE stream refused; retrying on a new connection',
        );
        fresh = true;
        continue;
      }
      throw attempt.error;
    }
  }

  private async attempt(
    request: HboneConnectRequest,
    deadline: number,
    timeoutMs: number,
    fresh: boolean,
  ): Promise<Attempt> {
    if (this.closed) return { error: new MeshError('MESH_ERR_CLOSED', 'HBONE client') };
    const conn = this.acquire(request, fresh, deadline);
    try {
      await beforeDeadline(conn.ready, deadline, timeoutMs);
    } catch (err) {
      this.release(conn);
      return { error: err as Error };
    }
    const session = conn.session as H2Connection;
    const headers: H2Headers = {
      ':method': 'CONNECT',
      ':authority': request.authority,
    };
    if (request.forwarded) headers.forwarded = request.forwarded;
    if (request.baggage) headers.baggage = request.baggage;
    if (request.traceparent) headers.traceparent = request.traceparent;
    let stream: H2Stream;
    try {
      stream = session.request(headers, { endStream: false });
    } catch (err) {
      this.release(conn);
      // A bad header is the caller's mistake; the connection stays pooled.
      if (err instanceof TypeError)
        return { error: new MeshError('MESH_ERR_HBONE_BAD_REQUEST', err.message) };
      if (session.closed) this.retire(conn);
      const error = new MeshError('MESH_ERR_HBONE_RESET', (err as Error).message, { cause: err });
      // Nothing was sent: the connection was closing, or fuller than its server first allowed.
      return err instanceof H2ConnectionError ? { error, retry: 'full' } : { error };
    }
    // The slot frees when the stream leaves the connection, even if nobody reads what is left.
    stream.once('released', () => this.release(conn));
    if (conn.peer) this.peers.set(stream, conn.peer);
    let answer: H2IncomingHeaders;
    try {
      answer = await responseHeaders(stream, deadline - Date.now(), timeoutMs);
    } catch (err) {
      stream.on('error', () => {});
      if (!stream.destroyed) stream.close(H2_ERROR.CANCEL);
      const refused = stream.rstCode === H2_ERROR.REFUSED_STREAM;
      return { error: err as Error, ...(refused && { retry: 'refused' as const }) };
    }
    const status = Number(answer[':status']);
    this.inputs.metrics.streams.inc({ side: 'client', status: String(status) });
    if (status !== 200) {
      stream.on('error', () => {});
      stream.close(H2_ERROR.CANCEL);
      return { error: new HboneRefusedError(status) };
    }
    this.answers.set(stream, answer);
    return { stream };
  }

  /** The headers of the 200 answer to `stream` (the peer's `baggage`, say). */
  answerOf(stream: H2Stream): Readonly<H2IncomingHeaders> | undefined {
    return this.answers.get(stream);
  }

  /** The identity the server of `stream` presented and this client verified. */
  peerOf(stream: H2Stream): string | undefined {
    return this.peers.get(stream);
  }

  /** Open connections and their stream counts, for config dumps. */
  dump(): PoolDump[] {
    const now = Date.now();
    return [...this.pool.values()].flat().map((c) => ({
      key: c.key,
      streams: c.streams,
      idleMs: now - c.lastUsed,
      ...(c.peer !== undefined && { peer: c.peer }),
      ...(c.peerSerial !== undefined && { peerSerial: c.peerSerial }),
      ...(c.session?.unresponsive === true && { unresponsive: true as const }),
    }));
  }

  get size(): number {
    let n = 0;
    for (const list of this.pool.values()) n += list.length;
    return n;
  }

  /** Stops new streams, lets open ones finish until `deadlineMs`, then destroys the rest. */
  async close(deadlineMs = 5_000): Promise<void> {
    this.closed = true;
    await drainSessions(
      [...this.pool.values()].flat().map((c) => c.session),
      deadlineMs,
    );
    this.destroy();
  }

  destroy(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const c of [...this.pool.values()].flat()) {
      c.session?.destroy();
      this.retire(c);
    }
  }

  /**
   * A connection with room for one more stream, or a new one. A connection whose server has gone
   * silent (a liveness PING is unanswered) takes no new stream until the server speaks again.
   */
  private acquire(request: HboneConnectRequest, fresh: boolean, deadline: number): PooledConnection {
    const key = `${request.source}|${request.destination}|${formatAuthority(request.address)}`;
    const list = this.pool.get(key);
    const existing = fresh
      ? undefined
      : list?.find((c) => c.usable && c.streams < c.limit && c.session?.unresponsive !== true);
    const conn = existing ?? this.open(key, request, deadline);
    conn.streams += 1;
    conn.lastUsed = Date.now();
    return conn;
  }

  private release(conn: PooledConnection): void {
    conn.streams -= 1;
    conn.lastUsed = Date.now();
  }

  private open(key: string, request: HboneConnectRequest, deadline: number): PooledConnection {
    const conn: PooledConnection = {
      key,
      ready: Promise.resolve(),
      streams: 0,
      // Until this connection's server states its limit: what it said last time, else the assumption.
      limit: Math.min(this.maxStreams, this.peerLimits.get(key) ?? ASSUMED_PEER_MAX_CONCURRENT_STREAMS),
      lastUsed: Date.now(),
      usable: true,
    };
    conn.ready = this.dial(conn, request, deadline).catch((err: unknown) => {
      const e = connectError(err as Error);
      this.inputs.metrics.connectionsRefused.inc({ side: 'client', reason: hboneClientRefusalReason(e) });
      this.retire(conn);
      throw e;
    });
    // Every caller awaits `ready`; this only keeps an unawaited failure from being reported as unhandled.
    conn.ready.catch(() => {});
    const list = this.pool.get(key);
    if (list) list.push(conn);
    else this.pool.set(key, [conn]);
    this.inputs.metrics.poolConnections.inc();
    this.startSweeper();
    return conn;
  }

  /**
   * TCP, TLS and the server's first SETTINGS, all before `deadline`: a connection is usable only
   * once its server has said how many streams it takes.
   */
  private async dial(conn: PooledConnection, request: HboneConnectRequest, deadline: number): Promise<void> {
    const { metrics, logger } = this.inputs;
    const cert = await this.inputs.certificates.fetch(request.source);
    const { host, port } = request.address;
    const verify = expectIdentity(request.destination);
    const checkServerIdentity = (hostname: string, presented: tls.PeerCertificate) => {
      const err = verify(hostname, presented);
      if (!err) {
        conn.peer = uriSans(presented.subjectaltname)[0];
        conn.peerSerial = presented.serialNumber;
      }
      return err;
    };
    let socket: tls.TLSSocket | undefined;
    let session: H2Connection | undefined;
    let timedOut = false;
    const timer = setTimeout(
      () => {
        timedOut = true;
        session?.destroy();
        socket?.destroy();
      },
      Math.max(0, deadline - Date.now()),
    );
    const timeoutError = () =>
      new MeshError(
        'MESH_ERR_HBONE_UPSTREAM',
        `connection to ${formatAuthority(request.address)} not ready in time`,
      );
    try {
      const raw = this.inputs.dialSocket ? await this.inputs.dialSocket(request.address) : undefined;
      if (timedOut) {
        raw?.destroy();
        throw timeoutError();
      }
      const tlsSocket = tls.connect({
        host,
        port,
        ...(raw && { socket: raw }),
        secureContext: secureContextFor(cert),
        ALPNProtocols: [HBONE_ALPN],
        checkServerIdentity,
        rejectUnauthorized: true,
      });
      socket = tlsSocket;
      tlsSocket.setNoDelay(true);
      await new Promise<void>((resolve, reject) => {
        tlsSocket.once('secureConnect', () => {
          tlsSocket.off('error', reject);
          tlsSocket.off('close', onClose);
          resolve();
        });
        const onClose = () => reject(timedOut ? timeoutError() : new Error('socket closed during handshake'));
        tlsSocket.once('error', reject);
        tlsSocket.once('close', onClose);
      });
      if (tlsSocket.alpnProtocol !== HBONE_ALPN) {
        tlsSocket.destroy();
        throw new MeshError(
          'MESH_ERR_TLS_HANDSHAKE',
          `peer negotiated ALPN ${String(tlsSocket.alpnProtocol)}, not h2`,
        );
      }
      const h2 = new H2Connection(tlsSocket, {
        role: 'client',
        streamWindow: HBONE_STREAM_WINDOW,
        connectionWindow: HBONE_CONNECTION_WINDOW,
        maxConcurrentStreams: this.maxStreams,
        keepalive: { intervalMs: this.pingIntervalMs, timeoutMs: this.pingTimeoutMs },
      });
      session = h2;
      conn.session = h2;
      h2.on('remoteSettings', (s: { maxConcurrentStreams: number }) => {
        conn.limit = Math.min(this.maxStreams, s.maxConcurrentStreams);
        this.peerLimits.set(conn.key, conn.limit);
      });
      h2.on('goaway', () => {
        conn.usable = false;
      });
      h2.on('keepalive', (answered: boolean) => {
        metrics.pings.inc({ result: answered ? 'ok' : 'failed' });
        if (!answered) logger.debug({ key: conn.key }, 'HBONE server stopped answering; connection closed');
      });
      h2.on('protocolError', (err: Error) =>
        logger.debug({ err: err.message, key: conn.key }, 'HBONE server broke HTTP/2'),
      );
      h2.on('error', (err: Error) =>
        logger.debug({ err: err.message, key: conn.key }, 'HBONE client session error'),
      );
      h2.once('close', () => this.retire(conn));
      if (!h2.settingsReceived) {
        await new Promise<void>((resolve, reject) => {
          const onSettings = () => {
            h2.off('close', onClose);
            resolve();
          };
          const onClose = () => {
            h2.off('remoteSettings', onSettings);
            reject(
              timedOut ? timeoutError() : new Error('connection closed before the server sent SETTINGS'),
            );
          };
          h2.once('remoteSettings', onSettings);
          h2.once('close', onClose);
        });
      }
    } finally {
      clearTimeout(timer);
    }
    metrics.connectionsOpened.inc({ side: 'client' });
  }

  private retire(conn: PooledConnection): void {
    conn.usable = false;
    const list = this.pool.get(conn.key);
    const i = list?.indexOf(conn) ?? -1;
    if (!list || i < 0) return;
    list.splice(i, 1);
    if (list.length === 0) this.pool.delete(conn.key);
    this.inputs.metrics.poolConnections.dec();
  }

  private startSweeper(): void {
    if (this.sweeper) return;
    const every = Math.max(10, Math.min(this.pingIntervalMs, this.idleTimeoutMs) / 2);
    this.sweeper = setInterval(() => this.sweep(), every);
    this.sweeper.unref();
  }

  /** Closes connections idle past the timeout (liveness pings are the connections' own). */
  private sweep(): void {
    const now = Date.now();
    for (const conn of [...this.pool.values()].flat()) {
      const session = conn.session;
      if (!session || conn.streams > 0 || !conn.usable) continue;
      if (now - conn.lastUsed >= this.idleTimeoutMs) {
        this.retire(conn);
        session.close();
      }
    }
    if (this.pool.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }
}

/** `promise`, or a timeout error once `deadline` passes. */
function beforeDeadline<T>(promise: Promise<T>, deadline: number, timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(new MeshError('MESH_ERR_HBONE_UPSTREAM', `HBONE connection not ready within ${timeoutMs} ms`)),
      Math.max(0, deadline - Date.now()),
    );
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/** The status of the CONNECT's response, or the stream's error; bounded by the connect deadline. */
function responseHeaders(
  stream: H2Stream,
  remainingMs: number,
  timeoutMs: number,
): Promise<H2IncomingHeaders> {
  return new Promise<H2IncomingHeaders>((resolve, reject) => {
    const timer = setTimeout(
      () => {
        cleanup();
        reject(new MeshError('MESH_ERR_HBONE_UPSTREAM', `no CONNECT response within ${timeoutMs} ms`));
      },
      Math.max(0, remainingMs),
    );
    const onError = (err: Error) => {
      cleanup();
      reject(new MeshError('MESH_ERR_HBONE_RESET', err.message, { cause: err }));
    };
    const onClose = () => {
      cleanup();
      reject(
        new MeshError('MESH_ERR_HBONE_RESET', `stream closed before a response (code ${stream.rstCode})`),
      );
    };
    const onResponse = (h: H2IncomingHeaders) => {
      cleanup();
      resolve(h);
    };
    const cleanup = () => {
      clearTimeout(timer);
      stream.off('error', onError);
      stream.off('close', onClose);
      stream.off('response', onResponse);
    };
    stream.once('error', onError);
    stream.once('close', onClose);
    stream.once('response', onResponse);
  });
}

function connectError(err: Error): MeshError {
  if (err instanceof MeshError) return err;
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (code === 'ECONNREFUSED' || code === 'ETIMEDOUT' || code === 'EHOSTUNREACH' || code === 'ECONNRESET') {
    return new MeshError('MESH_ERR_HBONE_UPSTREAM', err.message, { cause: err });
  }
  return new MeshError('MESH_ERR_TLS_HANDSHAKE', `${code} ${err.message}`.trim(), { cause: err });
}

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
import { H2Connection, type H2Headers, type H2IncomingHeaders } from '../h2/h2-connection.js';
import { H2_ERROR } from '../h2/h2-frames.js';
import type { H2Stream } from '../h2/h2-stream.js';
import type { WorkloadCertificate } from '../identity/cert-manager.js';
import type { SpiffeId } from '../identity/spiffe-id.js';
import { uriSans } from '../identity/x509.js';
import type { HboneMetrics } from '../telemetry/hbone-metrics.js';
import { expectIdentity, HBONE_ALPN, secureContextFor } from '../tls/mesh-tls.js';
import { drainSessions } from './drain-sessions.js';
import { formatAuthority, type HostPort } from './hbone-headers.js';
import { HBONE_CONNECTION_WINDOW, HBONE_MAX_STREAMS, HBONE_STREAM_WINDOW } from './hbone-server.js';

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
  /** Idle pooled connections are pinged this often; a failed ping drops the connection. */
  readonly pingIntervalMs?: number;
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
}

/** Pooled HBONE client: CONNECT streams multiplexed over mutual-TLS HTTP/2 connections. */
export class HboneClient {
  private readonly pool = new Map<string, PooledConnection[]>();
  private readonly peers = new WeakMap<H2Stream, string>();
  private readonly answers = new WeakMap<H2Stream, H2IncomingHeaders>();
  private readonly maxStreams: number;
  private readonly idleTimeoutMs: number;
  private readonly pingIntervalMs: number;
  private sweeper?: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly inputs: HboneClientInputs) {
    this.maxStreams = inputs.maxStreamsPerConnection ?? HBONE_MAX_STREAMS;
    this.idleTimeoutMs = inputs.idleTimeoutMs ?? 5 * 60_000;
    this.pingIntervalMs = inputs.pingIntervalMs ?? 30_000;
  }

  /** Opens a CONNECT stream; resolves once the peer answered 200. */
  async connect(request: HboneConnectRequest): Promise<H2Stream> {
    if (this.closed) throw new MeshError('MESH_ERR_CLOSED', 'HBONE client');
    const conn = this.acquire(request);
    try {
      await conn.ready;
    } catch (err) {
      this.release(conn);
      throw err;
    }
    const headers: H2Headers = {
      ':method': 'CONNECT',
      ':authority': request.authority,
    };
    if (request.forwarded) headers.forwarded = request.forwarded;
    if (request.baggage) headers.baggage = request.baggage;
    if (request.traceparent) headers.traceparent = request.traceparent;
    let stream: H2Stream;
    try {
      stream = conn.session!.request(headers, { endStream: false });
    } catch (err) {
      this.release(conn);
      // A bad header is the caller's mistake; the connection stays pooled.
      if (err instanceof TypeError) throw new MeshError('MESH_ERR_HBONE_BAD_REQUEST', err.message);
      this.retire(conn);
      throw new MeshError('MESH_ERR_HBONE_RESET', (err as Error).message, { cause: err });
    }
    // The slot frees when the stream leaves the connection, even if nobody reads what is left.
    stream.once('released', () => this.release(conn));
    if (conn.peer) this.peers.set(stream, conn.peer);
    const answer = await new Promise<H2IncomingHeaders>((resolve, reject) => {
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
        stream.off('error', onError);
        stream.off('close', onClose);
        stream.off('response', onResponse);
      };
      stream.once('error', onError);
      stream.once('close', onClose);
      stream.once('response', onResponse);
    });
    const status = Number(answer[':status']);
    this.inputs.metrics.streams.inc({ side: 'client', status: String(status) });
    if (status !== 200) {
      stream.on('error', () => {});
      stream.close(H2_ERROR.CANCEL);
      throw new HboneRefusedError(status);
    }
    this.answers.set(stream, answer);
    return stream;
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

  private acquire(request: HboneConnectRequest): PooledConnection {
    const key = `${request.source}|${request.destination}|${formatAuthority(request.address)}`;
    const list = this.pool.get(key);
    const existing = list?.find((c) => c.usable && c.streams < c.limit);
    const conn = existing ?? this.open(key, request);
    conn.streams += 1;
    conn.lastUsed = Date.now();
    return conn;
  }

  private release(conn: PooledConnection): void {
    conn.streams -= 1;
    conn.lastUsed = Date.now();
  }

  private open(key: string, request: HboneConnectRequest): PooledConnection {
    const conn: PooledConnection = {
      key,
      ready: Promise.resolve(),
      streams: 0,
      limit: this.maxStreams,
      lastUsed: Date.now(),
      usable: true,
    };
    conn.ready = this.dial(conn, request).catch((err: unknown) => {
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

  private async dial(conn: PooledConnection, request: HboneConnectRequest): Promise<void> {
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
    const raw = this.inputs.dialSocket ? await this.inputs.dialSocket(request.address) : undefined;
    const socket = tls.connect({
      host,
      port,
      ...(raw && { socket: raw }),
      secureContext: secureContextFor(cert),
      ALPNProtocols: [HBONE_ALPN],
      checkServerIdentity,
      rejectUnauthorized: true,
    });
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy(new MeshError('MESH_ERR_TLS_HANDSHAKE', 'connect timeout'));
      }, this.inputs.connectTimeoutMs ?? 10_000);
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        socket.off('error', reject);
        resolve();
      });
      socket.once('error', (err: Error) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    if (socket.alpnProtocol !== HBONE_ALPN) {
      socket.destroy();
      throw new MeshError(
        'MESH_ERR_TLS_HANDSHAKE',
        `peer negotiated ALPN ${String(socket.alpnProtocol)}, not h2`,
      );
    }
    const session = new H2Connection(socket, {
      role: 'client',
      streamWindow: HBONE_STREAM_WINDOW,
      connectionWindow: HBONE_CONNECTION_WINDOW,
      maxConcurrentStreams: this.maxStreams,
    });
    conn.session = session;
    session.on('remoteSettings', (s: { maxConcurrentStreams: number }) => {
      conn.limit = Math.min(this.maxStreams, s.maxConcurrentStreams);
    });
    session.on('goaway', () => {
      conn.usable = false;
    });
    session.on('protocolError', (err: Error) =>
      logger.debug({ err: err.message, key: conn.key }, 'HBONE server broke HTTP/2'),
    );
    session.on('error', (err: Error) =>
      logger.debug({ err: err.message, key: conn.key }, 'HBONE client session error'),
    );
    session.once('close', () => this.retire(conn));
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

  /** Closes connections idle past the timeout and pings the other idle ones. */
  private sweep(): void {
    const now = Date.now();
    for (const conn of [...this.pool.values()].flat()) {
      const session = conn.session;
      if (!session || conn.streams > 0 || !conn.usable) continue;
      const idle = now - conn.lastUsed;
      if (idle >= this.idleTimeoutMs) {
        this.retire(conn);
        session.close();
      } else if (idle >= this.pingIntervalMs && !session.destroyed) {
        session.ping((err) => {
          this.inputs.metrics.pings.inc({ result: err ? 'failed' : 'ok' });
          if (err) {
            this.retire(conn);
            session.destroy();
          }
        });
      }
    }
    if (this.pool.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }
}

function connectError(err: Error): MeshError {
  if (err instanceof MeshError) return err;
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (code === 'ECONNREFUSED' || code === 'ETIMEDOUT' || code === 'EHOSTUNREACH' || code === 'ECONNRESET') {
    return new MeshError('MESH_ERR_HBONE_UPSTREAM', err.message, { cause: err });
  }
  return new MeshError('MESH_ERR_TLS_HANDSHAKE', `${code} ${err.message}`.trim(), { cause: err });
}

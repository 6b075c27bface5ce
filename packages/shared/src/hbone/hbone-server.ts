import net, { type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import tls, { type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { hboneServerReplyFor, MeshError } from '../errors.js';
import { H2Connection, type H2IncomingHeaders } from '../h2/h2-connection.js';
import { H2_ERROR } from '../h2/h2-frames.js';
import type { H2Stream } from '../h2/h2-stream.js';
import type { WorkloadCertificate } from '../identity/cert-manager.js';
import type { SpiffeId } from '../identity/spiffe-id.js';
import { resetSocket, type SpliceStats, splice } from '../net/splice.js';
import type { HboneMetrics } from '../telemetry/hbone-metrics.js';
import {
  DEFAULT_HANDSHAKE_LIMITS,
  HandshakeGate,
  type HandshakeLimits,
  type HandshakeRefusal,
} from '../tls/handshake-limits.js';
import { HBONE_ALPN, handshakeRefusal, secureContextOptions, verifyClient } from '../tls/mesh-tls.js';
import { drainSessions } from './drain-sessions.js';
import {
  FORBIDDEN_TARGET_PORTS,
  forwardedIp,
  type HboneAddress,
  parseForwardedFor,
  parseForwardedHost,
  parseHboneAddress,
  validTraceparent,
} from './hbone-headers.js';

/** HTTP/2 flow-control windows for tunnels: large, so one stream can fill a fast link. */
export const HBONE_STREAM_WINDOW = 4 * 1024 * 1024;
export const HBONE_CONNECTION_WINDOW = 16 * 1024 * 1024;
export const HBONE_MAX_STREAMS = 100;

/** One CONNECT request that passed transport checks, handed to the owner to authorize and connect. */
export interface HboneRequest {
  /**
   * The `:authority`: an address, or (only when the server accepts them, `hostnameAuthority`) a
   * service host name with `hostname` set and a service port, which the owner resolves.
   */
  readonly target: HboneAddress;
  /** The verified identity of the client (the source workload or a waypoint). */
  readonly peer: SpiffeId;
  /** The identity this server presented (the destination workload). */
  readonly local: SpiffeId;
  /** The TCP endpoints of the HBONE connection itself. */
  readonly localAddress: string;
  readonly remoteAddress: string;
  /** Original client address from `forwarded: for=`, when sent. */
  readonly forwardedFor?: string;
  readonly forwardedIp?: string;
  /** `forwarded: host=`, the service the client says it addressed (telemetry only). */
  readonly forwardedHost?: string;
  readonly baggage?: string;
  readonly traceparent?: string;
}

export interface HboneServerInputs {
  /** The certificate to present for a connection arriving at `localAddress`; undefined refuses it. */
  readonly certificateFor: (localAddress: string) => Promise<WorkloadCertificate | undefined>;
  /**
   * Authorizes a request and connects upstream. A thrown error is answered as HBONE_SERVER_REPLIES
   * says (MESH_ERR_HBONE_DENIED is 401; an unlisted error 503). The returned duplex must allow half-open.
   */
  readonly onRequest: (request: HboneRequest) => Promise<Duplex>;
  /** Called once per accepted tunnel when both directions have closed. */
  readonly onTunnelClosed?: (request: HboneRequest, stats: SpliceStats) => void;
  /**
   * Extra headers of the 200 answer to an accepted request (ztunnel's `baggage` of the
   * destination workload). Error answers carry none.
   */
  readonly answerHeaders?: (request: HboneRequest) => Readonly<Record<string, string>> | undefined;
  /**
   * Accept a service `hostname:port` authority and hand it to onRequest to resolve (istio/ztunnel
   * `HboneAddress::SvcHostname`). Off: a name is answered 400.
   */
  readonly hostnameAuthority?: boolean;
  readonly metrics: HboneMetrics;
  readonly logger: Logger;
  /**
   * Bounds on TLS handshakes in progress at this server (all its listeners and accepted sockets
   * together); `timeoutMs` also bounds the wait for the client's HTTP/2 preface.
   */
  readonly handshake?: Partial<HandshakeLimits>;
}

/** A connection accepted but not yet through its TLS handshake. */
interface PendingHandshake {
  readonly socket: net.Socket;
  readonly release: () => void;
  readonly timer: NodeJS.Timeout;
}

/** Names one live TCP connection the same way from its raw socket and from the TLS socket over it. */
function connectionKey(s: net.Socket): string {
  return `${s.remoteAddress}|${s.remotePort}|${s.localAddress}|${s.localPort}`;
}

interface IdentityTls {
  readonly server: tls.Server;
  cert: WorkloadCertificate;
}

/**
 * Terminates HBONE: mutual TLS 1.3 with the destination workload's certificate (chosen by the local
 * address the connection arrived at), HTTP/2, one CONNECT stream per tunnelled connection.
 */
export class HboneServer {
  private readonly tlsByIdentity = new Map<string, IdentityTls>();
  private readonly sessions = new Set<H2Connection>();
  private readonly listeners = new Set<net.Server>();
  private readonly handshakes: HandshakeGate;
  private readonly pending = new Map<string, PendingHandshake>();
  private closing = false;

  constructor(private readonly inputs: HboneServerInputs) {
    this.handshakes = new HandshakeGate({ ...DEFAULT_HANDSHAKE_LIMITS, ...inputs.handshake });
  }

  /** The limits this server applies to TLS handshakes. */
  get handshakeLimits(): HandshakeLimits {
    return this.handshakes.limits;
  }

  /** TLS handshakes in progress. */
  get pendingHandshakes(): number {
    return this.handshakes.size;
  }

  /** Listens on `port` (0 for any) and resolves with the bound address. */
  async listen(port: number, host: string): Promise<AddressInfo> {
    const listener = net.createServer(
      { allowHalfOpen: true, noDelay: true, pauseOnConnect: true },
      (socket) => this.accept(socket),
    );
    this.listeners.add(listener);
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(port, host, () => {
        listener.off('error', reject);
        resolve();
      });
    });
    listener.on('error', (err) => this.inputs.logger.error({ err }, 'HBONE listener error'));
    return listener.address() as AddressInfo;
  }

  /**
   * Serves a TCP connection accepted elsewhere (for example by a listener inside a pod's netns).
   * Accept it paused (`pauseOnConnect`): bytes read into JavaScript before TLS takes the socket are
   * handed to TLS through a small buffer that its read ring then keeps for the connection's life,
   * and every later record arrives in two reads of 16 KiB and 1 KiB instead of one of up to 64 KiB.
   */
  accept(socket: net.Socket): void {
    socket.on('error', () => {
      // Reported through tlsClientError or session errors.
    });
    if (this.closing || socket.destroyed) {
      socket.destroy();
      return;
    }
    const source = socket.remoteAddress ?? '';
    const admitted = this.handshakes.enter(source);
    if (!admitted.ok) {
      // Closed before any TLS state exists: the cheapest answer to a flood.
      this.refuse(socket, admitted.reason, `${this.handshakes.size} handshakes in progress`);
      return;
    }
    const key = connectionKey(socket);
    if (socket.remoteAddress === undefined || this.pending.has(key)) {
      // Reset before it could be named: nothing to hand to TLS, and a shared key would mix slots.
      admitted.release();
      socket.destroy();
      return;
    }
    const { metrics } = this.inputs;
    metrics.handshakesPending.inc();
    const timer = setTimeout(() => {
      if (this.settle(key)) this.refuse(socket, 'handshake_timeout', `no TLS handshake from ${source}`);
    }, this.handshakes.limits.timeoutMs);
    timer.unref();
    this.pending.set(key, {
      socket,
      release: () => {
        admitted.release();
        metrics.handshakesPending.dec();
      },
      timer,
    });
    // However the handshake ends (refused, timed out, reset), its slot is freed with the socket.
    socket.once('close', () => this.settle(key));
    const localAddress = socket.localAddress ?? '';
    this.inputs.certificateFor(localAddress).then(
      (cert) => {
        if (!cert) {
          this.settle(key);
          this.refuse(socket, 'no_identity', `no workload certificate for local address ${localAddress}`);
          return;
        }
        if (socket.destroyed) return;
        // A peer that ends its side during the handshake can never finish it: close at once and
        // free the slot (the TLS socket takes this from the socket it wraps). Half-close is
        // allowed again once the handshake is done, in secured().
        socket.allowHalfOpen = false;
        this.tlsFor(cert).emit('connection', socket);
      },
      (err: unknown) => {
        this.settle(key);
        this.refuse(socket, 'no_identity', (err as Error).message);
      },
    );
  }

  /** Ends a pending handshake's bookkeeping; false when it had already ended. */
  private settle(key: string): boolean {
    const p = this.pending.get(key);
    if (!p) return false;
    this.pending.delete(key);
    clearTimeout(p.timer);
    p.release();
    return true;
  }

  /** Stops accepting, lets open tunnels finish until `deadlineMs`, then destroys what is left. */
  async close(deadlineMs = 5_000): Promise<void> {
    this.closing = true;
    for (const l of this.listeners) l.close();
    await drainSessions(this.sessions, deadlineMs);
    this.destroy();
  }

  destroy(): void {
    this.closing = true;
    for (const l of this.listeners) l.close();
    for (const s of this.sessions) s.destroy();
    this.sessions.clear();
    for (const [key, p] of [...this.pending]) {
      this.settle(key);
      p.socket.destroy();
    }
  }

  private tlsFor(cert: WorkloadCertificate): tls.Server {
    const key = cert.identity.toString();
    const existing = this.tlsByIdentity.get(key);
    if (existing) {
      if (existing.cert !== cert) {
        // Rotation: new handshakes use the new certificate; established sessions keep theirs.
        existing.server.setSecureContext(secureContextOptions(cert));
        existing.cert = cert;
      }
      return existing.server;
    }
    const server = tls.createServer({
      ...secureContextOptions(cert),
      requestCert: true,
      // Verification results are checked in secured() so that each refusal is counted with its reason.
      rejectUnauthorized: false,
      ALPNProtocols: [HBONE_ALPN],
      // A backstop: the timer set in accept() normally fires first, as it started earlier.
      handshakeTimeout: this.handshakes.limits.timeoutMs,
      allowHalfOpen: false,
    });
    const entry: IdentityTls = { server, cert };
    server.on('secureConnection', (socket: TLSSocket) => {
      this.settle(connectionKey(socket));
      this.secured(socket, entry.cert.identity);
    });
    server.on('tlsClientError', (err, socket) => {
      // A handshake already dropped by its timer is counted once, there.
      if (this.settle(connectionKey(socket))) this.refuse(socket, handshakeRefusal(err), err.message);
      else socket.destroy();
    });
    this.tlsByIdentity.set(key, entry);
    return server;
  }

  private secured(socket: TLSSocket, local: SpiffeId): void {
    socket.allowHalfOpen = true;
    const verdict = verifyClient(socket, local.trustDomain);
    if (!verdict.ok) {
      this.refuse(socket, verdict.reason, verdict.detail);
      return;
    }
    if (this.closing) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    this.inputs.metrics.connectionsOpened.inc({ side: 'server' });
    const session = new H2Connection(socket, {
      role: 'server',
      streamWindow: HBONE_STREAM_WINDOW,
      connectionWindow: HBONE_CONNECTION_WINDOW,
      maxConcurrentStreams: HBONE_MAX_STREAMS,
      prefaceTimeoutMs: this.handshakes.limits.timeoutMs,
    });
    this.sessions.add(session);
    session.on('protocolError', (err: Error) => {
      this.inputs.metrics.connectionsRefused.inc({ side: 'server', reason: 'protocol' });
      this.inputs.logger.debug({ err: err.message }, 'HBONE peer broke HTTP/2');
    });
    session.on('error', (err: Error) =>
      this.inputs.logger.debug({ err: err.message }, 'HBONE session error'),
    );
    session.on('malformed', (err: Error) => {
      this.inputs.metrics.streamErrors.inc({ side: 'server', reason: 'malformed' });
      this.inputs.logger.debug({ err: err.message }, 'HBONE peer sent a malformed request; stream reset');
    });
    session.once('close', () => this.sessions.delete(session));
    const peer = verdict.identity;
    session.on('stream', (stream: H2Stream, headers: H2IncomingHeaders) => {
      this.serveStream(stream, headers, peer, local, socket).catch((err: unknown) => {
        this.inputs.logger.error({ err }, 'HBONE stream handler failed');
        stream.destroy();
      });
    });
  }

  private async serveStream(
    stream: H2Stream,
    headers: H2IncomingHeaders,
    peer: SpiffeId,
    local: SpiffeId,
    socket: TLSSocket,
  ): Promise<void> {
    const { metrics, logger } = this.inputs;
    stream.on('error', () => {
      // Resets are counted when the tunnel closes.
    });
    if (headers[':method'] !== 'CONNECT') {
      this.reject(stream, new MeshError('MESH_ERR_HBONE_NOT_CONNECT', String(headers[':method'])));
      return;
    }
    const target = parseHboneAddress(headers[':authority']);
    if (!target.ok || (target.value.hostname && !this.inputs.hostnameAuthority)) {
      const detail = target.ok ? `${target.value.host} is not an IP address` : target.problems[0]?.message;
      this.reject(stream, new MeshError('MESH_ERR_HBONE_BAD_REQUEST', detail ?? 'bad authority'));
      return;
    }
    // A host name's port is a service port: the owner checks the target port it resolves to.
    if (!target.value.hostname && FORBIDDEN_TARGET_PORTS.has(target.value.port)) {
      this.reject(stream, new MeshError('MESH_ERR_HBONE_FORBIDDEN_PORT', `port ${target.value.port}`));
      return;
    }
    const forwardedFor = parseForwardedFor(headers.forwarded);
    const fwdIp = forwardedFor === undefined ? undefined : forwardedIp(forwardedFor);
    const forwardedHost = parseForwardedHost(headers.forwarded);
    const baggage = typeof headers.baggage === 'string' ? headers.baggage : undefined;
    const traceparent = validTraceparent(headers.traceparent);
    const request: HboneRequest = {
      target: target.value,
      peer,
      local,
      localAddress: socket.localAddress ?? '',
      remoteAddress: socket.remoteAddress ?? '',
      ...(forwardedFor !== undefined && { forwardedFor }),
      ...(fwdIp !== undefined && { forwardedIp: fwdIp }),
      ...(forwardedHost !== undefined && { forwardedHost }),
      ...(baggage !== undefined && { baggage }),
      ...(traceparent !== undefined && { traceparent }),
    };
    let upstream: Duplex;
    try {
      upstream = await this.inputs.onRequest(request);
    } catch (err) {
      this.reject(stream, err);
      return;
    }
    if (stream.destroyed) {
      // The client reset the stream while we connected: the app sees a reset, not a clean close.
      resetSocket(upstream);
      metrics.streamErrors.inc({ side: 'server', reason: 'reset' });
      return;
    }
    let extra: Readonly<Record<string, string>> | undefined;
    try {
      extra = this.inputs.answerHeaders?.(request);
    } catch (err) {
      // Telemetry headers never cost a tunnel.
      logger.debug({ err: (err as Error).message }, 'HBONE answer headers failed');
    }
    stream.respond({ ...extra, ':status': 200 });
    metrics.streams.inc({ side: 'server', status: '200' });
    const stats = await splice(stream, upstream);
    if (stats.error) {
      metrics.streamErrors.inc({ side: 'server', reason: 'reset' });
      logger.debug(
        { err: stats.error.message, target: headers[':authority'] },
        'HBONE tunnel ended abnormally',
      );
    }
    this.inputs.onTunnelClosed?.(request, stats);
  }

  /** Answers a failed CONNECT with the status HBONE_SERVER_REPLIES gives its error. */
  private reject(stream: H2Stream, err: unknown): void {
    const { metrics, logger } = this.inputs;
    const { status, reason, streamError } = hboneServerReplyFor(err);
    metrics.streams.inc({ side: 'server', status: String(status) });
    if (streamError) metrics.streamErrors.inc({ side: 'server', reason });
    logger.debug({ status, reason, detail: (err as Error).message }, 'HBONE request refused');
    if (stream.destroyed || stream.headersSent) return;
    stream.respond({ ':status': status }, { endStream: true });
    // The answer is complete: ask the client to stop sending (RFC 9113 §8.1).
    if (!stream.remoteEnded) stream.close(H2_ERROR.NO_ERROR);
  }

  private refuse(socket: Duplex, reason: HandshakeRefusal | string, detail: string): void {
    this.inputs.metrics.connectionsRefused.inc({ side: 'server', reason });
    this.inputs.logger.debug({ reason, detail }, 'HBONE connection refused');
    socket.destroy();
  }
}

/**
 * The waypoint's L7 proxy for one HBONE-terminated connection: HTTP/1.1 or HTTP/2 (by the
 * chain's codec, or sniffed from the HTTP/2 preface), then per request: RBAC, route selection,
 * fault injection, redirects and direct responses, or the upstream with retries, timeouts,
 * load balancing, circuit breaking and outlier detection; telemetry and an access log line.
 * HTTP/1.1 is served by the direct path in http1/ (the tunnel's bytes parsed by the waypoint's own
 * parser, upstream requests written on pooled streams) unless `http1Direct` is off; HTTP/2 and what
 * the direct path hands over go to Node's servers. Both call `handle` with the same request record.
 * The decisions are pure functions in route/, retry/, fault/, lb/ and authz/. This file wires the
 * servers and the per-request steps: header-limits.ts, request-attempt.ts (one upstream attempt),
 * retry-loop.ts (the attempts of a request), upstream-response.ts, local-reply.ts (answers from
 * the table in waypoint-errors.ts) and access-log.ts (metrics and the access log line).
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { evaluateRbac } from '../authz/rbac.js';
import type { Route, RouteAction, UpstreamCluster, WaypointConfig } from '../config/waypoint-config.js';
import { decideFault, type FaultDecision } from '../fault/fault-decision.js';
import { ClusterRuntime } from '../lb/cluster-runtime.js';
import { hashKey } from '../lb/hash-key.js';
import { mutateHeaders } from '../route/header-mutation.js';
import { rewritePath } from '../route/path-rewrite.js';
import { redirectLocation } from '../route/redirect-location.js';
import type { RequestView } from '../route/request-view.js';
import { selectRoute } from '../route/route-select.js';
import { pickWeightedCluster } from '../route/weighted-cluster.js';
import type { RequestMetrics } from '../telemetry/request-metrics.js';
import { recordExchange } from './access-log.js';
import { type DownstreamResponse, DownstreamWatch, type RequestRecord } from './downstream.js';
import { duplexPair } from './duplex-pair.js';
import { type ConnectionContext, type Exchange, mark } from './exchange.js';
import {
  DEFAULT_MAX_HEADERS_COUNT,
  guardHeaders,
  H2_MAX_HEADER_PAIRS,
  headerCount,
} from './header-limits.js';
import { Http1Client } from './http1/http1-client.js';
import { Http1Connection } from './http1/http1-connection.js';
import { localReply } from './local-reply.js';
import { ReplayableBody } from './replayable-body.js';
import { type Attempt, type AttemptDeps, startAttempt } from './request-attempt.js';
import { originForm } from './request-target.js';
import { type RetryLoopInputs, runAttempts } from './retry-loop.js';
import { newTraceparent } from './trace-context.js';
import type { UpstreamPool } from './upstream-pool.js';
import { HOP_BY_HOP, respond } from './upstream-response.js';
import { REPLIES, rawReply, type WaypointErrorCode } from './waypoint-errors.js';

export interface HttpProxyInputs {
  readonly config: () => WaypointConfig;
  readonly upstreams: UpstreamPool;
  readonly metrics: RequestMetrics;
  readonly logger: Logger;
  /** Access log sink: one line per request. */
  readonly accessLog?: (entry: Record<string, unknown>) => void;
  readonly random?: () => number;
  readonly clusterName?: string;
  /** Largest request header block accepted, in bytes (Envoy's default is 60 KiB). */
  readonly maxHeaderBytes?: number;
  /** A client must send its request headers within this time. */
  readonly headersTimeoutMs?: number;
  /**
   * Most request header fields accepted (pseudo-headers not counted) unless the chain sets its
   * own; more is refused with 431, never truncated. Envoy's default is 100.
   */
  readonly maxHeadersCount?: number;
  /**
   * HTTP/1.1 served directly on the tunnel's bytes and sent upstream by the direct client
   * (http1/), instead of Node's HTTP server and client. Default on.
   */
  readonly http1Direct?: boolean;
}

export type { ConnectionContext } from './exchange.js';
export { DEFAULT_MAX_HEADERS_COUNT } from './header-limits.js';

/** An idle keep-alive HTTP/1.1 client connection closes after this long (either path). */
const KEEP_ALIVE_TIMEOUT_MS = 60_000;

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** A request's headers as one lower-case map with the pseudo-headers, for matching. */
export function headerView(req: RequestRecord): Record<string, string> {
  const out: Record<string, string> = {};
  const headers = req.headers;
  for (const k in headers) {
    const v = headers[k];
    if (v === undefined) continue;
    out[k] = Array.isArray(v) ? v.join(',') : String(v);
  }
  out[':method'] = req.method;
  out[':path'] = req.path;
  out[':authority'] = req.authority;
  return out;
}

/**
 * What policy and route matching read of a request, its header view built on first use: most
 * requests meet no policy or header match. (A class, not an object literal with a getter: V8
 * builds such a literal on a slow path, which cost more than the view it saves.)
 */
class LazyRequestView implements RequestView {
  readonly method: string;
  readonly path: string;
  readonly authority: string;
  private built: Record<string, string> | undefined;

  constructor(private readonly req: RequestRecord) {
    this.method = req.method;
    this.path = req.path;
    this.authority = req.authority;
  }

  get headers(): Record<string, string> {
    this.built ??= headerView(this.req);
    return this.built;
  }
}

/** A request from Node's HTTP/1.1 or HTTP/2 server, as the steps read it. */
function recordOf(
  req: http.IncomingMessage | http2.Http2ServerRequest,
  ctx: ConnectionContext,
): RequestRecord {
  return {
    method: req.method ?? 'GET',
    path: req.url ?? '/',
    authority: String(
      req.headers[':authority'] ?? req.headers.host ?? `${ctx.target.host}:${ctx.target.port}`,
    ),
    protocol: req.httpVersionMajor === 2 ? 'HTTP/2' : `HTTP/${req.httpVersion}`,
    headers: req.headers,
    headerCount: headerCount(req),
  };
}

export class HttpProxy {
  private readonly http1: http.Server;
  private readonly http2: http2.Http2Server;
  private readonly contexts = new WeakMap<object, ConnectionContext>();
  private readonly runtimes = new Map<string, ClusterRuntime>();
  private readonly random: () => number;
  private readonly open = new Set<Duplex>();
  private handing?: ConnectionContext;
  /** Per HTTP/1.1 connection: marks a request as started (its headers arrived). */
  private readonly headerGuards = new WeakMap<object, (res: http.ServerResponse) => void>();

  private readonly http1Client: Http1Client | undefined;
  private readonly attemptDeps: AttemptDeps;

  constructor(private readonly inputs: HttpProxyInputs) {
    this.random = inputs.random ?? Math.random;
    this.http1Client =
      inputs.http1Direct === false
        ? undefined
        : new Http1Client({
            connect: (ep, timeoutMs, clientIp) => inputs.upstreams.connect(ep, timeoutMs, clientIp),
            maxHeaderBytes: inputs.maxHeaderBytes ?? 60 * 1024,
          });
    this.attemptDeps = {
      upstreams: inputs.upstreams,
      metrics: inputs.metrics,
      ...(this.http1Client && { http1: this.http1Client }),
    };
    this.http1 = http.createServer({
      maxHeaderSize: inputs.maxHeaderBytes ?? 60 * 1024,
      headersTimeout: inputs.headersTimeoutMs ?? 10_000,
      // How often slow clients are looked for: a fraction of the timeout, so it fires on time.
      connectionsCheckingInterval: Math.min(1_000, Math.max(50, (inputs.headersTimeoutMs ?? 10_000) / 4)),
      requestTimeout: 0,
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    });
    // Node would keep the first 1,000 headers and silently drop the rest, hiding them from RBAC:
    // it keeps every one (the byte limit bounds them) and onRequest refuses too many with 431.
    this.http1.maxHeadersCount = 0;
    this.http1.on('request', (req, res) => {
      this.headerGuards.get(req.socket)?.(res);
      this.onRequest(req, res, this.contexts.get(req.socket));
    });
    this.http1.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) =>
      this.onClientError(err, socket),
    );
    // Upgrades (WebSocket, h2c) are not configured on this waypoint: refused as Envoy does.
    this.http1.on('upgrade', (req: http.IncomingMessage, socket: Duplex) => {
      this.countDownstreamError('WP_ERR_UPGRADE_REFUSED');
      inputs.logger.debug({ upgrade: req.headers.upgrade }, 'upgrade refused');
      socket.end(rawReply('WP_ERR_UPGRADE_REFUSED'));
    });
    this.http2 = http2.createServer({
      maxSessionMemory: 64,
      maxHeaderListPairs: H2_MAX_HEADER_PAIRS,
      settings: { maxHeaderListSize: inputs.maxHeaderBytes ?? 60 * 1024 },
    });
    // A session is created synchronously inside emit('connection'): it takes the context being handed.
    this.http2.on('session', (session) => {
      if (this.handing) this.contexts.set(session, this.handing);
    });
    this.http2.on('request', (req, res) =>
      this.onRequest(req, res, this.contexts.get(req.stream.session ?? {})),
    );
    this.http2.on('sessionError', () => this.countDownstreamError('WP_ERR_HTTP2_PROTOCOL'));
  }

  /**
   * The stream to splice with an HBONE tunnel's: the direct HTTP/1.1 connection (which hands
   * HTTP/2 and what it does not serve to Node's servers), or, with the direct path off or an
   * HTTP/2 chain, one side of an in-memory pair whose other side Node's servers read.
   */
  connection(ctx: ConnectionContext): Duplex {
    if (!this.http1Client || ctx.chain.handler.codec === 'http2') {
      const [tunnelSide, httpSide] = duplexPair();
      this.serve(httpSide, ctx);
      return tunnelSide;
    }
    const conn = new Http1Connection({
      ctx,
      sniffHttp2: ctx.chain.handler.codec === 'auto',
      maxHeaderBytes: this.inputs.maxHeaderBytes ?? 60 * 1024,
      headersTimeoutMs: this.inputs.headersTimeoutMs ?? 10_000,
      keepAliveTimeoutMs: KEEP_ALIVE_TIMEOUT_MS,
      handle: (req, res, body) => this.handle(req, res, body, ctx),
      fallback: (inner, codec) => this.serveWith(codec, inner, ctx),
      refused: (key, reason) => {
        this.countDownstreamError(key);
        this.inputs.logger.debug(
          { reason: REPLIES[key].metricReason, err: reason },
          'downstream input refused',
        );
      },
    });
    this.open.add(conn);
    conn.once('close', () => this.open.delete(conn));
    conn.on('error', () => {});
    return conn;
  }

  /** Serves a connection with Node's server for `codec`. */
  private serveWith(codec: 'http1' | 'http2', conn: Duplex, ctx: ConnectionContext): void {
    this.open.add(conn);
    conn.once('close', () => this.open.delete(conn));
    conn.on('error', () => {});
    this.hand(codec === 'http1' ? this.http1 : this.http2, conn, ctx);
  }

  /** Serves HTTP on a connection with Node's servers (the inner stream of an HBONE tunnel). */
  serve(conn: Duplex, ctx: ConnectionContext): void {
    this.open.add(conn);
    conn.once('close', () => this.open.delete(conn));
    conn.on('error', () => {});
    const codec = ctx.chain.handler.codec;
    if (codec !== 'auto') {
      this.hand(codec === 'http1' ? this.http1 : this.http2, conn, ctx);
      return;
    }
    // Sniff: the HTTP/2 connection preface, else HTTP/1.1.
    let seen = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, H2_PREFACE.length);
      const h2 = seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
      if (h2 && seen.length < H2_PREFACE.length) return;
      conn.off('data', onData);
      conn.pause();
      conn.unshift(seen);
      this.hand(h2 ? this.http2 : this.http1, conn, ctx);
    };
    conn.on('data', onData);
  }

  /** The direct HTTP/1.1 client's upstream streams (none with the direct path off). */
  directStats(): { open: number; idle: number } | undefined {
    return this.http1Client?.stats();
  }

  close(): void {
    for (const c of this.open) c.destroy();
    this.http1Client?.close();
    this.http1.close();
    this.http2.close();
  }

  private hand(server: http.Server | http2.Http2Server, conn: Duplex, ctx: ConnectionContext): void {
    this.contexts.set(conn, ctx);
    if (server === this.http1)
      this.headerGuards.set(
        conn,
        guardHeaders(conn, this.inputs.headersTimeoutMs ?? 10_000, () => {
          this.countDownstreamError('WP_ERR_HEADERS_TIMEOUT');
          conn.end(rawReply('WP_ERR_HEADERS_TIMEOUT'));
        }),
      );
    this.handing = ctx;
    try {
      server.emit('connection', conn);
    } finally {
      this.handing = undefined;
    }
    conn.resume();
  }

  private onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    const key = clientErrorOf(err.code ?? '');
    this.countDownstreamError(key);
    this.inputs.logger.debug(
      { reason: REPLIES[key].metricReason, err: err.message },
      'downstream input refused',
    );
    if (REPLIES[key].delivery === 'raw' && socket.writable) socket.end(rawReply(key));
    else socket.destroy();
  }

  private countDownstreamError(key: WaypointErrorCode): void {
    const reason = REPLIES[key].metricReason;
    if (reason) this.inputs.metrics.downstreamErrors.inc({ reason });
  }

  private runtime(cluster: UpstreamCluster): ClusterRuntime {
    let rt = this.runtimes.get(cluster.name);
    if (!rt) {
      rt = new ClusterRuntime(cluster, {
        random: this.random,
        onEject: () => this.inputs.metrics.ejections.inc({ cluster: cluster.name }),
      });
      this.runtimes.set(cluster.name, rt);
    } else rt.update(cluster);
    return rt;
  }

  private async onRequest(
    req: http.IncomingMessage | http2.Http2ServerRequest,
    res: http.ServerResponse | http2.Http2ServerResponse,
    ctx: ConnectionContext | undefined,
  ): Promise<void> {
    if (!ctx) {
      res.statusCode = REPLIES.WP_ERR_NO_CONTEXT.status;
      res.end();
      return;
    }
    await this.handle(recordOf(req, ctx), res as DownstreamResponse, new ReplayableBody(req), ctx);
  }

  /**
   * One request, from either server: the decisions, the upstream attempts, the answer, then its
   * metrics and access log line once the response has finished or the client has gone.
   */
  handle(
    asSent: RequestRecord,
    res: DownstreamResponse,
    body: ReplayableBody,
    ctx: ConnectionContext,
  ): Promise<void> | void {
    // Policy, routing and the upstream request see one authority and path (absolute-form too).
    const origin = originForm(asSent);
    const req = origin ?? asSent;
    const contentType = String(req.headers['content-type'] ?? '');
    const ex: Exchange = {
      start: performance.now(),
      ctx,
      method: req.method,
      path: req.path,
      authority: req.authority,
      requestId: String(req.headers['x-request-id'] || randomUUID()),
      traceparent: newTraceparent(req.headers.traceparent),
      grpc: contentType.startsWith('application/grpc'),
      protocol: req.protocol,
      flags: [],
      status: 0,
      attempts: 0,
      requestBytes: 0,
      responseBytes: 0,
    };
    const watch = new DownstreamWatch(res);
    // The steps return a promise only when they wait (the upstream, a fault's delay).
    let pending: Promise<void> | undefined;
    try {
      if (!origin) {
        this.countDownstreamError('WP_ERR_MALFORMED_REQUEST');
        localReply(res, ex, 'WP_ERR_MALFORMED_REQUEST', {
          headers: 'stream' in res ? {} : { connection: 'close' },
        });
      } else pending = this.process(req, res, ex, body, watch) ?? undefined;
    } catch (err) {
      this.failed(err, res, ex);
    }
    if (pending)
      return pending.then(
        () => this.settled(res, ex, body, watch),
        (err: unknown) => {
          this.failed(err, res, ex);
          return this.settled(res, ex, body, watch);
        },
      );
    return this.settled(res, ex, body, watch);
  }

  /** A step threw: a 500 if nothing was sent yet, else the response is cut off. */
  private failed(err: unknown, res: DownstreamResponse, ex: Exchange): void {
    this.inputs.logger.error({ err }, 'request failed');
    if (!res.headersSent) localReply(res, ex, 'WP_ERR_INTERNAL');
    else res.destroy();
  }

  /** The steps are done: the exchange is recorded once its response has finished or the client gone. */
  private settled(
    res: DownstreamResponse,
    ex: Exchange,
    body: ReplayableBody,
    watch: DownstreamWatch,
  ): Promise<void> | void {
    if (!res.writableFinished && !watch.gone && !res.destroyed) {
      return new Promise<void>((resolve) => {
        res.once('close', resolve);
        res.once('finish', resolve);
      }).then(() => this.record(res, ex, body, watch));
    }
    this.record(res, ex, body, watch);
  }

  private record(res: DownstreamResponse, ex: Exchange, body: ReplayableBody, watch: DownstreamWatch): void {
    if (watch.gone && !res.writableFinished) mark(ex, 'WP_ERR_DOWNSTREAM_GONE');
    ex.requestBytes = body.bytes;
    recordExchange(this.inputs, ex, res.writableFinished ? ex.status : watch.gone ? 0 : ex.status);
  }

  private process(
    req: RequestRecord,
    res: DownstreamResponse,
    ex: Exchange,
    body: ReplayableBody,
    watch: DownstreamWatch,
  ): Promise<void> | void {
    const { ctx } = ex;
    const limit =
      ctx.chain.handler.maxHeadersCount ?? this.inputs.maxHeadersCount ?? DEFAULT_MAX_HEADERS_COUNT;
    if (req.headerCount > limit) {
      // Refused whole: policy and upstream must see the same headers, all of them.
      this.countDownstreamError('WP_ERR_TOO_MANY_HEADERS');
      return localReply(res, ex, 'WP_ERR_TOO_MANY_HEADERS', {
        headers: 'stream' in res ? {} : { connection: 'close' },
      });
    }
    const view = new LazyRequestView(req);
    const rbac = ctx.chain.handler.rbac;
    if (rbac.length > 0) {
      const verdict = evaluateRbac(rbac, {
        principal: ctx.peer.toString(),
        sourceIp: ctx.sourceIp,
        destinationPort: ctx.target.port,
        headers: view.headers,
      });
      if (!verdict.allowed) {
        ex.route = verdict.policy;
        return localReply(res, ex, 'WP_ERR_RBAC_DENIED');
      }
    }
    const config = this.inputs.config();
    const table = config.routes.get(ctx.chain.handler.routeConfigName);
    const route = table ? selectRoute(table, view) : undefined;
    if (!route) return localReply(res, ex, 'WP_ERR_NO_ROUTE');
    ex.route = route.name;

    const fault = route.fault ? decideFault(route.fault, this.random) : undefined;
    if (fault?.delayMs !== undefined) {
      mark(ex, 'fault_delay');
      return this.afterDelay(fault.delayMs, watch, () =>
        this.answer(req, res, ex, body, watch, route, view, fault),
      );
    }
    return this.answer(req, res, ex, body, watch, route, view, fault);
  }

  /** A fault's delay, then the rest of the request unless the client has gone meanwhile. */
  private async afterDelay(
    ms: number,
    watch: DownstreamWatch,
    then: () => Promise<void> | void,
  ): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    if (watch.gone) return;
    await then();
  }

  /** The route's answer: a fault's abort, a redirect, a direct response, or the upstream's. */
  private answer(
    req: RequestRecord,
    res: DownstreamResponse,
    ex: Exchange,
    body: ReplayableBody,
    watch: DownstreamWatch,
    route: Route,
    view: LazyRequestView,
    fault: FaultDecision | undefined,
  ): Promise<void> | void {
    if (fault) {
      if (fault.abort) {
        if (fault.abort.grpcStatus !== undefined && ex.grpc) {
          ex.grpcStatus = String(fault.abort.grpcStatus);
          return localReply(res, ex, 'fault_abort_grpc', {
            headers: {
              'content-type': 'application/grpc',
              'grpc-status': String(fault.abort.grpcStatus),
              'grpc-message': REPLIES.fault_abort.body,
            },
          });
        }
        return localReply(res, ex, 'fault_abort', {
          ...(fault.abort.httpStatus !== undefined && { status: fault.abort.httpStatus }),
        });
      }
    }

    const action = route.action;
    if (action.kind === 'redirect') {
      const location = redirectLocation(action, route.match.path, {
        scheme: 'http',
        authority: ex.authority,
        path: ex.path,
      });
      return localReply(res, ex, 'redirect', { status: action.status, headers: { location } });
    }
    if (action.kind === 'direct')
      return localReply(res, ex, 'direct_response', {
        status: action.status,
        ...(action.body !== undefined && { body: action.body }),
      });
    return this.forward(req, res, ex, route, action, body, view, watch);
  }

  /**
   * Sends the request upstream with retries, then streams the response back. Returns a promise
   * only when it waits (an upstream attempt); one promise for the whole of it.
   */
  private forward(
    req: RequestRecord,
    res: DownstreamResponse,
    ex: Exchange,
    route: Route,
    action: RouteAction,
    body: ReplayableBody,
    view: LazyRequestView,
    watch: DownstreamWatch,
  ): Promise<void> | void {
    const config = this.inputs.config();
    const clusterName = pickWeightedCluster(action.clusters, this.random());
    const cluster = clusterName ? config.clusters.get(clusterName) : undefined;
    if (!cluster) return localReply(res, ex, 'WP_ERR_NO_CLUSTER');
    ex.cluster = cluster;
    const rt = this.runtime(cluster);

    // Upstream request headers: the client's end-to-end headers, mesh headers, route changes.
    const base: Record<string, string | string[]> = {};
    const reqHeaders = req.headers;
    for (const k in reqHeaders) {
      const v = reqHeaders[k];
      if (v === undefined || k.startsWith(':') || HOP_BY_HOP.has(k)) continue;
      base[k] = v;
    }
    if (req.headers.te === 'trailers') base.te = 'trailers';
    base['x-request-id'] = ex.requestId;
    base.traceparent = ex.traceparent;
    const xff = req.headers['x-forwarded-for'];
    base['x-forwarded-for'] = xff ? `${xff}, ${ex.ctx.sourceIp}` : ex.ctx.sourceIp;
    base['x-forwarded-proto'] = 'http';
    const headers = mutateHeaders(base, route.requestHeaders);
    const authority = action.hostRewrite ?? ex.authority;
    // The action carries the route's rewrites (PathRewrite's fields).
    const path = rewritePath(ex.path, route.match.path, action);

    for (const mirror of action.mirrors) {
      if (this.random() * 100 < mirror.percent)
        this.mirror(mirror.cluster, ex.method, path, authority, headers, body);
    }

    const key =
      action.hashPolicies.length > 0
        ? hashKey(action.hashPolicies, { headers: view.headers, sourceIp: ex.ctx.sourceIp })
        : undefined;
    const inputs: RetryLoopInputs = {
      deps: this.attemptDeps,
      random: this.random,
      config,
      cluster,
      runtime: rt,
      action,
      ex,
      request: { path, authority, headers, body },
      key,
      downstream: watch,
    };
    return new Promise<void>((resolve, reject) => {
      const done = (err?: unknown) => (err === undefined ? resolve() : reject(err));
      runAttempts(
        inputs,
        (last, timedOut) => {
          try {
            this.answerFrom(res, ex, route, watch, last, timedOut, done);
          } catch (err) {
            reject(err);
          }
        },
        reject,
      );
    });
  }

  /** The answer once the attempts are over: the upstream's response, or the reply for why not. */
  private answerFrom(
    res: DownstreamResponse,
    ex: Exchange,
    route: Route,
    watch: DownstreamWatch,
    last: Attempt | undefined,
    timedOut: boolean,
    done: (err?: unknown) => void,
  ): void {
    if (last?.ok && !watch.gone && !timedOut) {
      respond(res, ex, route, last.response, watch, done);
      return;
    }
    // Nobody to answer (watch.gone): the upstream request was cancelled and the exchange is
    // logged as DC.
    if (last?.ok) last.response.abort();
    if (watch.gone) {
      // No reply.
    } else if (timedOut) localReply(res, ex, 'WP_ERR_UPSTREAM_TIMEOUT');
    else if (!last) localReply(res, ex, 'WP_ERR_NO_HEALTHY_UPSTREAM');
    else if (!last.ok) localReply(res, ex, last.error);
    done();
  }

  /** Fire and forget: a copy of the request to another cluster, its response discarded. */
  private mirror(
    clusterName: string,
    method: string,
    path: string,
    authority: string,
    headers: Record<string, string | string[]>,
    body: ReplayableBody,
  ): void {
    const config = this.inputs.config();
    const cluster = config.clusters.get(clusterName);
    if (!cluster) return;
    const rt = this.runtime(cluster);
    const pick = rt.pick(config.endpoints.get(clusterName) ?? [], undefined, undefined);
    if (!pick.ok) return;
    // Envoy marks shadowed requests by suffixing the host.
    const host = authority.includes(':') ? authority.replace(/^([^:]+)/, '$1-shadow') : `${authority}-shadow`;
    startAttempt(
      this.attemptDeps,
      cluster,
      pick.endpoint,
      method,
      path,
      host,
      { ...headers },
      body,
      Number.POSITIVE_INFINITY,
      undefined,
      (a) => {
        rt.requestFinished(pick.endpoint, a.ok ? a.response.status : undefined, !a.ok);
        if (a.ok) a.response.body.resume();
      },
    );
  }
}

/** Node's HTTP/1.1 parser errors, by the error each is. */
function clientErrorOf(code: string): WaypointErrorCode {
  if (code === 'HPE_HEADER_OVERFLOW') return 'WP_ERR_HEADERS_TOO_LARGE';
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return 'WP_ERR_HEADERS_TIMEOUT';
  if (code === 'ECONNRESET') return 'WP_ERR_DOWNSTREAM_RESET';
  return 'WP_ERR_MALFORMED_REQUEST';
}

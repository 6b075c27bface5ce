/**
 * The direct HTTP/1.1 client: requests written as bytes on keep-alive upstream streams (HBONE to
 * mesh endpoints, TCP otherwise, from UpstreamPool.connect), responses parsed with the strict
 * parser, no Node http.Agent or ClientRequest. Per cluster it honours max_connections (requests
 * beyond it wait) and max_pending_requests (beyond that: 503 UO), as the Agent path does.
 *
 * Pool invariant: a stream is pooled by (endpoint identity, address, port, tunnel, client address):
 * an HBONE stream carries one endpoint's traffic and its CONNECT one client's Forwarded address,
 * so no stream is reused across identities or clients. A stream goes back to the pool only after
 * a complete response that keeps the connection and a request sent whole; anything else ends it.
 */
import type { Duplex } from 'node:stream';
import type { UpstreamCluster, UpstreamEndpoint } from '../../config/waypoint-config.js';
import { UNLIMITED } from '../../config/waypoint-config.js';
import type { BodySink, ReplayableBody } from '../replayable-body.js';
import type { Attempt, Trailers, UpstreamBody, UpstreamResponse } from '../request-attempt.js';
import { endpointKey, UPSTREAM_IDLE_TIMEOUT_MS, UpstreamConnectError } from '../upstream-pool.js';
import {
  BodyDecoder,
  type Framing,
  fieldLines,
  headEnd,
  keepAlive,
  parseResponseHead,
  type ResponseHead,
  responseFraming,
  VALUE_OK,
} from './http1-parser.js';

export interface Http1ClientInputs {
  /** A raw stream to an endpoint (UpstreamPool.connect). */
  readonly connect: (ep: UpstreamEndpoint, connectTimeoutMs: number, clientIp?: string) => Promise<Duplex>;
  /** Largest response head accepted. */
  readonly maxHeaderBytes?: number;
}

const EMPTY = Buffer.alloc(0);
const CRLF = Buffer.from('\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');
const TARGET_OK = /^[\x21-\xff]+$/;

/**
 * One upstream stream and whether it is serving a request. Its 'data' and 'close' listeners are
 * set once and go to the exchange it serves, instead of being added and removed per request.
 */
interface UpstreamConn {
  readonly stream: Duplex;
  readonly key: string;
  readonly cluster: ClusterPool;
  busy: boolean;
  /** When it last went back to the pool (performance.now()). */
  idleSince: number;
  /** When it was opened (performance.now()), for max_connection_duration. */
  readonly openedAt: number;
  /** Requests it has been given, for max_requests_per_connection. */
  requests: number;
  /** The exchange the stream's bytes go to; none while idle. */
  exchange: Exchange | undefined;
}

interface Waiter {
  readonly key: string;
  readonly open: () => void;
  readonly give: (c: UpstreamConn) => void;
}

/** A cluster's streams: counted together against its max_connections. */
class ClusterPool {
  open = 0;
  readonly idle = new Map<string, UpstreamConn[]>();
  readonly waiters: Waiter[] = [];
  idleCount = 0;
  maxConnections = 0;
  /** The cluster's common_http_protocol_options (0: no limit). */
  idleTimeoutMs = 0;
  maxRequests = 0;
  maxDurationMs: number | undefined;
  /**
   * How often its idle streams are looked at: every half idle timeout or max connection duration,
   * whichever is shorter, and at least every 60 s; never when it has neither.
   */
  sweepEveryMs: number | undefined;
  /** The config the limits were read from (a new object on every config change). */
  private source: UpstreamCluster | undefined;

  constructor(cluster: UpstreamCluster) {
    this.update(cluster);
  }

  update(cluster: UpstreamCluster): void {
    if (cluster === this.source) return;
    this.source = cluster;
    this.maxConnections = cluster.circuitBreakers.maxConnections;
    this.idleTimeoutMs = cluster.idleTimeoutMs ?? UPSTREAM_IDLE_TIMEOUT_MS;
    this.maxRequests = cluster.maxRequestsPerConnection ?? 0;
    this.maxDurationMs = cluster.maxConnectionDurationMs;
    let limit = this.idleTimeoutMs > 0 ? this.idleTimeoutMs : undefined;
    if (this.maxDurationMs !== undefined)
      limit = Math.min(limit ?? Number.POSITIVE_INFINITY, this.maxDurationMs);
    this.sweepEveryMs = limit === undefined ? undefined : Math.min(60_000, Math.max(1, limit / 2));
  }

  /** Whether a stream may take no more requests: past max_requests_per_connection or its age. */
  spent(conn: UpstreamConn, now: number): boolean {
    if (this.maxRequests > 0 && conn.requests >= this.maxRequests) return true;
    return this.maxDurationMs !== undefined && now - conn.openedAt >= this.maxDurationMs;
  }
}

export class Http1Client {
  private readonly clusters = new Map<string, ClusterPool>();
  private readonly all = new Set<UpstreamConn>();
  private sweepTimer: NodeJS.Timeout | undefined;
  /** When the sweep timer fires (performance.now()). */
  private sweepAt = 0;

  constructor(private readonly inputs: Http1ClientInputs) {}

  private pool(cluster: UpstreamCluster): ClusterPool {
    let p = this.clusters.get(cluster.name);
    if (!p) {
      p = new ClusterPool(cluster);
      this.clusters.set(cluster.name, p);
    } else p.update(cluster);
    return p;
  }

  /**
   * Whether a new request to the cluster would overflow: every stream it may open is busy and
   * max_pending_requests are already waiting (Envoy answers 503 UO).
   */
  wouldOverflow(cluster: UpstreamCluster): boolean {
    if (cluster.circuitBreakers.maxConnections >= UNLIMITED) return false;
    const p = this.clusters.get(cluster.name);
    if (!p) return false;
    if (p.idleCount > 0 || p.open < cluster.circuitBreakers.maxConnections) return false;
    return p.waiters.length >= cluster.circuitBreakers.maxPendingRequests;
  }

  /** Open upstream streams, and how many of them are idle. */
  stats(): { open: number; idle: number } {
    let idle = 0;
    for (const p of this.clusters.values()) idle += p.idleCount;
    return { open: this.all.size, idle };
  }

  close(): void {
    clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    for (const c of this.all) c.stream.destroy();
    this.all.clear();
    this.clusters.clear();
  }

  /**
   * One request on a pooled stream. Resolves with the response head and body, or with the
   * failure as the Node client path reports it (connect failure, connection termination).
   */
  request(
    cluster: UpstreamCluster,
    ep: UpstreamEndpoint,
    method: string,
    path: string,
    authority: string,
    headers: Record<string, string | string[]>,
    body: ReplayableBody,
    clientIp: string | undefined,
    settle: (a: Attempt) => void,
  ): () => void {
    const pool = this.pool(cluster);
    const key = endpointKey(ep, clientIp);
    let cancelled = false;
    let exchange: Exchange | undefined;
    let waiter: Waiter | undefined;
    const begin = (conn: UpstreamConn) => {
      if (cancelled) {
        this.release(conn, true);
        return;
      }
      conn.requests += 1;
      exchange = new Exchange(this, conn, method, this.inputs.maxHeaderBytes ?? 60 * 1024, settle);
      exchange.send(method, path, authority, headers, body);
    };
    const open = () => {
      pool.open += 1;
      this.inputs.connect(ep, cluster.connectTimeoutMs, clientIp).then(
        (stream) => {
          const conn: UpstreamConn = {
            stream,
            key,
            cluster: pool,
            busy: true,
            idleSince: 0,
            openedAt: performance.now(),
            requests: 0,
            exchange: undefined,
          };
          this.all.add(conn);
          stream.on('error', () => {});
          stream.on('data', (chunk: Buffer) => {
            const ex = conn.exchange;
            // Bytes on an idle stream (an early 408, garbage) make it unusable: it is closed.
            if (ex) ex.onData(chunk);
            else stream.destroy();
          });
          stream.once('close', () => {
            this.gone(conn);
            conn.exchange?.onClose();
          });
          // An endpoint that half-closes an idle stream ends it: finish our side too.
          stream.once('end', () => {
            if (!stream.writableEnded) stream.end();
          });
          begin(conn);
        },
        (err: unknown) => {
          pool.open -= 1;
          this.serveWaiter(pool);
          if (!cancelled)
            settle({
              ok: false,
              outcome: { connectFailure: true },
              error: new UpstreamConnectError(String((err as Error)?.message)).code,
            });
        },
      );
    };
    const idle = this.takeIdle(pool, key);
    if (idle) begin(idle);
    else if (pool.open < pool.maxConnections) open();
    else if (this.evictIdle(pool)) open();
    else {
      waiter = { key, open, give: begin };
      pool.waiters.push(waiter);
    }
    return () => {
      cancelled = true;
      if (waiter) {
        const i = pool.waiters.indexOf(waiter);
        if (i >= 0) pool.waiters.splice(i, 1);
      }
      exchange?.cancel(body);
      // As a destroyed Node client request reports it (on a later tick, so that a caller that
      // cancels in order to answer otherwise, as the try timeout does, settles first).
      process.nextTick(settle, { ok: false, outcome: { reset: true }, error: 'WP_ERR_UPSTREAM_TERMINATED' });
    };
  }

  private takeIdle(pool: ClusterPool, key: string): UpstreamConn | undefined {
    const list = pool.idle.get(key);
    if (!list) return undefined;
    for (;;) {
      const conn = list.pop();
      if (!conn) return undefined;
      this.unpool(pool, conn);
      // One that aged past max_connection_duration since the last sweep closes instead, and stops
      // counting against max_connections at once (no other stream is evicted to make room).
      if (pool.maxDurationMs === undefined || !pool.spent(conn, performance.now())) return conn;
      this.gone(conn);
      conn.stream.destroy();
    }
  }

  /** A stream taken out of its idle list: busy, and no longer counted idle. */
  private unpool(pool: ClusterPool, conn: UpstreamConn): UpstreamConn {
    pool.idleCount -= 1;
    conn.busy = true;
    return conn;
  }

  /** Closes an idle stream of another key, to make room under max_connections. */
  private evictIdle(pool: ClusterPool): boolean {
    for (const list of pool.idle.values()) {
      const conn = list.pop();
      if (conn) {
        this.unpool(pool, conn).stream.destroy();
        return true;
      }
    }
    return false;
  }

  /** A stream's exchange ended: back to the pool (reusable) or closed. */
  release(conn: UpstreamConn, reusable: boolean): void {
    const pool = conn.cluster;
    const now = performance.now();
    if (!reusable || conn.stream.destroyed || !conn.stream.writable || pool.spent(conn, now)) {
      conn.stream.destroy();
      return;
    }
    const w = pool.waiters.findIndex((x) => x.key === conn.key);
    if (w >= 0) {
      const [waiter] = pool.waiters.splice(w, 1);
      waiter?.give(conn);
      return;
    }
    if (pool.waiters.length > 0) {
      // Another endpoint or client waits: this stream makes room for its own.
      conn.stream.destroy();
      return;
    }
    let list = pool.idle.get(conn.key);
    if (!list) {
      list = [];
      pool.idle.set(conn.key, list);
    }
    // No cap on idle streams (as Envoy's pool): a cap below the client's concurrency closed the
    // streams past it after every burst and opened them again for the next one.
    conn.busy = false;
    conn.idleSince = now;
    list.push(conn);
    pool.idleCount += 1;
    this.sweepLater(pool, now);
  }

  /** Sets the sweep timer for the pool's limits, sooner if it was set for later. */
  private sweepLater(pool: ClusterPool, now: number): void {
    const every = pool.sweepEveryMs;
    if (every === undefined) return;
    if (this.sweepTimer && this.sweepAt <= now + every) return;
    clearTimeout(this.sweepTimer);
    this.sweepAt = now + every;
    this.sweepTimer = setTimeout(() => {
      this.sweepTimer = undefined;
      this.sweep();
    }, every);
    this.sweepTimer.unref();
  }

  /** Closes streams idle past their cluster's idle timeout or older than its max duration. */
  private sweep(): void {
    const now = performance.now();
    for (const pool of this.clusters.values()) {
      const oldestIdle = pool.idleTimeoutMs > 0 ? now - pool.idleTimeoutMs : Number.NEGATIVE_INFINITY;
      for (const list of pool.idle.values()) {
        // Taken from the end (most recently used first), so the longest idle are at the front.
        let n = 0;
        while (n < list.length && (list[n] as UpstreamConn).idleSince <= oldestIdle) n++;
        for (const conn of list.splice(0, n)) this.unpool(pool, conn).stream.destroy();
        if (pool.maxDurationMs === undefined) continue;
        for (let i = list.length - 1; i >= 0; i--) {
          const conn = list[i] as UpstreamConn;
          if (!pool.spent(conn, now)) continue;
          list.splice(i, 1);
          this.unpool(pool, conn).stream.destroy();
        }
      }
      if (pool.idleCount > 0) this.sweepLater(pool, now);
    }
  }

  private gone(conn: UpstreamConn): void {
    if (!this.all.delete(conn)) return;
    const pool = conn.cluster;
    pool.open -= 1;
    if (!conn.busy) {
      const list = pool.idle.get(conn.key);
      const i = list?.indexOf(conn) ?? -1;
      if (list && i >= 0) {
        list.splice(i, 1);
        pool.idleCount -= 1;
      }
    }
    this.serveWaiter(pool);
  }

  private serveWaiter(pool: ClusterPool): void {
    if (pool.open >= pool.maxConnections) return;
    const waiter = pool.waiters.shift();
    waiter?.open();
  }
}

/** The request body framed onto the stream: raw with a Content-Length, else chunked. */
class RequestWriter implements BodySink {
  ended = false;
  constructor(
    private readonly stream: Duplex,
    private readonly chunked: boolean,
  ) {}
  write(chunk: Buffer): boolean {
    if (this.stream.destroyed || chunk.length === 0) return true;
    if (!this.chunked) return this.stream.write(chunk);
    return this.stream.write(Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, CRLF]));
  }
  end(): void {
    this.ended = true;
    if (this.chunked && !this.stream.destroyed) this.stream.write(LAST_CHUNK);
  }
  once(event: 'drain', listener: () => void): this {
    this.stream.once(event, listener);
    return this;
  }
}

/** Response body bytes held for a paused reader before the upstream stream is paused too. */
const BODY_HIGH_WATER = 16 * 1024;

/**
 * An upstream response's body as the relay reads it, in place of a Readable per response: `data`
 * while flowing (a `data` listener or `resume()` starts it, `pause()` stops it), chunks held while
 * paused, the upstream stream paused past BODY_HIGH_WATER held bytes and resumed once they are
 * delivered. The end is signalled after the reader has had every byte.
 */
class ResponseBody implements UpstreamBody {
  private listener: ((chunk: Buffer) => void) | undefined;
  private flowing = false;
  private pausedByReader = false;
  private held: Buffer[] = [];
  private heldBytes = 0;
  private upstreamPaused = false;
  private flushScheduled = false;
  private onEnd: (() => void) | undefined;
  private ended = false;
  private destroyed = false;

  constructor(
    private readonly pauseUpstream: () => void,
    private readonly resumeUpstream: () => void,
  ) {}

  on(_event: 'data', listener: (chunk: Buffer) => void): this {
    this.listener = listener;
    // As a Readable: a data listener starts the flow unless the reader paused it.
    if (!this.pausedByReader) this.startFlowing();
    return this;
  }

  pause(): this {
    this.pausedByReader = true;
    this.flowing = false;
    return this;
  }

  resume(): this {
    this.pausedByReader = false;
    this.startFlowing();
    return this;
  }

  /** A decoded chunk from upstream. */
  push(chunk: Buffer): void {
    if (this.destroyed) return;
    if (this.flowing && this.held.length === 0) {
      this.listener?.(chunk);
      return;
    }
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    if (this.heldBytes >= BODY_HIGH_WATER && !this.upstreamPaused) {
      this.upstreamPaused = true;
      this.pauseUpstream();
    }
  }

  /** No more chunks: `onEnd` runs once every held chunk has been delivered. */
  end(onEnd: () => void): void {
    if (this.destroyed) return;
    this.ended = true;
    this.onEnd = onEnd;
    if (this.flowing && this.held.length === 0) this.finish();
  }

  destroy(): void {
    this.destroyed = true;
    this.held = [];
    this.heldBytes = 0;
    this.onEnd = undefined;
  }

  private startFlowing(): void {
    this.flowing = true;
    // Delivered on the next tick, as a Readable does: the reader finishes setting up first.
    if ((this.held.length > 0 || this.ended) && !this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    while (this.flowing && !this.destroyed && this.held.length > 0) {
      const chunk = this.held.shift() as Buffer;
      this.heldBytes -= chunk.length;
      this.listener?.(chunk);
    }
    if (this.destroyed || this.held.length > 0) return;
    if (this.upstreamPaused) {
      this.upstreamPaused = false;
      this.resumeUpstream();
    }
    if (this.ended && this.flowing) this.finish();
  }

  private finish(): void {
    const onEnd = this.onEnd;
    this.onEnd = undefined;
    onEnd?.();
  }
}

/** One request/response on one stream. */
class Exchange {
  private buf: Buffer = EMPTY;
  private head: ResponseHead | undefined;
  private decoder: BodyDecoder | undefined;
  private body: ResponseBody | undefined;
  private writer: RequestWriter | undefined;
  private replay: ReplayableBody | undefined;
  /** Where the scan for the end of the response head resumes (a head arriving in pieces). */
  private readonly headScan = { lineStart: 0 };
  private done = false;
  /** The response, from its head until it is given to the attempt. */
  private response: UpstreamResponse | undefined;
  /** The reader of the response's end (onEnd), and whether and how it ended. */
  private endListener: ((t: Trailers | undefined) => void) | undefined;
  private ended = false;
  private endTrailers: Trailers | undefined;

  constructor(
    private readonly client: Http1Client,
    private readonly conn: UpstreamConn,
    private readonly method: string,
    private readonly maxHeaderBytes: number,
    private readonly settle: (a: Attempt) => void,
  ) {
    conn.exchange = this;
  }

  send(
    method: string,
    path: string,
    authority: string,
    headers: Record<string, string | string[]>,
    body: ReplayableBody,
  ): void {
    // As Node's client: a target or Host that would split the request line or head is not sent.
    if (!TARGET_OK.test(path) || !VALUE_OK.test(authority)) {
      this.fail();
      return;
    }
    let s = `${method} ${path} HTTP/1.1\r\nhost: ${authority}\r\n`;
    for (const k in headers) {
      const v = headers[k];
      if (v === undefined || k === 'host') continue;
      const lines = fieldLines(k, v);
      if (lines === undefined) {
        this.fail();
        return;
      }
      s += lines;
    }
    const hasLength = headers['content-length'] !== undefined;
    const noBody = !hasLength && body.complete && body.bytes === 0;
    const chunked = !hasLength && !noBody;
    if (chunked) s += 'transfer-encoding: chunked\r\n';
    const stream = this.conn.stream;
    stream.write(Buffer.from(`${s}\r\n`, 'latin1'));
    const writer = new RequestWriter(stream, chunked);
    this.writer = writer;
    this.replay = body;
    if (noBody) writer.end();
    else if (!body.attach(writer)) {
      // The body went past the replay buffer before this attempt: it cannot be sent whole.
      this.fail();
    }
  }

  cancel(body: ReplayableBody): void {
    if (this.writer) body.detach(this.writer);
    this.abort();
  }

  private abort(): void {
    if (this.done) return;
    this.done = true;
    this.detach();
    this.conn.stream.destroy();
    this.body?.destroy();
    this.end(undefined);
  }

  /** The response's end, told once to its reader: trailers, or undefined when it broke. */
  private end(trailers: Trailers | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.endTrailers = trailers;
    const fn = this.endListener;
    this.endListener = undefined;
    fn?.(trailers);
  }

  private onEnd(fn: (t: Trailers | undefined) => void): void {
    if (this.ended) fn(this.endTrailers);
    else this.endListener = fn;
  }

  private fail(): void {
    this.abort();
    this.settle({ ok: false, outcome: { reset: true }, error: 'WP_ERR_UPSTREAM_TERMINATED' });
  }

  private detach(): void {
    if (this.conn.exchange === this) this.conn.exchange = undefined;
    // A body not sent whole stops going to this stream: were the stream's backpressure holding
    // the client, it would hold it for good, as no 'drain' comes from a closed stream.
    if (this.writer && !this.writer.ended) this.replay?.detach(this.writer);
  }

  /** The stream closed while this exchange had it. */
  onClose(): void {
    if (this.done) return;
    if (this.decoder?.finish()) {
      this.complete();
      return;
    }
    this.done = true;
    this.detach();
    if (!this.head) this.settle({ ok: false, outcome: { reset: true }, error: 'WP_ERR_UPSTREAM_TERMINATED' });
    else {
      this.body?.destroy();
      this.end(undefined);
    }
  }

  /** Bytes from the stream while this exchange has it. */
  onData(chunk: Buffer): void {
    if (this.done) return;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let broken = false;
    try {
      while (!this.head) {
        const end = headEnd(this.buf, this.maxHeaderBytes, 0, this.headScan);
        if (end < 0) return;
        const head = parseResponseHead(this.buf, 0, end);
        this.buf = this.buf.subarray(end);
        this.headScan.lineStart = 0;
        // Interim responses (1xx) are not relayed; 101 would switch protocols: refused.
        if (head.status === 101) throw new Error('unexpected 101');
        if (head.status < 200) continue;
        this.onHead(head, responseFraming(head, this.method));
      }
      this.feed();
    } catch {
      broken = true;
    }
    // A head that came is told to the attempt first, whatever broke in the bytes after it.
    this.tellResponse();
    if (broken) this.fail();
  }

  /**
   * Gives the attempt its response once the bytes that came with the head have been read. A
   * response that came whole has then ended and its stream is back in the pool: a retry that
   * discards it (abort) leaves the stream open for the next request.
   */
  private tellResponse(): void {
    const response = this.response;
    if (response === undefined) return;
    this.response = undefined;
    this.settle({ ok: true, response });
  }

  private onHead(head: ResponseHead, framing: Framing): void {
    this.head = head;
    this.decoder = new BodyDecoder(framing, this.maxHeaderBytes);
    const stream = this.conn.stream;
    // Only while this exchange owns the stream: once complete, it may carry another request.
    const body = new ResponseBody(
      () => {
        if (!this.done) stream.pause();
      },
      () => {
        if (!this.done) stream.resume();
      },
    );
    this.body = body;
    // Told to the attempt at the end of this read (tellResponse).
    this.response = {
      status: head.status,
      headers: head.headers,
      body,
      onEnd: (fn) => this.onEnd(fn),
      abort: () => this.abort(),
    };
  }

  private feed(): void {
    const decoder = this.decoder;
    const body = this.body;
    if (!decoder || !body || this.done) return;
    if (this.buf.length > 0) {
      const n = decoder.feed(this.buf, 0, (c) => body.push(c));
      this.buf = n === this.buf.length ? EMPTY : this.buf.subarray(n);
    }
    if (decoder.done) this.complete();
  }

  private complete(): void {
    if (this.done) return;
    this.done = true;
    this.detach();
    const head = this.head as ResponseHead;
    const trailers: Trailers = {};
    for (const [k, v] of this.decoder?.trailers ?? []) {
      const name = k.toLowerCase();
      const had = trailers[name];
      trailers[name] = had === undefined ? v : `${had}, ${v}`;
    }
    // Bytes past the response, a request not sent whole, or close by either side: not reused.
    const reusable =
      this.buf.length === 0 &&
      keepAlive(head) &&
      this.decoder?.framing.kind !== 'close' &&
      this.writer?.ended === true;
    this.conn.stream.resume();
    // Back to the pool before the reader hears of the end: the client's next request, which
    // that may start at once, can have this stream.
    this.client.release(this.conn, reusable);
    // The trailers follow the body: the end is told once the reader has had every byte.
    const body = this.body;
    if (body) body.end(() => this.end(trailers));
    else this.end(trailers);
  }
}

/**
 * The direct HTTP/1.1 path for one HBONE tunnel: this Duplex is the tunnel's inner stream (the
 * HBONE server splices it with the tunnel), so no in-memory pair, Node HTTP server or
 * IncomingMessage/ServerResponse stands between the tunnel's bytes and the request steps.
 * Requests are parsed off the bytes one at a time (pipelined ones wait their turn, so responses
 * stay in order), with keep-alive by HTTP/1.x rules, the headers timeout and half-close. A
 * request this path does not serve (CONNECT, Expect: 100-continue) and an HTTP/2 preface (codec
 * `auto`) hand the rest of the connection, from that request on, to Node's servers.
 */
import { EventEmitter } from 'node:events';
import http from 'node:http';
import { Duplex } from 'node:stream';
import type { DownstreamResponse, RequestRecord } from '../downstream.js';
import { duplexPair } from '../duplex-pair.js';
import type { ConnectionContext } from '../exchange.js';
import { type BodySource, ReplayableBody } from '../replayable-body.js';
import { rawReply, type WaypointErrorCode } from '../waypoint-errors.js';
import {
  BodyDecoder,
  fieldLines,
  Http1ParseError,
  headEnd,
  keepAlive,
  parseRequestHead,
  type RequestHead,
  requestFraming,
  skipBlankLines,
  VALUE_OK,
} from './http1-parser.js';

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const EMPTY = Buffer.alloc(0);
/** Unread input past which the client is held (its write not acknowledged) until it is used. */
const INPUT_HIGH_WATER = 64 * 1024;
const CRLF = Buffer.from('\r\n');

export interface Http1ConnectionInputs {
  readonly ctx: ConnectionContext;
  /** Codec `auto`: an HTTP/2 preface goes to Node's HTTP/2 server. */
  readonly sniffHttp2: boolean;
  readonly maxHeaderBytes: number;
  readonly headersTimeoutMs: number;
  /** An idle keep-alive connection closes after this long. */
  readonly keepAliveTimeoutMs: number;
  /** Serves one request (HttpProxy.handle, shared with the Node path). */
  readonly handle: (
    req: RequestRecord,
    res: DownstreamResponse,
    body: ReplayableBody,
  ) => Promise<void> | void;
  /** Serves the rest of the connection with Node's servers. */
  readonly fallback: (inner: Duplex, codec: 'http1' | 'http2') => void;
  /** A refusal answered on the connection: counted and logged by the proxy. */
  readonly refused: (key: WaypointErrorCode, reason: string) => void;
}

/** The request body as the decoder delivers it; pausing it stops reading the tunnel. */
class RequestBody extends EventEmitter implements BodySource {
  constructor(private readonly conn: Http1Connection) {
    super();
  }
  pause(): this {
    this.conn.bodyPaused = true;
    return this;
  }
  resume(): this {
    if (this.conn.bodyPaused) {
      this.conn.bodyPaused = false;
      this.conn.pump();
    }
    return this;
  }
}

type WriterEvent = 'close' | 'finish' | 'drain';

/**
 * The response of one request, written as HTTP/1.1 bytes on the connection. Its events ('close',
 * 'finish', 'drain') take `once` listeners only, which is all the request steps use: a list made
 * on the first, instead of an EventEmitter per response.
 */
export class Http1ResponseWriter implements DownstreamResponse {
  headersSent = false;
  writableFinished = false;
  destroyed = false;
  /** The serialized head, sent with the first body bytes (one write). */
  private head: string | undefined;
  private chunked = false;
  private noBody = false;
  private trailers: Record<string, string | string[]> | undefined;

  constructor(
    private readonly conn: Http1Connection,
    private readonly method: string,
    private readonly versionMinor: 0 | 1,
    /** Whether the connection may stay open after this response. */
    public keepAlive: boolean,
  ) {}

  private listeners: Array<{ readonly event: WriterEvent; readonly fn: () => void }> | undefined;

  once(event: WriterEvent, fn: () => void): this {
    this.listeners ??= [];
    this.listeners.push({ event, fn });
    return this;
  }

  /** Calls and removes the event's listeners (not those added while they run), in order. */
  emit(event: WriterEvent): boolean {
    const all = this.listeners;
    if (all === undefined) return false;
    const due: Array<() => void> = [];
    for (let i = 0; i < all.length; ) {
      const l = all[i] as { readonly event: WriterEvent; readonly fn: () => void };
      if (l.event !== event) {
        i++;
        continue;
      }
      all.splice(i, 1);
      due.push(l.fn);
    }
    if (due.length === 0) return false;
    for (const fn of due) fn();
    return true;
  }

  writeHead(status: number, headers: Record<string, string | string[]>): this {
    if (this.headersSent) return this;
    let s = `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'unknown'}\r\n`;
    let hasLength = false;
    let hasDate = false;
    for (const k in headers) {
      const v = headers[k];
      if (v === undefined) continue;
      if (k === 'content-length') hasLength = true;
      else if (k === 'date') hasDate = true;
      else if (k === 'connection') {
        // A reply that closes the connection (431 too many headers) says so once, below.
        if (/(^|[\s,])close($|[\s,])/i.test(String(v))) this.keepAlive = false;
        continue;
      }
      // As Node's writeHead: a value that would split the head is refused, never written.
      const lines = fieldLines(k, v);
      if (lines === undefined) throw new TypeError(`invalid value for header ${k}`);
      s += lines;
    }
    this.noBody = this.method === 'HEAD' || status === 204 || status === 304 || status < 200;
    if (!this.noBody && !hasLength) {
      // Without a length: chunked for HTTP/1.1, else the body ends with the connection.
      if (this.versionMinor === 1) {
        this.chunked = true;
        s += 'transfer-encoding: chunked\r\n';
      } else this.keepAlive = false;
    }
    // As Node's server: a Date on every response that has none.
    if (!hasDate) s += `date: ${this.conn.date()}\r\n`;
    if (!this.keepAlive) s += 'connection: close\r\n';
    else if (this.versionMinor === 0) s += 'connection: keep-alive\r\n';
    this.head = `${s}\r\n`;
    this.headersSent = true;
    return this;
  }

  write(chunk: Buffer): boolean {
    if (this.destroyed || this.writableFinished) return false;
    if (!this.headersSent) this.writeHead(200, {});
    if (this.noBody || chunk.length === 0) return this.flushHead();
    let out: Buffer;
    if (this.chunked) {
      const size = `${this.takeHead()}${chunk.length.toString(16)}\r\n`;
      out = Buffer.concat([Buffer.from(size, 'latin1'), chunk, CRLF]);
    } else {
      const head = this.takeHead();
      out = head ? Buffer.concat([Buffer.from(head, 'latin1'), chunk]) : chunk;
    }
    return this.conn.output(out);
  }

  addTrailers(trailers: Record<string, string | string[]>): void {
    this.trailers = { ...this.trailers, ...trailers };
  }

  end(chunk?: Buffer): this {
    if (this.destroyed || this.writableFinished) return this;
    if (chunk?.length) this.write(chunk);
    if (!this.headersSent) this.writeHead(200, {});
    if (this.chunked) {
      let tail = `${this.takeHead()}0\r\n`;
      for (const [k, v] of Object.entries(this.trailers ?? {}))
        for (const x of Array.isArray(v) ? v : [v]) if (VALUE_OK.test(String(x))) tail += `${k}: ${x}\r\n`;
      this.conn.output(Buffer.from(`${tail}\r\n`, 'latin1'));
    } else this.flushHead();
    this.writableFinished = true;
    this.conn.responseDone(this);
    this.emit('finish');
    this.emit('close');
    return this;
  }

  destroy(): this {
    this.conn.destroy();
    return this;
  }

  /** The connection closed under this response. */
  closed(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    // On a later tick, as a Node response emits it: the step that destroyed it finishes first.
    if (!this.writableFinished) process.nextTick(() => this.emit('close'));
  }

  private takeHead(): string {
    const h = this.head ?? '';
    this.head = undefined;
    return h;
  }

  private flushHead(): boolean {
    const h = this.takeHead();
    return h ? this.conn.output(Buffer.from(h, 'latin1')) : true;
  }
}

export class Http1Connection extends Duplex {
  bodyPaused = false;
  private buf: Buffer = EMPTY;
  private response: Http1ResponseWriter | undefined;
  private body: RequestBody | undefined;
  private decoder: BodyDecoder | undefined;
  private heldWrite: (() => void) | undefined;
  private clientEnded = false;
  /** Ended or refused: input is ignored. */
  private closing = false;
  private sniffing: boolean;
  private headTimer: NodeJS.Timeout | undefined;
  private relay: Duplex | undefined;
  private outputWaiting = false;
  private pumping = false;
  private again = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private dateSecond = -1;
  private dateText = '';
  /** Where the scan for the end of the head in progress resumes (0: a new head). */
  private readonly headScan = { lineStart: 0 };

  constructor(private readonly inputs: Http1ConnectionInputs) {
    super({ allowHalfOpen: true });
    this.sniffing = inputs.sniffHttp2;
  }

  override _read(): void {
    if (this.relay) {
      this.relay.resume();
      return;
    }
    if (this.outputWaiting) {
      this.outputWaiting = false;
      this.response?.emit('drain');
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.relay) {
      this.relay.write(chunk, () => cb());
      return;
    }
    if (this.closing) {
      cb();
      return;
    }
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    this.pump();
    if (this.buf.length > INPUT_HIGH_WATER && !this.closing && !this.relay) this.heldWrite = () => cb();
    else cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.clientEnded = true;
    if (this.relay) this.relay.end();
    else this.pump();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.closing = true;
    clearTimeout(this.headTimer);
    clearTimeout(this.idleTimer);
    this.response?.closed();
    this.relay?.destroy();
    this.releaseInput();
    cb(err);
  }

  /** The Date header's value, formatted once a second. */
  date(): string {
    const now = Date.now();
    const second = Math.floor(now / 1000);
    if (second !== this.dateSecond) {
      this.dateSecond = second;
      this.dateText = new Date(now).toUTCString();
    }
    return this.dateText;
  }

  /** Bytes to the client; false when it is not keeping up ('drain' on the response follows). */
  output(b: Buffer): boolean {
    if (this.destroyed || this.closing) return false;
    const ok = this.push(b);
    if (!ok) this.outputWaiting = true;
    return ok;
  }

  /** The current response has ended: the next request, or the end of the connection. */
  responseDone(res: Http1ResponseWriter): void {
    if (res !== this.response) return;
    this.response = undefined;
    if (!res.keepAlive) {
      this.endConnection();
      return;
    }
    this.armIdleTimeout();
    this.pump();
  }

  /**
   * A keep-alive connection with no request in progress closes after the idle timeout (as the
   * Node path's keepAliveTimeout); one timer per connection, refreshed.
   */
  private armIdleTimeout(): void {
    if (this.idleTimer) {
      this.idleTimer.refresh();
      return;
    }
    this.idleTimer = setTimeout(() => {
      if (this.response || this.decoder || this.buf.length > 0 || this.relay) return;
      this.endConnection();
    }, this.inputs.keepAliveTimeoutMs);
  }

  /** Reads what the client sent as far as the current state allows. */
  pump(): void {
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.again = false;
        this.step();
      } while (this.again);
    } finally {
      this.pumping = false;
    }
    if (this.buf.length <= INPUT_HIGH_WATER) this.releaseInput();
  }

  private releaseInput(): void {
    const cb = this.heldWrite;
    this.heldWrite = undefined;
    cb?.();
  }

  private step(): void {
    for (;;) {
      if (this.closing || this.relay || this.destroyed) return;
      const decoder = this.decoder;
      if (decoder) {
        if (this.bodyPaused) return;
        if (this.buf.length === 0) {
          if (this.clientEnded) this.cutShort();
          return;
        }
        let n: number;
        try {
          n = decoder.feed(this.buf, 0, (c) => this.body?.emit('data', c));
        } catch (err) {
          this.refuse(err);
          return;
        }
        this.buf = n === this.buf.length ? EMPTY : this.buf.subarray(n);
        if (decoder.done) {
          this.decoder = undefined;
          const body = this.body;
          this.body = undefined;
          body?.emit('end');
          continue;
        }
        if (n === 0) return;
        continue;
      }
      // The next request waits until the current response has finished.
      if (this.response) return;
      if (this.buf.length === 0) {
        if (this.clientEnded) this.endConnection();
        return;
      }
      if (this.sniffing) {
        const n = Math.min(this.buf.length, H2_PREFACE.length);
        const h2 = this.buf.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
        if (h2 && this.buf.length < H2_PREFACE.length && !this.clientEnded) return;
        this.sniffing = false;
        if (h2 && this.buf.length >= H2_PREFACE.length) {
          this.fallback('http2');
          return;
        }
      }
      const start = skipBlankLines(this.buf);
      let end: number;
      let head: RequestHead;
      let framing: ReturnType<typeof requestFraming>;
      try {
        end = headEnd(this.buf, this.inputs.maxHeaderBytes, start, this.headScan);
        if (end < 0) {
          if (this.clientEnded)
            throw new Http1ParseError('WP_ERR_MALFORMED_REQUEST', 'end of input in a head');
          // Armed when a head is seen incomplete, which is in the turn its first bytes arrived
          // (a complete head is handled in that turn): a head that arrives whole needs no timer.
          if (!this.headTimer) this.armHeadersTimeout();
          return;
        }
        head = parseRequestHead(this.buf, start, end);
        // As Node's server (requireHostHeader) and RFC 9112 3.2: HTTP/1.1 without Host is 400.
        if (head.versionMinor === 1 && head.headers.host === undefined)
          throw new Http1ParseError('WP_ERR_MALFORMED_REQUEST', 'no host field');
        framing = requestFraming(head);
      } catch (err) {
        this.refuse(err);
        return;
      }
      clearTimeout(this.headTimer);
      this.headTimer = undefined;
      this.headScan.lineStart = 0;
      const connection =
        typeof head.headers.connection === 'string' ? head.headers.connection.toLowerCase() : '';
      if (head.headers.upgrade !== undefined && /(^|[\s,])upgrade($|[\s,])/.test(connection)) {
        // Upgrades (WebSocket, h2c) are not configured on this waypoint: refused as Envoy does.
        this.refuseWith('WP_ERR_UPGRADE_REFUSED', 'upgrade refused');
        return;
      }
      const expect = head.headers.expect;
      if (
        head.method === 'CONNECT' ||
        (typeof expect === 'string' && expect.toLowerCase() === '100-continue')
      ) {
        // Not served on this path: Node's server takes the connection from this request on.
        this.buf = this.buf.subarray(start);
        this.fallback('http1');
        return;
      }
      this.buf = end === this.buf.length ? EMPTY : this.buf.subarray(end);
      this.startRequest(head, framing);
    }
  }

  private startRequest(head: RequestHead, framing: ReturnType<typeof requestFraming>): void {
    const { ctx } = this.inputs;
    const host = head.headers.host;
    const record: RequestRecord = {
      method: head.method,
      path: head.target,
      authority: typeof host === 'string' && host ? host : `${ctx.target.host}:${ctx.target.port}`,
      protocol: head.versionMinor === 1 ? 'HTTP/1.1' : 'HTTP/1.0',
      headers: head.headers,
      headerCount: head.raw.length,
    };
    const res = new Http1ResponseWriter(this, head.method, head.versionMinor, keepAlive(head));
    this.response = res;
    let body: ReplayableBody;
    if (framing.kind === 'none') body = new ReplayableBody(undefined);
    else {
      this.body = new RequestBody(this);
      this.bodyPaused = false;
      this.decoder = new BodyDecoder(framing, this.inputs.maxHeaderBytes);
      body = new ReplayableBody(this.body);
    }
    let pending: Promise<void> | void;
    try {
      pending = this.inputs.handle(record, res, body);
    } catch {
      res.destroy();
      return;
    }
    pending?.catch(() => res.destroy());
  }

  /** The client ended its side in the middle of a request body. */
  private cutShort(): void {
    this.refuse(new Http1ParseError('WP_ERR_MALFORMED_REQUEST', 'end of input in a body'));
  }

  private refuse(err: unknown): void {
    if (!(err instanceof Http1ParseError)) {
      this.destroy();
      return;
    }
    this.refuseWith(err.code as WaypointErrorCode, err.reason);
  }

  /** A raw reply (no request to answer on), then the connection ends. */
  private refuseWith(key: WaypointErrorCode, reason: string): void {
    this.inputs.refused(key, reason);
    const res = this.response;
    if (res?.headersSent) {
      // A response already started: the client can only see the connection go.
      this.destroy();
      return;
    }
    this.response = undefined;
    res?.closed();
    this.output(Buffer.from(rawReply(key), 'latin1'));
    this.endConnection();
  }

  private endConnection(): void {
    if (this.closing) return;
    this.closing = true;
    clearTimeout(this.headTimer);
    clearTimeout(this.idleTimer);
    this.push(null);
    this.releaseInput();
  }

  private armHeadersTimeout(): void {
    this.headTimer = setTimeout(() => {
      this.headTimer = undefined;
      if (this.response || this.closing || this.destroyed || this.relay) return;
      this.refuseWith('WP_ERR_HEADERS_TIMEOUT', 'request headers timeout');
    }, this.inputs.headersTimeoutMs);
  }

  private fallback(codec: 'http1' | 'http2'): void {
    clearTimeout(this.headTimer);
    this.headTimer = undefined;
    const [mine, theirs] = duplexPair();
    this.relay = mine;
    mine.on('data', (c: Buffer) => {
      if (!this.push(c)) mine.pause();
    });
    mine.once('end', () => this.push(null));
    mine.once('close', () => this.destroy());
    mine.on('error', () => {});
    this.inputs.fallback(theirs, codec);
    const rest = this.buf;
    this.buf = EMPTY;
    if (rest.length > 0) mine.write(rest);
    if (this.clientEnded) mine.end();
    this.releaseInput();
  }
}

/**
 * A lean HTTP/2 connection (RFC 9113) for HBONE tunnels, written directly on a TLS socket.
 *
 * It carries long-lived CONNECT streams: no server push, no priorities, no trailers beyond
 * accepting them. DATA payloads are delivered to streams as slices of the socket's reads and
 * written as frame header + payload pairs, so a tunnelled byte is copied no more than TLS itself
 * requires. Every frame written during one event-loop turn, whatever its stream, leaves in one
 * socket write at the end of the turn (one TLS record set, one syscall), as Node's own HTTP/2
 * schedules its writes (Http2Session::MaybeScheduleWrite in src/node_http2.cc). Flow control is
 * complete in both directions; every protocol violation by the peer ends the stream (RST_STREAM)
 * or the connection (GOAWAY) with the RFC's error code and is reported, never thrown.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { requestProblem, responseProblem, trailersProblem } from './h2-field-validation.js';
import {
  CLIENT_PREFACE,
  DATA_FRAME_PAYLOAD,
  DEFAULT_MAX_FRAME,
  DEFAULT_WINDOW,
  FLAG,
  FRAME,
  FRAME_HEADER_LENGTH,
  frameHeader,
  H2_ERROR,
  H2ConnectionError,
  H2StreamError,
  MAX_WINDOW,
  SETTING,
  writeFrameHeader,
} from './h2-frames.js';
import { H2Stream, type OutItem } from './h2-stream.js';
import { type HeaderList, HpackDecoder, HpackEncoder, HpackError, HpackListTooLargeError } from './hpack.js';

export type H2Headers = Record<string, string | number | undefined>;
/** Received headers: names lower-case, repeated names joined with ", ". */
export type H2IncomingHeaders = Record<string, string>;

export interface H2Options {
  readonly role: 'client' | 'server';
  /** Our per-stream receive window (SETTINGS_INITIAL_WINDOW_SIZE). */
  readonly streamWindow: number;
  /** Our connection receive window. */
  readonly connectionWindow: number;
  /** Streams the peer may open at once (server side). */
  readonly maxConcurrentStreams: number;
  /** Largest frame payload we accept (SETTINGS_MAX_FRAME_SIZE). */
  readonly maxFrameSize?: number;
  readonly maxHeaderListSize?: number;
  /** Server: how long the client has to send its preface. */
  readonly prefaceTimeoutMs?: number;
  /**
   * Liveness: once the peer has sent nothing for `intervalMs`, PING it; if it still sends nothing
   * for `timeoutMs`, the connection is closed (GOAWAY) and its streams fail. Off when unset.
   */
  readonly keepalive?: KeepaliveOptions;
}

export interface KeepaliveOptions {
  readonly intervalMs: number;
  readonly timeoutMs: number;
}

/**
 * Streams a client may open before the server's first SETTINGS says how many it allows. RFC 9113
 * §6.5.2 leaves the initial value unlimited but recommends servers allow no fewer than 100, and
 * the HBONE pool puts at most 100 on a connection. The hyperium h2 crate assumes 100 as well
 * (client::Builder::initial_max_send_streams) and, like it, a first SETTINGS without
 * MAX_CONCURRENT_STREAMS lifts the limit.
 */
export const ASSUMED_PEER_MAX_CONCURRENT_STREAMS = 100;

export interface RemoteSettings {
  headerTableSize: number;
  enablePush: boolean;
  maxConcurrentStreams: number;
  initialWindowSize: number;
  maxFrameSize: number;
  maxHeaderListSize: number;
}

interface HeaderBlock {
  streamId: number;
  endStream: boolean;
  parts: Buffer[];
  size: number;
}

const PING_TIMEOUT_MS = 10_000;
/** Characters no HTTP/2 field may carry (RFC 9113 §8.2.1). */
const INVALID_FIELD = /[\r\n\0]/;
/** Bytes of our own output the peer may leave unread before its control frames stop being answered. */
const CONTROL_BACKLOG_LIMIT = 1024 * 1024;
/** How many recently closed streams are remembered to answer late frames with STREAM_CLOSED. */
const PEER_FINISHED_MEMORY = 1024;
/** Streams a peer may reset (or have refused) per second before it is treated as an attack. */
const RESET_BUDGET_PER_SECOND = 1_000;

/**
 * Events: 'stream' (stream, headers) on servers; 'remoteSettings' (settings); 'goaway'
 * (errorCode, lastStreamId); 'protocolError' (H2ConnectionError) when the peer broke the
 * protocol; 'malformed' (H2StreamError) on servers for a request reset as malformed (RFC 9113
 * §8.1.1); 'keepalive' (answered: boolean) when a liveness PING is answered or given up on;
 * 'error' (socket errors); 'close'.
 */
export class H2Connection extends EventEmitter {
  readonly remoteSettings: RemoteSettings = {
    headerTableSize: 4096,
    enablePush: true,
    maxConcurrentStreams: Number.POSITIVE_INFINITY,
    initialWindowSize: DEFAULT_WINDOW,
    maxFrameSize: DEFAULT_MAX_FRAME,
    maxHeaderListSize: Number.POSITIVE_INFINITY,
  };
  closed = false;
  destroyed = false;
  /** The peer's first SETTINGS arrived (its limits in `remoteSettings` are its own, not assumed). */
  settingsReceived = false;

  private readonly streams = new Map<number, H2Stream>();
  private readonly blocked = new Set<H2Stream>();
  private readonly decoder: HpackDecoder;
  private readonly encoder = new HpackEncoder();
  private readonly maxFrameSize: number;
  private readonly pings = new Map<string, { cb: (err: Error | null) => void; timer: NodeJS.Timeout }>();
  private nextStreamId: number;
  private lastPeerStreamId = 0;
  private connSendWindow = DEFAULT_WINDOW;
  private connRecvWindow: number;
  private connUnacked = 0;
  private goawaySent = false;
  private goawayReceived = false;
  private prefaceReceived: boolean;
  private prefaceTimer?: NodeJS.Timeout;
  /** The peer's preface ends with its SETTINGS; until then no other frame is allowed (RFC 9113 §3.4). */
  private peerSettingsSeen = false;
  /**
   * Recently closed streams on which the peer itself can send nothing more (it sent END_STREAM or
   * RST_STREAM). Streams we reset are not here: the peer may still have frames in flight for them.
   */
  private readonly peerFinished = new Set<number>();
  /** Recently closed streams we reset before the peer finished them: its late frames are ignored. */
  private readonly locallyReset = new Set<number>();
  /** Unparsed bytes carried over between reads (never more than one frame). */
  private pending: Buffer | undefined;
  /** The DATA frame whose payload is being streamed: bytes left, target stream, END_STREAM. */
  private dataLeft = 0;
  private dataStream: H2Stream | undefined;
  private dataEnd = false;
  private headerBlock: HeaderBlock | undefined;
  private socketBlocked = false;
  /** The socket is corked for this turn's frames (see beginTurn). */
  private turnCorked = false;
  private flushScheduled = false;
  private readonly endTurn = (): void => {
    this.flushScheduled = false;
    this.flushTurn();
  };
  private readonly deferred: Array<(err?: Error | null) => void> = [];
  private resetWindowStart = 0;
  private resetsInWindow = 0;
  /** When the peer last sent anything (ms since epoch), for liveness. */
  private lastReadAt = Date.now();
  private keepaliveTimer?: NodeJS.Timeout;
  /** A liveness PING is out and the peer has sent nothing since. */
  private probeTimer?: NodeJS.Timeout;

  constructor(
    readonly socket: Duplex,
    private readonly options: H2Options,
  ) {
    super();
    this.maxFrameSize = options.maxFrameSize ?? 1024 * 1024;
    this.decoder = new HpackDecoder(4096, options.maxHeaderListSize ?? 64 * 1024);
    this.nextStreamId = options.role === 'client' ? 1 : 2;
    this.connRecvWindow = options.connectionWindow;
    this.prefaceReceived = options.role === 'client';
    if (options.role === 'client')
      this.remoteSettings.maxConcurrentStreams = ASSUMED_PEER_MAX_CONCURRENT_STREAMS;
    // Frames are small and latency-bound: never wait for Nagle.
    (socket as Duplex & { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.onDrain());
    socket.on('end', () => this.onSocketEnd());
    socket.on('error', (err: Error) => {
      if (this.listenerCount('error') > 0) this.emit('error', err);
      this.destroy();
    });
    socket.on('close', () => this.destroy());
    this.beginTurn();
    if (options.role === 'client') this.socket.write(CLIENT_PREFACE);
    this.writeSettings();
    if (options.connectionWindow > DEFAULT_WINDOW) {
      this.writeWindowUpdate(0, options.connectionWindow - DEFAULT_WINDOW);
    }
    if (options.role === 'server') {
      this.prefaceTimer = setTimeout(
        () => this.fail(new H2ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'no client preface in time')),
        options.prefaceTimeoutMs ?? 10_000,
      );
      this.prefaceTimer.unref();
    }
    if (options.keepalive) this.scheduleKeepalive(options.keepalive.intervalMs);
  }

  /**
   * True while a liveness PING is unanswered: the peer has been silent for the keepalive interval.
   * A pool places no new stream here until the peer speaks again.
   */
  get unresponsive(): boolean {
    return this.probeTimer !== undefined;
  }

  private get dataFrameLimit(): number {
    const peerMax = this.remoteSettings.maxFrameSize;
    return Math.min(peerMax, DATA_FRAME_PAYLOAD);
  }

  get streamCount(): number {
    return this.streams.size;
  }

  /** Opens a client stream with request headers. */
  request(headers: H2Headers, options: { endStream?: boolean } = {}): H2Stream {
    if (this.options.role !== 'client') throw new Error('only clients open streams');
    if (this.closed || this.goawayReceived || this.destroyed) {
      throw new H2ConnectionError(H2_ERROR.REFUSED_STREAM, 'connection is closing');
    }
    if (this.streams.size >= this.remoteSettings.maxConcurrentStreams) {
      throw new H2ConnectionError(H2_ERROR.REFUSED_STREAM, 'peer stream limit reached');
    }
    // Encoded first: a header the peer would reject fails here, before a stream exists.
    const block = encodeHeaders(this.encoder, headers);
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    const stream = new H2Stream(this, id, this.remoteSettings.initialWindowSize, this.options.streamWindow);
    this.streams.set(id, stream);
    stream.headersSent = true;
    this.writeHeaderBlock(stream, block, options.endStream === true);
    return stream;
  }

  /** Sends a PING; `cb` runs when its ACK arrives, or with an error after 10 s or on close. */
  ping(cb: (err: Error | null) => void): void {
    if (this.destroyed) {
      cb(new Error('connection destroyed'));
      return;
    }
    const payload = randomBytes(8);
    const key = payload.toString('hex');
    const timer = setTimeout(() => {
      this.pings.delete(key);
      cb(new Error('PING timed out'));
    }, PING_TIMEOUT_MS);
    timer.unref();
    this.pings.set(key, { cb, timer });
    this.writeFrame(FRAME.PING, 0, 0, payload);
  }

  /** GOAWAY, then ends the connection once open streams have finished. */
  close(cb?: () => void): void {
    if (cb) {
      if (this.destroyed) {
        process.nextTick(cb);
        return;
      }
      this.once('close', cb);
    }
    if (this.closed) return;
    this.closed = true;
    this.sendGoaway(H2_ERROR.NO_ERROR, '');
    this.maybeFinish();
  }

  destroy(err?: Error): void {
    this.teardown(err);
    // What was written before destroy() is handed to the socket, as an uncorked write would be.
    this.flushTurn();
    this.socket.destroy();
  }

  /** Ends every stream and pending callback; the socket is handled by the caller. */
  private teardown(err?: Error): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.closed = true;
    clearTimeout(this.prefaceTimer);
    clearTimeout(this.keepaliveTimer);
    clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    for (const stream of [...this.streams.values()]) {
      stream.released = true;
      stream.emit('released');
      if (!stream.destroyed) {
        if (!(stream.localEnded && stream.remoteEnded)) stream.aborted = true;
        stream.destroy(err);
      }
    }
    this.streams.clear();
    for (const { cb, timer } of this.pings.values()) {
      clearTimeout(timer);
      cb(new Error('connection closed'));
    }
    this.pings.clear();
    for (const cb of this.deferred.splice(0)) cb(new Error('connection closed'));
    process.nextTick(() => this.emit('close'));
  }

  // ---- used by H2Stream ----

  sendHeaders(stream: H2Stream, headers: H2Headers, endStream: boolean): void {
    this.writeHeaderBlock(stream, encodeHeaders(this.encoder, headers), endStream);
  }

  private writeHeaderBlock(stream: H2Stream, block: Buffer, endStream: boolean): void {
    const max = this.remoteSettings.maxFrameSize;
    const endFlag = endStream ? FLAG.END_STREAM : 0;
    if (block.length <= max) {
      this.writeFrame(FRAME.HEADERS, FLAG.END_HEADERS | endFlag, stream.id, block);
    } else {
      this.writeFrame(FRAME.HEADERS, endFlag, stream.id, block.subarray(0, max));
      for (let off = max; off < block.length; off += max) {
        const last = off + max >= block.length;
        this.writeFrame(
          FRAME.CONTINUATION,
          last ? FLAG.END_HEADERS : 0,
          stream.id,
          block.subarray(off, off + max),
        );
      }
    }
    if (endStream) this.localEnd(stream);
  }

  queueDataBatch(stream: H2Stream, items: OutItem[]): void {
    if (stream.released || this.destroyed || stream.localEnded) {
      for (const item of items) this.queueData(stream, item);
      return;
    }
    stream.out.push(...items);
    this.flush(stream);
  }

  queueData(stream: H2Stream, item: OutItem): void {
    if (stream.released || this.destroyed) {
      // After a complete response and RST_STREAM NO_ERROR, the rest of the request is unwanted.
      const unwanted = stream.rstCode === H2_ERROR.NO_ERROR && stream.remoteEnded && !this.destroyed;
      item.cb(unwanted || (stream.localEnded && item.end) ? null : new Error('stream closed'));
      return;
    }
    if (stream.localEnded) {
      item.cb(item.end ? null : new Error('write after END_STREAM'));
      return;
    }
    stream.out.push(item);
    this.flush(stream);
  }

  /**
   * Sends the `length` bytes that follow FRAME_HEADER_LENGTH bytes of headroom in `frame` as one
   * DATA frame, header written into the headroom, in one socket write: TLS encrypts it in place
   * instead of first joining a separate header and payload into a new buffer. Only when nothing
   * is queued ahead on the stream and the whole payload fits one frame and both send windows;
   * returns false otherwise, having sent nothing (the caller writes the payload the ordinary way).
   * `cb` runs once the bytes are in the socket, held while the socket is full, as for writes.
   */
  sendFramed(stream: H2Stream, frame: Buffer, length: number, cb: (err?: Error | null) => void): boolean {
    if (stream.released || this.destroyed || stream.localEnded || stream.out.length > 0) return false;
    if (length <= 0 || frame.length < FRAME_HEADER_LENGTH + length) return false;
    if (length > this.dataFrameLimit || length > stream.sendWindow || length > this.connSendWindow)
      return false;
    writeFrameHeader(frame, length, FRAME.DATA, 0, stream.id);
    stream.sendWindow -= length;
    this.connSendWindow -= length;
    const whole =
      frame.length === FRAME_HEADER_LENGTH + length ? frame : frame.subarray(0, FRAME_HEADER_LENGTH + length);
    this.beginTurn();
    this.socket.write(whole);
    this.noteBacklog();
    this.complete(cb);
    return true;
  }

  /** True while the socket holds more than its high-water mark: writers should wait for callbacks. */
  get writeBlocked(): boolean {
    return this.socketBlocked;
  }

  streamRead(stream: H2Stream): void {
    if (stream.heldCredit > 0) {
      const n = stream.heldCredit;
      stream.heldCredit = 0;
      this.credit(stream, n);
    }
  }

  resetStream(stream: H2Stream, code: number): void {
    if (stream.released || this.destroyed) return;
    this.writeFrame(FRAME.RST_STREAM, 0, stream.id, u32(code));
    this.release(stream);
  }

  streamDestroyed(stream: H2Stream, err: Error | null): void {
    for (const item of stream.out.splice(0)) item.cb(err ?? new Error('stream destroyed'));
    this.blocked.delete(stream);
    if (stream.released) return;
    // Destroyed locally before both sides ended: tell the peer.
    const code = err ? H2_ERROR.INTERNAL_ERROR : H2_ERROR.CANCEL;
    stream.rstCode = code;
    if (!this.destroyed) this.writeFrame(FRAME.RST_STREAM, 0, stream.id, u32(code));
    this.release(stream);
  }

  // ---- writing ----

  private writeFrame(type: number, flags: number, streamId: number, payload?: Buffer): void {
    // Once a graceful close has ended the socket, frames the peer still sends (a request above the
    // GOAWAY's last stream id, DATA for it) are read and left unanswered: a write after the end
    // would destroy the socket under the peer's own writes, and a Go client then fails every
    // request on that connection, those it would have retried elsewhere included.
    if (this.destroyed || this.socket.writableEnded) return;
    const length = payload?.length ?? 0;
    this.beginTurn();
    this.socket.write(frameHeader(length, type, flags, streamId));
    if (length > 0) this.socket.write(payload);
    this.noteBacklog();
  }

  /**
   * Corks the socket on the first frame of a turn and schedules its flush for the end of the turn
   * (the check phase, after every I/O callback of this poll phase), so that the frames every
   * stream writes meanwhile leave in one TLS write. A lone frame waits for nothing else.
   */
  private beginTurn(): void {
    if (!this.turnCorked) {
      this.turnCorked = true;
      this.socket.cork();
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.endTurn);
    }
  }

  /** Hands the turn's frames to the socket now. Safe on an ended or destroyed socket. */
  private flushTurn(): void {
    if (!this.turnCorked) return;
    this.turnCorked = false;
    this.socket.uncork();
  }

  /**
   * A batch of a socket's high-water mark leaves at once: holding it to the end of the turn would
   * save nothing (it fills TLS records on its own) and would push back on writers that the socket
   * itself would not. Writers wait only when the socket stays that full once written to: the
   * socket's own backpressure, as without coalescing.
   */
  private noteBacklog(): void {
    const mark = this.socket.writableHighWaterMark;
    if (this.socket.writableLength < mark) return;
    this.flushTurn();
    if (this.socket.writableLength >= mark) this.socketBlocked = true;
  }

  private writeSettings(): void {
    const settings: Array<[number, number]> = [
      [SETTING.ENABLE_PUSH, 0],
      [SETTING.INITIAL_WINDOW_SIZE, this.options.streamWindow],
      [SETTING.MAX_FRAME_SIZE, this.maxFrameSize],
      [SETTING.MAX_HEADER_LIST_SIZE, this.options.maxHeaderListSize ?? 64 * 1024],
    ];
    if (this.options.role === 'server')
      settings.push([SETTING.MAX_CONCURRENT_STREAMS, this.options.maxConcurrentStreams]);
    const payload = Buffer.allocUnsafe(settings.length * 6);
    settings.forEach(([id, value], i) => {
      payload.writeUInt16BE(id, i * 6);
      payload.writeUInt32BE(value, i * 6 + 2);
    });
    this.writeFrame(FRAME.SETTINGS, 0, 0, payload);
  }

  private writeWindowUpdate(streamId: number, increment: number): void {
    this.writeFrame(FRAME.WINDOW_UPDATE, 0, streamId, u32(increment));
  }

  /** Writes as much of the stream's queue as the windows allow. */
  private flush(stream: H2Stream): void {
    const out = stream.out;
    while (out.length > 0) {
      const item = out[0] as OutItem;
      const left = item.buf.length - item.offset;
      if (left === 0) {
        out.shift();
        if (item.end) {
          this.writeFrame(FRAME.DATA, FLAG.END_STREAM, stream.id);
          this.localEnd(stream);
        }
        this.complete(item.cb);
        continue;
      }
      const allowed = Math.min(left, stream.sendWindow, this.connSendWindow, this.dataFrameLimit);
      if (allowed <= 0) {
        this.blocked.add(stream);
        return;
      }
      const payload =
        item.offset === 0 && allowed === item.buf.length
          ? item.buf
          : item.buf.subarray(item.offset, item.offset + allowed);
      this.writeFrame(FRAME.DATA, 0, stream.id, payload);
      item.offset += allowed;
      stream.sendWindow -= allowed;
      this.connSendWindow -= allowed;
    }
    this.blocked.delete(stream);
  }

  /** A write is done once its bytes are in the socket; while the socket is full, hold the callback. */
  private complete(cb: (err?: Error | null) => void): void {
    if (this.socketBlocked) this.deferred.push(cb);
    else cb();
  }

  private onDrain(): void {
    this.socketBlocked = false;
    for (const cb of this.deferred.splice(0)) cb();
  }

  private flushBlocked(): void {
    if (this.blocked.size === 0) return;
    for (const stream of [...this.blocked]) this.flush(stream);
  }

  private localEnd(stream: H2Stream): void {
    stream.localEnded = true;
    if (stream.remoteEnded) this.release(stream);
  }

  private release(stream: H2Stream): void {
    if (stream.released) return;
    stream.released = true;
    this.streams.delete(stream.id);
    if (stream.remoteEnded) this.notePeerFinished(stream.id);
    else if (!this.peerFinished.has(stream.id)) this.noteLocallyReset(stream.id);
    this.blocked.delete(stream);
    stream.emit('released');
    this.maybeFinish();
  }

  private noteLocallyReset(streamId: number): void {
    this.locallyReset.add(streamId);
    if (this.locallyReset.size > PEER_FINISHED_MEMORY) {
      this.locallyReset.delete(this.locallyReset.values().next().value as number);
    }
  }

  private notePeerFinished(streamId: number): void {
    this.peerFinished.add(streamId);
    // Bounded: older streams fall back to being ignored.
    if (this.peerFinished.size > PEER_FINISHED_MEMORY) {
      this.peerFinished.delete(this.peerFinished.values().next().value as number);
    }
  }

  private maybeFinish(): void {
    if (this.closed && this.streams.size === 0 && !this.destroyed) {
      this.socket.end();
      // The peer normally closes too; do not wait for it forever.
      setTimeout(() => this.destroy(), 1_000).unref();
    }
  }

  private sendGoaway(code: number, debug: string): void {
    if (this.goawaySent || this.destroyed) return;
    this.goawaySent = true;
    const payload = Buffer.concat([u32(this.lastPeerStreamId), u32(code), Buffer.from(debug, 'utf8')]);
    this.writeFrame(FRAME.GOAWAY, 0, 0, payload);
  }

  /** Ends the connection for a protocol violation by the peer. */
  private fail(err: H2ConnectionError): void {
    if (this.destroyed) return;
    this.emit('protocolError', err);
    this.sendGoaway(err.code, err.message);
    this.teardown(err);
    // Let the GOAWAY reach the peer before the socket goes.
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1_000).unref();
  }

  // ---- liveness ----

  private scheduleKeepalive(delayMs: number): void {
    if (this.destroyed) return;
    this.keepaliveTimer = setTimeout(() => this.keepaliveDue(), Math.max(1, delayMs));
    this.keepaliveTimer.unref();
  }

  private keepaliveDue(): void {
    const { intervalMs, timeoutMs } = this.options.keepalive as KeepaliveOptions;
    const silentMs = Date.now() - this.lastReadAt;
    if (silentMs < intervalMs) {
      this.scheduleKeepalive(intervalMs - silentMs);
      return;
    }
    // Any frame from the peer ends the probe (onData), the PING's ACK being the one it owes us.
    this.probeTimer = setTimeout(() => this.keepaliveFailed(silentMs + timeoutMs), timeoutMs);
    this.probeTimer.unref();
    this.writeFrame(FRAME.PING, 0, 0, randomBytes(8));
  }

  private endProbe(): void {
    clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    this.emit('keepalive', true);
    const keepalive = this.options.keepalive;
    if (keepalive) this.scheduleKeepalive(keepalive.intervalMs);
  }

  /** The peer stopped answering: its streams fail now; the GOAWAY is a courtesy it may never read. */
  private keepaliveFailed(silentMs: number): void {
    this.probeTimer = undefined;
    if (this.destroyed) return;
    this.emit('keepalive', false);
    const err = Object.assign(new Error(`peer sent nothing for ${silentMs} ms, PING unanswered`), {
      code: 'ERR_H2_PEER_UNRESPONSIVE',
    });
    this.sendGoaway(H2_ERROR.NO_ERROR, 'PING unanswered');
    this.teardown(err);
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1_000).unref();
  }

  // ---- reading ----

  private onData(chunk: Buffer): void {
    this.lastReadAt = Date.now();
    if (this.probeTimer) this.endProbe();
    try {
      this.parse(chunk);
    } catch (err) {
      if (err instanceof H2ConnectionError) this.fail(err);
      else if (err instanceof HpackError)
        this.fail(new H2ConnectionError(H2_ERROR.COMPRESSION_ERROR, err.message));
      else this.fail(new H2ConnectionError(H2_ERROR.INTERNAL_ERROR, (err as Error).message));
    }
  }

  private parse(input: Buffer): void {
    let buf = input;
    if (this.pending) {
      buf = Buffer.concat([this.pending, input]);
      this.pending = undefined;
    }
    let off = 0;
    if (!this.prefaceReceived) {
      const need = CLIENT_PREFACE.length;
      if (buf.length < need) {
        if (!CLIENT_PREFACE.subarray(0, buf.length).equals(buf)) {
          throw new H2ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'bad client preface');
        }
        this.pending = buf;
        return;
      }
      if (!CLIENT_PREFACE.equals(buf.subarray(0, need))) {
        throw new H2ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'bad client preface');
      }
      this.prefaceReceived = true;
      clearTimeout(this.prefaceTimer);
      off = need;
    }
    while (off < buf.length && !this.destroyed) {
      if (this.dataLeft > 0) {
        const n = Math.min(this.dataLeft, buf.length - off);
        this.dataLeft -= n;
        this.deliver(buf.subarray(off, off + n));
        off += n;
        if (this.dataLeft === 0) this.endOfData();
        continue;
      }
      if (buf.length - off < FRAME_HEADER_LENGTH) break;
      const length = (buf[off]! << 16) | (buf[off + 1]! << 8) | buf[off + 2]!;
      const type = buf[off + 3]!;
      const flags = buf[off + 4]!;
      const streamId = buf.readUInt32BE(off + 5) & 0x7fffffff;
      if (length > this.maxFrameSize) {
        throw new H2ConnectionError(
          H2_ERROR.FRAME_SIZE_ERROR,
          `frame of ${length} bytes exceeds ${this.maxFrameSize}`,
        );
      }
      if (!this.peerSettingsSeen) {
        if (type !== FRAME.SETTINGS || (flags & FLAG.ACK) !== 0) {
          throw new H2ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'first frame of the peer is not SETTINGS');
        }
        this.peerSettingsSeen = true;
      }
      if (this.headerBlock && type !== FRAME.CONTINUATION) {
        throw new H2ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'header block interrupted');
      }
      if (type === FRAME.DATA && (flags & FLAG.PADDED) === 0) {
        // Streamed: the payload is delivered as it arrives, without waiting for the whole frame.
        off += FRAME_HEADER_LENGTH;
        this.startData(streamId, flags, length);
        if (length === 0) this.endOfData();
        continue;
      }
      if (buf.length - off < FRAME_HEADER_LENGTH + length) break;
      const payload = buf.subarray(off + FRAME_HEADER_LENGTH, off + FRAME_HEADER_LENGTH + length);
      off += FRAME_HEADER_LENGTH + length;
      try {
        this.onFrame(type, flags, streamId, payload);
      } catch (err) {
        if (!(err instanceof H2StreamError)) throw err;
        this.streamError(err);
      }
    }
    if (off < buf.length && !this.destroyed) this.pending = buf.subarray(off);
  }

  private onFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    switch (type) {
      case FRAME.DATA: {
        // Padded DATA (unpadded DATA is streamed by parse()).
        const body = unpad(payload, flags);
        this.startData(streamId, flags, payload.length);
        this.dataLeft = 0;
        // Padding counts against flow control; credit it back at once.
        const padding = payload.length - body.length;
        if (padding > 0 && this.dataStream) this.credit(this.dataStream, padding);
        else if (padding > 0) this.creditConnection(padding);
        this.deliver(body);
        this.endOfData();
        return;
      }
      case FRAME.HEADERS:
        this.onHeaders(flags, streamId, payload);
        return;
      case FRAME.CONTINUATION:
        this.onContinuation(flags, streamId, payload);
        return;
      case FRAME.PRIORITY:
        if (streamId === 0) throw new H2ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'PRIORITY on stream 0');
        if (payload.length !== 5)
          throw new H2StreamError(streamId, H2_ERROR.FRAME_SIZE_ERROR, 'PRIORITY size');
        return;
      case FRAME.RST_STREAM:
        this.onRstStream(streamId, payload);
        return;
      case FRAME.SETTINGS:
        this.onSettings(flags, streamId, payload);
        return;
      case FRAME.PUSH_PROMISE:
        throw new H2ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'PUSH_PROMISE with push disabled');
      case FRAME.PING:
        this.onPing(flags, streamId, payload);
        return;
      case FRAME.GOAWAY:
        this.onGoaway(streamId, payload);
        return;
      case FRAME.WINDOW_UPDATE:
        this.onWindowUpdate(streamId, payload);
        return;
      default:
        // Unknown frame types are ignored (RFC 9113 §4.1).
        return;
    }
  }

  private startData(streamId: number, flags: number, length: number): void {
    if (streamId === 0) throw new H2ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'DATA on stream 0');
    this.connRecvWindow -= length;
    if (this.connRecvWindow < 0) {
      throw new H2ConnectionError(H2_ERROR.FLOW_CONTROL_ERROR, 'peer exceeded the connection window');
    }
    this.dataLeft = length;
    this.dataEnd = (flags & FLAG.END_STREAM) !== 0;
    const stream = this.streams.get(streamId);
    if (stream?.remoteEnded) {
      // Half-closed (remote): the peer already sent END_STREAM (RFC 9113 §5.1).
      this.dataStream = undefined;
      this.creditConnection(length);
      this.streamError(new H2StreamError(streamId, H2_ERROR.STREAM_CLOSED, 'DATA after END_STREAM'));
      return;
    }
    if (!stream) {
      this.dataStream = undefined;
      this.creditConnection(length);
      if (this.peerFinished.has(streamId)) {
        throw new H2ConnectionError(H2_ERROR.STREAM_CLOSED, `DATA on closed stream ${streamId}`);
      }
      if (streamId > this.highestStreamId()) {
        throw new H2ConnectionError(H2_ERROR.PROTOCOL_ERROR, `DATA on idle stream ${streamId}`);
      }
      // A stream already closed or reset here: the peer may have sent this before it learned so.
      // Its bytes still count against the connection window (credited above), and it is ignored
      // (RFC 9113 §5.4.2, §6.1).
      return;
    }
    stream.recvWindow -= length;
    if (stream.recvWindow < 0) {
      this.dataStream = undefined;
      this.creditConnection(length);
      this.streamError(
        new H2StreamError(streamId, H2_ERROR.FLOW_CONTROL_ERROR, 'peer exceeded the stream window'),
      );
      return;
    }
    this.dataStream = stream;
  }

  private deliver(bytes: Buffer): void {
    const stream = this.dataStream;
    if (!stream || bytes.length === 0) return;
    if (stream.destroyed) {
      this.creditConnection(bytes.length);
      return;
    }
    if (stream.push(bytes)) this.credit(stream, bytes.length);
    else stream.heldCredit += bytes.length;
  }

  private endOfData(): void {
    const stream = this.dataStream;
    this.dataStream = undefined;
    if (stream && this.dataEnd) this.remoteEnd(stream);
  }

  /** Returns consumed bytes to the peer, in WINDOW_UPDATEs of at least half a window. */
  private credit(stream: H2Stream, n: number): void {
    this.creditConnection(n);
    if (stream.remoteEnded || stream.released) return;
    stream.unacked += n;
    if (stream.unacked >= this.options.streamWindow / 2) {
      stream.recvWindow += stream.unacked;
      this.writeWindowUpdate(stream.id, stream.unacked);
      stream.unacked = 0;
    }
  }

  private creditConnection(n: number): void {
    this.connUnacked += n;
    if (this.connUnacked >= this.options.connectionWindow / 2) {
      this.connRecvWindow += this.connUnacked;
      this.writeWindowUpdate(0, this.connUnacked);
      this.connUnacked = 0;
    }
  }

  private remoteEnd(stream: H2Stream): void {
    if (stream.remoteEnded) return;
    stream.remoteEnded = true;
    stream.push(null);
    if (stream.localEnded) this.release(stream);
  }

  /** A stream never opened by either side (RFC 9113 §5.1 "idle"); we never push, so the peer's even ids stay idle. */
  private isIdle(streamId: number): boolean {
    const ours = (streamId % 2 === 1) === (this.options.role === 'client');
    return ours ? streamId >= this.nextStreamId : streamId > this.lastPeerStreamId;
  }

  private highestStreamId(): number {
    return this.options.role === 'server' ? this.lastPeerStreamId : this.nextStreamId - 2;
  }

  private onHeaders(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new H2ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'HEADERS on stream 0');
    let body = unpad(payload, flags);
    if (flags & FLAG.PRIORITY) {
      if (body.length < 5) throw new H2ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, 'HEADERS priority fields');
      body = body.subarray(5);
    }
    this.headerBlock = {
      streamId,
      endStream: (flags & FLAG.END_STREAM) !== 0,
      parts: [body],
      size: body.length,
    };
    if (flags & FLAG.END_HEADERS) this.endOfHeaders();
  }

  private onContinuation(flags: number, streamId: number, payload: Buffer): void {
    const block = this.headerBlock;
    if (!block || block.streamId !== streamId) {
      throw new H2ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'CONTINUATION without a header block');
    }
    block.parts.push(payload);
    block.size += payload.length;
    if (block.size > 2 * (this.options.maxHeaderListSize ?? 64 * 1024)) {
      throw new H2ConnectionError(H2_ERROR.ENHANCE_YOUR_CALM, 'header block too large');
    }
    if (flags & FLAG.END_HEADERS) this.endOfHeaders();
  }

  private endOfHeaders(): void {
    const block = this.headerBlock as HeaderBlock;
    this.headerBlock = undefined;
    // Always decode, even for refused streams, to keep the HPACK table in step with the peer.
    let list: HeaderList;
    try {
      list = this.decoder.decode(
        block.parts.length === 1 ? (block.parts[0] as Buffer) : Buffer.concat(block.parts),
      );
    } catch (err) {
      if (!(err instanceof HpackListTooLargeError)) throw err;
      this.refuseLargeHeaderList(block);
      return;
    }
    const headers = toRecord(list);
    const { streamId } = block;
    const existing = this.streams.get(streamId);
    if (existing?.remoteEnded) {
      throw new H2StreamError(streamId, H2_ERROR.STREAM_CLOSED, 'HEADERS after END_STREAM');
    }
    if (this.options.role === 'server') {
      if (existing) {
        // Trailers from the client.
        if (!block.endStream)
          throw new H2StreamError(streamId, H2_ERROR.PROTOCOL_ERROR, 'second HEADERS without END_STREAM');
        const bad = trailersProblem(list);
        if (bad) throw new H2StreamError(streamId, H2_ERROR.PROTOCOL_ERROR, `malformed trailers: ${bad}`);
        this.remoteEnd(existing);
        return;
      }
      if (this.peerFinished.has(streamId)) {
        throw new H2ConnectionError(H2_ERROR.STREAM_CLOSED, `HEADERS on closed stream ${streamId}`);
      }
      // Trailers the client sent before it learned that we reset the stream (RFC 9113 §5.4.2).
      if (this.locallyReset.has(streamId)) return;
      if (streamId % 2 === 0 || streamId <= this.lastPeerStreamId) {
        throw new H2ConnectionError(H2_ERROR.PROTOCOL_ERROR, `client opened invalid stream ${streamId}`);
      }
      this.lastPeerStreamId = streamId;
      const bad = requestProblem(list);
      if (bad) {
        // Counted like a refusal: a peer cannot make us answer malformed requests at line rate.
        this.countReset();
        this.refuseStream(streamId, H2_ERROR.PROTOCOL_ERROR, block.endStream);
        this.emit(
          'malformed',
          new H2StreamError(streamId, H2_ERROR.PROTOCOL_ERROR, `malformed request: ${bad}`),
        );
        return;
      }
      if (this.closed || this.streams.size >= this.options.maxConcurrentStreams) {
        this.countReset();
        this.refuseStream(streamId, H2_ERROR.REFUSED_STREAM, block.endStream);
        return;
      }
      const stream = new H2Stream(
        this,
        streamId,
        this.remoteSettings.initialWindowSize,
        this.options.streamWindow,
      );
      this.streams.set(streamId, stream);
      this.emit('stream', stream, headers);
      if (block.endStream) this.remoteEnd(stream);
      return;
    }
    if (!existing) {
      if (this.peerFinished.has(streamId)) {
        throw new H2ConnectionError(H2_ERROR.STREAM_CLOSED, `HEADERS on closed stream ${streamId}`);
      }
      if (streamId % 2 === 1 && streamId < this.nextStreamId) return; // a stream we already reset
      throw new H2ConnectionError(H2_ERROR.PROTOCOL_ERROR, `HEADERS on unknown stream ${streamId}`);
    }
    if (existing.responded) {
      // Trailers: they end the stream and carry nothing HBONE uses.
      if (!block.endStream)
        throw new H2StreamError(streamId, H2_ERROR.PROTOCOL_ERROR, 'HEADERS after the response');
      const bad = trailersProblem(list);
      if (bad) throw new H2StreamError(streamId, H2_ERROR.PROTOCOL_ERROR, `malformed trailers: ${bad}`);
      this.remoteEnd(existing);
      return;
    }
    const bad = responseProblem(list);
    if (bad) throw new H2StreamError(streamId, H2_ERROR.PROTOCOL_ERROR, `malformed response: ${bad}`);
    const status = Number(headers[':status']);
    if (status >= 100 && status < 200) {
      // Informational: a final response must follow on the same stream (RFC 9113 §8.1).
      if (block.endStream)
        throw new H2StreamError(streamId, H2_ERROR.PROTOCOL_ERROR, 'informational response with END_STREAM');
      return;
    }
    existing.responded = true;
    existing.emit('response', headers);
    if (block.endStream) this.remoteEnd(existing);
  }

  /**
   * A header list over our SETTINGS_MAX_HEADER_LIST_SIZE costs only its stream (RFC 9113 §6.5.2,
   * §10.5.1): a new request gets 431, anything else a reset. The block was fully decoded, so the
   * connection stays usable.
   */
  private refuseLargeHeaderList(block: HeaderBlock): void {
    const { streamId } = block;
    const existing = this.streams.get(streamId);
    if (existing) {
      this.streamError(new H2StreamError(streamId, H2_ERROR.CANCEL, 'header list too large'));
      return;
    }
    if (this.options.role === 'client') {
      if (streamId % 2 === 1 && streamId < this.nextStreamId) return; // a stream we already reset
      throw new H2ConnectionError(H2_ERROR.PROTOCOL_ERROR, `HEADERS on unknown stream ${streamId}`);
    }
    if (streamId % 2 === 0 || streamId <= this.lastPeerStreamId) {
      throw new H2ConnectionError(H2_ERROR.PROTOCOL_ERROR, `client opened invalid stream ${streamId}`);
    }
    this.lastPeerStreamId = streamId;
    this.writeFrame(
      FRAME.HEADERS,
      FLAG.END_HEADERS | FLAG.END_STREAM,
      streamId,
      encodeHeaders(this.encoder, { ':status': '431' }),
    );
    // The rest of the request is not wanted; NO_ERROR asks the client to stop sending it (§8.1).
    if (!block.endStream) this.refuseStream(streamId, H2_ERROR.NO_ERROR, false);
  }

  /**
   * Resets a stream the application never saw. Frames the peer sent before it learned so are
   * ignored; its trailers must not look like a stream opened out of order.
   */
  private refuseStream(streamId: number, code: number, peerEnded: boolean): void {
    this.writeFrame(FRAME.RST_STREAM, 0, streamId, u32(code));
    if (peerEnded) this.notePeerFinished(streamId);
    else this.noteLocallyReset(streamId);
  }

  private onRstStream(streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new H2ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    if (payload.length !== 4) throw new H2ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, 'RST_STREAM size');
    const stream = this.streams.get(streamId);
    if (!stream) {
      if (this.isIdle(streamId)) {
        throw new H2ConnectionError(H2_ERROR.PROTOCOL_ERROR, `RST_STREAM on idle stream ${streamId}`);
      }
      return; // closed: ignored (RFC 9113 §5.1), and never answered with RST_STREAM
    }
    // Only a stream reset before it was answered counts towards the rapid-reset budget, as in the
    // h2 crate under Istio's ztunnel, which counts resets of streams not yet accepted
    // (hyperium/h2 src/proto/streams/recv.rs, recv_reset). A client cancelling answered streams,
    // such as a proxy closing pooled tunnels after a burst, is not an attack.
    if (this.options.role === 'server' && !stream.headersSent) this.countReset();
    this.notePeerFinished(streamId);
    const code = payload.readUInt32BE(0);
    stream.rstCode = code;
    if (code === H2_ERROR.NO_ERROR && stream.remoteEnded && this.options.role === 'client') {
      // A complete response, then "stop sending the request" (RFC 9113 §8.1): the response must
      // not be discarded. What we still had to send is dropped; the stream closes once read.
      this.release(stream);
      for (const item of stream.out.splice(0)) item.cb(null);
      if (stream.readableEnded) stream.destroy();
      else stream.once('end', () => stream.destroy());
      return;
    }
    stream.aborted = true;
    this.release(stream);
    stream.emit('aborted');
    const err =
      code === H2_ERROR.NO_ERROR || code === H2_ERROR.CANCEL
        ? undefined
        : Object.assign(new Error(`stream reset by peer with code ${code}`), {
            code: 'ERR_HTTP2_STREAM_ERROR',
          });
    stream.destroy(err);
  }

  private onSettings(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) throw new H2ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if (flags & FLAG.ACK) {
      if (payload.length !== 0)
        throw new H2ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, 'SETTINGS ACK with payload');
      return;
    }
    if (payload.length % 6 !== 0) throw new H2ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, 'SETTINGS size');
    const s = this.remoteSettings;
    // The assumed client limit holds only until the peer states its own; silence means unlimited.
    if (!this.settingsReceived) s.maxConcurrentStreams = Number.POSITIVE_INFINITY;
    for (let i = 0; i < payload.length; i += 6) {
      const id = payload.readUInt16BE(i);
      const value = payload.readUInt32BE(i + 2);
      switch (id) {
        case SETTING.HEADER_TABLE_SIZE:
          s.headerTableSize = value;
          // Signalled at the start of the next block we send, which follows our ACK.
          this.encoder.setMaxTableSize(value);
          break;
        case SETTING.ENABLE_PUSH:
          if (value > 1) throw new H2ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'ENABLE_PUSH must be 0 or 1');
          s.enablePush = value === 1;
          break;
        case SETTING.MAX_CONCURRENT_STREAMS:
          s.maxConcurrentStreams = value;
          break;
        case SETTING.INITIAL_WINDOW_SIZE: {
          if (value > MAX_WINDOW)
            throw new H2ConnectionError(H2_ERROR.FLOW_CONTROL_ERROR, 'INITIAL_WINDOW_SIZE too large');
          const delta = value - s.initialWindowSize;
          s.initialWindowSize = value;
          for (const stream of this.streams.values()) {
            stream.sendWindow += delta;
            if (stream.sendWindow > MAX_WINDOW) {
              throw new H2ConnectionError(H2_ERROR.FLOW_CONTROL_ERROR, 'stream window overflow');
            }
            if (delta > 0) this.blocked.add(stream);
          }
          break;
        }
        case SETTING.MAX_FRAME_SIZE:
          if (value < DEFAULT_MAX_FRAME || value > 16_777_215) {
            throw new H2ConnectionError(H2_ERROR.PROTOCOL_ERROR, `MAX_FRAME_SIZE ${value} out of range`);
          }
          s.maxFrameSize = value;
          break;
        case SETTING.MAX_HEADER_LIST_SIZE:
          s.maxHeaderListSize = value;
          break;
        default:
          break; // unknown settings are ignored
      }
    }
    this.checkControlBacklog();
    this.settingsReceived = true;
    this.writeFrame(FRAME.SETTINGS, FLAG.ACK, 0);
    this.emit('remoteSettings', { ...s });
    this.flushBlocked();
  }

  private onPing(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) throw new H2ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'PING on a stream');
    if (payload.length !== 8) throw new H2ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, 'PING size');
    if (flags & FLAG.ACK) {
      const key = payload.toString('hex');
      const pending = this.pings.get(key);
      if (pending) {
        this.pings.delete(key);
        clearTimeout(pending.timer);
        pending.cb(null);
      }
      return;
    }
    this.checkControlBacklog();
    this.writeFrame(FRAME.PING, FLAG.ACK, 0, Buffer.from(payload));
  }

  private onGoaway(streamId: number, payload: Buffer): void {
    if (streamId !== 0) throw new H2ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'GOAWAY on a stream');
    if (payload.length < 8) throw new H2ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, 'GOAWAY size');
    const lastStreamId = payload.readUInt32BE(0) & 0x7fffffff;
    const code = payload.readUInt32BE(4);
    this.goawayReceived = true;
    this.closed = true;
    this.emit('goaway', code, lastStreamId);
    // Streams the peer never processed were refused; they may be retried elsewhere.
    for (const stream of [...this.streams.values()]) {
      if (stream.id > lastStreamId && this.options.role === 'client') {
        stream.rstCode = H2_ERROR.REFUSED_STREAM;
        stream.aborted = true;
        this.release(stream);
        stream.destroy(new Error('stream refused by GOAWAY'));
      }
    }
    this.maybeFinish();
  }

  private onWindowUpdate(streamId: number, payload: Buffer): void {
    if (payload.length !== 4) throw new H2ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, 'WINDOW_UPDATE size');
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    if (streamId === 0) {
      if (increment === 0) throw new H2ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      this.connSendWindow += increment;
      if (this.connSendWindow > MAX_WINDOW) {
        throw new H2ConnectionError(H2_ERROR.FLOW_CONTROL_ERROR, 'connection window overflow');
      }
      this.flushBlocked();
      return;
    }
    const stream = this.streams.get(streamId);
    if (!stream && this.isIdle(streamId)) {
      throw new H2ConnectionError(H2_ERROR.PROTOCOL_ERROR, `WINDOW_UPDATE on idle stream ${streamId}`);
    }
    if (increment === 0) throw new H2StreamError(streamId, H2_ERROR.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
    if (!stream) return;
    stream.sendWindow += increment;
    if (stream.sendWindow > MAX_WINDOW) {
      throw new H2StreamError(streamId, H2_ERROR.FLOW_CONTROL_ERROR, 'stream window overflow');
    }
    if (stream.out.length > 0) this.flush(stream);
  }

  /** Control frames we must answer (PING, SETTINGS) are refused once the peer stops reading them. */
  private checkControlBacklog(): void {
    if (this.socket.writableLength > CONTROL_BACKLOG_LIMIT) {
      throw new H2ConnectionError(
        H2_ERROR.ENHANCE_YOUR_CALM,
        'peer floods control frames without reading replies',
      );
    }
  }

  /** Counts streams the peer cancelled unanswered or had refused; too many per second is the rapid-reset attack. */
  private countReset(): void {
    const now = Date.now();
    if (now - this.resetWindowStart >= 1_000) {
      this.resetWindowStart = now;
      this.resetsInWindow = 0;
    }
    this.resetsInWindow += 1;
    if (this.resetsInWindow > RESET_BUDGET_PER_SECOND) {
      throw new H2ConnectionError(H2_ERROR.ENHANCE_YOUR_CALM, 'too many stream resets');
    }
  }

  private streamError(err: H2StreamError): void {
    const stream = this.streams.get(err.streamId);
    // Never RST_STREAM a stream that is already closed (RFC 9113 §5.1, §5.4.2).
    if (!stream) return;
    this.writeFrame(FRAME.RST_STREAM, 0, err.streamId, u32(err.code));
    stream.rstCode = err.code;
    stream.aborted = true;
    this.release(stream);
    stream.destroy(err);
  }

  private onSocketEnd(): void {
    // The peer closed its side: no more frames will come, and open streams cannot finish.
    this.destroy();
  }
}

/** Validates and HPACK-encodes outgoing headers, pseudo-headers first (RFC 9113 §8.3). */
function encodeHeaders(encoder: HpackEncoder, headers: H2Headers): Buffer {
  const list: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const text = String(value);
    if (INVALID_FIELD.test(text) || INVALID_FIELD.test(name)) {
      throw new TypeError(`header ${JSON.stringify(name)} has a CR, LF or NUL character`);
    }
    list.push([name.toLowerCase(), text]);
  }
  list.sort((a, b) => Number(b[0].startsWith(':')) - Number(a[0].startsWith(':')));
  return encoder.encode(list);
}

function u32(value: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(value >>> 0, 0);
  return b;
}

/** Removes the padding of a PADDED frame (RFC 9113 §6.1). */
function unpad(payload: Buffer, flags: number): Buffer {
  if ((flags & FLAG.PADDED) === 0) return payload;
  if (payload.length < 1)
    throw new H2ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, 'padded frame without pad length');
  const padLength = payload[0] as number;
  if (padLength >= payload.length)
    throw new H2ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'padding exceeds payload');
  return payload.subarray(1, payload.length - padLength);
}

function toRecord(list: HeaderList): H2IncomingHeaders {
  const out: H2IncomingHeaders = {};
  for (const [name, value] of list) {
    const key = name.toLowerCase();
    out[key] = out[key] === undefined ? value : `${out[key]}, ${value}`;
  }
  return out;
}

import { Duplex } from 'node:stream';
import type { H2Connection, H2Headers } from './h2-connection.js';
import { FRAME_HEADER_LENGTH, H2_ERROR } from './h2-frames.js';

type WriteCallback = (err?: Error | null) => void;

/** One queued write: payload bytes, or the end of the stream. */
export interface OutItem {
  buf: Buffer;
  offset: number;
  end: boolean;
  cb: WriteCallback;
}

/**
 * An HTTP/2 stream as a half-open duplex: writes become DATA frames within the peer's windows,
 * DATA frames become readable bytes, end() sends END_STREAM, close(code) sends RST_STREAM.
 * The shape (rstCode, aborted, respond, close, 'response') follows Node's Http2Stream so that the
 * HBONE code reads the same over either. 'released' fires when the stream leaves its connection
 * (both END_STREAMs, or a reset), whether or not the application has read what arrived.
 */
export class H2Stream extends Duplex {
  rstCode: number | undefined;
  aborted = false;
  headersSent = false;
  /** Client side: the final response headers arrived. */
  responded = false;
  /** Bytes we may still send before the peer's next WINDOW_UPDATE. */
  sendWindow: number;
  /** Bytes the peer may still send us. */
  recvWindow: number;
  /** Consumed bytes not yet returned to the peer in a WINDOW_UPDATE. */
  unacked = 0;
  /** Received bytes still sitting in the readable buffer above its high-water mark. */
  heldCredit = 0;
  readonly out: OutItem[] = [];
  localEnded = false;
  remoteEnded = false;
  /** True once the stream left its connection's table. */
  released = false;

  constructor(
    readonly session: H2Connection,
    readonly id: number,
    sendWindow: number,
    recvWindow: number,
  ) {
    super({
      allowHalfOpen: true,
      decodeStrings: true,
      readableHighWaterMark: STREAM_HIGH_WATER_MARK,
      writableHighWaterMark: STREAM_HIGH_WATER_MARK,
    });
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }

  /** Sends response headers (server side). */
  respond(headers: H2Headers, options: { endStream?: boolean } = {}): void {
    if (this.headersSent || this.destroyed) return;
    this.headersSent = true;
    this.session.sendHeaders(this, headers, options.endStream === true);
  }

  /** Resets the stream with `code` (RST_STREAM) and destroys it. */
  close(code: number = H2_ERROR.CANCEL): void {
    if (this.released) {
      if (!this.destroyed) this.destroy();
      return;
    }
    this.rstCode = code;
    this.session.resetStream(this, code);
    this.destroy();
  }

  /**
   * Writes the `length` bytes at `frame[FRAME_HEADER_LENGTH..]`; the first FRAME_HEADER_LENGTH
   * bytes are headroom this stream may overwrite with a DATA frame header, so that header and
   * payload leave as one buffer (see H2Connection.sendFramed). When anything is queued ahead, or
   * the payload does not fit one frame and the send windows, it is an ordinary write of the
   * payload. Returns false when the writer should wait for `cb` before writing more.
   */
  writeFramed(frame: Buffer, length: number, cb: WriteCallback): boolean {
    if (
      this.writableLength === 0 &&
      !this.writableEnded &&
      !this.destroyed &&
      this.session.sendFramed(this, frame, length, cb)
    ) {
      return !this.session.writeBlocked;
    }
    return this.write(frame.subarray(FRAME_HEADER_LENGTH, FRAME_HEADER_LENGTH + length), cb);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: WriteCallback): void {
    this.session.queueData(this, { buf: chunk, offset: 0, end: false, cb });
  }

  /** Corked writes arrive together and leave in one TLS write. */
  override _writev(chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>, cb: WriteCallback): void {
    const last = chunks.length - 1;
    this.session.queueDataBatch(
      this,
      chunks.map((c, i) => ({ buf: c.chunk, offset: 0, end: false, cb: i === last ? cb : noop })),
    );
  }

  override _final(cb: WriteCallback): void {
    this.session.queueData(this, { buf: EMPTY, offset: 0, end: true, cb });
  }

  override _read(): void {
    this.session.streamRead(this);
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.session.streamDestroyed(this, err);
    cb(err);
  }
}

/**
 * Buffered bytes before a stream pushes back, each way. A 64 KiB socket read is written whole and
 * a turn's DATA frames are read whole, without a pause and resume between every 16 KiB.
 */
const STREAM_HIGH_WATER_MARK = 64 * 1024;
const EMPTY = Buffer.alloc(0);
const noop = () => {};

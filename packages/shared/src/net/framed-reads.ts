import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { DATA_FRAME_PAYLOAD, FRAME_HEADER_LENGTH } from '../h2/h2-frames.js';

/**
 * Bytes a read may fill after the headroom: the largest DATA payload we send, so that a full read
 * is one frame and header and payload fill one 16 KiB TLS record exactly.
 */
export const FRAMED_READ_SIZE = DATA_FRAME_PAYLOAD;
/**
 * Reads shorter than this are copied into a buffer of their own size: a queued short read never
 * holds a whole read buffer, and small reads cost no allocation of a whole read buffer each.
 */
const COPY_BELOW = 8 * 1024;

type WriteCallback = (err?: Error | null) => void;
/** A destination that can take a payload with frame-header headroom before it (an H2Stream). */
interface FramedSink {
  writeFramed(frame: Buffer, length: number, cb: WriteCallback): boolean;
}

const readers = new WeakMap<net.Socket, FramedReads>();

/**
 * Reads a socket (through its `onread` option) into buffers that keep FRAME_HEADER_LENGTH bytes of
 * headroom before the bytes read, so that an HTTP/2 stream can write its DATA frame header there and
 * hand header and payload to TLS as one buffer: Node's TLS socket copies every write of more than
 * one buffer into a new one before encrypting it. Any other destination gets the payload alone.
 *
 * Create the socket with `onread: reads.onread`, then `reads.register(socket)`; splice() attaches
 * the destination. Bytes read before that are held and reading stops until it is attached. Reading
 * also stops whenever the destination pushes back, and resumes once what it holds is written.
 *
 * An idle socket holds no read buffer of its own: Node keeps the buffer a socket will read into
 * next from the moment it starts reading, so sockets read into one staging buffer shared by all of
 * them (a read is handled before any other read happens) until a read is long (bulk traffic); that
 * read is copied out once and the socket reads into buffers of its own, each handed to the
 * destination whole, until a read is short again. 1,000 idle tunnels thus hold no 16 KiB each.
 */
export class FramedReads {
  /** Bytes read from the socket. */
  bytes = 0;
  readonly onread = {
    buffer: (): Buffer => this.nextBuffer(),
    callback: (n: number, buf: Uint8Array): boolean => this.onRead(n, buf),
  };
  private socket: net.Socket | undefined;
  private sink: (Duplex & Partial<FramedSink>) | undefined;
  private readonly held: Array<[Buffer, number]> = [];
  /** This socket's own read buffer while its reads are long; the shared staging buffer otherwise. */
  private own: Buffer | undefined;
  private static staging: Buffer | undefined;
  /** Writes not yet completed; reading resumes when a push-back's writes are all done. */
  private inFlight = 0;
  private paused = false;
  private failed = false;
  private readonly done = (err?: Error | null): void => {
    this.inFlight -= 1;
    if (err) this.failed = true;
    if (this.paused && this.inFlight === 0 && !this.failed) {
      this.paused = false;
      this.socket?.resume();
    }
  };

  register(socket: net.Socket): void {
    this.socket = socket;
    readers.set(socket, this);
  }

  /** Starts delivering to `sink`: held reads first, then every read as it arrives. */
  attach(sink: Duplex): void {
    if (this.sink) return;
    this.sink = sink as Duplex & Partial<FramedSink>;
    for (const [frame, n] of this.held.splice(0)) this.deliver(frame, n);
    if (this.paused) this.socket?.pause();
    else this.socket?.resume();
  }

  private nextBuffer(): Buffer {
    if (this.own) return this.own.subarray(FRAME_HEADER_LENGTH);
    FramedReads.staging ??= Buffer.allocUnsafeSlow(FRAME_HEADER_LENGTH + FRAMED_READ_SIZE);
    return FramedReads.staging.subarray(FRAME_HEADER_LENGTH);
  }

  /** Returns false to stop reading (Node then stops the socket's reads until resume()). */
  private onRead(n: number, buf: Uint8Array): boolean {
    this.bytes += n;
    const big = Buffer.from(
      buf.buffer,
      buf.byteOffset - FRAME_HEADER_LENGTH,
      FRAME_HEADER_LENGTH + buf.length,
    );
    let frame = big;
    if (n < COPY_BELOW) {
      // Short: copied out; the next read goes to the staging buffer, this socket's own is dropped.
      frame = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + n);
      big.copy(frame, FRAME_HEADER_LENGTH, FRAME_HEADER_LENGTH, FRAME_HEADER_LENGTH + n);
      this.own = undefined;
    } else if (big.buffer === FramedReads.staging?.buffer) {
      // Long, into the shared buffer: copied out once; bulk reads follow into buffers of its own.
      frame = Buffer.allocUnsafeSlow(FRAME_HEADER_LENGTH + n);
      big.copy(frame, FRAME_HEADER_LENGTH, FRAME_HEADER_LENGTH, FRAME_HEADER_LENGTH + n);
      this.own = Buffer.allocUnsafeSlow(FRAME_HEADER_LENGTH + FRAMED_READ_SIZE);
    } else {
      // Long, into its own buffer: handed to the destination whole; the next read takes a new one.
      this.own = Buffer.allocUnsafeSlow(FRAME_HEADER_LENGTH + FRAMED_READ_SIZE);
    }
    if (!this.sink) {
      this.held.push([frame, n]);
      this.paused = true;
      return false;
    }
    this.deliver(frame, n);
    return !this.paused;
  }

  private deliver(frame: Buffer, n: number): void {
    const sink = this.sink as Duplex & Partial<FramedSink>;
    this.inFlight += 1;
    const more =
      typeof sink.writeFramed === 'function'
        ? sink.writeFramed(frame, n, this.done)
        : sink.write(frame.subarray(FRAME_HEADER_LENGTH, FRAME_HEADER_LENGTH + n), this.done);
    // A callback already run (written at once) left inFlight at zero: nothing to wait for.
    this.paused = !more && this.inFlight > 0;
  }
}

/** The framed reader registered for `socket`, if it was created with one. */
export function framedReadsOf(stream: Duplex): FramedReads | undefined {
  return readers.get(stream as net.Socket);
}

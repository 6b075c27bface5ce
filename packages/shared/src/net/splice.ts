import { constants as h2 } from 'node:http2';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { framedReadsOf } from './framed-reads.js';

export interface SpliceStats {
  /** Bytes read from `a` and written to `b`. */
  readonly aToB: number;
  /** Bytes read from `b` and written to `a`. */
  readonly bToA: number;
  /** The first error on either side, if the tunnel did not end cleanly in both directions. */
  readonly error?: Error;
}

/**
 * Copies bytes both ways between two duplex streams until both directions end. Backpressure comes
 * from pipe(); half-close passes through (an end on one side ends the other side's writable only);
 * an abnormal close of either side aborts the other (a socket is reset, an HTTP/2 stream gets
 * RST_STREAM), so a truncated stream never looks complete to either end. Sockets must be created
 * with allowHalfOpen.
 */
export function splice(a: Duplex, b: Duplex): Promise<SpliceStats> {
  return new Promise((resolve) => {
    let aToB = 0;
    let bToA = 0;
    let error: Error | undefined;
    let closed = 0;
    const batchIntoB = writeBatcher(b);
    const batchIntoA = writeBatcher(a);
    // Registered before pipe()'s own listeners, so the destination is corked before it is written.
    a.on('data', (chunk: Buffer) => {
      aToB += chunk.length;
      batchIntoB();
    });
    b.on('data', (chunk: Buffer) => {
      bToA += chunk.length;
      batchIntoA();
    });
    // A socket read through FramedReads emits no 'data': its reads go to the other side directly.
    const framedA = framedReadsOf(a);
    const framedB = framedReadsOf(b);
    const onClose = (self: Duplex, other: Duplex) => () => {
      if (!endedCleanly(self)) {
        error ??= new Error('peer closed before both directions ended');
        abort(other);
      }
      if (++closed === 2) {
        aToB += framedA?.bytes ?? 0;
        bToA += framedB?.bytes ?? 0;
        resolve(error ? { aToB, bToA, error } : { aToB, bToA });
      }
    };
    const onError = (err: Error) => {
      error ??= err;
    };
    a.on('error', onError);
    b.on('error', onError);
    a.once('close', onClose(a, b));
    b.once('close', onClose(b, a));
    // pipe() still passes the end on; attached after it, held reads go first.
    a.pipe(b);
    b.pipe(a);
    framedA?.attach(b);
    framedB?.attach(a);
  });
}

/**
 * Returns a function that corks a socket `dst` on the first chunk of an event-loop turn and uncorks
 * it after the turn's I/O callbacks: every chunk read in one turn leaves the socket in one syscall
 * instead of one each.
 */
function writeBatcher(dst: Duplex): () => void {
  // Only a socket's writes are syscalls. HTTP/2 streams already leave in one TLS write per flush,
  // and an in-process duplex (the waypoint's HTTP/1.1 connection) would only have its input
  // buffered and handled a turn phase later.
  if (!(dst instanceof net.Socket)) return () => {};
  let corked = false;
  const uncork = () => {
    corked = false;
    if (!dst.destroyed) dst.uncork();
  };
  return () => {
    if (corked || dst.destroyed || dst.writableEnded) return;
    corked = true;
    dst.cork();
    setImmediate(uncork);
  };
}

type MaybeH2Stream = Duplex & { rstCode?: number; aborted?: boolean; close?: (code: number) => void };

/**
 * Both directions ended normally. An HTTP/2 stream that was reset also reports its readable side
 * ended and its writable side finished, so its `aborted` flag and RST code are checked too.
 */
function endedCleanly(stream: MaybeH2Stream): boolean {
  if (!(stream.readableEnded && stream.writableFinished)) return false;
  return !stream.aborted && (stream.rstCode === undefined || stream.rstCode === h2.NGHTTP2_NO_ERROR);
}

/**
 * Aborts a stream so that its peer sees a broken connection, never a complete one: an HTTP/2
 * stream is reset with CONNECT_ERROR (RFC 9113 §8.5), a TCP socket closed with a RST.
 */
function abort(stream: Duplex): void {
  if (stream.destroyed) return;
  const h2stream = stream as MaybeH2Stream;
  if ('rstCode' in h2stream && typeof h2stream.close === 'function') {
    h2stream.close(h2.NGHTTP2_CONNECT_ERROR);
  } else {
    resetSocket(stream);
  }
}

/**
 * Closes a TCP socket with a RST (SO_LINGER 0), so the peer reads ECONNRESET rather than an
 * orderly FIN after a truncated stream. Other duplexes (TLS, pipes) are destroyed.
 */
export function resetSocket(stream: Duplex): void {
  if (stream.destroyed) return;
  if (stream instanceof net.Socket && !(stream instanceof TLSSocket)) {
    try {
      stream.resetAndDestroy();
      return;
    } catch {
      // Not a TCP handle (a pipe): an ordinary close is all there is.
    }
  }
  stream.destroy();
}

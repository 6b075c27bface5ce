/**
 * Request header limits: how many fields a request may carry and how long its headers may take.
 * Over a limit the request is refused with a status, never truncated.
 */
import type http from 'node:http';
import type http2 from 'node:http2';
import type { Duplex } from 'node:stream';

/** Envoy's default max_headers_count (DEFAULT_MAX_HEADERS_COUNT). */
export const DEFAULT_MAX_HEADERS_COUNT = 100;

/**
 * Node's own HTTP/2 header-count cap, kept above what fits in the header size limit (every
 * entry counts at least 32 bytes of it) so that this proxy counts and answers 431 itself; past
 * it Node resets the stream, which is a refusal too.
 */
export const H2_MAX_HEADER_PAIRS = 4096;

/** How many header fields a request carried, pseudo-headers not counted. */
export function headerCount(req: http.IncomingMessage | http2.Http2ServerRequest): number {
  let n = 0;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) if (!raw[i]?.startsWith(':')) n++;
  return n;
}

/**
 * Node's headers timeout only watches sockets it accepted itself, not the tunnel streams handed
 * to it: a client that starts a request and does not finish its headers in time gets 408 here.
 */
export function guardHeaders(
  conn: Duplex,
  ms: number,
  onTimeout: () => void,
): (res: http.ServerResponse) => void {
  let timer: NodeJS.Timeout | undefined;
  let inRequest = false;
  const stop = () => {
    clearTimeout(timer);
    timer = undefined;
  };
  conn.on('data', () => {
    if (inRequest || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      if (inRequest || conn.destroyed) return;
      onTimeout();
    }, ms);
  });
  conn.once('close', stop);
  return (res) => {
    inRequest = true;
    stop();
    const done = () => {
      inRequest = false;
    };
    res.once('finish', done);
    res.once('close', done);
  };
}

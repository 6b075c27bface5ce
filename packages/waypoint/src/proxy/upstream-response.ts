/** The upstream response streamed back to the client: headers, body and trailers. */
import type { Route } from '../config/waypoint-config.js';
import { mutateHeaders } from '../route/header-mutation.js';
import type { DownstreamResponse, DownstreamWatch } from './downstream.js';
import { type Exchange, mark } from './exchange.js';
import { takeGrpcStatus } from './local-reply.js';
import { grpcStatusOf, type Trailers, type UpstreamResponse } from './request-attempt.js';

/** Connection-specific headers, never forwarded either way. */
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'http2-settings',
  'host',
]);

/**
 * Streams an upstream response to the client, with the route's response header changes. `done`
 * is called once the response has ended (or been cut off), or with the error a step threw.
 */
export function respond(
  res: DownstreamResponse,
  ex: Exchange,
  route: Route,
  up: UpstreamResponse,
  watch: DownstreamWatch,
  done: (err?: unknown) => void,
): void {
  const base: Record<string, string | string[]> = {};
  const upHeaders = up.headers;
  for (const k in upHeaders) {
    if (k.startsWith(':') || HOP_BY_HOP.has(k)) continue;
    base[k] = upHeaders[k] as string | string[];
  }
  const headers = mutateHeaders(base, route.responseHeaders);
  headers['x-request-id'] = ex.requestId;
  ex.status = up.status;
  const gs = grpcStatusOf(up.headers);
  if (gs !== undefined) ex.grpcStatus = String(gs);
  // A gRPC trailers-only response: the status goes to the client as trailers after the
  // headers (Node's server cannot send a single HEADERS frame that ends the stream).
  const statusTrailers = ex.grpc && 'stream' in res ? takeGrpcStatus(headers) : undefined;
  res.writeHead(up.status, headers);
  // Relayed by hand (not piped): the client's writer need not be a Node stream.
  const body = up.body;
  body.on('data', (c: Buffer) => {
    ex.responseBytes += c.length;
    if (res.destroyed) return;
    if (!res.write(c)) {
      body.pause();
      res.once('drain', () => body.resume());
    }
  });
  watch.onGone(() => up.abort());
  up.onEnd((trailers) => {
    try {
      finish(res, ex, watch, trailers, statusTrailers);
    } catch (err) {
      done(err);
      return;
    }
    done();
  });
}

/** The end of a relayed response: its trailers and end, or a reset when it broke. */
function finish(
  res: DownstreamResponse,
  ex: Exchange,
  watch: DownstreamWatch,
  trailers: Trailers | undefined,
  statusTrailers: Trailers | undefined,
): void {
  if (trailers === undefined) {
    // The upstream broke mid-response: the client sees a reset, as Envoy gives it.
    mark(ex, 'WP_ERR_UPSTREAM_RESET_MID_RESPONSE');
    watch.cutOff();
    res.destroy();
    return;
  }
  // The upstream's trailers over the status moved out of a trailers-only head; no pseudo-fields.
  const ts = withoutPseudo(trailers, withoutPseudo(statusTrailers, undefined));
  if (ts) {
    const tgs = ts['grpc-status'];
    if (tgs !== undefined) ex.grpcStatus = String(tgs);
    res.addTrailers(ts);
  }
  res.end();
}

/** `into` (made when first needed) with the fields of `from` that are not pseudo-fields. */
function withoutPseudo(from: Trailers | undefined, into: Trailers | undefined): Trailers | undefined {
  if (from === undefined) return into;
  let out = into;
  for (const k in from) {
    if (k.startsWith(':')) continue;
    out ??= {};
    out[k] = from[k] as string | string[];
  }
  return out;
}

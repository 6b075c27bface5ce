/** The upstream response streamed back to the client: headers, body and trailers. */
import type { Route } from '../config/waypoint-config.js';
import { mutateHeaders } from '../route/header-mutation.js';
import type { DownstreamResponse, DownstreamWatch } from './downstream.js';
import { type Exchange, mark } from './exchange.js';
import { takeGrpcStatus } from './local-reply.js';
import { grpcStatusOf, type UpstreamResponse } from './request-attempt.js';

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

/** Streams an upstream response to the client, with the route's response header changes. */
export async function respond(
  res: DownstreamResponse,
  ex: Exchange,
  route: Route,
  up: UpstreamResponse,
  watch: DownstreamWatch,
): Promise<void> {
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
  const statusTrailers = ex.grpc && 'stream' in res ? takeGrpcStatus(headers) : {};
  res.writeHead(up.status, headers);
  // Relayed by hand (not piped): the client's writer need not be a Node stream.
  const resume = () => up.body.resume();
  up.body.on('data', (c: Buffer) => {
    ex.responseBytes += c.length;
    if (res.destroyed) return;
    if (!res.write(c)) {
      up.body.pause();
      res.once('drain', resume);
    }
  });
  watch.onGone(() => up.abort());
  const trailers = await up.trailers.catch(() => undefined);
  if (trailers === undefined) {
    // The upstream broke mid-response: the client sees a reset, as Envoy gives it.
    mark(ex, 'WP_ERR_UPSTREAM_RESET_MID_RESPONSE');
    res.destroy();
    return;
  }
  const merged: Record<string, string | string[]> = { ...statusTrailers, ...trailers };
  let ts: Record<string, string | string[]> | undefined;
  for (const k in merged) {
    if (k.startsWith(':')) continue;
    ts ??= {};
    ts[k] = merged[k] as string | string[];
  }
  if (ts) {
    const tgs = ts['grpc-status'];
    if (tgs !== undefined) ex.grpcStatus = String(tgs);
    res.addTrailers(ts);
  }
  res.end();
}

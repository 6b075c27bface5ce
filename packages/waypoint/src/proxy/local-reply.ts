/** Writes a local reply from the reply table (waypoint-errors.ts) on a request's response. */
import type { DownstreamResponse } from './downstream.js';
import { type Exchange, mark } from './exchange.js';
import { REPLIES, type ReplyKey } from './waypoint-errors.js';

/**
 * Answers from the reply table: the entry's status, body and flag, or the status and body the
 * route's config gives for a reply it shapes (redirect, direct response, fault abort).
 */
export function localReply(
  res: DownstreamResponse,
  ex: Exchange,
  key: ReplyKey,
  shape: { status?: number; body?: string; headers?: Record<string, string> } = {},
): void {
  const spec = REPLIES[key];
  mark(ex, key);
  const status = shape.status ?? spec.status;
  const text = shape.body ?? spec.body;
  const extra = shape.headers ?? {};
  ex.status = status;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const payload = Buffer.from(text);
  const headers: Record<string, string | string[]> = { 'x-request-id': ex.requestId, ...extra };
  if (ex.grpc && 'stream' in res) {
    const t = takeGrpcStatus(headers);
    if (Object.keys(t).length > 0) {
      res.writeHead(status, headers);
      res.addTrailers(t);
      res.end();
      return;
    }
  }
  if (!('content-type' in headers) && payload.length) headers['content-type'] = 'text/plain';
  headers['content-length'] = String(payload.length);
  ex.responseBytes = payload.length;
  res.writeHead(status, headers);
  res.end(payload);
}

const GRPC_STATUS_HEADERS = ['grpc-status', 'grpc-message', 'grpc-status-details-bin'];

/** Removes the gRPC status headers from `headers` and returns them. */
export function takeGrpcStatus(
  headers: Record<string, string | string[]>,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const k of GRPC_STATUS_HEADERS) {
    const v = headers[k];
    if (v !== undefined) {
      out[k] = v;
      delete headers[k];
    }
  }
  return out;
}

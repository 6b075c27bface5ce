/**
 * What a readiness endpoint (15021 `/healthz/ready`) answers, shared by the node agent and the
 * waypoint: the answers of upstream ztunnel's src/readiness/server.rs.
 */
import type http from 'node:http';

/** An answer of the readiness endpoint; `body` is sent as text/plain unless empty. */
export interface ReadinessReply {
  status: number;
  body: string;
}

/**
 * What `/healthz/ready` answers, as upstream's src/readiness/server.rs: GET gives 200 `ready\n`
 * when nothing blocks, else 500 `not ready, pending: <blockers, sorted>\n`; another method on that
 * path gives an empty 405, and any other path an empty 404 (whatever the method). The query is ignored.
 * `notReadyStatus` replaces the 500 where the component follows another upstream (the waypoint:
 * 503, as Istio's pilot-agent answers for Envoy).
 */
export function readinessReply(
  method: string,
  url: string,
  pending: readonly string[],
  options: { notReadyStatus?: 500 | 503 } = {},
): ReadinessReply {
  if (pathOf(url) !== '/healthz/ready') return { status: 404, body: '' };
  if (method !== 'GET') return { status: 405, body: '' };
  if (pending.length === 0) return { status: 200, body: 'ready\n' };
  return {
    status: options.notReadyStatus ?? 500,
    body: `not ready, pending: ${[...pending].sort().join(', ')}\n`,
  };
}

/** Writes a readiness reply: text/plain when it has a body, else empty. */
export function sendReadinessReply(res: http.ServerResponse, reply: ReadinessReply): void {
  res.statusCode = reply.status;
  if (reply.body !== '') res.setHeader('content-type', 'text/plain');
  res.end(reply.body);
}

/** The path of a request target, without its query. */
export function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

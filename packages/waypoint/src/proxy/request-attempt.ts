/** One upstream attempt: one request to one endpoint, over HTTP/1.1 or HTTP/2. */
import type http from 'node:http';
import http2 from 'node:http2';
import type { UpstreamCluster, UpstreamEndpoint } from '../config/waypoint-config.js';
import type { AttemptOutcome } from '../retry/retry-policy.js';
import type { RequestMetrics } from '../telemetry/request-metrics.js';
import type { Http1Client } from './http1/http1-client.js';
import type { ReplayableBody } from './replayable-body.js';
import { UpstreamConnectError, type UpstreamPool } from './upstream-pool.js';
import { REPLIES, type WaypointErrorCode } from './waypoint-errors.js';

/** An upstream response body as the relay reads it (a Readable, or the direct client's body). */
export interface UpstreamBody {
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  pause(): unknown;
  resume(): unknown;
}

export interface UpstreamResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[]>;
  readonly body: UpstreamBody;
  /**
   * Calls `fn` once, when the body has ended: with the trailers (empty when none), or with
   * undefined when the response broke before its end or was aborted.
   */
  readonly onEnd: (fn: (trailers: Trailers | undefined) => void) => void;
  /** Abort the attempt (discard its response). */
  readonly abort: () => void;
}

export type Trailers = Record<string, string | string[]>;

/** `onEnd` of a response whose end is a promise of its trailers (Node's clients). */
function endOf(trailers: Promise<Trailers>): UpstreamResponse['onEnd'] {
  return (fn) => {
    trailers.then(fn, () => fn(undefined));
  };
}

export type Attempt =
  | { ok: true; response: UpstreamResponse }
  | { ok: false; outcome: AttemptOutcome; error: WaypointErrorCode };

export interface AttemptDeps {
  readonly upstreams: UpstreamPool;
  readonly metrics: RequestMetrics;
  /** The direct HTTP/1.1 client; without it HTTP/1.1 goes through Node's client (an Agent). */
  readonly http1?: Http1Client;
}

/**
 * One attempt to one endpoint. `done` is called once: with the response headers and a body
 * stream, or with the failure as a retry outcome and the error it is (its reply and flag in
 * waypoint-errors.ts). Returns what cancels the attempt.
 */
export function startAttempt(
  deps: AttemptDeps,
  cluster: UpstreamCluster,
  ep: UpstreamEndpoint,
  method: string,
  path: string,
  authority: string,
  headers: Record<string, string | string[]>,
  body: ReplayableBody,
  deadline: number,
  clientIp: string | undefined,
  done: (a: Attempt) => void,
): () => void {
  let cancel = () => {};
  let settled = false;
  const settle = (a: Attempt) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    done(a);
  };
  const remaining = deadline - performance.now();
  const timer =
    Number.isFinite(remaining) && remaining > 0
      ? setTimeout(() => {
          cancel();
          // A timed-out try counts for retry_on as the status it is answered with (504).
          settle({
            ok: false,
            outcome: { status: REPLIES.WP_ERR_UPSTREAM_TIMEOUT.status },
            error: 'WP_ERR_UPSTREAM_TIMEOUT',
          });
        }, remaining)
      : undefined;
  if (cluster.protocol === 'http2') {
    const h2headers = {
      ...headers,
      ':method': method,
      ':path': path,
      ':authority': authority,
      ':scheme': 'http',
    };
    deps.upstreams
      .http2Stream(ep, cluster, clientIp, h2headers, () => !settled)
      .then(
        (stream) => {
          if (!stream) return;
          cancel = () => {
            body.detach(stream);
            stream.close(http2.constants.NGHTTP2_CANCEL);
          };
          if (!body.attach(stream)) stream.end();
          const trailers = new Promise<Trailers>((resolveT, rejectT) => {
            let got: Record<string, string | string[]> = {};
            stream.on('trailers', (t) => {
              got = t as Record<string, string | string[]>;
            });
            stream.on('end', () => resolveT(got));
            stream.on('close', () => {
              if (stream.rstCode && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR)
                rejectT(new Error('reset'));
              else resolveT(got);
            });
            stream.on('error', (err) => rejectT(err));
          });
          trailers.catch(() => {});
          stream.on('response', (h) => {
            const status = Number(h[':status']);
            settle({
              ok: true,
              response: {
                status,
                headers: h as Record<string, string | string[]>,
                body: stream,
                onEnd: endOf(trailers),
                abort: () => stream.close(http2.constants.NGHTTP2_CANCEL),
              },
            });
          });
          // An error or a close before the response: reset (refused, if the server said so).
          const reset = () => {
            const refused = stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM;
            settle({
              ok: false,
              outcome: refused ? { refusedStream: true } : { reset: true },
              error: 'WP_ERR_UPSTREAM_RESET',
            });
          };
          stream.on('error', reset);
          stream.on('close', reset);
        },
        () => settle({ ok: false, outcome: { connectFailure: true }, error: 'WP_ERR_UPSTREAM_CONNECT' }),
      );
    // The stream's cancel is set once the session is there.
    return () => cancel();
  }
  if (deps.http1 ? deps.http1.wouldOverflow(cluster) : deps.upstreams.wouldOverflow(cluster)) {
    deps.metrics.overflows.inc({ cluster: cluster.name, limit: 'pending_requests' });
    settle({ ok: false, outcome: { overflow: true }, error: 'WP_ERR_UPSTREAM_OVERFLOW' });
    return cancel;
  }
  if (deps.http1) {
    cancel = deps.http1.request(cluster, ep, method, path, authority, headers, body, clientIp, settle);
    return cancel;
  }
  const h1 = { ...headers, host: authority };
  const upReq = deps.upstreams.http1Request(cluster, ep, method, path, h1, clientIp);
  cancel = () => {
    body.detach(upReq);
    upReq.destroy();
  };
  upReq.on('response', (r: http.IncomingMessage) => {
    const trailers = new Promise<Trailers>((resolveT, rejectT) => {
      r.on('end', () => resolveT(r.trailers as Trailers));
      r.on('aborted', () => rejectT(new Error('aborted')));
      r.on('error', rejectT);
      r.on('close', () => {
        if (!r.complete) rejectT(new Error('closed'));
      });
    });
    trailers.catch(() => {});
    settle({
      ok: true,
      response: {
        status: r.statusCode ?? 502,
        headers: r.headers as Record<string, string | string[]>,
        body: r,
        onEnd: endOf(trailers),
        abort: () => {
          r.destroy();
          upReq.destroy();
        },
      },
    });
  });
  upReq.on('error', (err) => {
    if (err instanceof UpstreamConnectError)
      settle({ ok: false, outcome: { connectFailure: true }, error: 'WP_ERR_UPSTREAM_CONNECT' });
    else settle({ ok: false, outcome: { reset: true }, error: 'WP_ERR_UPSTREAM_TERMINATED' });
  });
  if (!body.attach(upReq)) upReq.end();
  return cancel;
}

/** The gRPC status in an upstream response's headers (a trailers-only response), if any. */
export function grpcStatusOf(headers: Record<string, string | string[] | undefined>): number | undefined {
  const v = headers['grpc-status'];
  if (v === undefined) return undefined;
  const n = Number(Array.isArray(v) ? v[0] : v);
  return Number.isInteger(n) ? n : undefined;
}

import type http from 'node:http';
import { SpiffeId } from '@ambient/shared';
import { describe, expect, it } from 'vitest';
import type { ConnectionContext, Exchange } from './exchange.js';
import { localReply } from './local-reply.js';
import { REPLIES } from './waypoint-errors.js';

/** What a response object was asked to do. */
interface Written {
  status?: number;
  headers?: Record<string, string | string[]>;
  trailers?: Record<string, string | string[]>;
  body?: string;
  destroyed: boolean;
}

function fakeResponse(opts: { h2?: boolean; headersSent?: boolean } = {}) {
  const w: Written = { destroyed: false };
  const res = {
    headersSent: opts.headersSent ?? false,
    writeHead(status: number, headers: Record<string, string | string[]>) {
      w.status = status;
      w.headers = { ...headers };
    },
    addTrailers(t: Record<string, string | string[]>) {
      w.trailers = { ...t };
    },
    end(payload?: Buffer) {
      w.body = payload ? payload.toString() : '';
    },
    destroy() {
      w.destroyed = true;
    },
    ...(opts.h2 && { stream: {} }),
  };
  return { res: res as unknown as http.ServerResponse, w };
}

function exchange(grpc = false): Exchange {
  return {
    start: 0,
    ctx: { peer: SpiffeId.of('cluster.local', 'demo', 'client') } as unknown as ConnectionContext,
    method: 'GET',
    path: '/',
    authority: 'reviews:9080',
    requestId: 'req-1',
    traceparent: '00-0-0-01',
    grpc,
    protocol: 'HTTP/1.1',
    flags: [],
    status: 0,
    attempts: 0,
    requestBytes: 0,
    responseBytes: 0,
  };
}

describe('localReply', () => {
  it('answers an error with its table entry: status, body, flag, request id', () => {
    const { res, w } = fakeResponse();
    const ex = exchange();
    localReply(res, ex, 'WP_ERR_NO_HEALTHY_UPSTREAM');
    const spec = REPLIES.WP_ERR_NO_HEALTHY_UPSTREAM;
    expect(w.status).toBe(spec.status);
    expect(w.body).toBe(spec.body);
    expect(w.headers).toEqual({
      'x-request-id': 'req-1',
      'content-type': 'text/plain',
      'content-length': String(spec.body.length),
    });
    expect([...ex.flags]).toEqual(['UH']);
    expect(ex.status).toBe(503);
    expect(ex.responseBytes).toBe(spec.body.length);
  });

  it('takes the status, body and headers the route config shapes, keeping the flag of the kind', () => {
    const { res, w } = fakeResponse();
    const ex = exchange();
    localReply(res, ex, 'fault_abort', { status: 418 });
    expect(w.status).toBe(418);
    expect(w.body).toBe('fault filter abort');
    expect([...ex.flags]).toEqual(['FI']);
    const redirect = fakeResponse();
    localReply(redirect.res, exchange(), 'redirect', { status: 302, headers: { location: 'http://x/' } });
    expect(redirect.w.status).toBe(302);
    expect(redirect.w.headers).toMatchObject({ location: 'http://x/', 'content-length': '0' });
    expect(redirect.w.headers).not.toHaveProperty('content-type');
  });

  it('sends a gRPC status as trailers on HTTP/2, with no body', () => {
    const { res, w } = fakeResponse({ h2: true });
    localReply(res, exchange(true), 'fault_abort_grpc', {
      headers: {
        'content-type': 'application/grpc',
        'grpc-status': '14',
        'grpc-message': 'fault filter abort',
      },
    });
    expect(w.status).toBe(200);
    expect(w.headers).toEqual({ 'x-request-id': 'req-1', 'content-type': 'application/grpc' });
    expect(w.trailers).toEqual({ 'grpc-status': '14', 'grpc-message': 'fault filter abort' });
    expect(w.body).toBe('');
  });

  it('resets a response whose headers already went out, still logging the status and flag', () => {
    const { res, w } = fakeResponse({ headersSent: true });
    const ex = exchange();
    localReply(res, ex, 'WP_ERR_UPSTREAM_TIMEOUT');
    expect(w.destroyed).toBe(true);
    expect(w.status).toBeUndefined();
    expect(ex.status).toBe(504);
    expect([...ex.flags]).toEqual(['UT']);
  });
});

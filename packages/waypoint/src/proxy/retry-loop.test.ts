import { EventEmitter } from 'node:events';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { RouteAction, WaypointConfig } from '../config/waypoint-config.js';
import { ClusterRuntime } from '../lb/cluster-runtime.js';
import { RequestMetrics } from '../telemetry/request-metrics.js';
import { cluster, endpoint, httpChain, retryOn5xx } from '../testing/proxy-harness.js';
import { type DownstreamResponse, DownstreamWatch } from './downstream.js';
import type { Exchange } from './exchange.js';
import { ReplayableBody } from './replayable-body.js';
import type { Attempt } from './request-attempt.js';
import { runAttempts } from './retry-loop.js';
import type { UpstreamPool } from './upstream-pool.js';

/**
 * The loop around an attempt whose setup throws at once (Node's client refusing a header value, for
 * one). A stand-in upstream pool makes the throw; the loop, the cluster runtime and the timers are
 * the real ones.
 */
describe('the retry loop when an attempt throws as it starts', () => {
  it('fails the request once, and its try timer later starts no retry and counts no endpoint failure', async () => {
    const c = cluster('reviews');
    const ep = endpoint('reviews-1', 9);
    const config: WaypointConfig = {
      routes: new Map(),
      clusters: new Map([[c.name, c]]),
      endpoints: new Map([[c.name, [ep]]]),
    };
    const rt = new ClusterRuntime(c, { random: Math.random });
    const finished: Array<number | undefined> = [];
    const requestFinished = rt.requestFinished.bind(rt);
    rt.requestFinished = (e, status, failed) => {
      finished.push(status);
      requestFinished(e, status, failed);
    };
    let starts = 0;
    const upstreams = {
      wouldOverflow: () => false,
      http1Request: () => {
        starts++;
        throw new TypeError('invalid header value');
      },
    } as unknown as UpstreamPool;
    const metrics = new RequestMetrics(new Registry());
    const action: RouteAction = {
      kind: 'route',
      clusters: [{ cluster: c.name, weight: 1 }],
      timeoutMs: 0,
      mirrors: [],
      hashPolicies: [],
      retry: {
        ...retryOn5xx(),
        retryOn: new Set(['5xx', 'reset', 'connect-failure'] as const),
        perTryTimeoutMs: 30,
      },
    };
    const ex = {
      start: performance.now(),
      ctx: { sourceIp: '198.18.16.10', chain: httpChain([]) },
      method: 'GET',
      flags: [],
      attempts: 0,
    } as unknown as Exchange;
    const res = new EventEmitter() as unknown as DownstreamResponse;
    const outcomes: string[] = [];
    runAttempts(
      {
        deps: { upstreams, metrics },
        random: Math.random,
        config,
        cluster: c,
        runtime: rt,
        action,
        ex,
        request: { path: '/', authority: 'reviews', headers: {}, body: new ReplayableBody(undefined) },
        key: undefined,
        downstream: new DownstreamWatch(res),
      },
      (last: Attempt | undefined) => outcomes.push(`done ${last?.ok}`),
      (err) => outcomes.push(`fail ${(err as Error).message}`),
    );
    expect(outcomes).toEqual(['fail invalid header value']);
    // Past the try timeout and any backoff: the abandoned attempt's timer has fired.
    await new Promise((r) => setTimeout(r, 150));
    expect(outcomes).toEqual(['fail invalid header value']);
    expect(starts).toBe(1);
    expect(finished).toEqual([]);
    expect((await metrics.retries.get()).values.reduce((n, v) => n + v.value, 0)).toBe(0);
  });
});

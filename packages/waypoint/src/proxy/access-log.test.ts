import { SpiffeId } from '@ambient/shared';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { UpstreamEndpoint } from '../config/waypoint-config.js';
import { RequestMetrics } from '../telemetry/request-metrics.js';
import { recordExchange } from './access-log.js';
import type { ConnectionContext, Exchange } from './exchange.js';

const SLEEP = SpiffeId.of('cluster.local', 'demo', 'sleep');
const REVIEWS = SpiffeId.of('cluster.local', 'demo', 'reviews');

const reviews = (workload: string): UpstreamEndpoint => ({
  address: '10.0.1.7',
  port: 9080,
  workload,
  namespace: 'demo',
  serviceAccount: 'reviews',
  identity: REVIEWS,
  tunnel: 'hbone',
});

function connection(): ConnectionContext {
  return {
    peer: SLEEP,
    sourceIp: '10.0.0.1',
    target: { host: '10.96.0.9', port: 9080 },
    chain: {
      name: 'inbound-vip|9080|http|reviews.demo.svc.cluster.local',
      prefixes: [],
      port: 9080,
      handler: { kind: 'http' } as never,
    },
    baggage: new Map(),
  };
}

function exchange(
  ctx: ConnectionContext,
  endpoint: UpstreamEndpoint | undefined,
  flags: string[] = [],
): Exchange {
  return {
    start: performance.now(),
    ctx,
    method: 'GET',
    path: '/',
    authority: 'reviews:9080',
    requestId: 'id',
    traceparent: '00-0-0-01',
    grpc: false,
    protocol: 'HTTP/1.1',
    flags: flags as Exchange['flags'],
    status: 200,
    attempts: 1,
    requestBytes: 0,
    responseBytes: 10,
    ...(endpoint && { endpoint }),
  };
}

/** istio_requests_total by destination workload, response code and flags. */
async function counts(registry: Registry): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const line of (await registry.metrics()).split('\n')) {
    if (!line.startsWith('istio_requests_total{')) continue;
    const w = /destination_workload="([^"]*)"/.exec(line)?.[1];
    const c = /response_code="([^"]*)"/.exec(line)?.[1];
    const f = /response_flags="([^"]*)"/.exec(line)?.[1];
    out[`${w} ${c} ${f}`] = Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return out;
}

describe('recordExchange', () => {
  it("keeps a connection's label sets apart by outcome and endpoint, and follows new endpoint metadata", async () => {
    const registry = new Registry();
    const sinks = { metrics: new RequestMetrics(registry), clusterName: 'Kubernetes' };
    const ctx = connection();
    const v1 = reviews('reviews-v1');
    recordExchange(sinks, exchange(ctx, v1), 200);
    recordExchange(sinks, exchange(ctx, v1), 200);
    recordExchange(sinks, exchange(ctx, v1, ['UT']), 504);
    recordExchange(sinks, exchange(ctx, undefined, ['UH']), 503);
    // The same address in a new config snapshot, now another workload's: new labels, not cached ones.
    recordExchange(sinks, exchange(ctx, reviews('reviews-v2')), 200);
    // Another connection of the same client counts into the same series.
    recordExchange(sinks, exchange(connection(), v1), 200);
    expect(await counts(registry)).toEqual({
      'reviews-v1 200 -': 3,
      'reviews-v1 504 UT': 1,
      'unknown 503 UH': 1,
      'reviews-v2 200 -': 1,
    });
  });
});

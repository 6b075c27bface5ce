import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { listenHttp } from '@ambient/shared';
import { Counter, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { isMetricsPath, metricsHandler } from './metrics-endpoint.js';

const servers: http.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

function registry(): Registry {
  const r = new Registry();
  new Counter({ name: 'istio_tcp_connections_opened_total', help: 'opened', registers: [r] }).inc(3);
  return r;
}

async function serve(r: Registry): Promise<string> {
  const server = await listenHttp('127.0.0.1', 0, metricsHandler(r));
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function get(base: string, path: string, method = 'GET') {
  const res = await fetch(`${base}${path}`, { method });
  return { status: res.status, contentType: res.headers.get('content-type'), body: await res.text() };
}

describe('isMetricsPath', () => {
  it('accepts /metrics and /stats/prometheus, with or without a query, and nothing else', () => {
    for (const p of ['/metrics', '/stats/prometheus', '/metrics?x=1', '/stats/prometheus?a']) {
      expect(isMetricsPath(p)).toBe(true);
    }
    for (const p of ['/', '/stats', '/stats/prometheus/', '/metrics/', '/healthz/ready', '/Metrics', '']) {
      expect(isMetricsPath(p)).toBe(false);
    }
  });
});

describe('metricsHandler', () => {
  it('/stats/prometheus serves the same exposition and content type as /metrics', async () => {
    const r = registry();
    const base = await serve(r);
    const metrics = await get(base, '/metrics');
    const stats = await get(base, '/stats/prometheus');
    expect(metrics.status).toBe(200);
    expect(metrics.contentType).toBe(r.contentType);
    expect(metrics.contentType).toMatch(/^text\/plain/);
    expect(metrics.body).toMatch(/^istio_tcp_connections_opened_total 3$/m);
    expect(stats).toEqual(metrics);
  });

  it('unknown paths get an empty 404', async () => {
    const base = await serve(registry());
    for (const p of ['/', '/stats', '/healthz/ready', '/metrics/']) {
      expect(await get(base, p)).toEqual({ status: 404, contentType: null, body: '' });
    }
  });

  it('does not look at the method, as upstream', async () => {
    const base = await serve(registry());
    expect((await get(base, '/stats/prometheus', 'POST')).status).toBe(200);
    expect((await get(base, '/nope', 'POST')).status).toBe(404);
  });
});

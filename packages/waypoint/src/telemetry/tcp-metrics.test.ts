import { ISTIO_TCP_LABELS } from '@ambient/shared';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { TcpMetrics } from './tcp-metrics.js';

const labels = Object.fromEntries(
  ISTIO_TCP_LABELS.map((n) => [n, n === 'reporter' ? 'waypoint' : 'x']),
) as Record<(typeof ISTIO_TCP_LABELS)[number], string>;

async function value(registry: Registry, name: string): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  return (m?.values ?? []).reduce((sum, v) => sum + Number(v.value), 0);
}

describe('TcpMetrics', () => {
  it('counts a connection opened, its close once and its bytes once', async () => {
    const registry = new Registry();
    const m = new TcpMetrics(registry);
    const record = m.open(labels);
    expect(await value(registry, 'istio_tcp_connections_opened_total')).toBe(1);
    expect(await value(registry, 'istio_tcp_connections_closed_total')).toBe(0);
    record.closed();
    record.closed();
    record.bytes(10, 20);
    record.bytes(10, 20);
    expect(await value(registry, 'istio_tcp_connections_closed_total')).toBe(1);
    expect(await value(registry, 'istio_tcp_received_bytes_total')).toBe(10);
    expect(await value(registry, 'istio_tcp_sent_bytes_total')).toBe(20);
  });

  it('counts the close of a connection whose tunnel never started, with no bytes', async () => {
    const registry = new Registry();
    new TcpMetrics(registry).open(labels).closed();
    expect(await value(registry, 'istio_tcp_connections_closed_total')).toBe(1);
    expect(await value(registry, 'istio_tcp_sent_bytes_total')).toBe(0);
  });
});

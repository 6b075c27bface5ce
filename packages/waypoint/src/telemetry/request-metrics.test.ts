import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { REQUEST_LABELS, type RequestLabels, RequestMetrics } from './request-metrics.js';

function labelsOf(code: string): RequestLabels {
  const l: Record<string, string> = {};
  for (const n of REQUEST_LABELS) l[n] = `${n}-v`;
  l.response_code = code;
  return l as unknown as RequestLabels;
}

/** The same four metrics through prom-client's own `observe(labels, v)` and `inc(labels)`. */
function reference(registry: Registry) {
  const labelNames = [...REQUEST_LABELS];
  const m = new RequestMetrics(new Registry());
  const like = <T extends Counter<string> | Histogram<string>>(src: T): T => {
    const { name, help } = src as unknown as { name: string; help: string };
    const cfg = { name, help, labelNames, registers: [registry] };
    return (src instanceof Histogram
      ? new Histogram({ ...cfg, buckets: [...(src as unknown as { upperBounds: number[] }).upperBounds] })
      : new Counter(cfg)) as unknown as T;
  };
  const requests = like(m.requests);
  const duration = like(m.duration);
  const requestBytes = like(m.requestBytes);
  const responseBytes = like(m.responseBytes);
  return (labels: RequestLabels, d: number, q: number, r: number) => {
    requests.inc(labels);
    duration.observe(labels, d);
    requestBytes.observe(labels, q);
    responseBytes.observe(labels, r);
  };
}

const metricNames = [
  'istio_requests_total',
  'istio_request_duration_milliseconds',
  'istio_request_bytes',
  'istio_response_bytes',
];
async function exposition(registry: Registry): Promise<string> {
  let text = '';
  for (const n of metricNames) text += `${await registry.getSingleMetricAsString(n)}\n`;
  return text;
}

describe('RequestMetrics bound label sets', () => {
  // Every bucket edge, values past the last bucket, zero and fractions.
  const samples = [
    0, 0.2, 0.5, 0.7, 1, 5, 9.9, 10, 250, 4999, 300000, 300001, 1e9, 1, 100, 1000, 10000000, 100000001,
  ];

  it('report exactly what prom-client reports for the same observations', async () => {
    const ours = new Registry();
    const metrics = new RequestMetrics(ours);
    const refRegistry = new Registry();
    const ref = reference(refRegistry);
    const ok = metrics.bind(labelsOf('200'));
    for (const v of samples) {
      RequestMetrics.observe(ok, v, v * 3, v + 7);
      ref(labelsOf('200'), v, v * 3, v + 7);
    }
    // An equal label set in another object, and record() (bind on every call), share the record.
    const again = labelsOf('200');
    metrics.record(again, 3, 4, 5);
    ref(again, 3, 4, 5);
    const failed = metrics.bind(labelsOf('503'));
    RequestMetrics.observe(failed, 12, 0, 19);
    ref(labelsOf('503'), 12, 0, 19);
    RequestMetrics.observe(failed, 12, 0, 19);
    ref(labelsOf('503'), 12, 0, 19);
    const text = await exposition(ours);
    expect(text).toBe(await exposition(refRegistry));
    expect(text).toContain(`istio_requests_total{${REQUEST_LABELS[0]}=`);
    expect(text).toMatch(/istio_requests_total\{[^}]*response_code="200"[^}]*\} 19\n/);
  });

  it('start over after a registry reset, as prom-client does', async () => {
    const ours = new Registry();
    const metrics = new RequestMetrics(ours);
    const refRegistry = new Registry();
    const ref = reference(refRegistry);
    const ok = metrics.bind(labelsOf('200'));
    for (const v of samples) {
      RequestMetrics.observe(ok, v, 1, 1);
      ref(labelsOf('200'), v, 1, 1);
    }
    ours.resetMetrics();
    refRegistry.resetMetrics();
    for (const v of [2, 2, 70]) {
      RequestMetrics.observe(ok, v, 1, 1);
      ref(labelsOf('200'), v, 1, 1);
    }
    const text = await exposition(ours);
    expect(text).toBe(await exposition(refRegistry));
    expect(text).toMatch(/^istio_request_duration_milliseconds_count\{[^}]*\} 3$/m);
  });

  it('refuse a value that is not a number, as prom-client does', () => {
    const ok = new RequestMetrics(new Registry()).bind(labelsOf('200'));
    RequestMetrics.observe(ok, 1, 1, 1);
    RequestMetrics.observe(ok, 1, 1, 1);
    expect(() => ok.duration.observe(Number.NaN)).toThrow(/not a valid number/);
  });
});

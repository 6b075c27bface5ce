/**
 * Istio's standard request metrics as a waypoint reports them (`reporter="waypoint"`), plus the
 * waypoint's own counters for refused downstream input and local replies.
 */
import { ISTIO_REQUEST_LABELS, type IstioRequestLabels } from '@ambient/shared';
import { Counter, Histogram, type Registry } from 'prom-client';

/** Istio's full label set for request metrics, shared with every proxy that reports them. */
export const REQUEST_LABELS = ISTIO_REQUEST_LABELS;

export type RequestLabels = IstioRequestLabels;

/** Istio's default buckets for request duration (ms) and sizes (bytes). */
const DURATION_BUCKETS = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000,
];
const SIZE_BUCKETS = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000];

/** Label sets whose bound metrics are kept; past this the cache starts over. */
const MAX_CACHED_LABEL_SETS = 10_000;

/** The request metrics of one label set: what a finished request updates. */
export interface BoundRequestMetrics {
  readonly requests: { inc(): void };
  readonly duration: { observe(v: number): void };
  readonly requestBytes: { observe(v: number): void };
  readonly responseBytes: { observe(v: number): void };
}

export class RequestMetrics {
  private readonly children = new Map<string, BoundRequestMetrics>();
  readonly requests: Counter<keyof RequestLabels>;
  readonly duration: Histogram<keyof RequestLabels>;
  readonly requestBytes: Histogram<keyof RequestLabels>;
  readonly responseBytes: Histogram<keyof RequestLabels>;
  /** Downstream input refused before it became a request: malformed, oversized, too slow. */
  readonly downstreamErrors: Counter<'reason'>;
  readonly retries: Counter<'cluster'>;
  readonly ejections: Counter<'cluster'>;
  readonly overflows: Counter<'cluster' | 'limit'>;

  constructor(registry: Registry) {
    const labelNames = [...REQUEST_LABELS];
    this.requests = new Counter({
      name: 'istio_requests_total',
      help: 'Requests handled by the waypoint',
      labelNames,
      registers: [registry],
    });
    this.duration = new Histogram({
      name: 'istio_request_duration_milliseconds',
      help: 'Request duration in milliseconds',
      labelNames,
      buckets: DURATION_BUCKETS,
      registers: [registry],
    });
    this.requestBytes = new Histogram({
      name: 'istio_request_bytes',
      help: 'Request body sizes in bytes',
      labelNames,
      buckets: SIZE_BUCKETS,
      registers: [registry],
    });
    this.responseBytes = new Histogram({
      name: 'istio_response_bytes',
      help: 'Response body sizes in bytes',
      labelNames,
      buckets: SIZE_BUCKETS,
      registers: [registry],
    });
    this.downstreamErrors = new Counter({
      name: 'waypoint_downstream_errors_total',
      help: 'Downstream connections or requests refused before routing, by reason',
      labelNames: ['reason'],
      registers: [registry],
    });
    this.retries = new Counter({
      name: 'waypoint_upstream_retries_total',
      help: 'Upstream request retries, by cluster',
      labelNames: ['cluster'],
      registers: [registry],
    });
    this.ejections = new Counter({
      name: 'waypoint_outlier_ejections_total',
      help: 'Endpoints ejected by outlier detection, by cluster',
      labelNames: ['cluster'],
      registers: [registry],
    });
    this.overflows = new Counter({
      name: 'waypoint_upstream_overflow_total',
      help: 'Requests refused by a circuit breaker, by cluster and limit',
      labelNames: ['cluster', 'limit'],
      registers: [registry],
    });
  }

  record(labels: RequestLabels, durationMs: number, requestBytes: number, responseBytes: number): void {
    RequestMetrics.observe(this.bind(labels), durationMs, requestBytes, responseBytes);
  }

  /** One finished request in the metrics of its label set. */
  static observe(
    c: BoundRequestMetrics,
    durationMs: number,
    requestBytes: number,
    responseBytes: number,
  ): void {
    c.requests.inc();
    c.duration.observe(durationMs);
    c.requestBytes.observe(requestBytes);
    c.responseBytes.observe(responseBytes);
  }

  /** The metrics of a label set, for callers that keep them (a connection's repeated outcomes). */
  bind(labels: RequestLabels): BoundRequestMetrics {
    // prom-client hashes a label set on every call (sorting 25 names); the bound children are
    // kept per label set instead, keyed in label order.
    let key = '';
    for (const name of REQUEST_LABELS) key += `${labels[name]}\u0001`;
    let c = this.children.get(key);
    if (!c) {
      if (this.children.size >= MAX_CACHED_LABEL_SETS) this.children.clear();
      c = {
        requests: new BoundCounter(this.requests, labels),
        duration: new BoundHistogram(this.duration, labels),
        requestBytes: new BoundHistogram(this.requestBytes, labels),
        responseBytes: new BoundHistogram(this.responseBytes, labels),
      };
      this.children.set(key, c);
    }
    return c;
  }
}

/**
 * prom-client's own record of one label set (15.x), as its `observe` and `inc` update it. A bound
 * child of prom-client still validates and hashes its 25 labels on every call; these update the
 * record it made on the first call instead. The waypoint never removes a request label set, and a
 * reset metric (a new `hashMap`) is noticed: the next call goes through prom-client again.
 */
interface CounterRecord {
  readonly labels: Record<string, unknown>;
  value: number;
}
interface HistogramRecord {
  readonly labels: Record<string, unknown>;
  sum: number;
  count: number;
  readonly bucketValues: Record<number, number>;
}
interface MetricState<R> {
  readonly hashMap: Record<string, R>;
  readonly labelNames: readonly string[];
  readonly upperBounds?: readonly number[];
}

/** prom-client's record of `labels` in `state`, by label values (it may hold another equal object). */
function recordOf<R extends { readonly labels: Record<string, unknown> }>(
  state: MetricState<R>,
  labels: RequestLabels,
): R | undefined {
  const values = labels as unknown as Record<string, unknown>;
  for (const r of Object.values(state.hashMap)) {
    if (r.labels === values) return r;
  }
  for (const r of Object.values(state.hashMap)) {
    if (state.labelNames.every((n) => r.labels[n] === values[n])) return r;
  }
  return undefined;
}

class BoundCounter {
  private readonly child: { inc(): void };
  private readonly state: MetricState<CounterRecord>;
  private map: Record<string, CounterRecord> | undefined;
  private rec: CounterRecord | undefined;

  constructor(
    metric: Counter<keyof RequestLabels>,
    private readonly labels: RequestLabels,
  ) {
    this.child = metric.labels(labels);
    this.state = metric as unknown as MetricState<CounterRecord>;
  }

  inc(): void {
    const rec = this.rec;
    if (rec !== undefined && this.map === this.state.hashMap) {
      rec.value += 1;
      return;
    }
    this.child.inc();
    this.map = this.state.hashMap;
    this.rec = recordOf(this.state, this.labels);
  }
}

class BoundHistogram {
  private readonly child: { observe(v: number): void };
  private readonly state: MetricState<HistogramRecord>;
  private readonly bounds: readonly number[];
  private map: Record<string, HistogramRecord> | undefined;
  private rec: HistogramRecord | undefined;

  constructor(
    metric: Histogram<keyof RequestLabels>,
    private readonly labels: RequestLabels,
  ) {
    this.child = metric.labels(labels);
    this.state = metric as unknown as MetricState<HistogramRecord>;
    this.bounds = this.state.upperBounds ?? [];
  }

  observe(v: number): void {
    const rec = this.rec;
    if (rec !== undefined && this.map === this.state.hashMap && Number.isFinite(v)) {
      rec.sum += v;
      rec.count += 1;
      const bounds = this.bounds;
      for (let i = 0; i < bounds.length; i++) {
        const b = bounds[i] as number;
        if (v <= b) {
          rec.bucketValues[b] = (rec.bucketValues[b] as number) + 1;
          break;
        }
      }
      return;
    }
    // Validation, a non-finite value's error and the record's creation stay prom-client's.
    this.child.observe(v);
    this.map = this.state.hashMap;
    this.rec = recordOf(this.state, this.labels);
  }
}

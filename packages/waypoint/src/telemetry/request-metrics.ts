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
        requests: this.requests.labels(labels),
        duration: this.duration.labels(labels),
        requestBytes: this.requestBytes.labels(labels),
        responseBytes: this.responseBytes.labels(labels),
      };
      this.children.set(key, c);
    }
    return c;
  }
}

/**
 * The metrics endpoint (15020), routed as upstream ztunnel's src/metrics/server.rs: the Prometheus
 * exposition on `/metrics` and `/stats/prometheus` (the path Istio's scrape annotations name), an
 * empty 404 elsewhere. Like upstream it does not look at the method.
 */
import { type HttpHandler, pathOf } from '@ambient/shared';
import type { Registry } from 'prom-client';

/** The paths that serve the exposition. */
export const METRICS_PATHS: readonly string[] = ['/metrics', '/stats/prometheus'];

/** Whether a request target (query ignored) is one of METRICS_PATHS. */
export function isMetricsPath(url: string): boolean {
  return METRICS_PATHS.includes(pathOf(url));
}

export function metricsHandler(registry: Registry): HttpHandler {
  return async (req, res) => {
    if (!isMetricsPath(req.url ?? '')) {
      res.statusCode = 404;
      res.end();
      return;
    }
    const body = await registry.metrics();
    res.statusCode = 200;
    res.setHeader('content-type', registry.contentType);
    res.end(body);
  };
}

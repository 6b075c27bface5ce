import { describe, expect, it } from 'vitest';
import {
  BASE,
  build,
  C80,
  decoded,
  destinationRule,
  HOST,
  HTTP80,
  namespace,
  routesOf,
  service,
  struct,
  virtualService,
} from './waypoint-fixture.js';
import { UNLIMITED } from './waypoint-resources.js';

describe('waypoint resources: clusters', () => {
  it('sends EDS clusters with Istio defaults, telemetry metadata and HTTP/2 options for gRPC', () => {
    const d = decoded(build(...BASE.slice(0, 3), service('echo', [HTTP80, { name: 'grpc', port: 9000 }])));
    const c = d.clusters.get(C80);
    expect(c).toEqual({
      name: C80,
      type: 'EDS',
      edsClusterConfig: { serviceName: C80, edsConfig: { ads: {}, resourceApiVersion: 'V3' } },
      connectTimeout: { seconds: 10 },
      circuitBreakers: {
        thresholds: [
          {
            maxConnections: { value: UNLIMITED },
            maxPendingRequests: { value: UNLIMITED },
            maxRequests: { value: UNLIMITED },
            maxRetries: { value: UNLIMITED },
            retryBudget: { budgetPercent: { value: 20 }, minRetryConcurrency: { value: 3 } },
          },
        ],
      },
      metadata: { filterMetadata: { istio: expect.anything() } },
    });
    expect(c.lbPolicy).toBeUndefined(); // ROUND_ROBIN, the zero value
    expect(struct(c.metadata.filterMetadata.istio)).toEqual({
      services: [{ host: HOST, namespace: 'demo', name: 'echo' }],
    });
    expect(c.typedExtensionProtocolOptions).toBeUndefined();
    expect(d.clusters.get(`inbound-vip|9000|grpc|${HOST}`).typedExtensionProtocolOptions).toEqual({
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicitHttpConfig: { http2ProtocolOptions: {} },
      },
    });
  });

  it('applies a DestinationRule: load balancer, limits, outlier detection, and subsets with their own policy', () => {
    const d = decoded(
      build(
        ...BASE,
        destinationRule({
          host: HOST,
          trafficPolicy: {
            loadBalancer: { simple: 'LEAST_REQUEST' },
            connectionPool: {
              tcp: { maxConnections: 100, connectTimeout: '250ms' },
              http: { http1MaxPendingRequests: 10, http2MaxRequests: 1000 },
            },
            outlierDetection: { consecutive5xxErrors: 3, interval: '5s' },
          },
          subsets: [
            { name: 'v1', labels: { version: 'v1' } },
            {
              name: 'v2',
              labels: { version: 'v2' },
              trafficPolicy: {
                loadBalancer: { simple: 'RANDOM' },
                connectionPool: { http: { maxRetries: 5 } },
              },
            },
          ],
        }),
      ),
    );
    expect([...d.clusters.keys()]).toEqual([
      C80,
      `inbound-vip|80|http|v1|${HOST}`,
      `inbound-vip|80|http|v2|${HOST}`,
    ]);
    const top = d.clusters.get(C80);
    expect(top.lbPolicy).toBe('LEAST_REQUEST');
    expect(top.connectTimeout).toEqual({ nanos: 250_000_000 });
    expect(top.circuitBreakers.thresholds[0]).toEqual({
      maxConnections: { value: 100 },
      maxPendingRequests: { value: 10 },
      maxRequests: { value: 1000 },
      maxRetries: { value: UNLIMITED },
      retryBudget: { budgetPercent: { value: 20 }, minRetryConcurrency: { value: 3 } },
    });
    expect(top.outlierDetection).toEqual({
      consecutive_5xx: { value: 3 },
      interval: { seconds: 5 },
      baseEjectionTime: { seconds: 30 },
      maxEjectionPercent: { value: 10 },
    });
    expect(d.clusters.get(`inbound-vip|80|http|v1|${HOST}`).lbPolicy).toBe('LEAST_REQUEST');
    const v2 = d.clusters.get(`inbound-vip|80|http|v2|${HOST}`);
    expect(v2.lbPolicy).toBe('RANDOM');
    // The subset's connectionPool replaces the top-level one; an explicit maxRetries gets no budget.
    expect(v2.circuitBreakers.thresholds[0]).toEqual({
      maxConnections: { value: UNLIMITED },
      maxPendingRequests: { value: UNLIMITED },
      maxRequests: { value: UNLIMITED },
      maxRetries: { value: 5 },
    });
    expect(v2.outlierDetection.consecutive_5xx).toEqual({ value: 3 });
    expect(v2.connectTimeout).toEqual({ seconds: 10 });
  });

  it('puts the connection pool idle timeout, request and age limits in common_http_protocol_options', () => {
    const d = decoded(
      build(
        ...BASE.slice(0, 3),
        service('echo', [HTTP80, { name: 'grpc', port: 9000 }]),
        destinationRule({
          host: HOST,
          trafficPolicy: {
            connectionPool: {
              tcp: { idleTimeout: '10m', maxConnectionDuration: '1h' },
              http: { idleTimeout: '30s', maxRequestsPerConnection: 20 },
            },
          },
          subsets: [
            // TCP's idle timeout applies when HTTP's is unset.
            {
              name: 'v1',
              labels: { version: 'v1' },
              trafficPolicy: { connectionPool: { tcp: { idleTimeout: '2m' } } },
            },
            {
              name: 'v2',
              labels: { version: 'v2' },
              trafficPolicy: { connectionPool: { tcp: { maxConnections: 5 } } },
            },
          ],
        }),
      ),
    );
    const key = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
    const type = 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
    const common = {
      idleTimeout: { seconds: 30 },
      maxRequestsPerConnection: { value: 20 },
      maxConnectionDuration: { seconds: 3600 },
    };
    // An HTTP/1.1 port says so explicitly, as istiod does when it sets protocol options.
    expect(d.clusters.get(C80).typedExtensionProtocolOptions).toEqual({
      [key]: {
        '@type': type,
        explicitHttpConfig: { httpProtocolOptions: {} },
        commonHttpProtocolOptions: common,
      },
    });
    expect(d.clusters.get(`inbound-vip|9000|grpc|${HOST}`).typedExtensionProtocolOptions).toEqual({
      [key]: {
        '@type': type,
        explicitHttpConfig: { http2ProtocolOptions: {} },
        commonHttpProtocolOptions: common,
      },
    });
    expect(d.clusters.get(`inbound-vip|80|http|v1|${HOST}`).typedExtensionProtocolOptions).toEqual({
      [key]: {
        '@type': type,
        explicitHttpConfig: { httpProtocolOptions: {} },
        commonHttpProtocolOptions: { idleTimeout: { seconds: 120 } },
      },
    });
    // A pool with none of them: no protocol options on an HTTP/1.1 port.
    expect(d.clusters.get(`inbound-vip|80|http|v2|${HOST}`).typedExtensionProtocolOptions).toBeUndefined();
  });

  it('hashes consistently: RING_HASH clusters and a hash_policy on routes to them', () => {
    const d = decoded(
      build(
        ...BASE,
        destinationRule({
          trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'X-User' } } },
          subsets: [
            {
              name: 'sticky-ip',
              labels: { version: 'v1' },
              trafficPolicy: { loadBalancer: { consistentHash: { useSourceIp: true } } },
            },
          ],
        }),
        virtualService('vs', [
          {
            match: [{ uri: { prefix: '/ip' } }],
            route: [{ destination: { host: 'echo', subset: 'sticky-ip' } }],
          },
          { route: [{ destination: { host: 'echo' } }] },
        ]),
      ),
    );
    expect(d.clusters.get(C80).lbPolicy).toBe('RING_HASH');
    const [ip, header] = routesOf(d);
    expect(ip.route.hashPolicy).toEqual([{ connectionProperties: { sourceIp: true } }]);
    expect(header.route.hashPolicy).toEqual([{ header: { headerName: 'x-user' } }]);
  });

  it('prefers the DestinationRule in the service namespace and reports the others', () => {
    const r = build(
      ...BASE,
      namespace('istio-system'),
      destinationRule(
        { host: HOST, trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } },
        'a-global',
        'istio-system',
      ),
      destinationRule({ trafficPolicy: { loadBalancer: { simple: 'LEAST_REQUEST' } } }, 'z-local'),
    );
    expect(decoded(r).clusters.get(C80).lbPolicy).toBe('LEAST_REQUEST');
    expect(r.problems).toEqual([
      {
        ref: 'DestinationRule istio-system/a-global',
        path: 'spec.host',
        message: 'ignored: DestinationRule demo/z-local already applies to demo/echo',
      },
    ]);
  });
});

import type { Problem, Result } from '@ambient/shared';
import { describe, expect, it } from 'vitest';
import type { UpstreamCluster } from '../config/waypoint-config.js';
import { duration, encodeMessage, struct, typed } from '../testing/envoy-encode.js';
import { DEFAULT_CIRCUIT_BREAKERS } from './decode-cluster.js';
import { CLUSTER_TYPE_URL, HTTP_PROTOCOL_OPTIONS_TYPE } from './envoy-protos.js';
import { clusterResourceType } from './envoy-xds.js';

const NAME = 'inbound-vip|9080|http|reviews.bookinfo.svc.cluster.local';
const UNLIMITED = { value: 0xffffffff };

function cluster(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: NAME,
    type: 'EDS',
    edsClusterConfig: { serviceName: NAME, edsConfig: { ads: {} } },
    connectTimeout: duration(10_000),
    ...fields,
  };
}

function decode(object: Record<string, unknown>, name = NAME): Result<UpstreamCluster> {
  return clusterResourceType().decode(encodeMessage('envoy.config.cluster.v3.Cluster', object), name);
}

function decodeOk(object: Record<string, unknown>): UpstreamCluster {
  const r = decode(object);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.value;
}

function problems(object: Record<string, unknown>, name = NAME): readonly Problem[] {
  const r = decode(object, name);
  if (r.ok) throw new Error('expected problems');
  return r.problems;
}

const http2 = {
  typedExtensionProtocolOptions: {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': typed(HTTP_PROTOCOL_OPTIONS_TYPE, {
      explicitHttpConfig: { http2ProtocolOptions: {} },
    }),
  },
};

describe('clusterResourceType', () => {
  it('has the Cluster type URL', () => {
    expect(clusterResourceType().typeUrl).toBe(CLUSTER_TYPE_URL);
  });

  it('decodes a minimal EDS cluster with Envoy defaults', () => {
    expect(decodeOk(cluster({ connectTimeout: null }))).toEqual({
      name: NAME,
      connectTimeoutMs: 5000,
      lbPolicy: 'ROUND_ROBIN',
      circuitBreakers: DEFAULT_CIRCUIT_BREAKERS,
      protocol: 'http1',
    });
  });

  it('decodes the contract cluster: limits, retry budget, outlier detection, HTTP/2, service', () => {
    const c = decodeOk(
      cluster({
        lbPolicy: 'LEAST_REQUEST',
        circuitBreakers: {
          thresholds: [
            {
              maxConnections: { value: 100 },
              maxPendingRequests: { value: 10 },
              maxRequests: UNLIMITED,
              maxRetries: UNLIMITED,
              retryBudget: { budgetPercent: { value: 20 }, minRetryConcurrency: { value: 3 } },
            },
          ],
        },
        outlierDetection: {
          consecutive_5xx: { value: 3 },
          interval: duration(5000),
          baseEjectionTime: duration(15_000),
          maxEjectionPercent: { value: 50 },
        },
        metadata: {
          filterMetadata: {
            istio: struct({
              services: [
                { host: 'reviews.bookinfo.svc.cluster.local', namespace: 'bookinfo', name: 'reviews' },
              ],
            }),
          },
        },
        ...http2,
      }),
    );
    expect(c).toEqual({
      name: NAME,
      connectTimeoutMs: 10_000,
      lbPolicy: 'LEAST_REQUEST',
      circuitBreakers: {
        maxConnections: 100,
        maxPendingRequests: 10,
        maxRequests: 0xffffffff,
        maxRetries: 0xffffffff,
        retryBudget: { percent: 20, minRetryConcurrency: 3 },
      },
      outlierDetection: {
        consecutive5xx: 3,
        intervalMs: 5000,
        baseEjectionTimeMs: 15_000,
        maxEjectionPercent: 50,
        maxEjectionTimeMs: 300_000,
      },
      protocol: 'http2',
      service: { host: 'reviews.bookinfo.svc.cluster.local', namespace: 'bookinfo', name: 'reviews' },
    });
    expect(Object.isFrozen(c.circuitBreakers)).toBe(true);
  });

  it('maps every supported lb_policy', () => {
    for (const p of ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH'])
      expect(decodeOk(cluster({ lbPolicy: p })).lbPolicy).toBe(p);
  });

  it('fills unset thresholds, budget fields and outlier fields with Envoy defaults', () => {
    const c = decodeOk(
      cluster({
        circuitBreakers: { thresholds: [{ maxRequests: { value: 7 }, retryBudget: {} }] },
        outlierDetection: {},
      }),
    );
    expect(c.circuitBreakers).toEqual({
      maxConnections: 1024,
      maxPendingRequests: 1024,
      maxRequests: 7,
      maxRetries: 3,
      retryBudget: { percent: 20, minRetryConcurrency: 3 },
    });
    expect(c.outlierDetection).toEqual({
      consecutive5xx: 5,
      intervalMs: 10_000,
      baseEjectionTimeMs: 30_000,
      maxEjectionPercent: 10,
      maxEjectionTimeMs: 300_000,
    });
  });

  it('uses the last DEFAULT-priority thresholds and ignores HIGH', () => {
    const c = decodeOk(
      cluster({
        circuitBreakers: {
          thresholds: [
            { maxRequests: { value: 1 } },
            { priority: 'HIGH', maxRequests: { value: 2 } },
            { maxRequests: { value: 3 } },
          ],
        },
      }),
    );
    expect(c.circuitBreakers.maxRequests).toBe(3);
    expect(
      decodeOk(
        cluster({ circuitBreakers: { thresholds: [{ priority: 'HIGH', maxRequests: { value: 2 } }] } }),
      ).circuitBreakers,
    ).toEqual(DEFAULT_CIRCUIT_BREAKERS);
  });

  it('caps the ejection time at max(max_ejection_time, base) and reads always_eject_one_host', () => {
    const c = decodeOk(
      cluster({
        outlierDetection: {
          baseEjectionTime: duration(600_000),
          maxEjectionTime: duration(60_000),
          alwaysEjectOneHost: { value: true },
        },
      }),
    );
    expect(c.outlierDetection).toMatchObject({
      baseEjectionTimeMs: 600_000,
      maxEjectionTimeMs: 600_000,
      alwaysEjectOneHost: true,
    });
  });

  it('treats enforcing_consecutive_5xx 0 as consecutive 5xx detection off', () => {
    const c = decodeOk(
      cluster({
        outlierDetection: { consecutive_5xx: { value: 5 }, enforcingConsecutive_5xx: { value: 0 } },
      }),
    );
    expect(c.outlierDetection?.consecutive5xx).toBe(0);
  });

  it('reads HTTP/1.1 from explicit options and HTTP/2 from the legacy field', () => {
    const h1 = {
      typedExtensionProtocolOptions: {
        'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': typed(HTTP_PROTOCOL_OPTIONS_TYPE, {
          explicitHttpConfig: { httpProtocolOptions: {} },
        }),
      },
    };
    expect(decodeOk(cluster(h1)).protocol).toBe('http1');
    expect(decodeOk(cluster({ http2ProtocolOptions: {} })).protocol).toBe('http2');
  });

  it('reads the connection limits istiod puts in common_http_protocol_options', () => {
    const opts = (common: Record<string, unknown>) => ({
      typedExtensionProtocolOptions: {
        'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': typed(HTTP_PROTOCOL_OPTIONS_TYPE, {
          explicitHttpConfig: { httpProtocolOptions: {} },
          commonHttpProtocolOptions: common,
        }),
      },
    });
    const c = decodeOk(
      cluster(
        opts({
          idleTimeout: duration(30_000),
          maxRequestsPerConnection: { value: 100 },
          maxConnectionDuration: duration(600_000),
        }),
      ),
    );
    expect(c).toMatchObject({
      protocol: 'http1',
      idleTimeoutMs: 30_000,
      maxRequestsPerConnection: 100,
      maxConnectionDurationMs: 600_000,
    });
    // Unset: Envoy's defaults (one hour idle, no request or age limit), left to the pool.
    const none = decodeOk(cluster(opts({})));
    expect(none).not.toHaveProperty('idleTimeoutMs');
    expect(none).not.toHaveProperty('maxRequestsPerConnection');
    expect(none).not.toHaveProperty('maxConnectionDurationMs');
    // An idle timeout of zero disables it; zero requests is no limit.
    const zero = decodeOk(
      cluster(opts({ idleTimeout: duration(0), maxRequestsPerConnection: { value: 0 } })),
    );
    expect(zero.idleTimeoutMs).toBe(0);
    // Below a millisecond but not zero: 1 ms, not the 0 that would mean never.
    const tiny = decodeOk(
      cluster(opts({ idleTimeout: { nanos: 500_000 }, maxConnectionDuration: { nanos: 1 } })),
    );
    expect(tiny).toMatchObject({ idleTimeoutMs: 1, maxConnectionDurationMs: 1 });
    expect(zero).not.toHaveProperty('maxRequestsPerConnection');
    const key =
      'typed_extension_protocol_options[envoy.extensions.upstreams.http.v3.HttpProtocolOptions].common_http_protocol_options';
    expect(
      problems(
        cluster(
          opts({
            maxHeadersCount: { value: 50 },
            maxStreamDuration: duration(1000),
            headersWithUnderscoresAction: 'REJECT_REQUEST',
            idleTimeout: { seconds: -1 },
          }),
        ),
      ),
    ).toEqual([
      { path: `${key}.max_headers_count`, message: 'is not supported on a cluster' },
      { path: `${key}.max_stream_duration`, message: 'is not supported on a cluster' },
      { path: `${key}.headers_with_underscores_action`, message: 'is not supported on a cluster' },
      { path: `${key}.idle_timeout`, message: '-1s 0ns is not a non-negative duration' },
    ]);
  });

  it('reports protocol options it cannot honour', () => {
    const opts = (o: Record<string, unknown>) => ({
      typedExtensionProtocolOptions: {
        'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': typed(HTTP_PROTOCOL_OPTIONS_TYPE, o),
      },
    });
    const key = 'typed_extension_protocol_options[envoy.extensions.upstreams.http.v3.HttpProtocolOptions]';
    expect(problems(cluster(opts({ explicitHttpConfig: { http3ProtocolOptions: {} } })))).toEqual([
      { path: `${key}.explicit_http_config.http3_protocol_options`, message: 'HTTP/3 is not supported' },
    ]);
    expect(problems(cluster(opts({ useDownstreamProtocolConfig: {} })))).toEqual([
      {
        path: `${key}.use_downstream_protocol_config`,
        message: 'is not supported: use explicit_http_config',
      },
    ]);
    expect(problems(cluster(opts({ autoConfig: {}, httpFilters: [{ name: 'f' }] })))).toEqual([
      { path: `${key}.http_filters`, message: 'upstream HTTP filters are not supported' },
      { path: `${key}.auto_config`, message: 'is not supported: use explicit_http_config' },
    ]);
    expect(problems(cluster(opts({ explicitHttpConfig: {} })))).toEqual([
      { path: `${key}.explicit_http_config`, message: 'must set a protocol' },
    ]);
    expect(
      problems(
        cluster({
          protocolSelection: 'USE_DOWNSTREAM_PROTOCOL',
          typedExtensionProtocolOptions: { other: typed('google.protobuf.Empty') },
        }),
      ),
    ).toEqual([
      { path: 'protocol_selection', message: 'USE_DOWNSTREAM_PROTOCOL is not supported' },
      { path: 'typed_extension_protocol_options[other]', message: 'google.protobuf.Empty is not supported' },
    ]);
  });

  it('reports every unsupported or invalid cluster field', () => {
    const p = problems(
      cluster({
        type: 'STRICT_DNS',
        edsClusterConfig: { serviceName: 'other', edsConfig: { path: '/x' } },
        connectTimeout: {},
        lbPolicy: 'MAGLEV',
        lbSubsetConfig: { fallbackPolicy: 'ANY_ENDPOINT' },
        healthChecks: [{ timeout: duration(1) }],
        transportSocket: { name: 'tls' },
        filters: [{ name: 'f' }],
        circuitBreakers: {
          thresholds: [{ retryBudget: { budgetPercent: { value: 150 } } }],
          perHostThresholds: [{ maxConnections: { value: 1 } }],
        },
        outlierDetection: {
          enforcingConsecutive_5xx: { value: 50 },
          enforcingConsecutiveGatewayFailure: { value: 100 },
          enforcingFailurePercentage: { value: 10 },
          splitExternalLocalOriginErrors: true,
          maxEjectionPercent: { value: 101 },
          interval: {},
          baseEjectionTime: { seconds: -1 },
        },
        metadata: { filterMetadata: { istio: struct({ services: [{ host: 'h', namespace: 1 }] }) } },
      }),
      'another',
    );
    expect(p).toEqual([
      { path: 'name', message: `${JSON.stringify(NAME)} does not match the resource name` },
      { path: 'type', message: 'STRICT_DNS is not supported: use EDS' },
      { path: 'eds_cluster_config.eds_config', message: 'path is not supported: use ads' },
      { path: 'eds_cluster_config.service_name', message: 'must be empty or the cluster name' },
      { path: 'lb_policy', message: 'MAGLEV is not supported' },
      { path: 'lb_subset_config', message: 'is not supported: send one cluster per subset' },
      { path: 'health_checks', message: 'active health checking is not supported' },
      {
        path: 'transport_socket',
        message: 'is not supported: endpoints are reached over HBONE per their metadata',
      },
      { path: 'filters', message: 'upstream network filters are not supported' },
      { path: 'circuit_breakers.per_host_thresholds', message: 'is not supported' },
      { path: 'outlier_detection.enforcing_consecutive_5xx', message: '50 is not supported: use 0 or 100' },
      { path: 'outlier_detection.enforcing_consecutive_gateway_failure', message: 'is not supported' },
      { path: 'outlier_detection.enforcing_failure_percentage', message: 'is not supported' },
      { path: 'outlier_detection.split_external_local_origin_errors', message: 'is not supported' },
      { path: 'outlier_detection.max_ejection_percent', message: '101 is above 100' },
      { path: 'outlier_detection.base_ejection_time', message: '-1s 0ns is not a non-negative duration' },
      { path: 'outlier_detection.interval', message: 'must be greater than zero' },
      { path: 'metadata.filter_metadata.istio.services[0].namespace', message: 'must be a non-empty string' },
      { path: 'metadata.filter_metadata.istio.services[0].name', message: 'must be a non-empty string' },
      { path: 'connect_timeout', message: 'must be greater than zero' },
      {
        path: 'circuit_breakers.thresholds[0].retry_budget.budget_percent',
        message: '150 is not from 0 to 100',
      },
    ]);
  });

  it('requires eds_cluster_config and reports custom cluster types', () => {
    expect(problems({ name: NAME, type: 'EDS' })).toEqual([
      { path: 'eds_cluster_config', message: 'is required' },
    ]);
    expect(problems(cluster({ type: undefined, clusterType: { name: 'x' } }))).toEqual([
      { path: 'cluster_type', message: 'custom cluster types are not supported: use EDS' },
    ]);
    expect(problems(cluster({ edsClusterConfig: {} }))).toEqual([
      { path: 'eds_cluster_config.eds_config', message: 'is required' },
    ]);
  });

  it('ignores metadata without services, and rejects an empty services list', () => {
    expect(
      decodeOk(cluster({ metadata: { filterMetadata: { istio: struct({ other: 1 }) } } })).service,
    ).toBeUndefined();
    expect(problems(cluster({ metadata: { filterMetadata: { istio: struct({ services: [] }) } } }))).toEqual([
      {
        path: 'metadata.filter_metadata.istio.services',
        message: 'must be a non-empty list of {host, namespace, name}',
      },
    ]);
  });

  it('accepts an empty service_name (the cluster name is used)', () => {
    expect(decodeOk(cluster({ edsClusterConfig: { edsConfig: { ads: {} } } })).name).toBe(NAME);
  });
});

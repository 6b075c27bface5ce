import { type Problem, type Result, SpiffeId } from '@ambient/shared';
import { describe, expect, it } from 'vitest';
import { encodeMessage, struct } from '../testing/envoy-encode.js';
import type { ClusterEndpoints } from './decode-endpoints.js';
import { CLUSTER_LOAD_ASSIGNMENT_TYPE_URL } from './envoy-protos.js';
import { clusterLoadAssignmentResourceType } from './envoy-xds.js';

const NAME = 'inbound-vip|9080|http|reviews.bookinfo.svc.cluster.local';

function lbEndpoint(
  address: string,
  port: number,
  meta: Record<string, unknown> | undefined,
  extra: Record<string, unknown> = {},
) {
  return {
    endpoint: { address: { socketAddress: { address, portValue: port } } },
    ...(meta && { metadata: { filterMetadata: { istio: struct(meta) } } }),
    ...extra,
  };
}

const meta = (pod: string, tunnel = 'hbone') => ({
  workload: pod,
  namespace: 'bookinfo',
  service_account: 'reviews',
  identity: 'spiffe://cluster.local/ns/bookinfo/sa/reviews',
  tunnel,
});

function withoutNamespace(m: Record<string, unknown>): Record<string, unknown> {
  const { namespace: _namespace, ...rest } = m;
  return rest;
}

function decode(object: Record<string, unknown>, name = NAME): Result<ClusterEndpoints> {
  return clusterLoadAssignmentResourceType().decode(
    encodeMessage('envoy.config.endpoint.v3.ClusterLoadAssignment', object),
    name,
  );
}

function problems(object: Record<string, unknown>, name = NAME): readonly Problem[] {
  const r = decode(object, name);
  if (r.ok) throw new Error('expected problems');
  return r.problems;
}

describe('clusterLoadAssignmentResourceType', () => {
  it('has the ClusterLoadAssignment type URL', () => {
    expect(clusterLoadAssignmentResourceType().typeUrl).toBe(CLUSTER_LOAD_ASSIGNMENT_TYPE_URL);
  });

  it('decodes endpoints with their workload identity and tunnel', () => {
    const r = decode({
      clusterName: NAME,
      endpoints: [
        {
          lbEndpoints: [
            lbEndpoint('10.1.0.5', 9080, meta('reviews-v1-abc')),
            lbEndpoint('10.1.0.6', 9080, meta('reviews-v2-def', 'none')),
            lbEndpoint('fd00::7', 8080, undefined),
          ],
        },
      ],
    });
    expect(r).toEqual({
      ok: true,
      value: {
        cluster: NAME,
        endpoints: [
          {
            address: '10.1.0.5',
            port: 9080,
            workload: 'reviews-v1-abc',
            namespace: 'bookinfo',
            serviceAccount: 'reviews',
            identity: SpiffeId.from('spiffe://cluster.local/ns/bookinfo/sa/reviews'),
            tunnel: 'hbone',
          },
          {
            address: '10.1.0.6',
            port: 9080,
            workload: 'reviews-v2-def',
            namespace: 'bookinfo',
            serviceAccount: 'reviews',
            identity: SpiffeId.from('spiffe://cluster.local/ns/bookinfo/sa/reviews'),
            tunnel: 'none',
          },
          {
            address: 'fd00::7',
            port: 8080,
            workload: '',
            namespace: '',
            serviceAccount: '',
            tunnel: 'none',
          },
        ],
      },
    });
    if (r.ok) expect(Object.isFrozen(r.value.endpoints[0])).toBe(true);
    // Parsed once here: connects use the SpiffeId as it is.
    expect(r.ok && r.value.endpoints[0]?.identity instanceof SpiffeId).toBe(true);
    expect(r.ok && r.value.endpoints[2]?.identity).toBe(undefined);
  });

  it('reads istiod`s workload metadata: workload name, canonical service and revision, cluster', () => {
    const r = decode({
      clusterName: NAME,
      endpoints: [
        {
          lbEndpoints: [
            lbEndpoint('10.1.0.5', 9080, meta('reviews-v1;bookinfo;reviews;v1;east')),
            // The default revision travels empty and reads back as istiod's "latest".
            lbEndpoint('10.1.0.6', 9080, meta('reviews-v2;bookinfo;reviews;;Kubernetes')),
            lbEndpoint('10.1.0.7', 9080, withoutNamespace(meta('ratings;bookinfo;ratings;;west'))),
          ],
        },
      ],
    });
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    const [a, b, c] = r.value.endpoints;
    expect(a).toMatchObject({
      workload: 'reviews-v1',
      namespace: 'bookinfo',
      canonicalName: 'reviews',
      canonicalRevision: 'v1',
      clusterId: 'east',
    });
    expect(b).toMatchObject({ workload: 'reviews-v2', canonicalRevision: 'latest', clusterId: 'Kubernetes' });
    // Without a namespace key, the workload metadata's namespace is the endpoint's.
    expect(c).toMatchObject({ workload: 'ratings', namespace: 'bookinfo', clusterId: 'west' });
  });

  it('refuses workload metadata that is malformed or names another namespace', () => {
    const p = problems({
      clusterName: NAME,
      endpoints: [
        {
          lbEndpoints: [
            lbEndpoint('10.1.0.1', 80, meta('reviews-v1;bookinfo;reviews;v1')),
            lbEndpoint('10.1.0.2', 80, meta(';bookinfo;reviews;v1;east')),
            lbEndpoint('10.1.0.3', 80, meta('reviews-v1;other;reviews;v1;east')),
          ],
        },
      ],
    });
    const e = (i: number) => `endpoints[0].lb_endpoints[${i}].metadata.filter_metadata.istio.workload`;
    expect(p).toEqual([
      {
        path: e(0),
        message:
          '"reviews-v1;bookinfo;reviews;v1" is not name;namespace;canonical_name;canonical_revision;cluster_id',
      },
      { path: e(1), message: 'names no workload' },
      { path: e(2), message: 'names namespace "other", not "bookinfo"' },
    ]);
  });

  it('refuses a malformed identity with its field path, hbone or not', () => {
    const p = problems({
      clusterName: NAME,
      endpoints: [
        {
          lbEndpoints: [
            lbEndpoint('10.1.0.1', 80, meta('a')),
            lbEndpoint('10.1.0.2', 80, { ...meta('b'), identity: 'spiffe://cluster.local/ns/bookinfo' }),
            lbEndpoint('10.1.0.3', 80, { ...meta('c'), identity: 'spiffe://Cluster.local/ns/x/sa/y' }),
            lbEndpoint('10.1.0.4', 80, { ...meta('d', 'none'), identity: 'reviews' }),
          ],
        },
      ],
    });
    const e = (i: number) => `endpoints[0].lb_endpoints[${i}].metadata.filter_metadata.istio.identity`;
    expect(p).toEqual([
      {
        path: e(1),
        message: '"spiffe://cluster.local/ns/bookinfo": path must be /ns/<namespace>/sa/<service-account>',
      },
      {
        path: e(2),
        message:
          '"spiffe://Cluster.local/ns/x/sa/y": trust domain "Cluster.local" has characters outside [a-z0-9._-]',
      },
      { path: e(3), message: '"reviews": scheme must be spiffe://' },
    ]);
  });

  it('accepts an empty assignment: the cluster has no endpoints', () => {
    expect(decode({ clusterName: NAME })).toEqual({ ok: true, value: { cluster: NAME, endpoints: [] } });
  });

  it('leaves out endpoints Envoy would not send to: unhealthy, draining, timed out', () => {
    const r = decode({
      clusterName: NAME,
      endpoints: [
        {
          lbEndpoints: [
            lbEndpoint('10.1.0.1', 80, meta('a'), { healthStatus: 'HEALTHY' }),
            lbEndpoint('10.1.0.2', 80, meta('b'), { healthStatus: 'UNHEALTHY' }),
            lbEndpoint('10.1.0.3', 80, meta('c'), { healthStatus: 'DRAINING' }),
            lbEndpoint('10.1.0.4', 80, meta('d'), { healthStatus: 'TIMEOUT' }),
            lbEndpoint('10.1.0.5', 80, meta('e'), { healthStatus: 'DEGRADED' }),
            lbEndpoint('10.1.0.6', 80, meta('f'), { healthStatus: 'UNKNOWN' }),
          ],
        },
      ],
    });
    expect(r.ok && r.value.endpoints.map((e) => e.workload)).toEqual(['a', 'e', 'f']);
  });

  it('flattens several localities of priority 0', () => {
    const r = decode({
      clusterName: NAME,
      endpoints: [
        { lbEndpoints: [lbEndpoint('10.1.0.1', 80, meta('a'))] },
        { lbEndpoints: [lbEndpoint('10.1.0.2', 80, meta('b'))] },
      ],
    });
    expect(r.ok && r.value.endpoints.length).toBe(2);
  });

  it('reports every bad endpoint with its path', () => {
    const p = problems(
      {
        clusterName: NAME,
        endpoints: [
          {
            priority: 1,
            lbEndpoints: [
              lbEndpoint('reviews', 0, { ...meta('a'), tunnel: 'gre' }),
              lbEndpoint('10.1.0.2', 80, { ...meta('b'), identity: '' }),
              { endpointName: 'named' },
              { endpoint: {} },
              { endpoint: { address: { socketAddress: { address: '10.1.0.3', namedPort: 'http' } } } },
              lbEndpoint('10.1.0.4', 80, { workload: 7 }),
            ],
          },
        ],
      },
      'other',
    );
    const e = (i: number) => `endpoints[0].lb_endpoints[${i}]`;
    expect(p).toEqual([
      { path: 'cluster_name', message: `${JSON.stringify(NAME)} does not match the resource name` },
      { path: 'endpoints[0].priority', message: 'priorities other than 0 are not supported' },
      { path: `${e(0)}.endpoint.address.socket_address.address`, message: '"reviews" is not an IP address' },
      {
        path: `${e(0)}.endpoint.address.socket_address.port_value`,
        message: '0 is not a port from 1 to 65535',
      },
      { path: `${e(0)}.metadata.filter_metadata.istio.tunnel`, message: '"gre" is not hbone or none' },
      {
        path: `${e(1)}.metadata.filter_metadata.istio.identity`,
        message: 'must be a spiffe:// identity for an hbone endpoint',
      },
      { path: `${e(2)}.endpoint_name`, message: 'is not supported: use endpoint' },
      { path: `${e(3)}.endpoint.address.socket_address`, message: 'is required' },
      { path: `${e(4)}.endpoint.address.socket_address.named_port`, message: 'is not supported' },
      { path: `${e(5)}.metadata.filter_metadata.istio.workload`, message: 'must be a string' },
    ]);
  });

  it('rejects LEDS and nested endpoint lists', () => {
    expect(
      problems({
        clusterName: NAME,
        endpoints: [{ ledsClusterLocalityConfig: { ledsCollectionName: 'x' } }],
      }),
    ).toEqual([
      { path: 'endpoints[0].leds_cluster_locality_config', message: 'is not supported: use lb_endpoints' },
    ]);
  });
});

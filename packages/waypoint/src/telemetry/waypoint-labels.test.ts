import { ISTIO_REQUEST_LABELS, ISTIO_TCP_LABELS, SpiffeId } from '@ambient/shared';
import { describe, expect, it } from 'vitest';
import type { UpstreamEndpoint } from '../config/waypoint-config.js';
import { endpointPeer, requestLabels, serviceOfChain, sourcePeer, tcpLabels } from './waypoint-labels.js';

const SLEEP = SpiffeId.of('cluster.local', 'demo', 'sleep');
const REVIEWS = SpiffeId.of('cluster.local', 'bookinfo', 'reviews');

const sleepEndpoint: UpstreamEndpoint = {
  address: '10.0.0.1',
  port: 8080,
  workload: 'sleep',
  namespace: 'demo',
  serviceAccount: 'sleep',
  canonicalName: 'sleep',
  canonicalRevision: 'v1',
  clusterId: 'east',
  identity: SLEEP,
  tunnel: 'hbone',
};

const reviewsEndpoint: UpstreamEndpoint = {
  address: '10.0.1.7',
  port: 9080,
  workload: 'reviews-v2',
  namespace: 'bookinfo',
  serviceAccount: 'reviews',
  canonicalName: 'reviews',
  canonicalRevision: 'v2',
  clusterId: 'east',
  identity: REVIEWS,
  tunnel: 'hbone',
};

const SERVICE = { host: 'reviews.bookinfo.svc.cluster.local', name: 'reviews', namespace: 'bookinfo' };
const NO_BAGGAGE = new Map<string, string>();

describe('requestLabels', () => {
  it("carries Istio's full label set from the verified source and the chosen endpoint", () => {
    const labels = requestLabels(
      {
        source: sourcePeer({ peer: SLEEP, known: sleepEndpoint, baggage: NO_BAGGAGE }, 'west'),
        destination: endpointPeer(reviewsEndpoint, 'west'),
        service: SERVICE,
        ownClusterId: 'west',
      },
      { grpc: false, responseCode: 200, responseFlags: '-' },
    );
    expect(labels).toEqual({
      reporter: 'waypoint',
      source_workload: 'sleep',
      source_workload_namespace: 'demo',
      source_principal: 'spiffe://cluster.local/ns/demo/sa/sleep',
      source_app: 'sleep',
      source_version: 'v1',
      source_canonical_service: 'sleep',
      source_canonical_revision: 'v1',
      source_cluster: 'east',
      destination_workload: 'reviews-v2',
      destination_workload_namespace: 'bookinfo',
      destination_principal: 'spiffe://cluster.local/ns/bookinfo/sa/reviews',
      destination_app: 'reviews',
      destination_version: 'v2',
      destination_service: 'reviews.bookinfo.svc.cluster.local',
      destination_service_name: 'reviews',
      destination_service_namespace: 'bookinfo',
      destination_canonical_service: 'reviews',
      destination_canonical_revision: 'v2',
      destination_cluster: 'east',
      request_protocol: 'http',
      response_code: '200',
      grpc_response_status: '',
      response_flags: '-',
      connection_security_policy: 'mutual_tls',
    });
    // The exposition shows labels in this order, Istio's.
    expect(Object.keys(labels)).toEqual([...ISTIO_REQUEST_LABELS]);
  });

  it('names endpoints without a cluster in the waypoint`s own, and without a canonical name as unknown', () => {
    const bare: UpstreamEndpoint = {
      address: '10.0.1.8',
      port: 80,
      workload: 'legacy',
      namespace: 'bookinfo',
      serviceAccount: 'legacy',
      tunnel: 'none',
    };
    const labels = requestLabels(
      {
        source: { principal: SLEEP.toString() },
        destination: endpointPeer(bare, 'west'),
        ownClusterId: 'west',
      },
      { grpc: false, responseCode: 503, responseFlags: 'UF' },
    );
    expect(labels).toMatchObject({
      destination_workload: 'legacy',
      destination_principal: 'unknown',
      destination_canonical_service: 'unknown',
      destination_canonical_revision: 'unknown',
      destination_app: 'unknown',
      destination_cluster: 'west',
      response_code: '503',
      response_flags: 'UF',
    });
  });

  it('is unknown for a destination never chosen, but in the waypoint`s cluster and for the chain`s service', () => {
    const labels = requestLabels(
      {
        source: sourcePeer({ peer: SLEEP, baggage: NO_BAGGAGE }, 'west'),
        ...{ service: serviceOfChain('inbound-vip|9080|http|reviews.bookinfo.svc.cluster.local') },
        ownClusterId: 'west',
      },
      { grpc: false, responseCode: 403, responseFlags: '-' },
    );
    for (const n of [
      'destination_workload',
      'destination_workload_namespace',
      'destination_principal',
      'destination_app',
      'destination_version',
      'destination_canonical_service',
      'destination_canonical_revision',
    ] as const)
      expect(labels[n], n).toBe('unknown');
    expect(labels.destination_cluster).toBe('west');
    expect(labels.destination_service).toBe('reviews.bookinfo.svc.cluster.local');
    expect(labels.destination_service_name).toBe('reviews');
    // Nothing known of the source but its certificate: its namespace and principal.
    expect(labels.source_workload).toBe('unknown');
    expect(labels.source_workload_namespace).toBe('demo');
    expect(labels.source_principal).toBe('spiffe://cluster.local/ns/demo/sa/sleep');
    expect(labels.source_cluster).toBe('unknown');
  });

  it('reports gRPC with its status', () => {
    const labels = requestLabels(
      { source: {}, ownClusterId: 'west' },
      { grpc: true, responseCode: 200, grpcStatus: '9', responseFlags: '-' },
    );
    expect(labels.request_protocol).toBe('grpc');
    expect(labels.grpc_response_status).toBe('9');
  });
});

describe('sourcePeer', () => {
  const baggage = new Map([
    ['k8s.namespace.name', 'demo'],
    ['k8s.deployment.name', 'sleep'],
    ['k8s.pod.name', 'sleep-6d5c8b7f4-abcde'],
    ['k8s.cluster.name', 'east'],
    ['service.name', 'sleep-canonical'],
    ['service.version', 'v3'],
  ]);

  it('takes the workload at the verified address over what the client wrote', () => {
    const p = sourcePeer({ peer: SLEEP, known: sleepEndpoint, baggage }, 'west');
    expect(p).toMatchObject({ workloadName: 'sleep', canonicalName: 'sleep', canonicalRevision: 'v1' });
  });

  it('uses the client`s baggage for labels when it names the certificate`s namespace', () => {
    const p = sourcePeer({ peer: SLEEP, baggage }, 'west');
    expect(p).toEqual({
      workloadName: 'sleep',
      name: 'sleep-6d5c8b7f4-abcde',
      namespace: 'demo',
      canonicalName: 'sleep-canonical',
      canonicalRevision: 'v3',
      clusterId: 'east',
      principal: 'spiffe://cluster.local/ns/demo/sa/sleep',
    });
  });

  it('ignores baggage naming another namespace, and never takes namespace or principal from it', () => {
    const lying = new Map([...baggage, ['k8s.namespace.name', 'prod']]);
    expect(sourcePeer({ peer: SLEEP, baggage: lying }, 'west')).toEqual({
      namespace: 'demo',
      principal: 'spiffe://cluster.local/ns/demo/sa/sleep',
    });
  });

  it('names the workload by the pod when the baggage names no owner', () => {
    const p = sourcePeer({ peer: SLEEP, baggage: new Map([['k8s.pod.name', 'sleep']]) }, 'west');
    const labels = requestLabels(
      { source: p, ownClusterId: 'west' },
      { grpc: false, responseCode: 200, responseFlags: '-' },
    );
    expect(labels.source_workload).toBe('sleep');
  });
});

describe('tcpLabels', () => {
  it('reports a TCP chain`s connection with the same parties and request_protocol tcp', () => {
    const labels = tcpLabels({
      source: sourcePeer({ peer: SLEEP, known: sleepEndpoint, baggage: NO_BAGGAGE }, 'west'),
      destination: endpointPeer(reviewsEndpoint, 'west'),
      service: SERVICE,
      ownClusterId: 'west',
    });
    expect(Object.keys(labels)).toEqual([...ISTIO_TCP_LABELS]);
    expect(labels).toMatchObject({
      reporter: 'waypoint',
      source_workload: 'sleep',
      source_canonical_service: 'sleep',
      destination_workload: 'reviews-v2',
      destination_canonical_revision: 'v2',
      destination_service: 'reviews.bookinfo.svc.cluster.local',
      request_protocol: 'tcp',
      response_flags: '-',
      connection_security_policy: 'mutual_tls',
    });
    expect(tcpLabels({ source: {}, ownClusterId: 'west' }, 'UH').response_flags).toBe('UH');
  });
});

describe('serviceOfChain', () => {
  it('reads the service a chain is named after, and nothing from other names', () => {
    expect(serviceOfChain('inbound-vip|80|http|echo.demo.svc.cluster.local')).toEqual({
      host: 'echo.demo.svc.cluster.local',
      name: 'echo',
      namespace: 'demo',
    });
    expect(serviceOfChain('waypoint-any')).toBeUndefined();
  });
});

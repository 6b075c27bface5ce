import { describe, expect, it } from 'vitest';
import {
  formatEndpointWorkload,
  ISTIO_REQUEST_LABELS,
  ISTIO_TCP_LABELS,
  parseEndpointWorkload,
  serviceLabels,
  workloadLabels,
} from './istio-labels.js';

describe('Istio standard label names', () => {
  it('carry the canonical service, revision, version and cluster of both sides', () => {
    for (const names of [ISTIO_TCP_LABELS, ISTIO_REQUEST_LABELS] as readonly (readonly string[])[])
      for (const side of ['source', 'destination'])
        for (const suffix of [
          'workload',
          'workload_namespace',
          'principal',
          'app',
          'version',
          'canonical_service',
          'canonical_revision',
          'cluster',
        ])
          expect(names).toContain(`${side}_${suffix}`);
  });

  it('give HTTP metrics response_code and grpc_response_status, and TCP metrics neither', () => {
    expect(ISTIO_REQUEST_LABELS).toEqual(
      expect.arrayContaining(['response_code', 'grpc_response_status', 'request_protocol']),
    );
    expect(ISTIO_TCP_LABELS).not.toContain('response_code');
    expect(ISTIO_TCP_LABELS).not.toContain('grpc_response_status');
    expect(ISTIO_REQUEST_LABELS.length).toBe(ISTIO_TCP_LABELS.length + 2);
    expect(new Set(ISTIO_REQUEST_LABELS).size).toBe(ISTIO_REQUEST_LABELS.length);
  });

  it('list the destination service labels and the connection policy on both kinds', () => {
    for (const n of [
      'reporter',
      'destination_service',
      'destination_service_name',
      'destination_service_namespace',
      'response_flags',
      'connection_security_policy',
    ] as const) {
      expect(ISTIO_TCP_LABELS).toContain(n);
      expect(ISTIO_REQUEST_LABELS).toContain(n);
    }
  });
});

describe('workloadLabels', () => {
  const reviews = {
    name: 'reviews-v2-7d9f8c6b5-x2x4z',
    workloadName: 'reviews-v2',
    namespace: 'bookinfo',
    canonicalName: 'reviews',
    canonicalRevision: 'v2',
    clusterId: 'east',
    principal: 'spiffe://cluster.local/ns/bookinfo/sa/reviews',
  };

  it('names the workload by its owner and the app and version by the canonical service', () => {
    expect(workloadLabels('destination', reviews)).toEqual({
      destination_workload: 'reviews-v2',
      destination_workload_namespace: 'bookinfo',
      destination_principal: 'spiffe://cluster.local/ns/bookinfo/sa/reviews',
      destination_app: 'reviews',
      destination_version: 'v2',
      destination_canonical_service: 'reviews',
      destination_canonical_revision: 'v2',
      destination_cluster: 'east',
    });
  });

  it('prefers explicit app and version labels over the canonical service', () => {
    const l = workloadLabels('source', { ...reviews, app: 'reviews-app', version: '2.0.1' });
    expect(l.source_app).toBe('reviews-app');
    expect(l.source_version).toBe('2.0.1');
    expect(l.source_canonical_service).toBe('reviews');
    expect(l.source_canonical_revision).toBe('v2');
  });

  it('is "unknown" throughout for an unknown peer', () => {
    const l = workloadLabels('source', undefined);
    expect(Object.keys(l)).toHaveLength(8);
    expect(new Set(Object.values(l))).toEqual(new Set(['unknown']));
  });

  it('treats empty strings as unknown and keeps what is known', () => {
    const l = workloadLabels('source', {
      namespace: 'demo',
      principal: 'spiffe://cluster.local/ns/demo/sa/sleep',
      workloadName: '',
      clusterId: '',
    });
    expect(l).toEqual({
      source_workload: 'unknown',
      source_workload_namespace: 'demo',
      source_principal: 'spiffe://cluster.local/ns/demo/sa/sleep',
      source_app: 'unknown',
      source_version: 'unknown',
      source_canonical_service: 'unknown',
      source_canonical_revision: 'unknown',
      source_cluster: 'unknown',
    });
  });

  it('puts a canonical service without a revision at "latest", as istiod defaults it', () => {
    const l = workloadLabels('destination', { canonicalName: 'ratings' });
    expect(l.destination_canonical_revision).toBe('latest');
    expect(l.destination_version).toBe('latest');
  });

  it('names a workload by its instance only when no workload name is known', () => {
    expect(workloadLabels('source', { name: 'standalone-pod' }).source_workload).toBe('standalone-pod');
    expect(workloadLabels('source', { name: 'p-1', workloadName: 'p' }).source_workload).toBe('p');
  });
});

describe('serviceLabels', () => {
  it('names the service, or "unknown" when none was addressed', () => {
    expect(serviceLabels({ host: 'echo.demo.svc.cluster.local', name: 'echo', namespace: 'demo' })).toEqual({
      destination_service: 'echo.demo.svc.cluster.local',
      destination_service_name: 'echo',
      destination_service_namespace: 'demo',
    });
    expect(Object.values(serviceLabels(undefined))).toEqual(['unknown', 'unknown', 'unknown']);
  });
});

describe('endpoint workload metadata', () => {
  it('writes istiod`s five fields, leaving the default revision empty, and reads them back', () => {
    const w = {
      workloadName: 'reviews-v1',
      namespace: 'bookinfo',
      canonicalName: 'reviews',
      canonicalRevision: 'latest',
      clusterId: 'Kubernetes',
    };
    expect(formatEndpointWorkload(w)).toBe('reviews-v1;bookinfo;reviews;;Kubernetes');
    expect(parseEndpointWorkload('reviews-v1;bookinfo;reviews;;Kubernetes')).toEqual({ ok: true, value: w });
    expect(parseEndpointWorkload('reviews-v1;bookinfo;reviews;v1;east')).toEqual({
      ok: true,
      value: { ...w, canonicalRevision: 'v1', clusterId: 'east' },
    });
  });

  it('refuses a value with another number of fields or without a workload name', () => {
    for (const bad of ['reviews-v1', 'a;b;c;d', 'a;b;c;d;e;f', ';bookinfo;reviews;v1;east']) {
      const r = parseEndpointWorkload(bad);
      expect(r.ok, bad).toBe(false);
    }
  });
});

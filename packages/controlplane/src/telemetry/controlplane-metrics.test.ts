import {
  ADDRESS_TYPE_URL,
  AUTHORIZATION_TYPE_URL,
  CLUSTER_LOAD_ASSIGNMENT_TYPE_URL,
  CLUSTER_TYPE_URL,
  LISTENER_TYPE_URL,
  ROUTE_CONFIGURATION_TYPE_URL,
} from '@ambient/shared';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ControlPlaneMetrics, xdsMetricType } from './controlplane-metrics.js';

describe('xdsMetricType', () => {
  it('writes the type label as istiod GetMetricType does (wds for addresses, wads for authorizations)', () => {
    expect(xdsMetricType(ADDRESS_TYPE_URL)).toBe('wds');
    expect(xdsMetricType(AUTHORIZATION_TYPE_URL)).toBe('wads');
    expect(xdsMetricType(LISTENER_TYPE_URL)).toBe('lds');
    expect(xdsMetricType(ROUTE_CONFIGURATION_TYPE_URL)).toBe('rds');
    expect(xdsMetricType(CLUSTER_TYPE_URL)).toBe('cds');
    expect(xdsMetricType(CLUSTER_LOAD_ASSIGNMENT_TYPE_URL)).toBe('eds');
  });

  it('reports any other type URL as itself', () => {
    expect(xdsMetricType('type.googleapis.com/example.Other')).toBe('type.googleapis.com/example.Other');
  });
});

describe('ControlPlaneMetrics', () => {
  it("registers the CA counters under istiod's citadel_server_* names", async () => {
    const registry = new Registry();
    new ControlPlaneMetrics(registry);
    const names = (await registry.getMetricsAsJSON()).map((m) => m.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'citadel_server_csr_count',
        'citadel_server_success_cert_issuance_count',
        'citadel_server_authentication_failure_count',
        'citadel_server_csr_sign_err_count',
        'pilot_xds_pushes',
        'pilot_total_xds_rejects',
      ]),
    );
    expect(names.filter((n) => n.startsWith('citadel_')).sort()).toEqual([
      'citadel_server_authentication_failure_count',
      'citadel_server_csr_count',
      'citadel_server_csr_sign_err_count',
      'citadel_server_success_cert_issuance_count',
    ]);
  });
});

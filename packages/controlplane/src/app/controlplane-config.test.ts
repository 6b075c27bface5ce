import { describe, expect, it } from 'vitest';
import { parseControlPlaneConfig } from './controlplane-config.js';

const BASE = { CP_MANIFEST_DIR: '/m', CP_CA_DIR: '/ca', CP_TOKENS_FILE: '/t.json' };

describe('control plane settings: CP_WORKLOAD_CERT_TTL', () => {
  it('defaults to 24 h, as Istio DEFAULT_WORKLOAD_CERT_TTL', () => {
    const r = parseControlPlaneConfig(BASE);
    expect(r.ok && r.value.workloadCertTtlSeconds).toBe(24 * 3600);
  });

  it('reads durations such as 20s, 90m, 24h and 1h30m', () => {
    const ttl = (v: string) => {
      const r = parseControlPlaneConfig({ ...BASE, CP_WORKLOAD_CERT_TTL: v });
      if (!r.ok) throw new Error(JSON.stringify(r.problems));
      return r.value.workloadCertTtlSeconds;
    };
    expect(ttl('20s')).toBe(20);
    expect(ttl('90m')).toBe(5400);
    expect(ttl('24h')).toBe(86_400);
    expect(ttl('1h30m')).toBe(5400);
    expect(ttl('2160h')).toBe(90 * 86_400);
  });

  it('refuses what is not a duration, not whole seconds, or outside 1s..90 days, naming the setting', () => {
    for (const v of ['20', 'soon', '-5s', '1500ms', '500ms', '0s', '2161h']) {
      const r = parseControlPlaneConfig({ ...BASE, CP_WORKLOAD_CERT_TTL: v });
      expect(r.ok, v).toBe(false);
      if (!r.ok) expect(r.problems.map((p) => p.path)).toEqual(['CP_WORKLOAD_CERT_TTL']);
    }
  });
});

describe('control plane settings: CP_AMBIENT_ENABLE_DRY_RUN_AUTHORIZATION_POLICY', () => {
  it('is off by default, as istiod’s AMBIENT_ENABLE_DRY_RUN_AUTHORIZATION_POLICY', () => {
    const r = parseControlPlaneConfig(BASE);
    expect(r.ok && r.value.sendDryRunPolicies).toBe(false);
    const on = parseControlPlaneConfig({ ...BASE, CP_AMBIENT_ENABLE_DRY_RUN_AUTHORIZATION_POLICY: 'true' });
    expect(on.ok && on.value.sendDryRunPolicies).toBe(true);
  });

  it('refuses a value that is not true or false, naming the setting', () => {
    const r = parseControlPlaneConfig({ ...BASE, CP_AMBIENT_ENABLE_DRY_RUN_AUTHORIZATION_POLICY: 'yes' });
    expect(r.ok).toBe(false);
    if (!r.ok)
      expect(r.problems.map((p) => p.path)).toEqual(['CP_AMBIENT_ENABLE_DRY_RUN_AUTHORIZATION_POLICY']);
  });
});

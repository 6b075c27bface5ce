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

describe('control plane settings: the config source', () => {
  const CA = { CP_CA_DIR: '/ca', CP_TOKENS_FILE: '/t.json' };

  it('reads the manifest directory when CP_MANIFEST_DIR is set, as before', () => {
    const r = parseControlPlaneConfig(BASE);
    expect(r.ok && [r.value.configSource, r.value.manifestDir]).toEqual(['directory', '/m']);
  });

  it('reads the Kubernetes API without CP_MANIFEST_DIR: a kubeconfig, or in-cluster from KUBERNETES_SERVICE_HOST', () => {
    const file = parseControlPlaneConfig({ ...CA, CP_KUBECONFIG: '/kc' });
    expect(file.ok && [file.value.configSource, file.value.kubeconfig]).toEqual(['kubernetes', '/kc']);
    const pod = parseControlPlaneConfig({
      ...CA,
      KUBERNETES_SERVICE_HOST: '10.96.0.1',
      KUBERNETES_SERVICE_PORT: '443',
    });
    expect(pod.ok && [pod.value.configSource, pod.value.kubeconfig, pod.value.kubernetesServiceHost]).toEqual(
      ['kubernetes', '', '10.96.0.1'],
    );
    const chosen = parseControlPlaneConfig({ ...BASE, CP_CONFIG_SOURCE: 'kubernetes', CP_KUBECONFIG: '/kc' });
    expect(chosen.ok && chosen.value.configSource).toBe('kubernetes');
  });

  it('refuses an unknown source, and the kubernetes source with nothing to connect to, naming the setting', () => {
    const unknown = parseControlPlaneConfig({ ...BASE, CP_CONFIG_SOURCE: 'etcd' });
    expect(!unknown.ok && unknown.problems.map((p) => p.path)).toEqual(['CP_CONFIG_SOURCE']);
    const nowhere = parseControlPlaneConfig(CA);
    expect(!nowhere.ok && nowhere.problems.map((p) => p.path)).toEqual(['CP_KUBECONFIG']);
    const noDir = parseControlPlaneConfig({ ...CA, CP_CONFIG_SOURCE: 'directory' });
    expect(!noDir.ok && noDir.problems.map((p) => p.path)).toEqual(['CP_MANIFEST_DIR']);
  });
});

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
  // HOSTNAME: what a pod has, and what the kubernetes source's leader election names it by.
  const CA = { CP_CA_DIR: '/ca', CP_TOKENS_FILE: '/t.json', HOSTNAME: 'cp-0' };

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
    const chosen = parseControlPlaneConfig({
      ...BASE,
      HOSTNAME: 'cp-0',
      CP_CONFIG_SOURCE: 'kubernetes',
      CP_KUBECONFIG: '/kc',
    });
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

describe('control plane settings: the leader-elected writers', () => {
  const KUBE = { CP_CA_DIR: '/ca', CP_TOKENS_FILE: '/t.json', CP_KUBECONFIG: '/kc' };

  it('with the kubernetes source, write status and root-cert ConfigMaps by default, under one election', () => {
    const r = parseControlPlaneConfig({ ...KUBE, CP_POD_NAME: 'cp-1' });
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    expect([r.value.writeStatus, r.value.rootCertConfigMap]).toEqual([true, 'istio-ca-root-cert']);
    expect(r.value.leaderElection).toEqual({
      identity: 'cp-1',
      leaseNamespace: 'istio-system',
      timings: { leaseDurationMs: 30_000, renewDeadlineMs: 15_000, retryPeriodMs: 7_500 },
    });
    const off = parseControlPlaneConfig({
      ...KUBE,
      CP_AMBIENT_ENABLE_STATUS: 'false',
      CP_NAMESPACE_CONTROLLER: 'false',
    });
    expect(off.ok && [off.value.writeStatus, off.value.rootCertConfigMap, off.value.leaderElection]).toEqual([
      false,
      undefined,
      undefined,
    ]);
  });

  it('need a name in the Lease: CP_POD_NAME, else HOSTNAME', () => {
    const r = parseControlPlaneConfig(KUBE);
    expect(!r.ok && r.problems.map((p) => p.path)).toEqual(['CP_POD_NAME']);
    const host = parseControlPlaneConfig({ ...KUBE, HOSTNAME: 'pod-a' });
    expect(host.ok && host.value.leaderElection?.identity).toBe('pod-a');
  });

  it('with a manifest directory, write nothing unless the waypoint controller is on (its pods mount the root cert)', () => {
    const dir = parseControlPlaneConfig(BASE);
    expect(dir.ok && [dir.value.writeStatus, dir.value.rootCertConfigMap, dir.value.leaderElection]).toEqual([
      false,
      undefined,
      undefined,
    ]);
    const wp = parseControlPlaneConfig({
      ...BASE,
      CP_KUBECONFIG: '/kc',
      CP_WAYPOINT_CONTROLLER: 'true',
      CP_POD_NAME: 'a',
      CP_CA_CERT_CONFIGMAP: 'mesh-root',
    });
    expect(wp.ok && [wp.value.writeStatus, wp.value.rootCertConfigMap]).toEqual([false, 'mesh-root']);
    // The waypoint pods mount the ConfigMap the namespace controller writes.
    expect(wp.ok && wp.value.waypointController?.rootCertConfigMap).toBe('mesh-root');
  });
});

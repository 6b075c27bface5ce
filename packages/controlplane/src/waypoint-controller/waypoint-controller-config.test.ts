import { describe, expect, it } from 'vitest';
import { parseControlPlaneConfig } from '../app/controlplane-config.js';

const BASE = { CP_MANIFEST_DIR: '/m', CP_CA_DIR: '/ca', CP_TOKENS_FILE: '/t.json' };
/** What a pod's environment gives it: the API server's in-cluster address. */
const IN_CLUSTER = { KUBERNETES_SERVICE_HOST: '10.96.0.1' };

describe('waypoint controller settings', () => {
  it('are off by default', () => {
    const r = parseControlPlaneConfig(BASE);
    expect(r.ok && r.value.waypointController).toBeUndefined();
  });

  it('take istiod’s lease timings and names by default, the pod name from HOSTNAME', () => {
    const r = parseControlPlaneConfig({
      ...BASE,
      ...IN_CLUSTER,
      CP_WAYPOINT_CONTROLLER: 'true',
      HOSTNAME: 'cp-0',
    });
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    expect(r.value.waypointController).toEqual({
      identity: 'cp-0',
      leaseNamespace: 'istio-system',
      timings: { leaseDurationMs: 30_000, renewDeadlineMs: 15_000, retryPeriodMs: 7_500 },
      resyncMs: 60_000,
      image: 'ambient-mesh/waypoint:0.1.0',
      xdsAddress: 'istiod.istio-system.svc:15012',
      rootCertConfigMap: 'istio-ca-root-cert',
    });
  });

  it('refuses timings a leader could outlive, and a missing identity, naming the setting', () => {
    const bad = (env: Record<string, string>) => {
      const r = parseControlPlaneConfig({
        ...BASE,
        ...IN_CLUSTER,
        CP_WAYPOINT_CONTROLLER: 'true',
        CP_POD_NAME: 'a',
        ...env,
      });
      return r.ok ? [] : r.problems.map((p) => p.path);
    };
    expect(bad({ CP_LEADER_ELECTION_RENEW_DEADLINE: '30s' })).toEqual(['CP_LEADER_ELECTION_RENEW_DEADLINE']);
    expect(bad({ CP_LEADER_ELECTION_RETRY_PERIOD: '15s' })).toEqual(['CP_LEADER_ELECTION_RETRY_PERIOD']);
    expect(bad({ CP_LEADER_ELECTION_LEASE_DURATION: '30500ms' })).toEqual([
      'CP_LEADER_ELECTION_LEASE_DURATION',
    ]);
    expect(bad({ CP_WAYPOINT_XDS_ADDRESS: 'nope' })).toEqual(['CP_WAYPOINT_XDS_ADDRESS']);
    const r = parseControlPlaneConfig({ ...BASE, ...IN_CLUSTER, CP_WAYPOINT_CONTROLLER: 'true' });
    expect(r.ok ? [] : r.problems.map((p) => p.path)).toEqual(['CP_POD_NAME']);
  });

  it('needs an API server to write to: a kubeconfig, or the in-cluster address', () => {
    const r = parseControlPlaneConfig({ ...BASE, CP_WAYPOINT_CONTROLLER: 'true', CP_POD_NAME: 'a' });
    expect(r.ok ? [] : r.problems.map((p) => p.path)).toEqual(['CP_KUBECONFIG']);
    const withFile = parseControlPlaneConfig({
      ...BASE,
      CP_WAYPOINT_CONTROLLER: 'true',
      CP_POD_NAME: 'a',
      CP_KUBECONFIG: '/k',
    });
    expect(withFile.ok).toBe(true);
  });
});

import { describe, expect, it } from 'vitest';
import {
  AMBIENT,
  BASE,
  build,
  C80,
  type D,
  decoded,
  destinationRule,
  gateway,
  HOST,
  HTTP80,
  namespace,
  pod,
  service,
  struct,
} from './waypoint-fixture.js';

describe('waypoint resources: endpoints', () => {
  it('lists ready pods with their target port and identity metadata, HBONE only when enrolled', () => {
    const d = decoded(
      build(
        namespace('demo', { ...AMBIENT, 'istio.io/use-waypoint': 'waypoint' }),
        gateway(),
        service('echo', [{ name: 'http', port: 80, targetPort: 'web' }]),
        pod(
          'echo-b',
          { app: 'echo', version: 'v2', 'istio.io/dataplane-mode': 'none' },
          { ip: '10.0.0.2', ports: { web: 8081 } },
        ),
        pod('echo-a', { app: 'echo', version: 'v1' }, { ip: '10.0.0.1', ports: { web: 8080 } }),
        // Not endpoints: no IP yet, finished, no such named port, not selected.
        pod('echo-pending', { app: 'echo' }, { ip: null, ports: { web: 8080 } }),
        pod('echo-done', { app: 'echo' }, { phase: 'Succeeded', ports: { web: 8080 } }),
        pod('echo-noport', { app: 'echo' }, { ip: '10.0.0.3' }),
        pod('sleep', { app: 'sleep' }, { sa: 'sleep', ports: { web: 8080 } }),
        destinationRule({ subsets: [{ name: 'v2', labels: { version: 'v2' } }] }),
      ),
    );
    const all = d.endpoints.get(C80);
    expect(all.clusterName).toBe(C80);
    expect(all.endpoints).toHaveLength(1);
    const eps = all.endpoints[0].lbEndpoints;
    expect(eps.map((e: D) => e.endpoint.address.socketAddress)).toEqual([
      { address: '10.0.0.1', portValue: 8080 },
      { address: '10.0.0.2', portValue: 8081 },
    ]);
    expect(eps.map((e: D) => struct(e.metadata.filterMetadata.istio))).toEqual([
      {
        workload: 'echo-a',
        namespace: 'demo',
        service_account: 'echo',
        identity: 'spiffe://cluster.local/ns/demo/sa/echo',
        tunnel: 'hbone',
      },
      {
        workload: 'echo-b',
        namespace: 'demo',
        service_account: 'echo',
        identity: 'spiffe://cluster.local/ns/demo/sa/echo',
        tunnel: 'none',
      },
    ]);
    const v2 = d.endpoints.get(`inbound-vip|80|http|v2|${HOST}`).endpoints[0].lbEndpoints;
    expect(v2.map((e: D) => e.endpoint.address.socketAddress.address)).toEqual(['10.0.0.2']);
  });

  it('keeps one empty locality for a service without ready pods', () => {
    const d = decoded(build(BASE[0], BASE[1], service('echo', [HTTP80])));
    expect(d.endpoints.get(C80)).toEqual({ clusterName: C80, endpoints: [{}] });
  });
});

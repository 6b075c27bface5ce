import { describe, expect, it } from 'vitest';
import { MeshModelBuilder } from '../ambient/mesh-model.js';
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
  objects,
  pod,
  service,
  struct,
  TD,
} from './waypoint-fixture.js';

/** The workload name workload discovery gives a pod, which endpoint metadata must repeat. */
function workloadNameOf(docs: unknown[], pod: string): string | undefined {
  const model = new MeshModelBuilder({
    clusterId: 'Kubernetes',
    trustDomain: TD,
    rootNamespace: 'istio-system',
    domainSuffix: 'cluster.local',
  }).build(objects(docs));
  for (const a of model.addresses.values())
    if ('workload' in a && a.workload.name === pod) return a.workload.workloadName;
  return undefined;
}

describe('waypoint resources: endpoints', () => {
  it('lists ready pods with their target port and identity metadata, HBONE only when enrolled', () => {
    const docs = [
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
    ];
    const d = decoded(build(...docs));
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
        // istiod's telemetry key: workload;namespace;canonical name;canonical revision;cluster.
        workload: `${workloadNameOf(docs, 'echo-a')};demo;echo;v1;Kubernetes`,
        namespace: 'demo',
        service_account: 'echo',
        identity: 'spiffe://cluster.local/ns/demo/sa/echo',
        tunnel: 'hbone',
      },
      {
        workload: `${workloadNameOf(docs, 'echo-b')};demo;echo;v2;Kubernetes`,
        namespace: 'demo',
        service_account: 'echo',
        identity: 'spiffe://cluster.local/ns/demo/sa/echo',
        tunnel: 'none',
      },
    ]);
    const v2 = d.endpoints.get(`inbound-vip|80|http|v2|${HOST}`).endpoints[0].lbEndpoints;
    expect(v2.map((e: D) => e.endpoint.address.socketAddress.address)).toEqual(['10.0.0.2']);
  });

  it('names each endpoint`s workload as workload discovery does, leaving the default revision out', () => {
    const docs = [
      namespace('demo', { ...AMBIENT, 'istio.io/use-waypoint': 'waypoint' }),
      gateway(),
      service('echo', [HTTP80]),
      pod(
        'echo-7d9f8c6b5-x2x4z',
        {
          app: 'echo',
          'service.istio.io/canonical-name': 'echo-canonical',
          'service.istio.io/canonical-revision': 'r7',
        },
        { ip: '10.0.0.1' },
      ),
      pod('echo-plain', { app: 'echo' }, { ip: '10.0.0.2' }),
    ];
    const eps = decoded(build(...docs)).endpoints.get(C80).endpoints[0].lbEndpoints;
    const workloads = eps.map((e: D) => (struct(e.metadata.filterMetadata.istio) as D).workload);
    const named = workloadNameOf(docs, 'echo-7d9f8c6b5-x2x4z');
    expect(named).toBeTruthy();
    expect(workloads).toEqual([
      `${named};demo;echo-canonical;r7;Kubernetes`,
      // Revision "latest" is istiod's default: left empty, as istiod leaves it.
      `${workloadNameOf(docs, 'echo-plain')};demo;echo;;Kubernetes`,
    ]);
  });

  it('keeps one empty locality for a service without ready pods', () => {
    const d = decoded(build(BASE[0], BASE[1], service('echo', [HTTP80])));
    expect(d.endpoints.get(C80)).toEqual({ clusterName: C80, endpoints: [{}] });
  });
});

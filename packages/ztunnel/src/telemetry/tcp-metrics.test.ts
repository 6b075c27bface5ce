import { formatBaggage, parseBaggage } from '@ambient/shared';
import { describe, expect, it } from 'vitest';
import type { Service } from '../state/service.js';
import type { Workload } from '../state/workload.js';
import {
  type ConnectionParties,
  guessInboundService,
  TCP_LABELS,
  tcpLabels,
  workloadBaggage,
} from './tcp-metrics.js';

function workload(name: string, extra: Partial<Workload> = {}): Workload {
  return {
    uid: `Kubernetes//Pod/demo/${name}`,
    name,
    namespace: 'demo',
    serviceAccount: name,
    ips: ['198.18.1.2'],
    protocol: 'HBONE',
    node: 'node0',
    network: '',
    services: new Map(),
    authorizationPolicies: [],
    ...extra,
  };
}

const sleep = workload('sleep-7d4f9b6c8-x2x9k', {
  meta: {
    workloadName: 'sleep',
    workloadType: 'deployment',
    canonicalName: 'sleep-app',
    canonicalRevision: 'v1',
    clusterId: 'east',
    locality: { region: 'eu', zone: 'eu-1', subzone: '' },
  },
});
const echo = workload('echo-0', {
  meta: { workloadName: 'echo', canonicalName: 'echo', canonicalRevision: 'v2' },
});

describe('tcpLabels', () => {
  it('has upstream ztunnel CommonTrafficLabels names in its order, locality before the protocol labels', () => {
    expect(TCP_LABELS).toEqual([
      'reporter',
      'source_workload',
      'source_canonical_service',
      'source_canonical_revision',
      'source_workload_namespace',
      'source_principal',
      'source_app',
      'source_version',
      'source_cluster',
      'destination_service',
      'destination_service_namespace',
      'destination_service_name',
      'destination_workload',
      'destination_canonical_service',
      'destination_canonical_revision',
      'destination_workload_namespace',
      'destination_principal',
      'destination_app',
      'destination_version',
      'destination_cluster',
      'source_region',
      'source_zone',
      'destination_region',
      'destination_zone',
      'request_protocol',
      'response_flags',
      'connection_security_policy',
    ]);
  });

  it('labels known workloads from what the control plane says of them, not the pod name', () => {
    const p: ConnectionParties = {
      reporter: 'source',
      source: sleep,
      sourcePrincipal: 'spiffe://cluster.local/ns/demo/sa/sleep',
      destination: echo,
      destinationPrincipal: 'spiffe://cluster.local/ns/demo/sa/echo',
      service: { hostname: 'echo.demo.svc.cluster.local', namespace: 'demo', name: 'echo' },
      mtls: true,
    };
    expect(tcpLabels(p, '-', 'west')).toEqual({
      reporter: 'source',
      source_workload: 'sleep',
      source_canonical_service: 'sleep-app',
      source_canonical_revision: 'v1',
      source_workload_namespace: 'demo',
      source_principal: 'spiffe://cluster.local/ns/demo/sa/sleep',
      source_app: 'sleep-app',
      source_version: 'v1',
      source_cluster: 'east',
      destination_service: 'echo.demo.svc.cluster.local',
      destination_service_namespace: 'demo',
      destination_service_name: 'echo',
      destination_workload: 'echo',
      destination_canonical_service: 'echo',
      destination_canonical_revision: 'v2',
      destination_workload_namespace: 'demo',
      destination_principal: 'spiffe://cluster.local/ns/demo/sa/echo',
      destination_app: 'echo',
      destination_version: 'v2',
      // No cluster from the control plane: the node agent's.
      destination_cluster: 'west',
      request_protocol: 'tcp',
      response_flags: '-',
      connection_security_policy: 'mutual_tls',
      source_region: 'eu',
      source_zone: 'eu-1',
      destination_region: 'unknown',
      destination_zone: 'unknown',
    });
  });

  it('stands in istiod defaults for a workload that names none (pod name, latest)', () => {
    const l = tcpLabels({ reporter: 'destination', destination: workload('legacy'), mtls: false }, 'CONNECT');
    expect(l).toMatchObject({
      destination_workload: 'legacy',
      destination_canonical_service: 'legacy',
      destination_app: 'legacy',
      destination_canonical_revision: 'latest',
      destination_version: 'latest',
      destination_cluster: 'Kubernetes',
      source_workload: 'unknown',
      source_principal: 'unknown',
      destination_service: 'unknown',
      connection_security_policy: 'unknown',
      response_flags: 'CONNECT',
    });
  });

  it('labels an unknown source from its baggage as upstream with_derived_source, app being the workload name', () => {
    const derivedSource = parseBaggage(
      'k8s.cluster.name=remote,k8s.namespace.name=other,k8s.deployment.name=client,service.name=client-svc,service.version=v9,cloud.region=us,cloud.availability_zone=us-2',
    );
    const l = tcpLabels(
      {
        reporter: 'destination',
        derivedSource,
        sourcePrincipal: 'spiffe://td/ns/other/sa/c',
        destination: echo,
        mtls: true,
      },
      '-',
    );
    expect(l).toMatchObject({
      source_workload: 'client',
      source_canonical_service: 'client-svc',
      source_canonical_revision: 'v9',
      source_workload_namespace: 'other',
      source_app: 'client',
      source_version: 'v9',
      source_cluster: 'remote',
      source_region: 'us',
      source_zone: 'us-2',
      // The principal is the verified one, whatever the baggage says.
      source_principal: 'spiffe://td/ns/other/sa/c',
    });
    // Partial baggage: the rest is unknown, nothing made up.
    expect(
      tcpLabels({ reporter: 'destination', derivedSource: { namespace: 'x' }, mtls: true }, '-'),
    ).toMatchObject({
      source_workload: 'unknown',
      source_workload_namespace: 'x',
      source_cluster: 'unknown',
      source_canonical_revision: 'unknown',
    });
  });

  it('prefers a source known here over what its baggage claims', () => {
    const l = tcpLabels(
      {
        reporter: 'destination',
        source: sleep,
        derivedSource: { workloadName: 'forged', namespace: 'kube-system' },
        mtls: true,
      },
      '-',
    );
    expect(l.source_workload).toBe('sleep');
    expect(l.source_workload_namespace).toBe('demo');
  });
});

describe('workloadBaggage', () => {
  it('describes a workload with the same values its labels have, kind from its workload type', () => {
    const { baggage, kind } = workloadBaggage(sleep, 'west');
    expect(formatBaggage(baggage, kind)).toBe(
      'k8s.cluster.name=east,k8s.namespace.name=demo,k8s.deployment.name=sleep,service.name=sleep-app,service.version=v1,cloud.region=eu,cloud.availability_zone=eu-1',
    );
    const legacy = workloadBaggage(workload('legacy'), 'west');
    expect(formatBaggage(legacy.baggage, legacy.kind)).toBe(
      'k8s.cluster.name=west,k8s.namespace.name=demo,k8s.pod.name=legacy,service.name=legacy,service.version=latest',
    );
    // What one node sends, the other reads back to the same labels.
    const viaBaggage = tcpLabels(
      { reporter: 'destination', derivedSource: parseBaggage(formatBaggage(baggage, kind)), mtls: true },
      '-',
    );
    const direct = tcpLabels({ reporter: 'destination', source: sleep, mtls: true }, '-');
    for (const k of [
      'source_workload',
      'source_canonical_service',
      'source_canonical_revision',
      'source_cluster',
      'source_region',
    ] as const)
      expect(viaBaggage[k]).toBe(direct[k]);
  });
});

describe('guessInboundService', () => {
  const svc = (name: string, ports: Array<[number, number]>): Service => ({
    name,
    namespace: 'demo',
    hostname: `${name}.demo.svc.cluster.local`,
    vips: [],
    ports: new Map(ports),
    subjectAltNames: [],
  });
  const admin = svc('echo-admin', [[9090, 9090]]);
  const web = svc('echo', [[80, 8080]]);
  const named = svc('echo-named', [[443, 0]]);
  const pod = workload('echo-0', {
    services: new Map([['demo/echo-named.demo.svc.cluster.local', new Map([[443, 8443]])]]),
  });
  const all = [admin, web, named];

  it('takes the first service whose target port is the delivered port', () => {
    expect(guessInboundService(all, pod, 8080)?.name).toBe('echo');
    expect(guessInboundService(all, pod, 9090)?.name).toBe('echo-admin');
    expect(guessInboundService(all, pod, 7777)).toBeUndefined();
  });

  it("matches a named target port through this pod's endpoint port", () => {
    expect(guessInboundService(all, pod, 8443)?.name).toBe('echo-named');
  });

  it('takes the service the client named in forwarded host, but only one of this pod', () => {
    expect(guessInboundService(all, pod, 8080, 'echo-admin.demo.svc.cluster.local')?.name).toBe('echo-admin');
    expect(guessInboundService(all, pod, 8080, 'kube-dns.kube-system.svc.cluster.local')?.name).toBe('echo');
  });
});

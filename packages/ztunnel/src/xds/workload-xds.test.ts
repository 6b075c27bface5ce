import {
  ADDRESS_CODEC,
  AUTHORIZATION_CODEC,
  type Input,
  type securityapi,
  type workloadapi,
} from '@ambient/shared';
import { describe, expect, it } from 'vitest';
import { type AddressValue, addressResourceType, authorizationResourceType } from './workload-xds.js';

const UID = 'Kubernetes//Pod/demo/web';

function decodeAddress(a: Input<workloadapi.Address>, name = UID) {
  return addressResourceType().decode(ADDRESS_CODEC.encode(a), name);
}

function decodeAuthz(a: Input<securityapi.Authorization>, name = 'demo/p') {
  return authorizationResourceType().decode(AUTHORIZATION_CODEC.encode(a), name);
}

function workloadOf(v: AddressValue) {
  if (!('workload' in v)) throw new Error('not a workload');
  return v.workload;
}

const web: Input<workloadapi.Workload> = {
  uid: UID,
  name: 'web',
  namespace: 'demo',
  addresses: [Buffer.from([10, 0, 0, 5]), Buffer.from('fd000000000000000000000000000005', 'hex')],
  tunnelProtocol: 1,
  serviceAccount: 'web-sa',
  node: 'node-a',
  services: { 'demo/web.demo.svc.cluster.local': { ports: [{ servicePort: 80, targetPort: 0 }] } },
  authorizationPolicies: ['demo/allow'],
  waypoint: { hostname: { namespace: 'demo', hostname: 'wp.demo.svc.cluster.local' }, hboneMtlsPort: 15008 },
};

describe('addressResourceType', () => {
  it('decodes a workload from the wire into the domain type', () => {
    const r = decodeAddress({ workload: web });
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    expect(workloadOf(r.value)).toEqual({
      uid: UID,
      name: 'web',
      namespace: 'demo',
      serviceAccount: 'web-sa',
      ips: ['10.0.0.5', 'fd00:0:0:0:0:0:0:5'],
      protocol: 'HBONE',
      node: 'node-a',
      network: '',
      services: new Map([['demo/web.demo.svc.cluster.local', new Map([[80, 80]])]]),
      authorizationPolicies: ['demo/allow'],
      waypoint: { namespace: 'demo', hostname: 'wp.demo.svc.cluster.local', port: 15008 },
      meta: { status: 'Healthy', networkMode: 'Standard', workloadType: 'deployment' },
    });
  });

  it('keeps the telemetry and status fields the control plane sends', () => {
    const r = decodeAddress({
      workload: {
        ...web,
        workloadName: 'web',
        workloadType: 3,
        canonicalName: 'web-app',
        canonicalRevision: 'v2',
        clusterId: 'east',
        hostname: 'web-0.web.demo.svc.cluster.local',
        status: 1,
        networkMode: 1,
        locality: { region: 'r1', zone: 'z1', subzone: 's1' },
      },
    });
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    expect(workloadOf(r.value).meta).toEqual({
      workloadName: 'web',
      workloadType: 'job',
      canonicalName: 'web-app',
      canonicalRevision: 'v2',
      clusterId: 'east',
      hostname: 'web-0.web.demo.svc.cluster.local',
      status: 'Unhealthy',
      locality: { region: 'r1', zone: 'z1', subzone: 's1' },
      networkMode: 'HostNetwork',
    });
  });

  it('refuses a workload type, status or network mode the contract does not define', () => {
    const r = decodeAddress({
      workload: { ...web, workloadType: 9, status: 4, networkMode: 7 } as unknown as typeof web,
    });
    expect(r.ok ? [] : r.problems.map((p) => p.path)).toEqual([
      'workload.workload_type',
      'workload.status',
      'workload.network_mode',
    ]);
  });

  it('keeps the trust domain the control plane names, and leaves it out when empty', () => {
    const other = decodeAddress({ workload: { ...web, trustDomain: 'other.example' } });
    if (!other.ok) throw new Error(JSON.stringify(other.problems));
    expect(workloadOf(other.value).trustDomain).toBe('other.example');
    const none = decodeAddress({ workload: web });
    if (!none.ok) throw new Error(JSON.stringify(none.problems));
    expect(workloadOf(none.value)).not.toHaveProperty('trustDomain');
  });

  it('refuses a trust domain no SPIFFE ID can carry', () => {
    const r = decodeAddress({ workload: { ...web, trustDomain: 'Other/Example' } });
    expect(r.ok ? [] : r.problems).toEqual([
      { path: 'workload.trust_domain', message: '"Other/Example" has characters outside [a-z0-9._-]' },
    ]);
  });

  it('decodes a service keyed namespace/hostname', () => {
    const r = decodeAddress(
      {
        service: {
          name: 'web',
          namespace: 'demo',
          hostname: 'web.demo.svc.cluster.local',
          addresses: [{ network: '', address: Buffer.from([10, 96, 0, 10]) }],
          ports: [{ servicePort: 80, targetPort: 8080 }],
        },
      },
      'demo/web.demo.svc.cluster.local',
    );
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    expect(r.value).toEqual({
      service: {
        name: 'web',
        namespace: 'demo',
        hostname: 'web.demo.svc.cluster.local',
        vips: [{ network: '', address: '10.96.0.10' }],
        ports: new Map([[80, 8080]]),
        subjectAltNames: [],
      },
    });
  });

  it('returns every problem with its field path', () => {
    const r = decodeAddress(
      {
        workload: {
          ...web,
          uid: 'Kubernetes//Pod/demo/other',
          addresses: [Buffer.from([10, 0, 0, 1, 7])],
          // 3: a value this contract does not define (2 is LEGACY_ISTIO_MTLS).
          tunnelProtocol: 3 as workloadapi.TunnelProtocol,
          waypoint: { hboneMtlsPort: 15008 },
        },
      },
      UID,
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems).toEqual([
      { path: 'workload.addresses[0]', message: '5 bytes is not an IPv4 (4) or IPv6 (16) address' },
      { path: 'workload.tunnel_protocol', message: '3 is not NONE or HBONE' },
      { path: 'workload.waypoint', message: 'must have a hostname or an address' },
      { path: 'workload.uid', message: 'Kubernetes//Pod/demo/other does not match the resource name' },
    ]);
  });

  it('refuses a LEGACY_ISTIO_MTLS workload, as upstream ztunnel: it cannot send legacy Istio mTLS', () => {
    const r = decodeAddress({ workload: { ...web, tunnelProtocol: 2 } });
    expect(r.ok ? [] : r.problems).toEqual([
      {
        path: 'workload.tunnel_protocol',
        message: 'LEGACY_ISTIO_MTLS is not supported: ztunnel sends only NONE or HBONE',
      },
    ]);
  });

  it('keeps the network gateway, native and application tunnels and capacity', () => {
    const r = decodeAddress({
      workload: {
        ...web,
        networkGateway: {
          address: { network: 'west', address: Buffer.from([198, 18, 0, 9]) },
          hboneMtlsPort: 15009,
        },
        nativeTunnel: true,
        applicationTunnel: { protocol: 1, port: 15088 },
        capacity: { value: 3 },
      },
    });
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    expect(workloadOf(r.value)).toMatchObject({
      networkGateway: { network: 'west', address: '198.18.0.9', port: 15009 },
      nativeTunnel: true,
      applicationTunnel: { protocol: 'PROXY', port: 15088 },
      capacity: 3,
    });
    // Unset: absent (capacity 1, no tunnels); port 0 means the original port; capacity 0 is kept.
    const plain = decodeAddress({
      workload: { ...web, applicationTunnel: { protocol: 0 }, capacity: { value: 0 } },
    });
    if (!plain.ok) throw new Error(JSON.stringify(plain.problems));
    expect(workloadOf(plain.value).applicationTunnel).toEqual({ protocol: 'NONE' });
    expect(workloadOf(plain.value).capacity).toBe(0);
    const none = decodeAddress({ workload: web });
    if (!none.ok) throw new Error(JSON.stringify(none.problems));
    for (const key of ['networkGateway', 'nativeTunnel', 'applicationTunnel', 'capacity'])
      expect(workloadOf(none.value)).not.toHaveProperty(key);
    const bad = decodeAddress({
      workload: {
        ...web,
        applicationTunnel: { protocol: 5 as workloadapi.ApplicationTunnelProtocol, port: 70000 },
        networkGateway: {},
      },
    });
    expect(bad.ok ? [] : bad.problems.map((p) => p.path)).toEqual([
      'workload.network_gateway',
      'workload.application_tunnel.protocol',
      'workload.application_tunnel.port',
    ]);
  });

  it('keeps a VIP with a prefix length as a CIDR VIP, and a full-length one as an address', () => {
    const r = decodeAddress(
      {
        service: {
          name: 'range',
          namespace: 'demo',
          hostname: 'range.demo',
          addresses: [
            { network: '', address: Buffer.from([198, 18, 32, 0]), length: 24 },
            { network: '', address: Buffer.from([198, 18, 33, 7]), length: 32 },
            { network: '', address: Buffer.from([198, 18, 34, 7]) },
            { network: 'v6', address: Buffer.from('fd000000000000000000000000000000', 'hex'), length: 64 },
          ],
          ports: [{ servicePort: 80 }],
        },
      },
      'demo/range.demo',
    );
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    if (!('service' in r.value)) throw new Error('not a service');
    expect(r.value.service.vips).toEqual([
      { network: '', address: '198.18.33.7' },
      { network: '', address: '198.18.34.7' },
    ]);
    expect(r.value.service.cidrVips).toEqual([
      { network: '', address: '198.18.32.0', length: 24 },
      { network: 'v6', address: 'fd00:0:0:0:0:0:0:0', length: 64 },
    ]);
    const tooLong = decodeAddress(
      {
        service: {
          name: 'range',
          namespace: 'demo',
          hostname: 'range.demo',
          addresses: [{ address: Buffer.from([198, 18, 32, 0]), length: 33 }],
        },
      },
      'demo/range.demo',
    );
    expect(tooLong.ok ? [] : tooLong.problems).toEqual([
      { path: 'service.addresses[0].length', message: '33 is longer than 32' },
    ]);
  });

  it('keeps app protocols, weighted waypoints, load balancing, IP families and the service flags', () => {
    const wp = (host: string) => ({ hostname: { namespace: 'demo', hostname: host }, hboneMtlsPort: 15008 });
    const r = decodeAddress(
      {
        service: {
          name: 'web',
          namespace: 'demo',
          hostname: 'web.demo',
          ports: [
            { servicePort: 80, targetPort: 8080, appProtocol: 1 },
            { servicePort: 81, appProtocol: 3 },
            { servicePort: 82 },
          ],
          waypoint: wp('a.demo'),
          weightedWaypoints: [
            { destination: wp('a.demo'), weight: 90 },
            { destination: wp('b.demo'), weight: 10 },
          ],
          loadBalancing: { routingPreference: [2, 6], mode: 2, healthPolicy: 1 },
          ipFamilies: 3,
          canonical: true,
          ingressUseWaypoint: true,
          visibility: 1,
        },
      },
      'demo/web.demo',
    );
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    if (!('service' in r.value)) throw new Error('not a service');
    const s = r.value.service;
    expect(s.appProtocols).toEqual(
      new Map([
        [80, 'HTTP11'],
        [81, 'GRPC'],
      ]),
    );
    expect(s.weightedWaypoints?.map((w) => [w.destination.hostname, w.weight])).toEqual([
      ['a.demo', 90],
      ['b.demo', 10],
    ]);
    expect(s).toMatchObject({
      loadBalancer: { routingPreferences: ['Zone', 'Network'], mode: 'Failover', healthPolicy: 'AllowAll' },
      ipFamilies: 'Dual',
      canonical: true,
      ingressUseWaypoint: true,
      visibility: 'Namespace',
    });
  });

  it('reads an unknown visibility as PUBLIC, as upstream, and refuses other unknown values', () => {
    const base = { name: 'web', namespace: 'demo', hostname: 'web.demo' };
    const r = decodeAddress(
      { service: { ...base, visibility: 7 as workloadapi.ServiceVisibility } },
      'demo/web.demo',
    );
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    expect('service' in r.value && r.value.service).not.toHaveProperty('visibility');
    const bad = decodeAddress(
      {
        service: {
          ...base,
          ports: [{ servicePort: 80, appProtocol: 9 as workloadapi.AppProtocol }],
          loadBalancing: { routingPreference: [0], mode: 8 as workloadapi.LoadBalancingMode },
          ipFamilies: 6 as workloadapi.IPFamilies,
          weightedWaypoints: [{ weight: 1 }],
        },
      },
      'demo/web.demo',
    );
    expect(bad.ok ? [] : bad.problems.map((p) => p.path)).toEqual([
      'service.weighted_waypoints[0].destination',
      'service.load_balancing.routing_preference[0]',
      'service.load_balancing.mode',
      'service.ip_families',
      'service.ports[0].app_protocol',
    ]);
  });

  it('refuses an Address with neither member of its oneof, and bytes that are not a message', () => {
    const empty = decodeAddress({});
    expect(empty.ok ? [] : empty.problems).toEqual([
      { path: 'type', message: 'must be a workload or a service' },
    ]);
    const garbage = addressResourceType().decode(Uint8Array.from([0x0a, 0x05, 0x01]), UID);
    expect(garbage.ok).toBe(false);
  });
});

describe('authorizationResourceType', () => {
  const match: Input<securityapi.Match> = {
    namespaces: [{ exact: 'demo' }],
    notPrincipals: [{ presence: {} }],
    serviceAccounts: [{ namespace: 'demo', serviceAccount: 'web' }],
    sourceIps: [{ address: Buffer.from([10, 0, 0, 0]), length: 8 }],
    destinationPorts: [8080],
  };

  it('decodes scope, action, rules and string matches', () => {
    const r = decodeAuthz({
      name: 'p',
      namespace: 'demo',
      scope: 2,
      action: 1,
      rules: [{ clauses: [{ matches: [match] }] }],
    });
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    expect(r.value).toMatchObject({ name: 'p', namespace: 'demo', scope: 'workload', action: 'deny' });
    expect(r.value.rules[0]?.clauses[0]?.matches[0]).toEqual({
      namespaces: [{ exact: 'demo' }],
      notNamespaces: [],
      serviceAccounts: [{ namespace: 'demo', serviceAccount: 'web' }],
      notServiceAccounts: [],
      principals: [],
      notPrincipals: [{ presence: true }],
      sourceIps: ['10.0.0.0/8'],
      notSourceIps: [],
      destinationIps: [],
      notDestinationIps: [],
      destinationPorts: [8080],
      notDestinationPorts: [],
    });
  });

  it('refuses enumeration values it does not know, a string match with no member and a too long prefix', () => {
    const r = decodeAuthz({
      name: 'p',
      namespace: 'demo',
      scope: 7 as securityapi.Scope,
      action: 3 as securityapi.Action,
      rules: [
        {
          clauses: [
            {
              matches: [
                { principals: [{}], destinationIps: [{ address: Buffer.from([10, 0, 0, 0]), length: 33 }] },
              ],
            },
          ],
        },
      ],
    });
    expect(r.ok ? [] : r.problems).toEqual([
      { path: 'scope', message: '7 is not GLOBAL, NAMESPACE or WORKLOAD_SELECTOR' },
      { path: 'action', message: '3 is not ALLOW or DENY' },
      {
        path: 'rules[0].clauses[0].matches[0].principals[0]',
        message: 'must set exact, prefix, suffix or presence',
      },
      { path: 'rules[0].clauses[0].matches[0].destination_ips[0].length', message: '33 is longer than 32' },
    ]);
  });
});

import { describe, expect, it } from 'vitest';
import { meshProtos } from '../xds/xds-protos.js';
import { allFieldsHandled } from './all-fields-handled.js';
import * as securityapi from './istio-authorization.js';
import { ADDRESS_CODEC, AUTHORIZATION_CODEC } from './istio-codecs.js';
import * as workloadapi from './istio-workload.js';

/** The keys of T that are fields: every key but a oneof's discriminator (the only optional ones). */
type FieldKeys<T> = { [K in keyof T]-?: undefined extends T[K] ? never : K }[keyof T];
/** Field name to number, for every field of a decoded type: a field missing here fails to compile. */
type FieldNumbers<T> = Record<FieldKeys<T>, number>;

// Numbers as in upstream istio/ztunnel proto/workload.proto and proto/authorization.proto.
const WORKLOAD: FieldNumbers<workloadapi.Workload> = {
  uid: 20,
  name: 1,
  namespace: 2,
  addresses: 3,
  hostname: 21,
  network: 4,
  tunnelProtocol: 5,
  trustDomain: 6,
  serviceAccount: 7,
  waypoint: 8,
  networkGateway: 19,
  node: 9,
  canonicalName: 10,
  canonicalRevision: 11,
  workloadType: 12,
  workloadName: 13,
  nativeTunnel: 14,
  applicationTunnel: 23,
  services: 22,
  authorizationPolicies: 16,
  status: 17,
  clusterId: 18,
  locality: 24,
  networkMode: 25,
  extensions: 26,
  capacity: 27,
};
const SERVICE: FieldNumbers<workloadapi.Service> = {
  name: 1,
  namespace: 2,
  hostname: 3,
  addresses: 4,
  ports: 5,
  subjectAltNames: 6,
  waypoint: 7,
  loadBalancing: 8,
  ipFamilies: 9,
  extensions: 10,
  canonical: 11,
  ingressUseWaypoint: 12,
  weightedWaypoints: 13,
  visibility: 14,
};
const MESSAGES: Array<[string, Record<string, number>]> = [
  ['istio.workload.Address', { workload: 1, service: 2 } satisfies FieldNumbers<workloadapi.Address>],
  ['istio.workload.Workload', WORKLOAD],
  ['istio.workload.Service', SERVICE],
  [
    'istio.workload.LoadBalancing',
    { routingPreference: 1, mode: 2, healthPolicy: 3 } satisfies FieldNumbers<workloadapi.LoadBalancing>,
  ],
  [
    'istio.workload.Locality',
    { region: 1, zone: 2, subzone: 3 } satisfies FieldNumbers<workloadapi.Locality>,
  ],
  ['istio.workload.PortList', { ports: 1 } satisfies FieldNumbers<workloadapi.PortList>],
  [
    'istio.workload.Port',
    { servicePort: 1, targetPort: 2, appProtocol: 3 } satisfies FieldNumbers<workloadapi.Port>,
  ],
  [
    'istio.workload.ApplicationTunnel',
    { protocol: 1, port: 2 } satisfies FieldNumbers<workloadapi.ApplicationTunnel>,
  ],
  [
    'istio.workload.GatewayAddress',
    { hostname: 1, address: 2, hboneMtlsPort: 3 } satisfies FieldNumbers<workloadapi.GatewayAddress>,
  ],
  [
    'istio.workload.NetworkAddress',
    { network: 1, address: 2, length: 3 } satisfies FieldNumbers<workloadapi.NetworkAddress>,
  ],
  [
    'istio.workload.WeightedWaypoint',
    { destination: 1, weight: 2 } satisfies FieldNumbers<workloadapi.WeightedWaypoint>,
  ],
  [
    'istio.workload.NamespacedHostname',
    { namespace: 1, hostname: 2 } satisfies FieldNumbers<workloadapi.NamespacedHostname>,
  ],
  ['istio.workload.Extension', { name: 1, config: 2 } satisfies FieldNumbers<workloadapi.Extension>],
  ['google.protobuf.Any', { type_url: 1, value: 2 } satisfies FieldNumbers<workloadapi.Any>],
  [
    'istio.security.Authorization',
    {
      name: 1,
      namespace: 2,
      scope: 3,
      action: 4,
      rules: 5,
      dryRun: 6,
      extensions: 7,
    } satisfies FieldNumbers<securityapi.Authorization>,
  ],
  ['istio.security.Rule', { clauses: 1 } satisfies FieldNumbers<securityapi.Rule>],
  ['istio.security.Clause', { matches: 2 } satisfies FieldNumbers<securityapi.Clause>],
  [
    'istio.security.Match',
    {
      namespaces: 1,
      notNamespaces: 2,
      serviceAccounts: 11,
      notServiceAccounts: 12,
      principals: 3,
      notPrincipals: 4,
      sourceIps: 5,
      notSourceIps: 6,
      destinationIps: 7,
      notDestinationIps: 8,
      destinationPorts: 9,
      notDestinationPorts: 10,
      extensions: 13,
    } satisfies FieldNumbers<securityapi.Match>,
  ],
  ['istio.security.Address', { address: 1, length: 2 } satisfies FieldNumbers<securityapi.Address>],
  [
    'istio.security.ServiceAccountMatch',
    { namespace: 1, serviceAccount: 2 } satisfies FieldNumbers<securityapi.ServiceAccountMatch>,
  ],
  [
    'istio.security.StringMatch',
    { exact: 1, prefix: 2, suffix: 3, presence: 4 } satisfies FieldNumbers<securityapi.StringMatch>,
  ],
];

describe('Istio wire types', () => {
  it.each(MESSAGES)('%s: the type names every field of the .proto, with its number', (name, numbers) => {
    const type = meshProtos().lookupType(name);
    const fromProto = Object.fromEntries(Object.values(type.fields).map((f) => [f.name, f.id]));
    expect(fromProto).toEqual(numbers);
  });

  it.each<[string, Record<string, number>]>([
    ['istio.workload.TunnelProtocol', workloadapi.TunnelProtocol],
    ['istio.workload.WorkloadType', workloadapi.WorkloadType],
    ['istio.workload.WorkloadStatus', workloadapi.WorkloadStatus],
    ['istio.workload.NetworkMode', workloadapi.NetworkMode],
    ['istio.workload.AppProtocol', workloadapi.AppProtocol],
    ['istio.workload.Service.Visibility', workloadapi.ServiceVisibility],
    ['istio.workload.IPFamilies', workloadapi.IPFamilies],
    ['istio.workload.LoadBalancing.Scope', workloadapi.LoadBalancingScope],
    ['istio.workload.LoadBalancing.Mode', workloadapi.LoadBalancingMode],
    ['istio.workload.LoadBalancing.HealthPolicy', workloadapi.LoadBalancingHealthPolicy],
    ['istio.workload.ApplicationTunnel.Protocol', workloadapi.ApplicationTunnelProtocol],
    ['istio.security.Scope', securityapi.Scope],
    ['istio.security.Action', securityapi.Action],
  ])('%s: the enum object has the .proto values', (name, values) => {
    expect(meshProtos().lookupEnum(name).values).toEqual(values);
  });
});

describe('ADDRESS_CODEC and AUTHORIZATION_CODEC', () => {
  it('round-trips a workload; unset message fields decode as null and unset scalars as defaults', () => {
    const bytes = ADDRESS_CODEC.encode({
      workload: {
        uid: 'Kubernetes//Pod/demo/web',
        addresses: [Buffer.from([10, 0, 0, 5])],
        trustDomain: 'other.example',
        tunnelProtocol: 1,
        services: { 'demo/web.demo.svc.cluster.local': { ports: [{ servicePort: 80, targetPort: 8080 }] } },
      },
    });
    const a = ADDRESS_CODEC.decode(bytes);
    expect(a.type).toBe('workload');
    expect(a.service).toBeNull();
    const w = a.workload;
    expect(w?.uid).toBe('Kubernetes//Pod/demo/web');
    expect(w?.trustDomain).toBe('other.example');
    expect(w?.tunnelProtocol).toBe(1);
    expect([...(w?.addresses[0] ?? [])]).toEqual([10, 0, 0, 5]);
    expect(w?.services['demo/web.demo.svc.cluster.local']?.ports[0]?.targetPort).toBe(8080);
    expect(w?.waypoint).toBeNull();
    expect(w?.hostname).toBe('');
    expect(w?.extensions).toEqual([]);
  });

  it('writes trust_domain as field 6 and uid as field 20 (tags 0x32 and 0xa2 0x01)', () => {
    const bytes = Buffer.from(ADDRESS_CODEC.encode({ workload: { trustDomain: 't', uid: 'u' } }));
    // Address.workload (field 1, length-delimited) wraps the Workload.
    expect(bytes[0]).toBe(0x0a);
    const inner = bytes.subarray(2);
    expect(inner.includes(Buffer.from([0x32, 1, 't'.charCodeAt(0)]))).toBe(true);
    expect(inner.includes(Buffer.from([0xa2, 0x01, 1, 'u'.charCodeAt(0)]))).toBe(true);
  });

  it('round-trips an authorization with its oneof string matches', () => {
    const bytes = AUTHORIZATION_CODEC.encode({
      name: 'deny',
      namespace: 'demo',
      scope: 2,
      action: 1,
      rules: [{ clauses: [{ matches: [{ notPrincipals: [{ presence: {} }], destinationPorts: [80] }] }] }],
    });
    const a = AUTHORIZATION_CODEC.decode(bytes);
    expect([a.name, a.namespace, a.scope, a.action, a.dryRun]).toEqual(['deny', 'demo', 2, 1, false]);
    const m = a.rules[0]?.clauses[0]?.matches[0];
    expect(m?.notPrincipals[0]?.matchType).toBe('presence');
    expect(m?.destinationPorts).toEqual([80]);
    expect(m?.namespaces).toEqual([]);
  });

  it('round-trips the service fields 12-14, a port app protocol and a VIP prefix length', () => {
    const bytes = ADDRESS_CODEC.encode({
      service: {
        name: 'web',
        addresses: [
          { network: 'n', address: Buffer.from([198, 18, 32, 0]), length: 24 },
          { network: 'n', address: Buffer.from([198, 18, 33, 1]) },
        ],
        ports: [{ servicePort: 80, targetPort: 8080, appProtocol: workloadapi.AppProtocol.HTTP2 }],
        ingressUseWaypoint: true,
        weightedWaypoints: [
          { destination: { hostname: { namespace: 'demo', hostname: 'wp.demo' } }, weight: 90 },
          { destination: { hostname: { namespace: 'demo', hostname: 'wp2.demo' } } },
        ],
        visibility: workloadapi.ServiceVisibility.NAMESPACE,
      },
    });
    const s = ADDRESS_CODEC.decode(bytes).service;
    expect(s?.ingressUseWaypoint).toBe(true);
    expect(s?.visibility).toBe(1);
    expect(s?.ports[0]?.appProtocol).toBe(2);
    expect(s?.weightedWaypoints.map((w) => [w.destination?.hostname?.hostname, w.weight])).toEqual([
      ['wp.demo', 90],
      ['wp2.demo', 0],
    ]);
    // proto3 `optional`: an unset length is null (a host address), not 0.
    expect(s?.addresses.map((a) => a.length)).toEqual([24, null]);
    const unset = ADDRESS_CODEC.decode(ADDRESS_CODEC.encode({ service: { name: 'web' } })).service;
    expect([unset?.ingressUseWaypoint, unset?.visibility, unset?.weightedWaypoints]).toEqual([false, 0, []]);
  });

  it('writes an explicit prefix length of 0 (tag 0x18), and nothing for an unset one', () => {
    const type = meshProtos().lookupType('istio.workload.NetworkAddress');
    const zero = Buffer.from(type.encode({ address: Buffer.from([0, 0, 0, 0]), length: 0 }).finish());
    expect([...zero.subarray(-2)]).toEqual([0x18, 0]);
    expect(type.decode(zero)).toMatchObject({ length: 0 });
    const host = Buffer.from(type.encode({ address: Buffer.from([1, 2, 3, 4]) }).finish());
    expect(host.includes(0x18)).toBe(false);
  });

  it('round-trips extensions on an authorization and its matches (istio.workload.Extension)', () => {
    const ext = {
      name: 'x',
      config: { type_url: 'type.googleapis.com/google.protobuf.Empty', value: new Uint8Array() },
    };
    const a = AUTHORIZATION_CODEC.decode(
      AUTHORIZATION_CODEC.encode({
        name: 'p',
        extensions: [ext],
        rules: [{ clauses: [{ matches: [{ extensions: [ext] }] }] }],
      }),
    );
    expect(a.extensions.map((e) => [e.name, e.config?.type_url])).toEqual([
      ['x', 'type.googleapis.com/google.protobuf.Empty'],
    ]);
    expect(a.rules[0]?.clauses[0]?.matches[0]?.extensions[0]?.name).toBe('x');
  });

  it('names its type URL', () => {
    expect(ADDRESS_CODEC.typeUrl).toBe('type.googleapis.com/istio.workload.Address');
    expect(AUTHORIZATION_CODEC.typeUrl).toBe('type.googleapis.com/istio.security.Authorization');
  });

  it('throws on malformed bytes', () => {
    expect(() => ADDRESS_CODEC.decode(Uint8Array.from([0x0a, 0x05, 0x01]))).toThrow();
  });
});

describe('allFieldsHandled', () => {
  it('compiles for a fully destructured message and not for one with a field left over', () => {
    const {
      name,
      namespace,
      scope,
      action,
      rules,
      dryRun,
      extensions: _extensions,
      ...rest
    } = AUTHORIZATION_CODEC.decode(AUTHORIZATION_CODEC.encode({ name: 'p' }));
    allFieldsHandled(rest);
    expect([name, namespace, scope, action, rules, dryRun]).toEqual(['p', '', 0, 0, [], false]);
    const { name: _name, ...withScope } = { name: 'p', scope: 0 };
    // @ts-expect-error scope is left over: a decoder that forgets a field does not compile.
    allFieldsHandled(withScope);
  });
});

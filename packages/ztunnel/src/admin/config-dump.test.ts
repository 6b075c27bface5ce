import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CertManager, LocalCa, SpiffeId } from '@ambient/shared';
import { describe, expect, it } from 'vitest';
import { parseLocalConfig } from '../config/local-config.js';
import type { AuthorizationPolicy } from '../state/policy.js';
import type { Service } from '../state/service.js';
import type { Workload } from '../state/workload.js';
import { buildConfigDump, dumpCert, dumpPolicy, dumpService, dumpWorkload } from './config-dump.js';

const sleep: Workload = {
  uid: 'Kubernetes//Pod/demo/sleep',
  name: 'sleep',
  namespace: 'demo',
  serviceAccount: 'sleep',
  ips: ['198.18.16.10'],
  protocol: 'HBONE',
  node: 'node0',
  network: '',
  services: new Map([['demo/echo.demo.svc.cluster.local', new Map([[80, 8080]])]]),
  authorizationPolicies: ['demo/allow-sleep'],
  waypoint: { namespace: 'demo', hostname: 'waypoint.demo.svc.cluster.local', port: 15008 },
  meta: {
    workloadName: 'sleep',
    workloadType: 'deployment',
    canonicalName: 'sleep',
    canonicalRevision: 'v1',
    clusterId: 'Kubernetes',
    status: 'Unhealthy',
    locality: { region: 'r', zone: 'z', subzone: '' },
  },
};

const echo: Service = {
  name: 'echo',
  namespace: 'demo',
  hostname: 'echo.demo.svc.cluster.local',
  vips: [{ network: 'net1', address: '198.19.0.10' }],
  ports: new Map([[80, 8080]]),
  subjectAltNames: ['spiffe://cluster.local/ns/demo/sa/echo'],
  waypoint: { network: 'net1', address: '198.19.0.20', port: 15008 },
};

describe('config dump in upstream ztunnel shape', () => {
  it('renders a workload with serde camelCase names, enum spellings, and empty fields left out', () => {
    expect(dumpWorkload(sleep, 'cluster.local')).toEqual({
      workloadIps: ['198.18.16.10'],
      waypoint: { destination: 'demo/waypoint.demo.svc.cluster.local', hboneMtlsPort: 15008 },
      protocol: 'HBONE',
      networkMode: 'Standard',
      uid: 'Kubernetes//Pod/demo/sleep',
      name: 'sleep',
      namespace: 'demo',
      trustDomain: 'cluster.local',
      serviceAccount: 'sleep',
      workloadName: 'sleep',
      workloadType: 'deployment',
      canonicalName: 'sleep',
      canonicalRevision: 'v1',
      node: 'node0',
      authorizationPolicies: ['demo/allow-sleep'],
      status: 'Unhealthy',
      clusterId: 'Kubernetes',
      locality: { region: 'r', zone: 'z', subzone: '' },
      services: ['demo/echo.demo.svc.cluster.local'],
      capacity: 1,
    });
    // No telemetry fields from the source: upstream's defaults, and nothing for the empty ones.
    const bare = dumpWorkload(
      {
        ...sleep,
        meta: undefined,
        waypoint: undefined,
        authorizationPolicies: [],
        services: new Map(),
        network: '',
      },
      'example.org',
    );
    expect(bare).toEqual({
      workloadIps: ['198.18.16.10'],
      protocol: 'HBONE',
      networkMode: 'Standard',
      uid: 'Kubernetes//Pod/demo/sleep',
      name: 'sleep',
      namespace: 'demo',
      trustDomain: 'example.org',
      serviceAccount: 'sleep',
      node: 'node0',
      status: 'Healthy',
      clusterId: '',
      capacity: 1,
    });
  });

  it('writes a network gateway, a native tunnel, an application tunnel and capacity as upstream', () => {
    const dump = dumpWorkload(
      {
        ...sleep,
        networkGateway: { network: 'east', address: '198.19.0.1', port: 15008 },
        nativeTunnel: true,
        applicationTunnel: { protocol: 'PROXY' },
        capacity: 3,
      },
      'cluster.local',
    );
    expect(dump).toMatchObject({
      networkGateway: { destination: 'east/198.19.0.1', hboneMtlsPort: 15008 },
      nativeTunnel: true,
      applicationTunnel: { protocol: 'PROXY', port: null },
      capacity: 3,
    });
  });

  it('renders a service with network/ip VIPs, string-keyed ports and endpoints by workload uid', () => {
    expect(dumpService(echo, [sleep])).toEqual({
      name: 'echo',
      namespace: 'demo',
      hostname: 'echo.demo.svc.cluster.local',
      vips: ['net1/198.19.0.10'],
      ports: { '80': 8080 },
      endpoints: {
        'Kubernetes//Pod/demo/sleep': {
          workloadUid: 'Kubernetes//Pod/demo/sleep',
          port: { '80': 8080 },
          status: 'Unhealthy',
        },
      },
      subjectAltNames: ['spiffe://cluster.local/ns/demo/sa/echo'],
      waypoint: { destination: 'net1/198.19.0.20', hboneMtlsPort: 15008 },
      canonical: false,
      visibility: 'Public',
    });
  });

  it('writes prefix VIPs, visibility, weighted waypoints, load balancing, IP families and canonical as upstream', () => {
    const newer: Service = {
      ...echo,
      vips: [{ network: '', address: '198.19.0.10' }],
      cidrVips: [{ network: '', address: '198.19.8.0', length: 24 }],
      visibility: 'Namespace',
      canonical: true,
      weightedWaypoints: [
        { destination: { namespace: 'demo', hostname: 'wp.demo', port: 15008 }, weight: 10 },
      ],
      loadBalancer: { routingPreferences: ['Node', 'Zone'], mode: 'Failover', healthPolicy: 'AllowAll' },
      ipFamilies: 'Dual',
    };
    expect(dumpService(newer, [])).toMatchObject({
      vips: ['/198.19.0.10'],
      cidrVips: [{ network: '', cidr: '198.19.8.0/24' }],
      visibility: 'Namespace',
      canonical: true,
      weightedWaypoints: [{ destination: { destination: 'demo/wp.demo', hboneMtlsPort: 15008 }, weight: 10 }],
      loadBalancer: { routingPreferences: ['Node', 'Zone'], mode: 'Failover', healthPolicy: 'AllowAll' },
      ipFamilies: 'Dual',
      endpoints: {},
    });
  });

  it('renders a policy as rules of clauses of matches, with serde enum tags and CIDR IPs', () => {
    const policy: AuthorizationPolicy = {
      name: 'allow-sleep',
      namespace: 'demo',
      scope: 'workload',
      action: 'deny',
      rules: [
        {
          clauses: [
            {
              matches: [
                {
                  namespaces: [{ exact: 'demo' }],
                  notPrincipals: [
                    { prefix: 'spiffe://cluster.local/ns/x/' },
                    { suffix: '/sa/y' },
                    { presence: true },
                  ],
                  sourceIps: ['10.0.0.1', '10.1.0.0/16', 'fd00::1'],
                  destinationPorts: [8080],
                },
              ],
            },
            { matches: [{ notDestinationPorts: [9090] }] },
          ],
        },
      ],
    };
    expect(dumpPolicy(policy)).toEqual({
      name: 'allow-sleep',
      namespace: 'demo',
      scope: 'WorkloadSelector',
      action: 'Deny',
      rules: [
        [
          [
            {
              namespaces: [{ Exact: 'demo' }],
              notPrincipals: [
                { Prefix: 'spiffe://cluster.local/ns/x/' },
                { Suffix: '/sa/y' },
                { Presence: [] },
              ],
              sourceIps: ['10.0.0.1/32', '10.1.0.0/16', 'fd00::1/128'],
              destinationPorts: [8080],
            },
          ],
          [{ notDestinationPorts: [9090] }],
        ],
      ],
      dryRun: false,
    });
    expect(dumpPolicy({ ...policy, scope: 'global', action: 'allow', dryRun: true })).toMatchObject({
      scope: 'Global',
      action: 'Allow',
      dryRun: true,
    });
    expect(dumpPolicy({ ...policy, scope: 'namespace' }).scope).toBe('Namespace');
  });

  it('writes service account matches under serviceAccounts, as upstream, decoded from the local config', () => {
    const r = parseLocalConfig(`
policies:
- name: p
  namespace: demo
  scope: Namespace
  action: Allow
  dryRun: false
  rules: [[[{serviceAccounts: [{namespace: demo, serviceAccount: sleep}], notServiceAccounts: [{namespace: demo, serviceAccount: admin}]}]]]
`);
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    const [policy] = r.value.policies;
    if (!policy) throw new Error('no policy');
    expect(dumpPolicy(policy).rules).toEqual([
      [
        [
          {
            serviceAccounts: [{ namespace: 'demo', serviceAccount: 'sleep' }],
            notServiceAccounts: [{ namespace: 'demo', serviceAccount: 'admin' }],
          },
        ],
      ],
    ]);
  });

  it('orders every list by its upstream key, and shows the local file as staticConfig when it is the source', () => {
    const other: Workload = { ...sleep, uid: 'Kubernetes//Pod/demo/aaa', name: 'other', services: new Map() };
    const config = { workloads: [sleep, other], services: [echo], policies: [] };
    const base = { nodeName: 'node0', trustDomain: 'cluster.local', settings: {}, enrolled: [sleep, other] };
    const fromFile = buildConfigDump({
      ...base,
      config,
      staticConfig: config,
      configRejections: 0,
      lastConfigProblems: [],
    });
    expect(fromFile.workloads.map((w) => w.uid)).toEqual([
      'Kubernetes//Pod/demo/aaa',
      'Kubernetes//Pod/demo/sleep',
    ]);
    expect(Object.keys(fromFile.workloadState)).toEqual([
      'Kubernetes//Pod/demo/aaa',
      'Kubernetes//Pod/demo/sleep',
    ]);
    // A pod both pending and up (its proxy came up since) is Up; one only pending is Pending.
    const late: Workload = { ...sleep, uid: 'Kubernetes//Pod/demo/late', name: 'late' };
    const withPending = buildConfigDump({
      ...base,
      config,
      pending: [late, sleep],
      configRejections: 0,
      lastConfigProblems: [],
    });
    expect(
      Object.fromEntries(Object.entries(withPending.workloadState).map(([k, v]) => [k, v.state])),
    ).toEqual({
      'Kubernetes//Pod/demo/aaa': 'Up',
      'Kubernetes//Pod/demo/late': 'Pending',
      'Kubernetes//Pod/demo/sleep': 'Up',
    });
    // staticConfig keeps the file's order, as upstream re-reads the file.
    expect(fromFile.staticConfig.workloads[0]).toMatchObject({
      uid: 'Kubernetes//Pod/demo/sleep',
      services: { 'demo/echo.demo.svc.cluster.local': { '80': 8080 } },
    });
    // A file's services have no endpoints of their own: the workloads name them.
    expect(fromFile.staticConfig.services).toEqual([
      expect.objectContaining({ name: 'echo', endpoints: {} }),
    ]);
    const fromXds = buildConfigDump({ ...base, config, configRejections: 0, lastConfigProblems: [] });
    expect(fromXds.staticConfig).toEqual({ workloads: [], policies: [], services: [] });
    expect(fromXds.stagedServices).toEqual({});
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(fromXds.version).toEqual({
      version: pkg.version,
      nodeVersion: process.version,
      cryptoProvider: 'openssl',
    });
  });

  it('renders a large config with every endpoint under its service (prints the time taken)', () => {
    const services: Service[] = Array.from({ length: 2_000 }, (_, i) => ({
      ...echo,
      name: `svc-${i}`,
      hostname: `svc-${i}.demo.svc.cluster.local`,
    }));
    const workloads: Workload[] = Array.from({ length: 10_000 }, (_, i) => ({
      ...sleep,
      uid: `uid-${i}`,
      name: `pod-${i}`,
      services: new Map([[`demo/svc-${i % 2_000}.demo.svc.cluster.local`, new Map([[80, 8080]])]]),
    }));
    const started = performance.now();
    const dump = buildConfigDump({
      nodeName: 'node0',
      trustDomain: 'cluster.local',
      settings: {},
      config: { workloads, services, policies: [] },
      enrolled: [],
      configRejections: 0,
      lastConfigProblems: [],
    });
    const ms = performance.now() - started;
    const bytes = JSON.stringify(dump).length;
    console.log(
      `config dump of 10000 workloads, 2000 services: built in ${ms.toFixed(0)} ms, ${bytes} bytes of JSON`,
    );
    expect(dump.services.map((s) => Object.keys(s.endpoints).length)).toEqual(Array(2_000).fill(5));
    expect(dump.services[0]?.endpoints['uid-0']).toEqual({
      workloadUid: 'uid-0',
      port: { '80': 8080 },
      status: 'Unhealthy',
    });
  });

  it('renders a certificate as upstream: base64 PEM, decimal serial, RFC 3339 times in seconds', async () => {
    const ca = await LocalCa.create({ trustDomain: 'cluster.local' });
    const certs = new CertManager({ ca });
    try {
      const id = SpiffeId.of('cluster.local', 'demo', 'sleep');
      const issued = await certs.fetch(id);
      const leaf = issued.chainPem[0] as string;
      const x = new X509Certificate(leaf);
      const d = dumpCert(leaf);
      expect(Buffer.from(d.pem, 'base64').toString()).toBe(leaf);
      expect(BigInt(d.serialNumber)).toBe(BigInt(`0x${x.serialNumber}`));
      expect(d.serialNumber).toMatch(/^\d+$/);
      expect(d.validFrom).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      expect(Date.parse(d.expirationTime)).toBe(Date.parse(x.validTo));

      const dump = buildConfigDump({
        nodeName: 'node0',
        trustDomain: 'cluster.local',
        settings: {},
        certs: {
          dump: () => [
            ...certs.dump(),
            {
              identity: 'spiffe://cluster.local/ns/demo/sa/gone',
              state: 'unavailable',
              failures: 3,
              lastError: 'CA down',
            },
            { identity: 'spiffe://cluster.local/ns/demo/sa/new', state: 'initializing', failures: 0 },
          ],
          current: (s) => certs.current(SpiffeId.from(s)),
        },
        enrolled: [],
        configRejections: 0,
        lastConfigProblems: [],
      });
      expect(
        dump.certificates.map((c) => [c.identity, c.state, c.certChain.length, c.rootCerts.length]),
      ).toEqual([
        ['spiffe://cluster.local/ns/demo/sa/gone', 'Unavailable: CA down', 0, 0],
        ['spiffe://cluster.local/ns/demo/sa/new', 'Initializing', 0, 0],
        // The chain holds the leaf (and intermediates); the root is listed once, under rootCerts.
        [id.toString(), 'Available', issued.chainPem.length - 1, 1],
      ]);
      expect(dump.certificates[2]?.certChain[0]).toEqual(d);
      expect(dump.certificates[2]?.rootCerts[0]).toEqual(dumpCert(issued.rootsPem[0] as string));
      // The rotation details stay ours, under agentState.
      expect(dump.agentState.certificates.find((c) => c.identity === id.toString())).toMatchObject({
        state: 'available',
        failures: 0,
        serialNumber: x.serialNumber,
      });
    } finally {
      certs.close();
    }
  });
});

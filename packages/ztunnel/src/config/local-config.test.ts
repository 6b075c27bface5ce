import { readFileSync } from 'node:fs';
import { mkdtemp, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Problem } from '@ambient/shared';
import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../authz/authorization.js';
import { type LocalConfig, parseLocalConfig } from './local-config.js';
import { LocalConfigError, LocalConfigFile } from './local-config-file.js';

/**
 * Istio ztunnel's own example local config (examples/localhost.yaml at istio/ztunnel commit
 * 62d826530e5ce85764e309170205b293efcbc80b), as Istio writes it.
 */
const ISTIO_EXAMPLE = readFileSync(new URL('./fixtures/istio-localhost.yaml', import.meta.url), 'utf8');

describe('parseLocalConfig', () => {
  it("decodes Istio ztunnel's example local config into domain types", () => {
    const r = parseLocalConfig(ISTIO_EXAMPLE);
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    const ports = new Map([[80, 8080]]);
    const services = new Map([
      ['default/example.com', ports],
      ['default/example2.com', ports],
    ]);
    const meta = { status: 'Healthy', networkMode: 'Standard' };
    expect(r.value).toEqual({
      workloads: [
        {
          uid: 'cluster1//v1/Pod/default/local',
          name: 'local',
          namespace: 'default',
          serviceAccount: 'default',
          ips: ['127.0.0.1'],
          protocol: 'HBONE',
          node: 'local',
          network: '',
          services,
          authorizationPolicies: [],
          meta,
        },
        {
          uid: 'cluster1//v1/Pod/default/local-tcp',
          name: 'local-tcp',
          namespace: 'default',
          serviceAccount: 'default',
          ips: ['127.0.0.2'],
          protocol: 'TCP',
          node: 'local',
          network: '',
          services,
          authorizationPolicies: [],
          meta,
        },
      ],
      services: [
        {
          name: 'local',
          namespace: 'default',
          hostname: 'example.com',
          vips: [{ network: '', address: '127.10.0.1' }],
          ports,
          subjectAltNames: ['spiffe://cluster.local/ns/default/sa/local'],
          canonical: true,
        },
        {
          name: 'remote',
          namespace: 'default',
          hostname: 'example2.com',
          vips: [{ network: 'remote', address: '127.10.0.2' }],
          ports,
          subjectAltNames: [],
          canonical: true,
        },
      ],
      policies: [
        {
          name: 'deny-9999',
          namespace: 'default',
          scope: 'namespace',
          action: 'allow',
          rules: [
            {
              clauses: [
                {
                  matches: [
                    {
                      namespaces: [],
                      notNamespaces: [],
                      serviceAccounts: [],
                      notServiceAccounts: [],
                      principals: [],
                      notPrincipals: [],
                      sourceIps: [],
                      notSourceIps: [],
                      destinationIps: [],
                      notDestinationIps: [],
                      destinationPorts: [],
                      notDestinationPorts: [9999],
                    },
                  ],
                },
              ],
            },
          ],
        },
      ],
    });
  });

  it("decodes every field of upstream ztunnel's local config workloads", () => {
    const r = parseLocalConfig(`
workloads:
- uid: east//v1/Pod/demo/web-0
  name: web-0
  namespace: demo
  serviceAccount: web
  trustDomain: east.example
  workloadIps: ["198.18.16.10", "fd00::10"]
  protocol: HBONE
  networkMode: HostNetwork
  node: node0
  network: east
  hostname: web-0.web.demo.svc.cluster.local
  services: {"demo/web.demo.svc.cluster.local": {80: 8080}}
  authorizationPolicies: [demo/allow]
  waypoint: {destination: demo/waypoint.demo.svc.cluster.local, hboneMtlsPort: 15008}
  networkGateway: {destination: east/198.18.0.9, hboneMtlsPort: 15009}
  nativeTunnel: true
  applicationTunnel: {protocol: PROXY, port: 15088}
  workloadName: web
  workloadType: deployment
  canonicalName: web-app
  canonicalRevision: v2
  status: Unhealthy
  clusterId: east
  locality: {region: r1, zone: z1, subzone: s1}
  capacity: 3
  netns: /var/run/netns/web-0
- namespace: demo
  uid: demo-only-uid
  workloadIps: ["198.18.16.11"]
  applicationTunnel: {protocol: NONE}
`);
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    const [w, bare] = r.value.workloads;
    expect(w).toEqual({
      uid: 'east//v1/Pod/demo/web-0',
      name: 'web-0',
      namespace: 'demo',
      serviceAccount: 'web',
      trustDomain: 'east.example',
      ips: ['198.18.16.10', 'fd00::10'],
      protocol: 'HBONE',
      node: 'node0',
      network: 'east',
      services: new Map([['demo/web.demo.svc.cluster.local', new Map([[80, 8080]])]]),
      authorizationPolicies: ['demo/allow'],
      waypoint: { namespace: 'demo', hostname: 'waypoint.demo.svc.cluster.local', port: 15008 },
      networkGateway: { network: 'east', address: '198.18.0.9', port: 15009 },
      nativeTunnel: true,
      applicationTunnel: { protocol: 'PROXY', port: 15088 },
      capacity: 3,
      netns: '/var/run/netns/web-0',
      meta: {
        workloadName: 'web',
        workloadType: 'deployment',
        canonicalName: 'web-app',
        canonicalRevision: 'v2',
        clusterId: 'east',
        hostname: 'web-0.web.demo.svc.cluster.local',
        status: 'Unhealthy',
        locality: { region: 'r1', zone: 'z1', subzone: 's1' },
        networkMode: 'HostNetwork',
      },
    });
    // Upstream defaults the name to ""; a uid is then the workload's only name.
    expect(bare).toMatchObject({ uid: 'demo-only-uid', name: '', applicationTunnel: { protocol: 'NONE' } });
  });

  it("decodes every field of upstream ztunnel's local config services, and adds endpoints to their workloads", () => {
    const r = parseLocalConfig(`
workloads:
- uid: c//v1/Pod/demo/a
  name: a
  namespace: demo
  workloadIps: ["198.18.16.10"]
services:
- name: web
  namespace: demo
  hostname: web.demo.svc.cluster.local
  vips: [/198.19.0.10]
  cidrVips: [{network: "", cidr: 198.19.8.0/24}]
  ports: {80: 8080}
  endpoints:
    c//v1/Pod/demo/a: {workloadUid: c//v1/Pod/demo/a, port: {80: 9090}, status: Healthy}
  subjectAltNames: [spiffe://cluster.local/ns/demo/sa/web]
  waypoint: {destination: /198.19.0.99, hboneMtlsPort: 15008}
  weightedWaypoints:
  - {destination: {destination: /198.19.0.99, hboneMtlsPort: 15008}, weight: 90}
  - {destination: {destination: demo/canary.demo.svc.cluster.local, hboneMtlsPort: 0}, weight: 10}
  loadBalancer: {routingPreferences: [Network, Zone], mode: Failover, healthPolicy: AllowAll}
  ipFamilies: IPv4
  canonical: true
  visibility: Namespace
`);
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    expect(r.value.services[0]).toEqual({
      name: 'web',
      namespace: 'demo',
      hostname: 'web.demo.svc.cluster.local',
      vips: [{ network: '', address: '198.19.0.10' }],
      cidrVips: [{ network: '', address: '198.19.8.0', length: 24 }],
      ports: new Map([[80, 8080]]),
      subjectAltNames: ['spiffe://cluster.local/ns/demo/sa/web'],
      waypoint: { network: '', address: '198.19.0.99', port: 15008 },
      weightedWaypoints: [
        { destination: { network: '', address: '198.19.0.99', port: 15008 }, weight: 90 },
        {
          destination: { namespace: 'demo', hostname: 'canary.demo.svc.cluster.local', port: 15008 },
          weight: 10,
        },
      ],
      loadBalancer: { routingPreferences: ['Network', 'Zone'], mode: 'Failover', healthPolicy: 'AllowAll' },
      ipFamilies: 'IPv4',
      canonical: true,
      visibility: 'Namespace',
    });
    expect(r.value.workloads[0]?.services).toEqual(
      new Map([['demo/web.demo.svc.cluster.local', new Map([[80, 9090]])]]),
    );
  });

  it('requires what upstream requires: every policy field, service vips and ports, gateway fields', () => {
    const r = parseLocalConfig(`
workloads:
- namespace: demo
  workloadIps: ["198.18.16.10"]
  waypoint: {destination: demo/wp}
  locality: {region: r1}
services:
- {name: s, namespace: demo, hostname: s.demo}
policies:
- {name: p, namespace: demo}
`);
    expect(r.ok ? [] : r.problems).toEqual([
      { path: 'workloads[0].name', message: 'is required' },
      { path: 'workloads[0].locality.zone', message: 'is required' },
      { path: 'workloads[0].locality.subzone', message: 'is required' },
      { path: 'workloads[0].waypoint.hboneMtlsPort', message: 'is required' },
      { path: 'services[0].vips', message: 'is required' },
      { path: 'services[0].ports', message: 'is required' },
      { path: 'policies[0].scope', message: 'is required' },
      { path: 'policies[0].action', message: 'is required' },
      { path: 'policies[0].rules', message: 'is required' },
      { path: 'policies[0].dryRun', message: 'is required' },
    ]);
  });

  it('reports a bad value in each new field with its path', () => {
    const r = parseLocalConfig(`
workloads:
- name: a
  namespace: demo
  workloadIps: ["198.18.16.10"]
  networkMode: Bridge
  status: Sick
  nativeTunnel: "yes"
  applicationTunnel: {protocol: QUIC, port: 0}
  capacity: -1
  networkGateway: {destination: nowhere, hboneMtlsPort: 15008, extra: 1}
services:
- name: s
  namespace: demo
  hostname: s.demo
  vips: []
  cidrVips: [{network: "", cidr: 198.19.8.0/33}]
  ports: {}
  endpoints: {x: {workloadUid: nobody, port: {80: 80}, status: Healthy}}
  weightedWaypoints: [{destination: {destination: demo/wp, hboneMtlsPort: 15008}}]
  loadBalancer: {routingPreferences: [Planet], mode: Random, healthPolicy: AllowAll}
  ipFamilies: IPv5
  canonical: 1
  visibility: Secret
policies:
- name: p
  namespace: demo
  scope: Namespace
  action: Allow
  dryRun: false
  rules: [[[{serviceAccounts: [{namespace: demo}], notServiceAccounts: [{namespace: demo, serviceAccount: x, y: 1}]}]]]
`);
    expect(r.ok ? [] : r.problems.map((p) => p.path).sort()).toEqual(
      [
        'workloads[0].networkMode',
        'workloads[0].status',
        'workloads[0].nativeTunnel',
        'workloads[0].applicationTunnel.protocol',
        'workloads[0].applicationTunnel.port',
        'workloads[0].capacity',
        'workloads[0].networkGateway.extra',
        'workloads[0].networkGateway.destination',
        'services[0].cidrVips[0].cidr',
        'services[0].weightedWaypoints[0].weight',
        'services[0].loadBalancer.routingPreferences[0]',
        'services[0].loadBalancer.mode',
        'services[0].ipFamilies',
        'services[0].canonical',
        'services[0].visibility',
        'services[0].endpoints.x.workloadUid',
        'policies[0].rules[0][0][0].serviceAccounts[0].serviceAccount',
        'policies[0].rules[0][0][0].notServiceAccounts[0].y',
      ].sort(),
    );
  });

  it('keeps service accounts as their own match field, apart from principals, as the xDS decoder', () => {
    const r = parseLocalConfig(`
policies:
- name: p
  namespace: demo
  scope: Namespace
  action: Deny
  dryRun: false
  rules: [[[{serviceAccounts: [{namespace: demo, serviceAccount: sleep}], notServiceAccounts: [{namespace: demo, serviceAccount: admin}]}]]]
`);
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    const m = r.value.policies[0]?.rules[0]?.clauses[0]?.matches[0];
    expect(m?.serviceAccounts).toEqual([{ namespace: 'demo', serviceAccount: 'sleep' }]);
    expect(m?.notServiceAccounts).toEqual([{ namespace: 'demo', serviceAccount: 'admin' }]);
    expect(m?.principals).toEqual([]);
    expect(m?.notPrincipals).toEqual([]);
  });

  it('a match naming principals and service accounts needs both, as upstream (src/rbac.rs)', () => {
    const r = parseLocalConfig(`
policies:
- name: p
  namespace: demo
  scope: Namespace
  action: Allow
  dryRun: false
  rules: [[[{principals: [{Exact: cluster.local/ns/demo/sa/admin}], serviceAccounts: [{namespace: demo, serviceAccount: sleep}]}]]]
`);
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    const [policy] = r.value.policies;
    if (!policy) throw new Error('no policy');
    const from = (principal: string) =>
      compilePolicy(policy).matches({
        principal,
        sourceIp: '10.0.0.1',
        destinationIp: '10.0.1.1',
        destinationPort: 80,
      });
    expect(from('cluster.local/ns/demo/sa/sleep')).toBe(false);
    expect(from('cluster.local/ns/demo/sa/admin')).toBe(false);
  });

  it("keeps a workload's own trust domain, and refuses one no SPIFFE ID can carry", () => {
    const config = (trustDomain: string) => `
workloads:
- name: a
  namespace: demo
  workloadIps: ["198.18.16.10"]
  trustDomain: ${trustDomain}
- name: b
  namespace: demo
  workloadIps: ["198.18.16.11"]
`;
    const r = parseLocalConfig(config('other.example'));
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    expect(r.value.workloads[0]?.trustDomain).toBe('other.example');
    expect(r.value.workloads[1]).not.toHaveProperty('trustDomain');
    const bad = parseLocalConfig(config('Other/Example'));
    expect(bad.ok ? [] : bad.problems).toEqual([
      { path: 'workloads[0].trustDomain', message: '"Other/Example" has characters outside [a-z0-9._-]' },
    ]);
  });

  it('decodes string matches and CIDRs in policy matches', () => {
    const r = parseLocalConfig(`
policies:
- name: p
  namespace: demo
  scope: WorkloadSelector
  action: Deny
  dryRun: true
  rules:
  - - - principals: [{Exact: cluster.local/ns/demo/sa/sleep}, {Suffix: /sa/admin}]
        notNamespaces: [{Prefix: kube-}]
        sourceIps: [198.18.16.0/24, "fd00::1"]
      - notPrincipals: [{Presence: {}}]
`);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const [m1, m2] = r.value.policies[0]?.rules[0]?.clauses[0]?.matches ?? [];
    expect(m1?.principals).toEqual([{ exact: 'cluster.local/ns/demo/sa/sleep' }, { suffix: '/sa/admin' }]);
    expect(m1?.notNamespaces).toEqual([{ prefix: 'kube-' }]);
    expect(m1?.sourceIps).toEqual(['198.18.16.0/24', 'fd00::1']);
    expect(m2?.notPrincipals).toEqual([{ presence: true }]);
    expect(r.value.policies[0]).toMatchObject({ scope: 'workload', action: 'deny', dryRun: true });
  });

  it('reports every problem with its field path', () => {
    const r = parseLocalConfig(`
workloads:
- name: a
  namespace: demo
  workloadIps: ["not-an-ip", "198.18.16.10"]
  protocol: QUIC
  services:
    "no-slash": {80: 0}
  colour: blue
- name: b
  namespace: demo
  workloadIps: ["198.18.16.10"]
services:
- name: s
  namespace: demo
  hostname: s.demo
  vips: ["net/999.1.1.1"]
  ports: {http: 80}
policies:
- name: p
  namespace: demo
  scope: Cluster
  action: Maybe
  rules: [[[{destinationPorts: [70000], sourceIps: [10.0.0.0/33], principals: [{Regex: x}]}]]]
extra: 1
`);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const paths = r.problems.map((p: Problem) => p.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'extra',
        'workloads[0].colour',
        'workloads[0].workloadIps[0]',
        'workloads[0].protocol',
        'workloads[0].services.no-slash',
        'workloads[0].services.no-slash.80',
        'workloads[1].workloadIps',
        'services[0].vips[0]',
        'services[0].ports.http',
        'policies[0].scope',
        'policies[0].action',
        'policies[0].rules[0][0][0].principals[0].Regex',
        'policies[0].rules[0][0][0].sourceIps[0]',
        'policies[0].rules[0][0][0].destinationPorts[0]',
      ]),
    );
    expect(r.problems.find((p) => p.path === 'workloads[1].workloadIps')?.message).toBe(
      '198.18.16.10 is already used by demo/a',
    );
  });

  it('reports YAML syntax errors instead of throwing', () => {
    const r = parseLocalConfig('workloads: [unclosed');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems[0]?.message).toMatch(/^YAML: /);
  });
});

describe('LocalConfigFile', () => {
  it('refuses to start on an invalid file, naming the field', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zt-config-'));
    const path = join(dir, 'config.yaml');
    await writeFile(path, 'workloads: [{name: a, namespace: demo, workloadIps: [bad]}]');
    const file = new LocalConfigFile({ path, onConfig: () => {}, onRejected: () => {} });
    await expect(file.start()).rejects.toSatisfy(
      (e) => e instanceof LocalConfigError && e.message.includes('workloads[0].workloadIps[0]'),
    );
  });

  it('refuses an emptied file (a write in progress) and keeps the last good config', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zt-config-'));
    const path = join(dir, 'config.yaml');
    await writeFile(path, ISTIO_EXAMPLE);
    const adopted: LocalConfig[] = [];
    const file = new LocalConfigFile({ path, onConfig: (c) => adopted.push(c), onRejected: () => {} });
    const first = await file.start();
    file.close();
    await writeFile(path, '');
    expect(await file.reload()).toBe(false);
    expect(file.lastProblems).toEqual([{ path: '', message: 'is empty' }]);
    expect(adopted).toEqual([]);
    expect(file.current).toBe(first);
  });

  it('adopts one edit once, however many times a poll sees it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zt-config-'));
    const path = join(dir, 'config.yaml');
    await writeFile(path, ISTIO_EXAMPLE);
    const adopted: LocalConfig[] = [];
    const file = new LocalConfigFile({ path, onConfig: (c) => adopted.push(c), onRejected: () => {} });
    await file.start();
    file.close();
    await writeFile(path, 'workloads: [{name: x, namespace: demo, workloadIps: ["198.18.16.99"]}]');
    expect(await file.reload()).toBe(true);
    expect(await file.reload()).toBe(true);
    expect(adopted.map((c) => c.workloads.map((w) => w.name))).toEqual([['x']]);
  });

  it('adopts a valid change, keeps the last good config on an invalid one, and recovers', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zt-config-'));
    const path = join(dir, 'config.yaml');
    await writeFile(path, ISTIO_EXAMPLE);
    const adopted: LocalConfig[] = [];
    const rejected: Problem[][] = [];
    const file = new LocalConfigFile({
      path,
      intervalMs: 20,
      onConfig: (c) => adopted.push(c),
      onRejected: (p) => rejected.push([...p]),
    });
    const first = await file.start();
    expect(first.workloads).toHaveLength(2);
    // Editors replace files by rename; the watcher follows the path either way.
    await writeFile(`${path}.tmp`, 'workloads: [{name: x, namespace: demo, workloadIps: ["198.18.16.99"]}]');
    await rename(`${path}.tmp`, path);
    await expect.poll(() => adopted.length, { timeout: 10_000 }).toBe(1);
    expect(file.current?.workloads.map((w) => w.name)).toEqual(['x']);
    await writeFile(path, 'workloads: [{name: y, namespace: demo, workloadIps: ["nope"]}]');
    await expect.poll(() => rejected.length, { timeout: 10_000 }).toBe(1);
    expect(rejected[0]?.[0]?.path).toBe('workloads[0].workloadIps[0]');
    expect(file.current?.workloads.map((w) => w.name)).toEqual(['x']);
    await writeFile(path, 'workloads: [{name: z, namespace: demo, workloadIps: ["198.18.16.98"]}]');
    await expect.poll(() => adopted.length, { timeout: 10_000 }).toBe(2);
    expect(file.current?.workloads.map((w) => w.name)).toEqual(['z']);
    expect(file.lastProblems).toEqual([]);
    file.close();
  });
});

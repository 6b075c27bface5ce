import { mkdtemp, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Problem } from '@ambient/shared';
import { describe, expect, it } from 'vitest';
import { type LocalConfig, parseLocalConfig } from './local-config.js';
import { LocalConfigError, LocalConfigFile } from './local-config-file.js';

/** Istio ztunnel's own example local config (examples/localhost.yaml), as Istio writes it. */
const ISTIO_EXAMPLE = `
workloads:
- uid: cluster1//v1/Pod/default/local
  name: local
  namespace: default
  serviceAccount: default
  workloadIps: ["127.0.0.1"]
  protocol: HBONE
  node: local
  network: ""
  services:
    "default/example.com":
      80: 8080
- uid: cluster1//v1/Pod/default/local-tcp
  name: local-tcp
  namespace: default
  serviceAccount: default
  workloadIps: ["127.0.0.2"]
  protocol: TCP
  node: local
  network: ""
policies:
  - action: Allow
    rules:
    - - - notDestinationPorts:
          - 9999
    name: deny-9999
    namespace: default
    scope: Namespace
services:
- name: local
  namespace: default
  hostname: example.com
  vips:
    - /127.10.0.1
  ports:
    80: 8080
  subjectAltNames:
   - spiffe://cluster.local/ns/default/sa/local
`;

describe('parseLocalConfig', () => {
  it("decodes Istio ztunnel's example local config into domain types", () => {
    const r = parseLocalConfig(ISTIO_EXAMPLE);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const [local, tcp] = r.value.workloads;
    expect(local).toMatchObject({
      name: 'local',
      namespace: 'default',
      ips: ['127.0.0.1'],
      protocol: 'HBONE',
    });
    expect(local?.services.get('default/example.com')?.get(80)).toBe(8080);
    expect(tcp?.protocol).toBe('TCP');
    expect(r.value.services[0]).toMatchObject({
      hostname: 'example.com',
      vips: [{ network: '', address: '127.10.0.1' }],
      subjectAltNames: ['spiffe://cluster.local/ns/default/sa/local'],
    });
    expect(r.value.services[0]?.ports.get(80)).toBe(8080);
    expect(r.value.policies[0]).toMatchObject({
      name: 'deny-9999',
      scope: 'namespace',
      action: 'allow',
      rules: [{ clauses: [{ matches: [{ notDestinationPorts: [9999] }] }] }],
    });
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

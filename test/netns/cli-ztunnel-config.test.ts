/**
 * `ambientctl ztunnel-config` and `ambientctl metrics` over real node agents: a lab with the
 * mesh, traffic through it, a waypoint and an L4 policy; the tables are checked against the
 * agents' own /config_dump and /metrics, read separately, and against what the test did (its
 * curls, the certificates' serials read with X509Certificate). The cluster form reads the same
 * endpoints through the API server (fetchFromZtunnel), which the cluster suite exercises.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '@ambient/cli';
import { Lab, LabMesh, type LabSpec } from '@ambient/lab';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const isRoot = process.getuid?.() === 0;
const name = `z${process.pid % 100_000}`;
const CURLS = 4;

const POLICY = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-nowhere, namespace: demo }
spec:
  action: DENY
  rules: [{ from: [{ source: { namespaces: [nowhere] } }] }]
`;

async function ctl(...args: string[]): Promise<string> {
  let out = '';
  let err = '';
  const code = await runCli([...args], {
    env: {},
    out: (l) => {
      out += `${l}\n`;
    },
    err: (l) => {
      err += `${l}\n`;
    },
    signal: new AbortController().signal,
  });
  if (code !== 0) throw new Error(`ambientctl ${args.join(' ')}: exit ${code}: ${err}`);
  return out;
}

/** A table's rows split on runs of 2+ spaces, or on the single space istioctl's padding 1 leaves. */
const rowsOf = (table: string) =>
  table
    .trimEnd()
    .split('\n')
    .map((l) => l.trim().split(/ +/));

describe.skipIf(!isRoot)('ambientctl ztunnel-config and metrics on a lab (root)', () => {
  let lab: Lab;
  let mesh: LabMesh;
  let dir = '';

  beforeAll(async () => {
    const t0 = Date.now();
    dir = await mkdtemp(join(tmpdir(), 'zc-'));
    await ctl('lab', 'up', '--name', name);
    const state = JSON.parse(await readFile(`/run/ambient-lab/${name}/state.json`, 'utf8')) as {
      spec: LabSpec;
      dir: string;
      enrolled: string[];
    };
    lab = Lab.attach(name, state.spec);
    mesh = new LabMesh(lab, { dir: state.dir, enrolledNamespaces: state.enrolled });
    const sleep = lab.pod('demo', 'sleep');
    for (let i = 0; i < CURLS; i++) {
      const r = await lab.exec(sleep, [
        'curl',
        '-s',
        '--max-time',
        '5',
        'http://echo.demo.svc.cluster.local/',
      ]);
      if (r.code !== 0) throw new Error(`curl ${i} failed: exit ${r.code}`);
    }
    await ctl('waypoint', 'apply', '-n', 'demo', '--enroll-namespace', '--lab', name);
    await writeFile(join(dir, 'policy.yaml'), POLICY);
    await ctl('apply', '-f', join(dir, 'policy.yaml'), '--lab', name);
    // Until node0's agent has both the policy and the service's waypoint.
    for (let i = 0; i < 200; i++) {
      const d = JSON.stringify(await mesh.configDump(0));
      if (d.includes('deny-nowhere') && d.includes('waypoint.demo.svc.cluster.local')) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    console.log(`lab, traffic, waypoint and policy ready in ${Date.now() - t0} ms`);
  }, 120_000);

  afterAll(async () => {
    await ctl('lab', 'down', '--name', name).catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 30_000);

  it('workloads: one row per workload of the dump, with its address and node, sorted by namespace.name', async () => {
    // biome-ignore lint/suspicious/noExplicitAny: the agent's JSON
    const dump = (await mesh.configDump(0)) as any;
    const table = await ctl('ztunnel-config', 'workloads', '--node', 'node0', '--lab', name);
    console.log(table);
    const rows = rowsOf(table);
    expect(rows[0]).toEqual(['NAMESPACE', 'POD', 'NAME', 'ADDRESS', 'NODE', 'WAYPOINT', 'PROTOCOL']);
    const want = (
      dump.workloads as Array<{
        namespace: string;
        name: string;
        workloadIps: string[];
        node: string;
        protocol: string;
      }>
    )
      .map((w) => [w.namespace, w.name, w.workloadIps.join(','), w.node, 'None', w.protocol])
      .sort((a, b) => (`${a[0]}.${a[1]}` < `${b[0]}.${b[1]}` ? -1 : 1));
    expect(rows.slice(1)).toEqual(want);
    const sleep = lab.pod('demo', 'sleep');
    expect(rows).toContainEqual(['demo', 'sleep', sleep.ip, 'node0', 'None', 'HBONE']);
    expect(rows).toContainEqual(['legacy', 'client', lab.pod('legacy', 'client').ip, 'node1', 'None', 'TCP']);
  });

  it('services: the echo service with its VIP, its waypoint by name, and 2/2 healthy endpoints', async () => {
    const table = await ctl('zc', 'svc', '--node', 'node0', '--lab', name);
    console.log(table);
    const rows = rowsOf(table);
    expect(rows[0]).toEqual(['NAMESPACE', 'SERVICE', 'NAME', 'SERVICE', 'VIP', 'WAYPOINT', 'ENDPOINTS']);
    const echo = lab.services.find((s) => s.name === 'echo');
    expect(rows).toContainEqual(['demo', 'echo', echo?.vip, 'waypoint', '2/2']);
    // The waypoint's own Service has no waypoint, and its one pod is its endpoint.
    expect(rows).toContainEqual([
      'demo',
      'waypoint',
      expect.stringMatching(/^198\.19\.250\.\d+$/),
      'None',
      '1/1',
    ]);
  });

  it('policies: the L4 policy as the agent holds it; -o json is the dump entry itself', async () => {
    const table = await ctl('ztunnel-config', 'policies', '--node', 'node0', '--lab', name);
    console.log(table);
    const rows = rowsOf(table);
    expect(rows).toEqual([
      ['NAMESPACE', 'POLICY', 'NAME', 'ACTION', 'SCOPE'],
      ['demo', 'deny-nowhere', 'Deny', 'Namespace'],
    ]);
    // biome-ignore lint/suspicious/noExplicitAny: the agent's JSON
    const dump = (await mesh.configDump(0)) as any;
    const json = JSON.parse(
      await ctl('ztunnel-config', 'policies', '-o', 'json', '--node', 'node0', '--lab', name),
    );
    expect(json).toEqual(dump.policies);
  });

  it("certificates: each identity's leaf and root, serials in hex as X509 reads them, valid now", async () => {
    // biome-ignore lint/suspicious/noExplicitAny: the agent's JSON
    const dump = (await mesh.configDump(0)) as any;
    const out = await ctl('ztunnel-config', 'certificates', '--node', 'node0', '--lab', name);
    console.log(out);
    const rows = rowsOf(out);
    expect(rows[0]).toEqual([
      'CERTIFICATE',
      'NAME',
      'TYPE',
      'STATUS',
      'VALID',
      'CERT',
      'SERIAL',
      'NUMBER',
      'NOT',
      'AFTER',
      'NOT',
      'BEFORE',
    ]);
    const serial = (pemB64: string) =>
      new X509Certificate(Buffer.from(pemB64, 'base64').toString('utf8')).serialNumber
        .toLowerCase()
        .replace(/^0+/, '');
    const certs = dump.certificates as Array<{
      identity: string;
      certChain: Array<{ pem: string; expirationTime: string; validFrom: string }>;
      rootCerts: Array<{ pem: string }>;
    }>;
    expect(certs.map((c) => c.identity)).toContain('spiffe://cluster.local/ns/demo/sa/sleep');
    for (const c of certs) {
      const leaf = c.certChain[0];
      if (!leaf) throw new Error(`no leaf for ${c.identity}`);
      expect(rows).toContainEqual([
        c.identity,
        'Leaf',
        'Available',
        'true',
        serial(leaf.pem),
        leaf.expirationTime,
        leaf.validFrom,
      ]);
      for (const r of c.rootCerts)
        expect(rows.find((x) => x[0] === c.identity && x[1] === 'Root')?.[4]).toBe(serial(r.pem));
    }
    // Two nodes: certificates need a node, as istioctl asks for a pod.
    const r = await runCli(['ztunnel-config', 'certificates', '--lab', name], {
      env: {},
      out: () => {},
      err: () => {},
      signal: new AbortController().signal,
    });
    expect(r).toBe(1);
  });

  it("metrics: sleep's curls counted by its node agent (reporter source) and the destinations' (reporter destination)", async () => {
    const table = await ctl('metrics', '--lab', name);
    console.log(table);
    const rows = rowsOf(table);
    expect(rows[0]).toEqual([
      'NODE',
      'REPORTER',
      'SOURCE',
      'DESTINATION',
      'OPENED',
      'CLOSED',
      'BYTES',
      'SENT',
      'BYTES',
      'RECEIVED',
    ]);
    const fromSleep = (reporter: string) =>
      rows.filter((r) => r[1] === reporter && r[2] === 'demo/sleep' && /^demo\/echo-[01]$/.test(r[3] ?? ''));
    const sum = (rs: string[][], col: number) => rs.reduce((n, r) => n + Number(r[col]), 0);
    const src = fromSleep('source');
    const dst = fromSleep('destination');
    console.log(
      `metrics rows: ${rows.length - 1}; from sleep: source ${sum(src, 4)} opened, destination ${sum(dst, 4)} opened`,
    );
    // Every source row is sleep's node's; the destination rows are on the echo pods' nodes.
    expect(new Set(src.map((r) => r[0]))).toEqual(new Set(['node0']));
    expect(sum(src, 4)).toBe(CURLS);
    expect(sum(dst, 4)).toBe(CURLS);
    expect(sum(src, 7)).toBeGreaterThan(0);
    for (const r of dst)
      expect(r[0]).toBe(lab.pod('demo', r[3]?.split('/')[1] ?? '').node === 0 ? 'node0' : 'node1');
    // The same figure read straight from node0's exposition.
    const raw = (await mesh.metrics(0))
      .split('\n')
      .filter(
        (l) =>
          l.startsWith('istio_tcp_connections_opened_total{') &&
          l.includes('reporter="source"') &&
          l.includes('source_workload="sleep"') &&
          /destination_workload="echo-[01]"/.test(l),
      )
      .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
    expect(raw).toBe(CURLS);
    // --node reads one node only.
    const one = rowsOf(await ctl('metrics', '--node', 'node1', '--lab', name));
    expect(new Set(one.slice(1).map((r) => r[0]))).toEqual(new Set(['node1']));
  });

  it('no ztunnel on node N: a one-line error naming the lab nodes, exit 1', async () => {
    let err = '';
    const code = await runCli(['metrics', '--node', 'node7', '--lab', name], {
      env: {},
      out: () => {},
      err: (l) => {
        err += `${l}\n`;
      },
      signal: new AbortController().signal,
    });
    expect(code).toBe(1);
    expect(err).toBe(`ambientctl: no ztunnel on node node7 in lab "${name}" (nodes: node0, node1)\n`);
  });
});

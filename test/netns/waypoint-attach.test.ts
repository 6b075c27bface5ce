/**
 * Waypoint attachment end to end, through ambientctl as a user drives it: a service waypoint
 * (`waypoint apply --enroll-namespace`) takes traffic to the service VIP and not traffic to a
 * pod's own IP; a workload waypoint (`--for workload`, named by the pod's `istio.io/use-waypoint`)
 * takes traffic to that pod's IP and never VIP traffic. Which way a request went shows in what
 * the app saw (through a waypoint it sees the waypoint's address) and in the L7 policy applied.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Lab, type LabSpec, labelManifest } from '@ambient/lab';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;
const CLI = fileURLToPath(new URL('../../packages/cli/dist/main.js', import.meta.url));
const name = `a${process.pid % 100_000}`;
const MANIFESTS = `/run/ambient-lab/${name}/manifests`;

const NO_POST = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: no-post, namespace: demo }
spec:
  targetRefs:
    - { kind: Gateway, group: gateway.networking.k8s.io, name: waypoint }
    - { kind: Gateway, group: gateway.networking.k8s.io, name: pod-wp }
  action: DENY
  rules: [{ to: [{ operation: { methods: [POST] } }] }]
`;

describe.skipIf(!isRoot)('waypoint attachment: use-waypoint and waypoint-for (root)', () => {
  const lab = (...args: string[]) =>
    run(process.execPath, [CLI, 'lab', '--name', name, ...args], { timeout: 60_000 });
  const ctl = (...args: string[]) =>
    run(process.execPath, [CLI, ...args, '--lab', name], { timeout: 60_000 });
  let attached: Lab | undefined;
  /** `<body> [<status>]` of a request from demo/sleep (run in its namespace directly: no CLI start-up). */
  const curl = async (method: string, url: string) => {
    if (!attached) throw new Error('no lab');
    const args = ['curl', '-s', '--max-time', '5', '-X', method, '-w', ' [%{http_code}]', url];
    return (await attached.exec(attached.pod('demo', 'sleep'), args)).stdout.replace(/\n/g, '');
  };
  const ips = new Map<string, string>();
  let dir = '';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wp-attach-'));
    await lab('up');
    const state = JSON.parse(await readFile(`/run/ambient-lab/${name}/state.json`, 'utf8')) as {
      spec: LabSpec;
    };
    attached = Lab.attach(name, state.spec);
    for (const p of attached.pods) if (p.namespace === 'demo') ips.set(p.name, p.ip);
  }, 90_000);

  afterAll(async () => {
    await lab('down').catch(() => {});
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 30_000);

  it('a service waypoint takes VIP traffic only; a workload waypoint takes its pod-IP traffic only', async () => {
    const VIP = 'http://echo.demo.svc.cluster.local/';
    const sleepIp = ips.get('sleep');
    const echo0 = `http://${ips.get('echo-0')}:8080/`;
    const echo1 = `http://${ips.get('echo-1')}:8080/`;
    expect(sleepIp).toBeDefined();

    const applied = (await ctl('waypoint', 'apply', '-n', 'demo', '--enroll-namespace')).stdout;
    const svcWp =
      /waypoint demo\/waypoint ready: pod waypoint-0 (\S+) on node\d, .*, for service traffic/.exec(
        applied,
      )?.[1];
    expect(svcWp).toBeDefined();
    expect(applied).toContain('namespace/demo labeled with istio.io/use-waypoint=waypoint');
    const policy = join(dir, 'no-post.yaml');
    await writeFile(policy, NO_POST);
    await ctl('apply', '-f', policy);

    // VIP: through the service waypoint, which applies the L7 policy.
    await expect.poll(() => curl('POST', VIP), { timeout: 15_000 }).toBe('RBAC: access denied [403]');
    expect(await curl('GET', VIP)).toMatch(new RegExp(`^echo-[01] saw ${svcWp} \\[200\\]$`));
    // Pod IP: straight to the pod (a service waypoint is not a workload waypoint): no policy, the
    // app sees sleep itself.
    expect(await curl('POST', echo0)).toBe(`echo-0 saw ${sleepIp} [200]`);

    // Another waypoint cannot take the namespace without --overwrite, and nothing is applied.
    const refused = (await ctl('waypoint', 'apply', '-n', 'demo', '--name', 'other', '--enroll-namespace'))
      .stdout;
    expect(refused).toBe(
      'warning: namespace demo already uses waypoint waypoint; add --overwrite to switch it to other\n',
    );

    const wl = (await ctl('waypoint', 'apply', '-n', 'demo', '--name', 'pod-wp', '--for', 'workload')).stdout;
    const podWp =
      /waypoint demo\/pod-wp ready: pod pod-wp-0 (\S+) on node\d, .*, for workload traffic\n$/.exec(wl)?.[1];
    expect(podWp).toBeDefined();
    expect(
      (await ctl('label', 'pod', 'echo-0', 'istio.io/use-waypoint=pod-wp', '-n', 'demo')).stdout,
    ).toContain('istio.io/use-waypoint=pod-wp');

    // echo-0's own IP: through its workload waypoint now (the pod label beats the namespace's).
    await expect.poll(() => curl('POST', echo0), { timeout: 15_000 }).toBe('RBAC: access denied [403]');
    expect(await curl('GET', echo0)).toBe(`echo-0 saw ${podWp} [200]`);
    // echo-1 has no workload waypoint: direct.
    expect(await curl('POST', echo1)).toBe(`echo-1 saw ${sleepIp} [200]`);
    // The VIP still goes through the service waypoint only, whichever endpoint answers: never
    // through echo-0's workload waypoint.
    const seen = new Set<string>();
    for (let i = 0; i < 8; i++) seen.add(await curl('GET', VIP));
    console.log(`VIP answers through the service waypoint: ${[...seen].join(' | ')}`);
    for (const answer of seen) expect(answer).toMatch(new RegExp(`^echo-[01] saw ${svcWp} \\[200\\]$`));

    // Without the namespace's service waypoint, VIP traffic goes straight to the endpoints, echo-0
    // included: its workload waypoint never takes traffic addressed to the service.
    await labelManifest(MANIFESTS, { kind: 'Namespace', namespace: '', name: 'demo' }, [
      'istio.io/use-waypoint-',
    ]);
    const direct = [`echo-0 saw ${sleepIp} [200]`, `echo-1 saw ${sleepIp} [200]`];
    await expect
      .poll(
        async () => {
          const answers = new Set<string>();
          for (let i = 0; i < 6; i++) answers.add(await curl('GET', VIP));
          return [...answers].sort();
        },
        { timeout: 15_000 },
      )
      .toEqual(direct);
    // And echo-0's own IP still goes through its workload waypoint.
    expect(await curl('POST', echo0)).toBe('RBAC: access denied [403]');
  }, 90_000);
});

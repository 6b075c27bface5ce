import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { enrolledUids } from '../ztunnel-dump.js';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;
const CLI = fileURLToPath(new URL('../../packages/cli/dist/main.js', import.meta.url));
const name = `c${process.pid % 100_000}`;

describe.skipIf(!isRoot)('ambientctl (root)', () => {
  it('demo lab brings up the mesh, curls through it, reports the metrics and removes everything', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'demo', 'lab', '--name', name], {
      timeout: 120_000,
    });
    expect(stdout).toContain('ztunnel ready');
    expect(stdout).toMatch(
      /demo\/sleep\$ curl http:\/\/echo\.demo\.svc\.cluster\.local\/ {2}-> {2}echo-[01] saw 198\.18\.16\.10/,
    );
    expect(stdout).toMatch(
      /legacy\/client\$ curl http:\/\/echo\.demo\/ {2}-> {2}echo-[01] saw 198\.18\.17\.11/,
    );
    expect(stdout).toContain('mutual_tls  principal spiffe://cluster.local/ns/demo/sa/sleep');
    expect(stdout).toContain('OK: 2 echo endpoints answered over mutual TLS');
    // The L7 part: a waypoint for the namespace's services, and a GET-only policy on it.
    expect(stdout).toContain('waypoint demo/waypoint ready: pod waypoint-0 198.18.17.12 on node1');
    expect(stdout).toContain('namespace/demo labeled with istio.io/use-waypoint=waypoint');
    // Through the waypoint the app sees the waypoint's address (198.18.17.12), as with upstream ztunnel.
    expect(stdout).toMatch(/-> {2}echo-[01] saw 198\.18\.17\.12 \[200\] {2}\(x-request-id [0-9a-f-]{36}\)/);
    expect(stdout).toContain("through a waypoint the app sees the waypoint's address");
    expect(stdout).toContain(
      'curl -X POST http://echo.demo.svc.cluster.local/  ->  RBAC: access denied [403]',
    );
    expect(stdout).toMatch(
      /sleep -> echo \(unknown\) {2}403 {2}flags - {2}principal spiffe:\/\/cluster\.local\/ns\/demo\/sa\/sleep/,
    );
    expect(stdout).toContain('OK: HTTP went client ztunnel -> waypoint -> destination ztunnel');
    expect(stdout).toContain(`lab "${name}" is down`);
    const { stdout: left } = await run('ip', ['netns', 'list']);
    expect(left).not.toContain(`${name}-`);
  }, 150_000);

  it('lab up, exec, status, label, apply, delete and down work across separate invocations, and errors are clear', async () => {
    const cli = (...args: string[]) =>
      run(process.execPath, [CLI, 'lab', '--name', name, ...args], { timeout: 60_000 });
    const ctl = (...args: string[]) =>
      run(process.execPath, [CLI, ...args, '--lab', name], { timeout: 60_000 });
    await cli('up');
    expect((await cli('status')).stdout).toMatch(/control plane {2}198\.18\.0\.10:15012 +serving 2 proxies/);
    const exec = await cli('exec', 'demo/sleep', '--', 'curl', '-s', 'http://echo.demo.svc.cluster.local/');
    expect(exec.stdout).toMatch(/^echo-[01] saw 198\.18\.16\.10/);
    expect((await cli('status')).stdout).toContain('legacy/client    198.18.17.11   node1  not enrolled');

    // Label the namespace out of the mesh: pods are released, echo-0 then sees plaintext from sleep.
    expect((await ctl('label', 'namespace', 'demo', 'istio.io/dataplane-mode-')).stdout).toBe(
      'namespace/demo labeled: (none)\n',
    );
    await expect
      .poll(async () => (await cli('status')).stdout, { timeout: 10_000 })
      .toContain('demo/sleep       198.18.16.10   node0  not enrolled');
    expect((await cli('status')).stdout).toContain('demo/echo-0      198.18.17.10   node1  not enrolled');
    await expect
      .poll(
        async () =>
          enrolledUids(
            JSON.parse(
              (await cli('exec', 'node1', '--', 'curl', '-s', 'http://127.0.0.1:15000/config_dump')).stdout,
            ),
          ),
        { timeout: 10_000 },
      )
      .toEqual([]);
    expect(
      (await cli('exec', 'demo/sleep', '--', 'curl', '-s', 'http://echo.demo.svc.cluster.local/')).stdout,
    ).toMatch(/^echo-[01] saw 198\.18\.16\.10/);
    await ctl('label', 'namespace', 'demo', 'istio.io/dataplane-mode=ambient');
    await expect
      .poll(async () => (await cli('status')).stdout, { timeout: 10_000 })
      .toContain('demo/sleep       198.18.16.10   node0  enrolled (HBONE)');

    // apply validates everything first and writes nothing when any document is invalid.
    const policy = fileURLToPath(new URL('./fixtures/deny-sleep.yaml', import.meta.url));
    const invalid = fileURLToPath(new URL('./fixtures/invalid-policy.yaml', import.meta.url));
    await expect(ctl('apply', '-f', invalid)).rejects.toSatisfy((e) =>
      (e as { stderr: string }).stderr.includes(
        'AuthorizationPolicy demo/broken: spec.rules[0].to[0].operation.ports[0]: "http" is not a port from 1 to 65535',
      ),
    );
    const { stdout: files } = await run('ls', [`/run/ambient-lab/${name}/manifests`]);
    expect(files).not.toContain('serviceaccount-demo-fine.yaml');
    expect((await ctl('apply', '-f', policy)).stdout).toBe(
      'applied authorizationpolicy-demo-deny-sleep.yaml\n',
    );
    await expect
      .poll(
        async () =>
          (
            await cli(
              'exec',
              'demo/sleep',
              '--',
              'curl',
              '-s',
              '--max-time',
              '2',
              'http://echo.demo.svc.cluster.local/',
            ).catch(() => ({ stdout: 'refused' }))
          ).stdout,
        { timeout: 10_000 },
      )
      .toBe('refused');
    expect((await ctl('delete', '-f', policy)).stdout).toBe('deleted authorizationpolicy/deny-sleep\n');
    await expect
      .poll(
        async () =>
          (await cli('exec', 'demo/sleep', '--', 'curl', '-s', 'http://echo.demo.svc.cluster.local/')).stdout,
        { timeout: 10_000 },
      )
      .toMatch(/^echo-[01] saw/);
    expect((await ctl('waypoint', 'apply', '--service-account', 'echo', '-n', 'demo')).stdout).toMatch(
      /^waypoint demo\/echo-waypoint ready: pod echo-waypoint-0 198\.18\.17\.12 on node1, identity spiffe:\/\/cluster\.local\/ns\/demo\/sa\/echo-waypoint, serving service account echo\n$/,
    );
    expect((await cli('status')).stdout).toContain(
      'demo/echo-waypoint-0 198.18.17.12   node1  waypoint echo-waypoint ready',
    );
    const through = await cli(
      'exec',
      'demo/sleep',
      '--',
      'curl',
      '-s',
      '-i',
      'http://echo.demo.svc.cluster.local/',
    );
    expect(through.stdout).toMatch(/^x-request-id: [0-9a-f-]{36}\r$/m);
    expect(through.stdout).toMatch(/echo-[01] saw 198\.18\.17\.12/);
    await cli('down');
    await expect(cli('status')).rejects.toSatisfy((e) =>
      (e as { stderr: string }).stderr.includes(`no lab named "${name}" is up`),
    );
  }, 150_000);
});

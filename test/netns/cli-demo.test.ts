import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

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
    expect(stdout).toContain(`lab "${name}" is down`);
    const { stdout: left } = await run('ip', ['netns', 'list']);
    expect(left).not.toContain(`${name}-`);
  });

  it('lab up, exec, status and down work across separate invocations, and errors are clear', async () => {
    const cli = (...args: string[]) =>
      run(process.execPath, [CLI, 'lab', '--name', name, ...args], { timeout: 60_000 });
    await cli('up');
    const exec = await cli('exec', 'demo/sleep', '--', 'curl', '-s', 'http://echo.demo.svc.cluster.local/');
    expect(exec.stdout).toMatch(/^echo-[01] saw 198\.18\.16\.10/);
    expect((await cli('status')).stdout).toContain('legacy/client    198.18.17.11   node1  not enrolled');
    await cli('down');
    await expect(cli('status')).rejects.toSatisfy((e) =>
      (e as { stderr: string }).stderr.includes(`no lab named "${name}" is up`),
    );
  });
});

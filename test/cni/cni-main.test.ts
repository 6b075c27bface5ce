/**
 * The agent's entry point, packages/cni/dist/main.js (run `npx tsc -b` first): refused settings
 * exit 2 naming each one; `uninstall` takes the plugin out of the node's CNI config and bin dir.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PLUGIN_TYPE } from '@ambient/cni';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const MAIN = path.resolve(import.meta.dirname, '../../packages/cni/dist/main.js');

function node(args: string[], env: Record<string, string>): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [MAIN, ...args],
      { env: { PATH: process.env.PATH ?? '', ...env } },
      (err, _out, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === 'number'
            ? ((err as { code: number }).code as number)
            : 1
          : 0;
        resolve({ code, stderr });
      },
    );
  });
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cni-main-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('packages/cni/dist/main.js', () => {
  it('exits 2 naming every refused setting', async () => {
    const r = await node([], { CNI_READY_PORT: 'x' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('cni: invalid settings:');
    for (const key of ['CNI_NODE_NAME: is required', 'CNI_READY_PORT', 'CNI_KUBECONFIG'])
      expect(r.stderr).toContain(key);
  });

  it('uninstall removes our entry from every conflist and the binary, and nothing else', async () => {
    const bin = path.join(dir, 'bin');
    const net = path.join(dir, 'net.d');
    await mkdir(bin, { recursive: true });
    await mkdir(net, { recursive: true });
    await writeFile(path.join(bin, PLUGIN_TYPE), 'x');
    await writeFile(path.join(bin, 'bridge'), 'y');
    const ours = { type: PLUGIN_TYPE, name: PLUGIN_TYPE, agent_socket: '/s' };
    await writeFile(
      path.join(net, '10-bridge.conflist'),
      JSON.stringify({ cniVersion: '1.0.0', name: 'b', plugins: [{ type: 'bridge' }, ours] }),
    );
    const r = await node(['uninstall'], {
      CNI_NODE_NAME: 'n',
      CNI_KUBECONFIG: '/nonexistent',
      CNI_HOST_BIN_DIR: bin,
      CNI_HOST_NET_DIR: net,
      CNI_LOG_LEVEL: 'silent',
    });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(await readFile(path.join(net, '10-bridge.conflist'), 'utf8')).plugins).toEqual([
      { type: 'bridge' },
    ]);
    expect(await readdir(bin)).toEqual(['bridge']);
  });
});

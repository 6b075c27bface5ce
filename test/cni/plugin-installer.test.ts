/**
 * The plugin installer on temporary host directories: the binary copied, our entry chained into the
 * primary network config (first usable by name), a .conf converted, nothing rewritten when already
 * in place, the entry put back when the primary CNI rewrites its file, and removed on uninstall.
 */
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PLUGIN_TYPE, type PluginEntry, PluginInstaller } from '@ambient/cni';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const ENTRY: PluginEntry = {
  type: PLUGIN_TYPE,
  name: PLUGIN_TYPE,
  agent_socket: '/var/run/ambient-cni/pluginevent.sock',
  exclude_namespaces: ['kube-system'],
  timeout_seconds: 30,
};
const BRIDGE = {
  cniVersion: '1.0.0',
  name: 'bridge',
  plugins: [{ type: 'bridge', bridge: 'cni0' }, { type: 'portmap' }],
};

let dir: string;
let binDir: string;
let netDir: string;
let binary: string;
const installers: PluginInstaller[] = [];

function installer(): PluginInstaller {
  const i = new PluginInstaller({
    binDir,
    netDir,
    pluginBinary: binary,
    entry: ENTRY,
    logger: pino({ level: 'silent' }),
    recheckMs: 200,
  });
  installers.push(i);
  return i;
}

const types = async (file: string) =>
  JSON.parse(await readFile(file, 'utf8')).plugins.map((p: { type: string }) => p.type);

async function until(what: string, probe: () => Promise<boolean> | boolean): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cni-install-'));
  binDir = path.join(dir, 'opt/cni/bin');
  netDir = path.join(dir, 'etc/cni/net.d');
  binary = path.join(dir, 'built-plugin');
  await writeFile(binary, '#!/bin/sh\necho plugin\n');
});

afterEach(async () => {
  for (const i of installers.splice(0)) i.close();
  await rm(dir, { recursive: true, force: true });
});

describe('PluginInstaller', () => {
  it('copies the binary executable and chains into the first usable config by name', async () => {
    const i = installer();
    await i.start();
    expect(i.conflist).toBeUndefined();
    await writeFile(path.join(netDir, '05-broken.conflist'), '{ not json');
    await writeFile(path.join(netDir, '10-bridge.conflist'), JSON.stringify(BRIDGE));
    await writeFile(path.join(netDir, '20-other.conflist'), JSON.stringify({ ...BRIDGE, name: 'other' }));
    await i.check();
    expect(i.conflist).toBe(path.join(netDir, '10-bridge.conflist'));
    expect(await types(path.join(netDir, '10-bridge.conflist'))).toEqual(['bridge', 'portmap', PLUGIN_TYPE]);
    expect(await types(path.join(netDir, '20-other.conflist'))).toEqual(['bridge', 'portmap']);
    expect(await readFile(path.join(netDir, '05-broken.conflist'), 'utf8')).toBe('{ not json');
    const bin = path.join(binDir, PLUGIN_TYPE);
    expect(await readFile(bin, 'utf8')).toBe('#!/bin/sh\necho plugin\n');
    expect((await stat(bin)).mode & 0o777).toBe(0o755);
  });

  it('is idempotent: a second installer changes neither the file nor the binary', async () => {
    const first = installer();
    await first.start();
    await writeFile(path.join(netDir, '10-bridge.conflist'), JSON.stringify(BRIDGE), { mode: 0o600 });
    await first.check();
    first.close();
    const file = path.join(netDir, '10-bridge.conflist');
    const before = await stat(file);
    const binBefore = await stat(path.join(binDir, PLUGIN_TYPE));
    const text = await readFile(file, 'utf8');
    const second = installer();
    await second.start();
    expect(second.conflist).toBe(file);
    const after = await stat(file);
    expect([after.ino, after.mtimeMs, await readFile(file, 'utf8')]).toEqual([
      before.ino,
      before.mtimeMs,
      text,
    ]);
    expect((await stat(path.join(binDir, PLUGIN_TYPE))).ino).toBe(binBefore.ino);
    expect(after.mode & 0o777).toBe(0o600);
    expect(await types(file)).toEqual(['bridge', 'portmap', PLUGIN_TYPE]);
  });

  it('converts a single-plugin .conf into <name>.conflist and removes the .conf', async () => {
    const i = installer();
    await i.start();
    await writeFile(
      path.join(netDir, '10-flannel.conf'),
      JSON.stringify({
        cniVersion: '0.3.1',
        name: 'cbr0',
        type: 'flannel',
        delegate: { isDefaultGateway: true },
      }),
    );
    await i.check();
    expect(i.conflist).toBe(path.join(netDir, '10-flannel.conflist'));
    expect(await readdir(netDir)).toEqual(['10-flannel.conflist']);
    const conf = JSON.parse(await readFile(path.join(netDir, '10-flannel.conflist'), 'utf8'));
    expect(conf).toEqual({
      cniVersion: '0.3.1',
      name: 'cbr0',
      plugins: [{ name: 'cbr0', type: 'flannel', delegate: { isDefaultGateway: true } }, ENTRY],
    });
  });

  it('puts the entry back when the primary CNI rewrites its config', async () => {
    const file = path.join(netDir, '10-bridge.conflist');
    const i = installer();
    await i.start();
    await writeFile(file, JSON.stringify(BRIDGE));
    await until('first install', async () => (await types(file)).includes(PLUGIN_TYPE));
    for (let round = 0; round < 3; round++) {
      await writeFile(
        file,
        JSON.stringify({ ...BRIDGE, plugins: [...BRIDGE.plugins, { type: 'bandwidth' }] }),
      );
      await until(`re-insert ${round}`, async () => {
        const t = await types(file).catch(() => []);
        return t.at(-1) === PLUGIN_TYPE;
      });
      expect(await types(file)).toEqual(['bridge', 'portmap', 'bandwidth', PLUGIN_TYPE]);
    }
    expect(i.conflist).toBe(file);
  });

  it('puts the binary back when it is removed', async () => {
    const i = installer();
    await i.start();
    const bin = path.join(binDir, PLUGIN_TYPE);
    await rm(bin);
    await until('binary back', async () => (await stat(bin).catch(() => undefined)) !== undefined);
  });

  it('close leaves the installation in place; uninstall removes the entry and the binary', async () => {
    const file = path.join(netDir, '10-bridge.conflist');
    const i = installer();
    await i.start();
    await writeFile(file, JSON.stringify(BRIDGE));
    await i.check();
    i.close();
    expect(await types(file)).toEqual(['bridge', 'portmap', PLUGIN_TYPE]);
    const u = installer();
    await u.uninstall();
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual(BRIDGE);
    expect(await readdir(binDir)).toEqual([]);
  });
});

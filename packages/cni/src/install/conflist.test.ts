import { describe, expect, it } from 'vitest';
import {
  hasPlugin,
  insertPlugin,
  isUsableNetworkConfig,
  PLUGIN_TYPE,
  type PluginEntry,
  removePlugin,
} from './conflist.js';

const ENTRY: PluginEntry = {
  type: PLUGIN_TYPE,
  name: PLUGIN_TYPE,
  agent_socket: '/var/run/ambient-cni/pluginevent.sock',
  exclude_namespaces: ['kube-system'],
  timeout_seconds: 30,
};
const CONFLIST = JSON.stringify({
  cniVersion: '1.0.0',
  name: 'bridge-net',
  plugins: [
    { type: 'bridge', bridge: 'cni0', ipam: { type: 'host-local' } },
    { type: 'portmap', capabilities: { portMappings: true } },
  ],
});
const CONF = JSON.stringify({ cniVersion: '0.4.0', name: 'mynet', type: 'bridge', bridge: 'cni0' });

const value = <T>(r: { ok: true; value: T } | { ok: false; problems: readonly unknown[] }): T => {
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.value;
};

describe('insertPlugin', () => {
  it('appends our entry last in a conflist and keeps everything else', () => {
    const out = JSON.parse(value(insertPlugin(CONFLIST, ENTRY)).text);
    expect(out.name).toBe('bridge-net');
    expect(out.cniVersion).toBe('1.0.0');
    expect(out.plugins.map((p: { type: string }) => p.type)).toEqual(['bridge', 'portmap', PLUGIN_TYPE]);
    expect(out.plugins[2]).toEqual(ENTRY);
  });

  it('is idempotent: inserting into its own output changes nothing', () => {
    const once = value(insertPlugin(CONFLIST, ENTRY));
    expect(once.changed).toBe(true);
    const twice = value(insertPlugin(once.text, ENTRY));
    expect(twice).toEqual({ text: once.text, changed: false });
    expect(hasPlugin(once.text, ENTRY)).toBe(true);
    expect(hasPlugin(CONFLIST, ENTRY)).toBe(false);
  });

  it('replaces an older entry of ours (other settings, not last) with one copy, last', () => {
    const stale = JSON.parse(CONFLIST);
    stale.plugins.splice(1, 0, { ...ENTRY, agent_socket: '/old.sock' });
    stale.plugins.push({ ...ENTRY, timeout_seconds: 1 });
    const out = JSON.parse(value(insertPlugin(JSON.stringify(stale), ENTRY)).text);
    expect(out.plugins.map((p: { type: string }) => p.type)).toEqual(['bridge', 'portmap', PLUGIN_TYPE]);
    expect(out.plugins[2].agent_socket).toBe(ENTRY.agent_socket);
  });

  it('converts a single-plugin .conf into a list of it and us, keeping its name and version', () => {
    const out = JSON.parse(value(insertPlugin(CONF, ENTRY)).text);
    expect(out).toEqual({
      cniVersion: '0.4.0',
      name: 'mynet',
      plugins: [{ name: 'mynet', type: 'bridge', bridge: 'cni0' }, ENTRY],
    });
  });

  it('refuses what is not a network config, with the file as path', () => {
    expect(insertPlugin('{', ENTRY, '10-x.conflist')).toMatchObject({
      ok: false,
      problems: [{ path: '10-x.conflist' }],
    });
    expect(insertPlugin('[]', ENTRY, 'f')).toMatchObject({
      ok: false,
      problems: [{ path: 'f', message: 'is not a JSON object' }],
    });
    expect(insertPlugin('{"plugins":{}}', ENTRY, 'f')).toMatchObject({
      ok: false,
      problems: [{ path: 'f.plugins' }],
    });
    expect(insertPlugin('{"plugins":[1,{}]}', ENTRY, 'f')).toMatchObject({
      ok: false,
      problems: [{ path: 'f.plugins[0]' }],
    });
  });
});

describe('removePlugin', () => {
  it('removes every entry of ours and nothing else', () => {
    const withUs = value(insertPlugin(CONFLIST, ENTRY)).text;
    const out = value(removePlugin(withUs));
    expect(out.changed).toBe(true);
    expect(JSON.parse(out.text)).toEqual(JSON.parse(CONFLIST));
  });
  it('leaves a config without our entry as it is', () => {
    expect(value(removePlugin(CONFLIST))).toEqual({ text: CONFLIST, changed: false });
    expect(value(removePlugin(CONF))).toEqual({ text: CONF, changed: false });
  });
});

describe('isUsableNetworkConfig', () => {
  it('accepts a list with plugins or a single plugin, nothing else', () => {
    expect([CONFLIST, CONF, '{"plugins":[]}', '{"name":"x"}', 'nope'].map(isUsableNetworkConfig)).toEqual([
      true,
      true,
      false,
      false,
      false,
    ]);
  });
});

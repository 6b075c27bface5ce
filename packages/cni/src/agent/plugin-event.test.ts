import { describe, expect, it } from 'vitest';
import { decodePluginAddEvent } from './plugin-event.js';

describe('decodePluginAddEvent', () => {
  it('reads an event with every field', () => {
    const ev = {
      netns: '/var/run/netns/cni-1',
      podName: 'web-0',
      podNamespace: 'demo',
      podUid: 'ab-12',
      ips: ['10.1.0.5', 'fd00::5'],
    };
    expect(decodePluginAddEvent(JSON.stringify(ev))).toEqual({ ok: true, value: ev });
  });
  it('takes a missing UID and IP list as empty', () => {
    const r = decodePluginAddEvent('{"netns":"/proc/1/ns/net","podName":"a","podNamespace":"b"}');
    expect(r.ok && [r.value.podUid, r.value.ips]).toEqual(['', []]);
  });
  it('names every bad field', () => {
    const r = decodePluginAddEvent(
      JSON.stringify({ netns: 'relative', podName: 'Bad_Name', podNamespace: 5, ips: ['x y', 7] }),
    );
    expect(!r.ok && r.problems.map((p) => p.path)).toEqual([
      'netns',
      'podName',
      'podNamespace',
      'ips[0]',
      'ips[1]',
    ]);
  });
  it('refuses what is not a JSON object', () => {
    for (const body of ['', 'nope', '[]', 'null'])
      expect(decodePluginAddEvent(body)).toMatchObject({ ok: false, problems: [{ path: '' }] });
  });
  it('requires netns, name and namespace', () => {
    const r = decodePluginAddEvent('{}');
    expect(!r.ok && r.problems.map((p) => `${p.path} ${p.message}`)).toEqual([
      'netns is required',
      'podName is required',
      'podNamespace is required',
    ]);
  });
});

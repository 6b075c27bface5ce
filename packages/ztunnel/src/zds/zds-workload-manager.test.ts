import { encodeZdsRequest } from '@ambient/shared';
import { describe, expect, it } from 'vitest';
import {
  readZdsPacket,
  type ZdsNetns,
  type ZdsWorkloadHost,
  ZdsWorkloadManager,
} from './zds-workload-manager.js';

const INFO = { name: 'web', namespace: 'shop', serviceAccount: 'web-sa' };

/** A host that records calls and checks every fd is handed back exactly once. */
class FakeHost implements ZdsWorkloadHost {
  readonly held = new Map<string, ZdsNetns>();
  readonly closed: number[] = [];
  readonly log: string[] = [];
  failing = new Set<string>();

  async start(uid: string, _info: unknown, netns: ZdsNetns): Promise<void> {
    const old = this.held.get(uid);
    if (old && old !== netns) throw new Error(`host already holds ${uid}`);
    this.held.set(uid, netns);
    this.log.push(`start ${uid}@${netns.id}`);
    if (this.failing.has(uid)) throw new Error('bind failed');
  }
  stop(uid: string): void {
    const ns = this.held.get(uid);
    if (!ns) return;
    this.held.delete(uid);
    this.close(ns);
    this.log.push(`stop ${uid}`);
  }
  release(netns: ZdsNetns): void {
    this.close(netns);
  }
  private close(ns: ZdsNetns): void {
    if (this.closed.includes(ns.fd)) throw new Error(`fd ${ns.fd} closed twice`);
    this.closed.push(ns.fd);
  }
}

let nextFd = 100;
const ns = (id: string): ZdsNetns => ({ fd: nextFd++, id });
const add = (uid: string, netns: ZdsNetns) => ({ kind: 'add' as const, uid, workloadInfo: INFO, netns });

function setup() {
  const host = new FakeHost();
  return { host, m: new ZdsWorkloadManager(host) };
}

describe('ZdsWorkloadManager (statemanager.rs semantics)', () => {
  it('is ready only after snapshot-sent, and acks each add once the pod is served', async () => {
    const { host, m } = setup();
    expect(await m.handle(add('a', ns('n1')))).toEqual({ ok: true });
    expect(m.ready).toBe(false);
    expect(await m.handle({ kind: 'snapshotSent' })).toEqual({ ok: true });
    expect(m.ready).toBe(true);
    expect(m.served).toEqual(['a']);
    expect(host.log).toEqual(['start a@n1']);
  });

  it('takes the same pod in the same netns twice as one, releasing the duplicate fd', async () => {
    const { host, m } = setup();
    const first = ns('n1');
    const dup = ns('n1');
    await m.handle(add('a', first));
    expect(await m.handle(add('a', dup))).toEqual({ ok: true });
    expect(host.log).toEqual(['start a@n1']);
    expect(host.closed).toEqual([dup.fd]);
  });

  it('replaces a pod whose netns changed: stops the old one first', async () => {
    const { host, m } = setup();
    const first = ns('n1');
    await m.handle(add('a', first));
    await m.handle(add('a', ns('n2')));
    expect(host.log).toEqual(['start a@n1', 'stop a', 'start a@n2']);
    expect(host.closed).toEqual([first.fd]);
  });

  it('drops, at snapshot-sent, the pods a new connection did not name, and keeps kept ones', async () => {
    const { host, m } = setup();
    await m.handle(add('a', ns('na')));
    await m.handle(add('b', ns('nb')));
    await m.handle(add('c', ns('nc')));
    await m.handle({ kind: 'snapshotSent' });
    m.resetSnapshot(); // reconnect
    expect(m.ready).toBe(false);
    await m.handle(add('a', ns('na')));
    expect(await m.handle({ kind: 'keep', uid: 'b' })).toEqual({ ok: true });
    await m.handle({ kind: 'snapshotSent' });
    expect([...m.served].sort()).toEqual(['a', 'b']);
    expect(host.log.filter((l) => l.startsWith('stop'))).toEqual(['stop c']);
    expect(m.ready).toBe(true);
  });

  it('before the snapshot ends, a del only unnames the pod, which the reconcile then stops', async () => {
    const { host, m } = setup();
    await m.handle(add('a', ns('na')));
    await m.handle({ kind: 'snapshotSent' });
    m.resetSnapshot();
    await m.handle(add('a', ns('na')));
    expect(await m.handle({ kind: 'del', uid: 'a' })).toEqual({ ok: true });
    expect(host.log).toEqual(['start a@na']);
    await m.handle({ kind: 'snapshotSent' });
    expect(host.log).toEqual(['start a@na', 'stop a']);
  });

  it('after the snapshot, a del stops the pod at once; an unknown uid is acked', async () => {
    const { host, m } = setup();
    await m.handle({ kind: 'snapshotSent' });
    await m.handle(add('a', ns('na')));
    expect(await m.handle({ kind: 'del', uid: 'a' })).toEqual({ ok: true });
    expect(await m.handle({ kind: 'del', uid: 'zz' })).toEqual({ ok: true });
    expect(host.log).toEqual(['start a@na', 'stop a']);
    expect(m.served).toEqual([]);
  });

  it('refuses protocol breaks with an error that drops the connection', async () => {
    const { host, m } = setup();
    const netns = ns('n');
    const noInfo = await m.handle({ kind: 'add', uid: 'a', netns });
    expect(noInfo).toEqual({
      ok: false,
      error: 'failure to process message : workload_info is required but not present',
      fatal: true,
    });
    expect(host.closed).toEqual([netns.fd]);
    await m.handle({ kind: 'snapshotSent' });
    expect(await m.handle({ kind: 'snapshotSent' })).toMatchObject({ ok: false, fatal: true });
    expect(await m.handle({ kind: 'keep', uid: 'a' })).toEqual({
      ok: false,
      error: 'failure to process message : pod keep received after snapshot',
      fatal: true,
    });
  });

  it('acks a failed start with its error, stays not ready, and serves the pod on retry', async () => {
    const { host, m } = setup();
    host.failing.add('a');
    expect(await m.handle(add('a', ns('na')))).toEqual({
      ok: false,
      error: 'failure to start proxy : bind failed',
      fatal: false,
    });
    await m.handle({ kind: 'snapshotSent' });
    expect(m.ready).toBe(false);
    expect(m.pendingUids).toEqual(['a']);
    await m.retryPending();
    expect(m.ready).toBe(false);
    host.failing.clear();
    await m.retryPending();
    expect(m.ready).toBe(true);
    expect(m.served).toEqual(['a']);
  });

  it('forgets pending pods on reconnect and hands every fd back once', async () => {
    const { host, m } = setup();
    host.failing.add('a');
    const a = ns('na');
    await m.handle(add('a', a));
    m.resetSnapshot();
    expect(host.closed).toEqual([a.fd]);
    const b = ns('nb');
    await m.handle(add('b', b));
    m.stopAll();
    expect(host.closed).toEqual([a.fd, b.fd]);
    expect(host.held.size).toBe(0);
  });
});

describe('readZdsPacket (protocol.rs get_workload_data checks)', () => {
  const netns = () => ({ isNetns: true, id: '4:1' });
  const packet = (data: Uint8Array, fds: number[] = [], truncated = false) => ({
    data: Buffer.from(data),
    fds,
    truncated,
  });
  const ADD = encodeZdsRequest({ kind: 'add', uid: 'a', workloadInfo: INFO });

  it('reads an add with its netns fd', () => {
    expect(readZdsPacket(packet(ADD, [7]), netns)).toEqual({
      ok: true,
      message: { kind: 'add', uid: 'a', workloadInfo: INFO, netns: { fd: 7, id: '4:1' } },
    });
  });

  it('refuses each malformed packet with its reason', () => {
    const reasons = [
      readZdsPacket(packet(ADD), netns),
      readZdsPacket(packet(ADD, [7, 8]), netns),
      readZdsPacket(packet(ADD, [7], true), netns),
      readZdsPacket(packet(Uint8Array.from([0xff, 0x01])), netns),
      readZdsPacket(packet(encodeZdsRequest({ kind: 'del', uid: 'a' }), [7]), netns),
      readZdsPacket(packet(ADD, [7]), () => ({ isNetns: false, id: '' })),
    ].map((r) => (r.ok ? 'ok' : `${r.reason}: ${r.error}`));
    expect(reasons).toEqual([
      'missing_fd: No control message',
      'fd_count: Expected 1 FD, got 2',
      'truncated: received truncated message',
      expect.stringMatching(/^malformed: /),
      'unexpected_fd: Unexpected control message',
      'not_netns: the fd beside the add is not a network namespace',
    ]);
  });
});

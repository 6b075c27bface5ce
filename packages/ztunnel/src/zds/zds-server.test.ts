import { decodeZdsRequest, encodeZdsAck, encodeZdsHello, type ZdsRequest } from '@ambient/shared';
import { describe, expect, it } from 'vitest';
import type { SeqpacketHandlers } from './seqpacket.js';
import { ZdsServer, type ZdsServerIo, type ZdsTransport } from './zds-server.js';

const INFO = { name: 'web', namespace: 'shop', serviceAccount: 'web-sa' };
const quiet = { info() {}, warn() {}, error() {}, debug() {} };

/** A ztunnel connection without a socket: records what the server sends. */
class FakeZtunnel implements ZdsTransport {
  closed = false;
  handlers?: SeqpacketHandlers;
  readonly sent: Array<{ request: ZdsRequest; fd?: number }> = [];
  start(h: SeqpacketHandlers) {
    this.handlers = h;
  }
  send(data: Uint8Array, fd?: number) {
    const r = decodeZdsRequest(data);
    if (!r.ok) throw new Error('server sent garbage');
    this.sent.push({ request: r.value, ...(fd !== undefined && { fd }) });
  }
  close(err?: Error) {
    if (this.closed) return;
    this.closed = true;
    this.handlers?.onClose(err);
  }
  say(data: Uint8Array, fds: number[] = []) {
    this.handlers?.onMessage({ data: Buffer.from(data), fds, truncated: false });
  }
  hello() {
    this.say(encodeZdsHello({ version: 1 }));
  }
  ack(error = '') {
    this.say(encodeZdsAck({ error }));
  }
  kinds() {
    return this.sent.map((s) => ('uid' in s.request ? `${s.request.kind} ${s.request.uid}` : s.request.kind));
  }
}

function setup() {
  let onConnection: ((t: ZdsTransport) => void) | undefined;
  let nextFd = 50;
  const open = new Set<number>();
  const closedFds: number[] = [];
  const timers = new Set<() => void>();
  const io: ZdsServerIo = {
    listen: (_p, cb) => {
      onConnection = cb;
      return { close() {} };
    },
    openNetns: (path) => {
      if (path.includes('missing')) throw new Error(`ENOENT: ${path}`);
      const fd = nextFd++;
      open.add(fd);
      return fd;
    },
    closeFd: (fd) => {
      if (!open.delete(fd)) throw new Error(`fd ${fd} closed twice or never opened`);
      closedFds.push(fd);
    },
    setTimer: (fn) => {
      timers.add(fn);
      return () => timers.delete(fn);
    },
  };
  const server = new ZdsServer({ socketPath: '/tmp/unused.sock', log: quiet }, io);
  const connect = () => {
    const z = new FakeZtunnel();
    onConnection?.(z);
    return z;
  };
  const fireTimers = () => {
    for (const t of [...timers]) {
      timers.delete(t);
      t();
    }
  };
  return { server, connect, open, closedFds, fireTimers };
}

const settled = <T>(p: Promise<T>) =>
  p.then(
    () => 'resolved',
    (e: Error & { code?: string }) => `${e.code}: ${e.message}`,
  );

describe('ZdsServer (ztunnelserver.go semantics)', () => {
  it('with no ztunnel connected, rejects an add but keeps the pod for the next snapshot', async () => {
    const { server, connect } = setup();
    await server.start();
    expect(await settled(server.addWorkload('u1', '/var/run/netns/a', INFO))).toBe(
      'ZT_ERR_ZDS_NOT_CONNECTED: no ztunnel connection: pod u1 kept for the next snapshot',
    );
    expect(server.knownPods).toEqual(['u1']);
    const z = connect();
    expect(z.sent).toEqual([]); // nothing before the hello
    z.hello();
    expect(z.kinds()).toEqual(['add u1']);
    expect(z.sent[0]?.request).toEqual({ kind: 'add', uid: 'u1', workloadInfo: INFO });
    expect(typeof z.sent[0]?.fd).toBe('number');
    z.ack();
    expect(z.kinds()).toEqual(['add u1', 'snapshotSent']);
    z.ack();
  });

  it("sends one request at a time and settles each on its ack, with ztunnel's error text", async () => {
    const { server, connect } = setup();
    await server.start();
    const z = connect();
    z.hello();
    z.ack(); // empty snapshot
    const a = settled(server.addWorkload('u1', '/ns/a', INFO));
    const b = settled(server.addWorkload('u2', '/ns/b', INFO));
    expect(z.kinds()).toEqual(['snapshotSent', 'add u1']);
    z.ack();
    expect(z.kinds()).toEqual(['snapshotSent', 'add u1', 'add u2']);
    z.ack('failure to start proxy : no workload');
    expect(await a).toBe('resolved');
    expect(await b).toBe(
      'ZT_ERR_ZDS_REFUSED: ztunnel refused the request: failure to start proxy : no workload',
    );
  });

  it('queues updates made before the snapshot ends behind it', async () => {
    const { server, connect } = setup();
    await server.start();
    await settled(server.addWorkload('u1', '/ns/a', INFO));
    const z = connect();
    const late = settled(server.addWorkload('u2', '/ns/b', INFO));
    z.hello();
    for (let i = 0; i < 4; i++) z.ack();
    expect(z.kinds()).toEqual(['add u1', 'add u2', 'snapshotSent', 'add u2']);
    expect(await late).toBe('resolved');
  });

  it('sends adds to the newest connection and dels to every connection', async () => {
    const { server, connect } = setup();
    await server.start();
    const old = connect();
    old.hello();
    old.ack();
    const fresh = connect();
    fresh.hello();
    fresh.ack();
    expect(server.connectionCount).toBe(2);
    const add = settled(server.addWorkload('u1', '/ns/a', INFO));
    fresh.ack();
    expect(await add).toBe('resolved');
    expect(old.kinds()).toEqual(['snapshotSent']);
    const del = settled(server.removeWorkload('u1'));
    old.ack();
    fresh.ack();
    expect(await del).toBe('resolved');
    expect(old.kinds()).toEqual(['snapshotSent', 'del u1']);
    expect(fresh.kinds()).toEqual(['snapshotSent', 'add u1', 'del u1']);
    expect(server.knownPods).toEqual([]);
  });

  it('resolves a remove at once when no ztunnel is connected, and forgets the pod', async () => {
    const { server, open } = setup();
    await server.start();
    await settled(server.addWorkload('u1', '/ns/a', INFO));
    expect(open.size).toBe(1);
    expect(await settled(server.removeWorkload('u1'))).toBe('resolved');
    expect(server.knownPods).toEqual([]);
    expect(open.size).toBe(0);
  });

  it('refuses a netns it cannot open and does not remember the pod', async () => {
    const { server } = setup();
    await server.start();
    expect(await settled(server.addWorkload('u1', '/missing', INFO))).toMatch(/ENOENT/);
    expect(server.knownPods).toEqual([]);
  });

  it('refuses an add upstream ztunnel could not read whole (over 1024 bytes), opening nothing', async () => {
    const { server, open } = setup();
    await server.start();
    const long = { ...INFO, name: 'n'.repeat(1100) };
    expect(await settled(server.addWorkload('u1', '/ns/a', long))).toMatch(
      /^ZT_ERR_ZDS_TOO_LARGE: .* 11\d\d bytes$/,
    );
    expect(server.knownPods).toEqual([]);
    expect(open.size).toBe(0);
  });

  it('ends a connection without hello, without ack, or with an unexpected message, failing what was pending', async () => {
    const { server, connect, fireTimers } = setup();
    await server.start();
    const silent = connect();
    fireTimers();
    expect(silent.closed).toBe(true);
    const z = connect();
    z.hello();
    z.ack();
    const pending = settled(server.addWorkload('u1', '/ns/a', INFO));
    fireTimers();
    expect(await pending).toBe('ZT_ERR_ZDS_TIMEOUT: ztunnel did not answer in time: no ack for add');
    expect(z.closed).toBe(true);
    const chatty = connect();
    chatty.hello();
    chatty.ack();
    chatty.ack();
    // The pod whose add timed out is still known: the next connection's snapshot carries it.
    expect(chatty.kinds()).toEqual(['add u1', 'snapshotSent']);
    chatty.ack(); // nothing was asked
    expect(chatty.closed).toBe(true);
    expect(server.connectionCount).toBe(0);
  });

  it('fails requests queued on a connection that drops, and closes every fd once', async () => {
    const { server, connect, open } = setup();
    await server.start();
    const z = connect();
    z.hello();
    z.ack();
    const a = settled(server.addWorkload('u1', '/ns/a', INFO));
    const b = settled(server.addWorkload('u2', '/ns/b', INFO));
    z.close();
    expect(await a).toMatch(/^ZT_ERR_ZDS_CLOSED/);
    expect(await b).toMatch(/^ZT_ERR_ZDS_CLOSED/);
    // Replacing a pod's netns closes the old fd; close() closes the rest.
    await settled(server.addWorkload('u1', '/ns/a2', INFO));
    expect(open.size).toBe(2);
    await server.close();
    expect(open.size).toBe(0);
  });
});

// A hostile or broken CNI agent on the ZDS socket, against a real ztunnel process (ZT_POD_SOURCE=zds)
// in a network namespace of its own: every bad request is refused with an error ack naming the
// problem and counted, the connection ends and ztunnel reconnects; the process never exits. With
// no socket at the path ztunnel keeps retrying, and connects once an agent listens.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeZdsAck, decodeZdsHello, encodeZdsRequest, LocalCa } from '@ambient/shared';
import { type SeqpacketMessage, SeqpacketServer, type SeqpacketSocket } from '@ambient/ztunnel';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const isRoot = process.getuid?.() === 0;
const NETNS = `f${process.pid % 100_000}-zds`;
const ZTUNNEL = fileURLToPath(new URL('../../packages/ztunnel/dist/main.js', import.meta.url));
const INFO = { name: 'web', namespace: 'shop', serviceAccount: 'web-sa' };

/** One connection from ztunnel, with its messages as they come. */
class Peer {
  readonly messages: SeqpacketMessage[] = [];
  closed = false;
  private wake?: () => void;
  constructor(readonly socket: SeqpacketSocket) {
    socket.start({
      onMessage: (m) => {
        this.messages.push(m);
        this.wake?.();
      },
      onClose: () => {
        this.closed = true;
        this.wake?.();
      },
    });
  }
  async next(what: string): Promise<SeqpacketMessage> {
    for (let i = 0; i < 100 && this.messages.length === 0 && !this.closed; i++) {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 100);
      });
    }
    const m = this.messages.shift();
    if (!m) throw new Error(`no ${what} from ztunnel`);
    return m;
  }
  async untilClosed(): Promise<void> {
    for (let i = 0; i < 100 && !this.closed; i++) await new Promise((r) => setTimeout(r, 100));
    if (!this.closed) throw new Error('ztunnel kept the connection');
  }
}

describe.skipIf(!isRoot)('ZDS faults against a ztunnel process (root)', () => {
  let dir: string;
  let ztunnel: ChildProcess;
  let server: SeqpacketServer | undefined;
  const peers: Peer[] = [];
  const socketPath = () => join(dir, 'ztunnel.sock');
  const inNs = (cmd: string[]) => execFileSync('ip', ['netns', 'exec', NETNS, ...cmd], { encoding: 'utf8' });
  const metric = (name: string) => {
    const text = inNs(['curl', '-s', '--max-time', '2', 'http://127.0.0.1:15020/metrics']);
    return Number(new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  };
  const ready = () => inNs(['curl', '-s', '--max-time', '2', 'http://127.0.0.1:15021/healthz/ready']);
  const devNullFds = () =>
    readdirSync(`/proc/${ztunnel.pid}/fd`).filter((fd) => {
      try {
        return readlinkSync(`/proc/${ztunnel.pid}/fd/${fd}`) === '/dev/null';
      } catch {
        return false;
      }
    }).length;
  const waitFor = async (what: string, check: () => boolean) => {
    for (let i = 0; i < 200; i++) {
      if (check()) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`timed out waiting for ${what}`);
  };
  /**
   * The next connection from ztunnel, after its hello: the first one after `after` (ztunnel may
   * already have reconnected by the time a closed peer is noticed), else the next new one.
   */
  const connection = async (after?: Peer) => {
    const seen = after ? peers.indexOf(after) + 1 : peers.length;
    await waitFor('a ztunnel connection', () => peers.length > seen);
    const peer = peers[seen] as Peer;
    const hello = decodeZdsHello((await peer.next('hello')).data);
    expect(hello).toEqual({ ok: true, value: { version: 1 } });
    return peer;
  };
  const ackOf = async (peer: Peer) => {
    const ack = decodeZdsAck((await peer.next('ack')).data);
    if (!ack.ok) throw new Error('ztunnel sent no ack');
    return ack.value.error;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'zt-zds-faults-'));
    execFileSync('ip', ['netns', 'add', NETNS]);
    execFileSync('ip', ['-n', NETNS, 'link', 'set', 'lo', 'up']);
    await LocalCa.loadOrCreate(join(dir, 'ca'), { trustDomain: 'cluster.local' });
    await writeFile(join(dir, 'ztunnel.yaml'), 'workloads: []\n');
  });

  afterAll(async () => {
    if (ztunnel && ztunnel.exitCode === null) {
      await new Promise<void>((resolve) => {
        ztunnel.once('exit', () => resolve());
        ztunnel.kill('SIGTERM');
      });
    }
    server?.close();
    execFileSync('ip', ['netns', 'del', NETNS]);
    await rm(dir, { recursive: true, force: true });
  });

  it('no socket at the path: ztunnel retries with backoff and connects once the agent listens', async () => {
    ztunnel = spawn('ip', ['netns', 'exec', NETNS, process.execPath, ZTUNNEL], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: {
        ...process.env,
        ZT_NODE_NAME: 'node0',
        ZT_CONFIG_FILE: join(dir, 'ztunnel.yaml'),
        ZT_CA_DIR: join(dir, 'ca'),
        ZT_METRICS_ADDRESS: '127.0.0.1',
        ZT_POD_SOURCE: 'zds',
        ZT_ZDS_SOCKET: socketPath(),
        ZT_LOG_LEVEL: 'fatal',
      },
    });
    await waitFor('the metrics endpoint', () => {
      try {
        return metric('ztunnel_zds_connect_failures_total') >= 3;
      } catch {
        return false;
      }
    });
    const failures = metric('ztunnel_zds_connect_failures_total');
    console.log(`connect attempts refused while no agent listened: ${failures}`);
    expect(ready()).toContain('workload proxy manager');
    const t0 = performance.now();
    server = SeqpacketServer.listen(socketPath(), (s) => peers.push(new Peer(s)));
    const peer = await connection();
    console.log(`connected ${(performance.now() - t0).toFixed(0)} ms after the agent started listening`);
    expect(peer.closed).toBe(false);
  });

  it('garbage is refused with an error ack, counted, and ztunnel reconnects', async () => {
    const peer = peers.at(-1) as Peer;
    peer.socket.send(Uint8Array.from([0xff, 0xff, 0xff, 0xff]));
    expect(await ackOf(peer)).toMatch(/^failure to read message : not a WorkloadRequest/);
    await peer.untilClosed();
    await connection(peer);
    expect(metric('ztunnel_zds_rejected_messages_total{reason="malformed"}')).toBe(1);
  });

  it('an add without a netns fd is refused (No control message)', async () => {
    const peer = peers.at(-1) as Peer;
    peer.socket.send(encodeZdsRequest({ kind: 'add', uid: 'u1', workloadInfo: INFO }));
    expect(await ackOf(peer)).toBe('failure to read message : No control message');
    await peer.untilClosed();
    await connection(peer);
    expect(metric('ztunnel_zds_rejected_messages_total{reason="missing_fd"}')).toBe(1);
  });

  it('an add whose fd is not a network namespace is refused, and that fd is closed', async () => {
    const peer = peers.at(-1) as Peer;
    const before = devNullFds();
    const devnull = openSync('/dev/null', 'r');
    peer.socket.send(encodeZdsRequest({ kind: 'add', uid: 'u1', workloadInfo: INFO }), devnull);
    closeSync(devnull);
    expect(await ackOf(peer)).toBe(
      'failure to read message : the fd beside the add is not a network namespace',
    );
    await peer.untilClosed();
    await connection(peer);
    expect(metric('ztunnel_zds_rejected_messages_total{reason="not_netns"}')).toBe(1);
    console.log(`/dev/null fds in ztunnel: ${before} before, ${devNullFds()} after the refused add`);
    expect(devNullFds()).toBe(before);
  });

  it('a del carrying an fd and a repeated snapshot-sent are refused; the process still serves', async () => {
    let peer = peers.at(-1) as Peer;
    const stray = openSync('/dev/null', 'r');
    peer.socket.send(encodeZdsRequest({ kind: 'del', uid: 'u1' }), stray);
    closeSync(stray);
    expect(await ackOf(peer)).toBe('failure to read message : Unexpected control message');
    await peer.untilClosed();
    peer = await connection(peer);
    peer.socket.send(encodeZdsRequest({ kind: 'snapshotSent' }));
    expect(await ackOf(peer)).toBe('');
    await waitFor('readiness', () => ready() === 'ready\n');
    peer.socket.send(encodeZdsRequest({ kind: 'snapshotSent' }));
    expect(await ackOf(peer)).toBe('failure to process message : pod snapshot received already');
    await peer.untilClosed();
    await connection(peer);
    expect(metric('ztunnel_zds_rejected_messages_total{reason="protocol"}')).toBe(1);
    expect(ztunnel.exitCode).toBe(null);
    console.log(`connections from one ztunnel process over the run: ${peers.length}`);
  });
});

import { closeSync, mkdtempSync, openSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeZdsAck, decodeZdsHello, encodeZdsRequest } from '@ambient/shared';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { closeFds, type SeqpacketMessage, SeqpacketServer, type SeqpacketSocket } from './seqpacket.js';
import { ZdsClient } from './zds-client.js';
import { ZdsMetrics } from './zds-metrics.js';
import { type ZdsNetns, ZdsWorkloadManager } from './zds-workload-manager.js';

const INFO = { name: 'web', namespace: 'shop', serviceAccount: 'web-sa' };
const openFds = () => readdirSync('/proc/self/fd').length;

/** The agent's end of one connection, message by message. */
function agentEnd(socket: SeqpacketSocket) {
  const inbox: SeqpacketMessage[] = [];
  let closed = false;
  socket.start({ onMessage: (m) => inbox.push(m), onClose: () => (closed = true) });
  const next = async () => {
    for (let i = 0; i < 200 && inbox.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const m = inbox.shift();
    if (!m) throw new Error('nothing from ztunnel');
    return m;
  };
  const ack = async () => {
    const a = decodeZdsAck((await next()).data);
    return a.ok ? a.value.error : 'not an ack';
  };
  return { socket, next, ack, closed: () => closed };
}

describe('ZdsClient over a real socket', () => {
  const cleanup: Array<() => void> = [];
  afterEach(() => {
    for (const f of cleanup.splice(0)) f();
  });

  it('says hello, acks each request, turns ready at snapshot-sent, and closes the fds it was handed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zds-client-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'z.sock');
    const conns: SeqpacketSocket[] = [];
    const server = SeqpacketServer.listen(path, (s) => conns.push(s));
    cleanup.push(() => server.close());
    const held = new Map<string, ZdsNetns>();
    const log: string[] = [];
    let stopThrows = false;
    const manager = new ZdsWorkloadManager({
      start: async (uid, _info, netns) => {
        held.set(uid, netns);
        log.push(`start ${uid}`);
      },
      stop: (uid) => {
        if (stopThrows) throw new Error('host broke');
        const ns = held.get(uid);
        if (ns) closeFds([ns.fd]);
        held.delete(uid);
        log.push(`stop ${uid}`);
      },
      release: (netns) => closeFds([netns.fd]),
    });
    const readiness: boolean[] = [];
    const client = new ZdsClient({
      socketPath: path,
      manager,
      logger: pino({ level: 'silent' }),
      metrics: new ZdsMetrics(new Registry()),
      onReadiness: (r) => readiness.push(r),
    });
    const before = openFds();
    client.start();
    cleanup.push(() => void client.close());
    for (let i = 0; i < 200 && conns.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const agent = agentEnd(conns[0] as SeqpacketSocket);
    expect(decodeZdsHello((await agent.next()).data)).toEqual({ ok: true, value: { version: 1 } });

    const ns = openSync('/proc/self/ns/net', 'r');
    agent.socket.send(encodeZdsRequest({ kind: 'add', uid: 'u1', workloadInfo: INFO }), ns);
    closeSync(ns);
    expect(await agent.ack()).toBe('');
    expect(readiness.at(-1)).toBe(false);
    agent.socket.send(encodeZdsRequest({ kind: 'snapshotSent' }));
    expect(await agent.ack()).toBe('');
    expect(readiness.at(-1)).toBe(true);
    agent.socket.send(encodeZdsRequest({ kind: 'del', uid: 'u1' }));
    expect(await agent.ack()).toBe('');
    expect(log).toEqual(['start u1', 'stop u1']);

    // A host that throws does not stop the client: the connection starts over.
    const ns2 = openSync('/proc/self/ns/net', 'r');
    agent.socket.send(encodeZdsRequest({ kind: 'add', uid: 'u2', workloadInfo: INFO }), ns2);
    closeSync(ns2);
    expect(await agent.ack()).toBe('');
    stopThrows = true;
    agent.socket.send(encodeZdsRequest({ kind: 'del', uid: 'u2' }));
    for (let i = 0; i < 200 && !agent.closed(); i++) await new Promise((r) => setTimeout(r, 10));
    expect(agent.closed()).toBe(true);
    for (let i = 0; i < 300 && conns.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(conns.length).toBe(2);
    expect(readiness.at(-1)).toBe(false);
    stopThrows = false;
    const again = agentEnd(conns[1] as SeqpacketSocket);
    expect(decodeZdsHello((await again.next()).data).ok).toBe(true);
    again.socket.send(encodeZdsRequest({ kind: 'snapshotSent' }));
    expect(await again.ack()).toBe('');
    expect(manager.served).toEqual([]);
    // The broken host kept u2's netns: its fault, closed here so the count below is about the client.
    for (const netns of held.values()) closeFds([netns.fd]);

    await client.close();
    again.socket.close();
    conns[0]?.close();
    await new Promise((r) => setTimeout(r, 20));
    console.log(`open fds: ${before} before, ${openFds()} after`);
    expect(openFds()).toBe(before);
  });

  it('starts its backoff afresh once connected: failures before a connection do not slow the reconnect after it ends', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zds-client-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'z.sock');
    const lines: Array<{ msg: string; retryMs?: number }> = [];
    const logger = pino({ level: 'warn' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    const client = new ZdsClient({
      socketPath: path,
      manager: new ZdsWorkloadManager({
        start: async () => {},
        stop: () => {},
        release: (n) => closeFds([n.fd]),
      }),
      logger,
      metrics: new ZdsMetrics(new Registry()),
      onReadiness: () => {},
      backoff: { initialMs: 4, maxMs: 60_000 },
    });
    client.start();
    cleanup.push(() => void client.close());
    const failed = () => lines.filter((l) => /failed to connect/.test(l.msg)).length;
    for (let i = 0; i < 500 && failed() < 6; i++) await new Promise((r) => setTimeout(r, 10));
    expect(failed()).toBeGreaterThanOrEqual(6);
    const conns: SeqpacketSocket[] = [];
    const server = SeqpacketServer.listen(path, (s) => conns.push(s));
    cleanup.push(() => server.close());
    for (let i = 0; i < 500 && conns.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const agent = agentEnd(conns[0] as SeqpacketSocket);
    expect(decodeZdsHello((await agent.next()).data).ok).toBe(true);
    agent.socket.close();
    for (let i = 0; i < 300 && conns.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(conns.length).toBe(2);
    const ended = lines.find((l) => /connection ended/.test(l.msg));
    // The first step of the policy (at most initialMs), not the seventh (4 * 2^6 ms).
    expect(ended?.retryMs).toBeLessThanOrEqual(4);
    conns[1]?.close();
  });
});

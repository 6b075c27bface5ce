/**
 * The CNI node agent's side of ZDS, as istio/istio cni/pkg/nodeagent/ztunnelserver.go and
 * ztunnelserver_linux.go: listen on the ZDS socket (a stale socket file is removed first); on each
 * ztunnel connection read its hello (5 s), send every known pod as an add with its netns fd, then
 * snapshot-sent, each waiting for its ack (5 s), then live updates one at a time. Adds go to the
 * newest connection, dels to every connection; an older ztunnel (during an upgrade) keeps its pods
 * until it disconnects.
 *
 * Invariant: a netns fd stays open while the pod is known or a queued add still has to pass it;
 * it is closed exactly once after that.
 */
import { existsSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  decodeZdsAck,
  decodeZdsHello,
  encodeZdsRequest,
  formatProblems,
  ZDS_MAX_MESSAGE_BYTES,
  type ZdsRequest,
  type ZdsWorkloadInfo,
} from '@ambient/shared';
import {
  closeFds,
  isNetnsFd,
  type SeqpacketHandlers,
  type SeqpacketMessage,
  SeqpacketServer,
  type SeqpacketSocket,
} from './seqpacket.js';
import { ZdsError } from './zds-error.js';

/** ztunnelserver_linux.go readWriteDeadline: the hello, each write and each ack. */
export const ZDS_READ_WRITE_DEADLINE_MS = 5_000;

/** The logger the server writes to (pino's shape). */
export interface ZdsLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export interface ZdsServerOptions {
  readonly socketPath: string;
  readonly log: ZdsLog;
  /** Deadline for ztunnel's hello and for each ack (default 5 s, as upstream). */
  readonly deadlineMs?: number;
}

/** One ztunnel connection as the server uses it (SeqpacketSocket; a fake in tests). */
export interface ZdsTransport {
  readonly closed: boolean;
  start(handlers: SeqpacketHandlers): void;
  send(data: Uint8Array, passFd?: number): void;
  close(err?: Error): void;
}

/** The server's contact with the system, replaced in tests. */
export interface ZdsServerIo {
  listen(path: string, onConnection: (t: ZdsTransport) => void): { close(): void };
  /** Opens a netns path read-only and checks it is a network namespace; returns the fd. */
  openNetns(path: string): number;
  closeFd(fd: number): void;
  setTimer(fn: () => void, ms: number): () => void;
}

const SYSTEM_IO: ZdsServerIo = {
  listen(path, onConnection) {
    mkdirSync(dirname(path), { recursive: true });
    if (existsSync(path)) rmSync(path, { force: true });
    return SeqpacketServer.listen(path, (s: SeqpacketSocket) => onConnection(s));
  },
  openNetns(path) {
    const fd = openSync(path, 'r');
    if (!isNetnsFd(fd)) {
      closeFds([fd]);
      throw new ZdsError('ZT_ERR_ZDS_SOCKET', `${path} is not a network namespace`);
    }
    return fd;
  },
  closeFd: (fd) => closeFds([fd]),
  setTimer(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return () => clearTimeout(t);
  },
};

interface NetnsRef {
  readonly fd: number;
  refs: number;
}

interface Item {
  readonly request: ZdsRequest;
  readonly netns?: NetnsRef;
  readonly settle: (err?: Error) => void;
}

interface Connection {
  readonly id: number;
  readonly transport: ZdsTransport;
  phase: 'hello' | 'snapshot' | 'live' | 'closed';
  queue: Item[];
  inFlight?: Item;
  cancelTimer?: () => void;
}

export class ZdsServer {
  private readonly io: ZdsServerIo;
  private listener?: { close(): void };
  /** Known pods, by uid: what every new ztunnel connection gets as its snapshot. */
  private readonly pods = new Map<string, { info: ZdsWorkloadInfo; netns: NetnsRef }>();
  /** Open connections, oldest first. */
  private connections: Connection[] = [];
  private nextId = 1;
  private closed = false;

  constructor(
    private readonly options: ZdsServerOptions,
    io?: ZdsServerIo,
  ) {
    this.io = io ?? SYSTEM_IO;
  }

  /** Listens at the socket path (its directory is created; a stale socket file from an earlier agent is removed). */
  async start(): Promise<void> {
    this.listener = this.io.listen(this.options.socketPath, (t) => this.accepted(t));
    this.options.log.info({ socket: this.options.socketPath }, 'ZDS server listening');
  }

  /** Stops listening, drops every connection (pending requests fail) and closes every netns fd. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listener?.close();
    if (this.listener) rmSync(this.options.socketPath, { force: true });
    for (const c of [...this.connections]) c.transport.close();
    for (const { netns } of this.pods.values()) this.release(netns);
    this.pods.clear();
  }

  /** Connections open now (a second ztunnel during an upgrade makes two). */
  get connectionCount(): number {
    return this.connections.length;
  }

  /** Uids of the pods a (re)connecting ztunnel is sent. */
  get knownPods(): readonly string[] {
    return [...this.pods.keys()];
  }

  /**
   * Hands a pod to ztunnel: remembers it (for the snapshot of every later connection), then sends
   * an add with its netns to the newest connection. Resolves on an empty ack; rejects with
   * ZT_ERR_ZDS_REFUSED (ztunnel's error text), ZT_ERR_ZDS_TIMEOUT, ZT_ERR_ZDS_CLOSED, or
   * ZT_ERR_ZDS_NOT_CONNECTED when no ztunnel is connected: as upstream PodAdded, the pod is then
   * still sent in the next connection's snapshot. A netns path that cannot be opened as a network
   * namespace rejects and the pod is not remembered.
   */
  addWorkload(uid: string, netnsPath: string, info: ZdsWorkloadInfo): Promise<void> {
    if (this.closed) return Promise.reject(new ZdsError('ZT_ERR_ZDS_CLOSED', 'server closed'));
    // Upstream ztunnel reads each message into 1024 bytes and refuses a truncated one.
    const size = encodeZdsRequest({ kind: 'add', uid, workloadInfo: info }).length;
    if (size > ZDS_MAX_MESSAGE_BYTES) {
      return Promise.reject(new ZdsError('ZT_ERR_ZDS_TOO_LARGE', `add of pod ${uid} is ${size} bytes`));
    }
    let fd: number;
    try {
      fd = this.io.openNetns(netnsPath);
    } catch (err) {
      return Promise.reject(err);
    }
    const previous = this.pods.get(uid);
    const netns: NetnsRef = { fd, refs: 1 };
    this.pods.set(uid, { info: { ...info }, netns });
    if (previous) this.release(previous.netns);
    const latest = this.connections.at(-1);
    if (!latest) {
      return Promise.reject(
        new ZdsError('ZT_ERR_ZDS_NOT_CONNECTED', `pod ${uid} kept for the next snapshot`),
      );
    }
    return this.enqueue(latest, { kind: 'add', uid, workloadInfo: { ...info } }, netns);
  }

  /**
   * Forgets a pod and sends a del to every connected ztunnel. Resolves once all acked (at once
   * when none is connected, as upstream PodDeleted); rejects with the first failure otherwise.
   */
  async removeWorkload(uid: string): Promise<void> {
    const pod = this.pods.get(uid);
    if (pod) {
      this.pods.delete(uid);
      this.release(pod.netns);
    }
    const results = await Promise.allSettled(
      this.connections.map((c) => this.enqueue(c, { kind: 'del', uid })),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private accepted(transport: ZdsTransport): void {
    if (this.closed) {
      transport.close();
      return;
    }
    const c: Connection = { id: this.nextId++, transport, phase: 'hello', queue: [] };
    this.connections.push(c);
    this.options.log.info({ conn: c.id, connected: this.connections.length }, 'ztunnel connected');
    transport.start({
      onMessage: (m) => this.message(c, m),
      onClose: (err) => this.dropped(c, err),
    });
    c.cancelTimer = this.io.setTimer(
      () => this.fail(c, new ZdsError('ZT_ERR_ZDS_TIMEOUT', 'no hello from ztunnel')),
      this.deadline,
    );
  }

  private get deadline(): number {
    return this.options.deadlineMs ?? ZDS_READ_WRITE_DEADLINE_MS;
  }

  private message(c: Connection, m: SeqpacketMessage): void {
    // ztunnel never sends descriptors.
    for (const fd of m.fds) this.io.closeFd(fd);
    if (c.phase === 'closed') return;
    const err = this.read(c, m);
    if (err) this.fail(c, new ZdsError('ZT_ERR_ZDS_SOCKET', err));
  }

  /** Handles one message from ztunnel; returns what is wrong with it, if anything. */
  private read(c: Connection, m: SeqpacketMessage): string | undefined {
    if (m.truncated) return 'truncated message';
    if (c.phase === 'hello') {
      const hello = decodeZdsHello(m.data);
      if (!hello.ok) return `bad hello: ${formatProblems(hello.problems)}`;
      c.cancelTimer?.();
      this.options.log.info({ conn: c.id, version: hello.value.version }, 'received hello from ztunnel');
      c.phase = 'snapshot';
      c.queue.unshift(...this.snapshot(c));
      this.pump(c);
      return undefined;
    }
    const item = c.inFlight;
    // ztunnel speaks only to answer (ztunnelserver.go's keepalive check).
    if (!item) return 'ztunnel protocol error, unexpected message';
    const ack = decodeZdsAck(m.data);
    if (!ack.ok) return `bad ack: ${formatProblems(ack.problems)}`;
    c.cancelTimer?.();
    c.inFlight = undefined;
    item.settle(ack.value.error ? new ZdsError('ZT_ERR_ZDS_REFUSED', ack.value.error) : undefined);
    this.pump(c);
    return undefined;
  }

  /** Every known pod as an add, then snapshot-sent; ack errors are logged, as upstream sendSnapshot. */
  private snapshot(c: Connection): Item[] {
    const log = this.options.log;
    const items: Item[] = [...this.pods].map(([uid, pod]) => {
      pod.netns.refs += 1;
      return {
        request: { kind: 'add', uid, workloadInfo: pod.info },
        netns: pod.netns,
        settle: (err) => {
          if (err) log.error({ conn: c.id, uid, err: err.message }, 'add-workload: got ack error');
        },
      };
    });
    items.push({
      request: { kind: 'snapshotSent' },
      settle: (err) => {
        if (err) log.error({ conn: c.id, err: err.message }, 'snap-sent: got ack error');
        if (c.phase === 'snapshot') c.phase = 'live';
        log.debug({ conn: c.id, pods: items.length - 1 }, 'snapshot sent to ztunnel');
      },
    });
    return items;
  }

  private enqueue(c: Connection, request: ZdsRequest, netns?: NetnsRef): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (netns) netns.refs += 1;
      c.queue.push({ request, ...(netns && { netns }), settle: (err) => (err ? reject(err) : resolve()) });
      this.pump(c);
    });
  }

  /** Sends the next queued request once the previous one is answered. */
  private pump(c: Connection): void {
    if (c.phase === 'hello' || c.phase === 'closed' || c.inFlight) return;
    const item = c.queue.shift();
    if (!item) return;
    c.inFlight = item;
    try {
      c.transport.send(encodeZdsRequest(item.request), item.netns?.fd);
    } catch (err) {
      this.fail(c, err as Error);
      return;
    } finally {
      // The kernel holds its own reference once sent; a failed send needs it no more either.
      if (item.netns) this.release(item.netns);
    }
    // Upstream waits readWriteDeadline for the ack; a late ack would be paired with the next
    // request, so a timeout here ends the connection (ztunnel reconnects and gets a snapshot).
    c.cancelTimer = this.io.setTimer(
      () => this.fail(c, new ZdsError('ZT_ERR_ZDS_TIMEOUT', `no ack for ${item.request.kind}`)),
      this.deadline,
    );
  }

  private fail(c: Connection, err: Error): void {
    this.options.log.warn({ conn: c.id, err: err.message }, 'ztunnel connection failed; closing it');
    c.transport.close(err);
    // A transport that reports its close synchronously has already dropped it.
    this.dropped(c, err);
  }

  private dropped(c: Connection, err?: Error): void {
    if (c.phase === 'closed') return;
    c.phase = 'closed';
    c.cancelTimer?.();
    this.connections = this.connections.filter((x) => x !== c);
    const reason = new ZdsError('ZT_ERR_ZDS_CLOSED', err?.message ?? 'ztunnel disconnected');
    const inFlight = c.inFlight;
    const queued = c.queue;
    c.inFlight = undefined;
    c.queue = [];
    // The request in flight fails with what ended the connection (a timeout names itself).
    inFlight?.settle(err instanceof ZdsError && err.code === 'ZT_ERR_ZDS_TIMEOUT' ? err : reason);
    for (const item of queued) {
      // A queued add never passed its fd: let go of it (the one in flight already did).
      if (item.netns) this.release(item.netns);
      item.settle(reason);
    }
    this.options.log.info({ conn: c.id, connected: this.connections.length }, 'ztunnel disconnected');
  }

  private release(netns: NetnsRef): void {
    netns.refs -= 1;
    if (netns.refs === 0) this.io.closeFd(netns.fd);
  }
}

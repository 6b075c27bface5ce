/**
 * ztunnel's side of ZDS, decided without sockets: what each request from the CNI agent does to the
 * set of served pods, as istio/ztunnel src/inpod/statemanager.rs (WorkloadProxyManagerState) and
 * the read checks of src/inpod/protocol.rs. The host (the node agent) starts and stops pods; this
 * module owns the snapshot bookkeeping and who holds each netns fd.
 *
 * Invariant: every netns fd handed in is either given to the host by `start` (and then given back
 * by `stop`) or released here, exactly once.
 */
import { decodeZdsRequest, formatProblems, type ZdsRequest, type ZdsWorkloadInfo } from '@ambient/shared';
import type { SeqpacketMessage } from './seqpacket.js';

/** A pod's network namespace as received: the fd, and its identity (device:inode) to compare. */
export interface ZdsNetns {
  readonly fd: number;
  readonly id: string;
}

export interface ZdsWorkloadHost {
  /**
   * Serves the pod (binds its listeners in `netns`). From this call until `stop(uid)` the host
   * holds the netns, whether or not the start succeeded; a rejection means the pod is not served.
   */
  start(uid: string, info: ZdsWorkloadInfo, netns: ZdsNetns): Promise<void>;
  /** Stops serving the pod (drains), then closes the netns `start` was given. Unknown uids: no-op. */
  stop(uid: string): void;
  /** Closes a netns fd never handed to `start`. */
  release(netns: ZdsNetns): void;
}

/** A request as read from one packet: an add carries its netns. */
export type ZdsMessage =
  | {
      readonly kind: 'add';
      readonly uid: string;
      readonly workloadInfo?: ZdsWorkloadInfo;
      readonly netns: ZdsNetns;
    }
  | Exclude<ZdsRequest, { kind: 'add' }>;

/** Why a packet was refused, as a bounded metric label. */
export type ZdsRejectReason =
  | 'truncated'
  | 'fd_count'
  | 'malformed'
  | 'missing_fd'
  | 'unexpected_fd'
  | 'not_netns'
  | 'protocol';

export type ZdsRead =
  | { readonly ok: true; readonly message: ZdsMessage }
  | { readonly ok: false; readonly reason: ZdsRejectReason; readonly error: string };

/**
 * One packet to one message, with upstream's checks in upstream's order (protocol.rs
 * get_workload_data): at most one fd, nothing truncated, a WorkloadRequest with a payload, an fd
 * with an add and only with an add; plus ours: that fd is a network namespace. On a refusal the
 * caller closes every fd of the packet; on success the add's netns is the only fd.
 */
export function readZdsPacket(
  packet: SeqpacketMessage,
  inspect: (fd: number) => { isNetns: boolean; id: string },
): ZdsRead {
  const refuse = (reason: ZdsRejectReason, error: string): ZdsRead => ({ ok: false, reason, error });
  if (packet.fds.length > 1) return refuse('fd_count', `Expected 1 FD, got ${packet.fds.length}`);
  if (packet.truncated) return refuse('truncated', 'received truncated message');
  const decoded = decodeZdsRequest(packet.data);
  if (!decoded.ok) return refuse('malformed', formatProblems(decoded.problems));
  const request = decoded.value;
  const fd = packet.fds[0];
  if (request.kind === 'add') {
    if (fd === undefined) return refuse('missing_fd', 'No control message');
    const ns = inspect(fd);
    if (!ns.isNetns) return refuse('not_netns', 'the fd beside the add is not a network namespace');
    return { ok: true, message: { ...request, netns: { fd, id: ns.id } } };
  }
  if (fd !== undefined) return refuse('unexpected_fd', 'Unexpected control message');
  return { ok: true, message: request };
}

export type ZdsOutcome =
  | { readonly ok: true }
  /** Acked with `error`; `fatal`: the request broke the protocol and the connection is dropped. */
  | { readonly ok: false; readonly error: string; readonly fatal: boolean };

const OK: ZdsOutcome = { ok: true };

export class ZdsWorkloadManager {
  /** Pods served, by uid: the identity of their netns. */
  private readonly workloads = new Map<string, string>();
  /** Adds whose start failed, retried later (the host holds their netns). */
  private readonly pending = new Map<string, { info: ZdsWorkloadInfo; netns: ZdsNetns }>();
  private snapshotReceived = false;
  /** Uids named (add or keep) before snapshot-sent on this connection. */
  private readonly snapshotNames = new Set<string>();

  constructor(private readonly host: ZdsWorkloadHost) {}

  /** A new connection: the CNI agent will send its whole snapshot again (statemanager.rs reset_snapshot). */
  resetSnapshot(): void {
    this.snapshotNames.clear();
    for (const uid of this.pending.keys()) this.host.stop(uid);
    this.pending.clear();
    this.snapshotReceived = false;
  }

  /** Ready once the snapshot is in and every add of it is served (statemanager.rs ready). */
  get ready(): boolean {
    return this.snapshotReceived && this.pending.size === 0;
  }

  get served(): readonly string[] {
    return [...this.workloads.keys()];
  }

  get pendingUids(): readonly string[] {
    return [...this.pending.keys()];
  }

  async handle(message: ZdsMessage): Promise<ZdsOutcome> {
    switch (message.kind) {
      case 'add': {
        if (!message.workloadInfo) {
          this.host.release(message.netns);
          return protocolError('workload_info is required but not present');
        }
        if (!this.snapshotReceived) this.snapshotNames.add(message.uid);
        return this.add(message.uid, message.workloadInfo, message.netns);
      }
      case 'keep':
        if (this.snapshotReceived) return protocolError('pod keep received after snapshot');
        this.snapshotNames.add(message.uid);
        return OK;
      case 'del':
        if (!this.snapshotReceived) {
          // Before the snapshot ends a del only unnames the pod: the reconcile stops it.
          this.snapshotNames.delete(message.uid);
          if (this.pending.delete(message.uid)) this.host.stop(message.uid);
          return OK;
        }
        this.del(message.uid);
        return OK;
      case 'snapshotSent':
        if (this.snapshotReceived) return protocolError('pod snapshot received already');
        for (const uid of [...this.workloads.keys()]) {
          if (!this.snapshotNames.has(uid)) this.del(uid);
        }
        this.snapshotNames.clear();
        this.snapshotReceived = true;
        return OK;
    }
  }

  /** Starts the pending pods again (upstream retries every 5 s while any is pending). */
  async retryPending(): Promise<void> {
    for (const [uid, { info, netns }] of [...this.pending]) {
      if (this.pending.get(uid)?.netns !== netns) continue;
      await this.start(uid, info, netns).catch(() => {});
    }
  }

  /** Stops every pod (shutdown). */
  stopAll(): void {
    for (const uid of [...this.workloads.keys(), ...this.pending.keys()]) this.host.stop(uid);
    this.workloads.clear();
    this.pending.clear();
  }

  private async add(uid: string, info: ZdsWorkloadInfo, netns: ZdsNetns): Promise<ZdsOutcome> {
    const served = this.workloads.get(uid);
    if (served === netns.id) {
      // Idempotent: the same pod in the same netns is already served.
      this.host.release(netns);
      return OK;
    }
    if (served !== undefined) this.del(uid);
    const waiting = this.pending.get(uid);
    if (waiting) {
      this.pending.delete(uid);
      this.host.stop(uid);
    }
    try {
      await this.start(uid, info, netns);
      return OK;
    } catch (err) {
      return { ok: false, error: `failure to start proxy : ${(err as Error).message}`, fatal: false };
    }
  }

  private async start(uid: string, info: ZdsWorkloadInfo, netns: ZdsNetns): Promise<void> {
    try {
      await this.host.start(uid, info, netns);
    } catch (err) {
      this.pending.set(uid, { info, netns });
      throw err;
    }
    this.pending.delete(uid);
    this.workloads.set(uid, netns.id);
  }

  private del(uid: string): void {
    const known = this.workloads.delete(uid) || this.pending.delete(uid);
    if (known) this.host.stop(uid);
  }
}

function protocolError(error: string): ZdsOutcome {
  return { ok: false, error: `failure to process message : ${error}`, fatal: true };
}

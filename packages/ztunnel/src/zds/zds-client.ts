/**
 * ztunnel's ZDS connection to the CNI node agent, as istio/ztunnel src/inpod/workloadmanager.rs:
 * connect (retrying with backoff, 10 ms doubling to 15 s, while the agent is absent), send the
 * hello, then read one request at a time and answer each with an ack, empty or carrying the error.
 * A packet that cannot be read is refused and ends the connection, as upstream; the snapshot then
 * comes again on the next one. Pods whose start failed are retried every 5 s.
 */
import { fstatSync } from 'node:fs';
import { type BackoffPolicy, backoffDelay, encodeZdsAck, encodeZdsHello, ZdsVersion } from '@ambient/shared';
import type { Logger } from 'pino';
import { closeFds, isNetnsFd, type SeqpacketMessage, SeqpacketSocket } from './seqpacket.js';
import type { ZdsMetrics } from './zds-metrics.js';
import { readZdsPacket, type ZdsWorkloadManager } from './zds-workload-manager.js';

/** workloadmanager.rs connect(): 10 ms doubling, at most 15 s (CONNECTION_FAILURE_RETRY_DELAY_MAX_INTERVAL). */
export const ZDS_CONNECT_BACKOFF: BackoffPolicy = Object.freeze({ initialMs: 10, maxMs: 15_000 });
/** workloadmanager.rs RETRY_DURATION: pending pods are started again this often. */
export const ZDS_RETRY_MS = 5_000;

export interface ZdsClientInputs {
  readonly socketPath: string;
  readonly manager: ZdsWorkloadManager;
  readonly logger: Logger;
  readonly metrics: ZdsMetrics;
  /** Called whenever readiness may have changed (ready = snapshot in, nothing pending). */
  readonly onReadiness: (ready: boolean) => void;
  readonly backoff?: BackoffPolicy;
  readonly retryMs?: number;
}

/** The identity of a netns fd (device and inode), as upstream's NetnsID. */
function inspectNetns(fd: number): { isNetns: boolean; id: string } {
  if (!isNetnsFd(fd)) return { isNetns: false, id: '' };
  const st = fstatSync(fd);
  return { isNetns: true, id: `${st.dev}:${st.ino}` };
}

export class ZdsClient {
  private socket?: SeqpacketSocket;
  private attempt = 0;
  private timer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  private work = Promise.resolve();
  private closing = false;
  /** Connections so far (a test and the admin page read it). */
  connections = 0;

  constructor(private readonly inputs: ZdsClientInputs) {}

  start(): void {
    this.connect();
  }

  get connected(): boolean {
    return this.socket !== undefined && !this.socket.closed;
  }

  /** Stops talking to the agent; the pods stay served until the caller stops them. */
  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.timer);
    clearTimeout(this.retryTimer);
    this.socket?.close();
    await this.work;
  }

  private connect(): void {
    if (this.closing) return;
    const { socketPath, logger, metrics } = this.inputs;
    let socket: SeqpacketSocket;
    try {
      socket = SeqpacketSocket.connect(socketPath);
    } catch (err) {
      metrics.connectFailures.inc();
      const delay = backoffDelay(this.inputs.backoff ?? ZDS_CONNECT_BACKOFF, this.attempt);
      this.attempt += 1;
      logger.warn(
        { socket: socketPath, err: (err as Error).message, retryMs: Math.round(delay) },
        'failed to connect to the CNI node agent; is it running? retrying',
      );
      this.timer = setTimeout(() => this.connect(), delay);
      this.timer.unref();
      return;
    }
    this.connections += 1;
    // Each connect starts its backoff afresh, as upstream's connect() loop does (workloadmanager.rs):
    // earlier failures must not slow the reconnect after a connection that worked ends.
    this.attempt = 0;
    this.socket = socket;
    this.inputs.manager.resetSnapshot();
    this.inputs.onReadiness(false);
    metrics.connected.set(1);
    socket.start({
      onMessage: (packet) => {
        this.work = this.work
          .then(() => this.process(socket, packet))
          .catch((err: unknown) => {
            // Never expected; the chain must survive it, and the connection starts over.
            logger.error({ err }, 'handling a ZDS request failed');
            socket.close(err as Error);
          });
      },
      onClose: (err) => this.closed(socket, err),
    });
    try {
      socket.send(encodeZdsHello({ version: ZdsVersion.V1 }));
      logger.info({ socket: socketPath }, 'connected to the CNI node agent; hello sent');
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'could not announce to the CNI node agent');
      socket.close();
    }
  }

  private closed(socket: SeqpacketSocket, err?: Error): void {
    if (this.socket !== socket) return;
    this.socket = undefined;
    this.inputs.metrics.connected.set(0);
    this.inputs.onReadiness(false);
    if (this.closing) return;
    const delay = backoffDelay(this.inputs.backoff ?? ZDS_CONNECT_BACKOFF, this.attempt);
    this.attempt += 1;
    this.inputs.logger.warn(
      { err: err?.message, retryMs: Math.round(delay) },
      'ZDS connection ended; reconnecting',
    );
    this.timer = setTimeout(() => this.connect(), delay);
    this.timer.unref();
  }

  private async process(socket: SeqpacketSocket, packet: SeqpacketMessage): Promise<void> {
    const { manager, logger, metrics } = this.inputs;
    if (socket.closed) {
      closeFds(packet.fds);
      return;
    }
    const read = readZdsPacket(packet, inspectNetns);
    if (!read.ok) {
      closeFds(packet.fds);
      metrics.reject(read.reason);
      logger.error({ reason: read.reason, error: read.error }, 'ZDS message refused');
      this.answer(socket, `failure to read message : ${read.error}`);
      socket.close(new Error(read.error));
      return;
    }
    const outcome = await manager.handle(read.message);
    if (outcome.ok) {
      this.answer(socket, '');
      if (read.message.kind === 'snapshotSent') this.attempt = 0;
    } else {
      metrics.reject(outcome.fatal ? 'protocol' : 'start_failed');
      logger.error({ request: read.message.kind, error: outcome.error }, 'ZDS request refused');
      this.answer(socket, outcome.error);
      if (outcome.fatal) socket.close(new Error(outcome.error));
      else this.scheduleRetry();
    }
    this.inputs.onReadiness(manager.ready);
  }

  private answer(socket: SeqpacketSocket, error: string): void {
    if (socket.closed) return;
    try {
      socket.send(encodeZdsAck({ error }));
    } catch (err) {
      socket.close(err as Error);
    }
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.closing) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.work = this.work
        .then(async () => {
          await this.inputs.manager.retryPending();
          if (this.inputs.manager.pendingUids.length > 0) this.scheduleRetry();
          this.inputs.onReadiness(this.inputs.manager.ready);
        })
        .catch((err: unknown) => this.inputs.logger.error({ err }, 'retrying pending pods failed'));
    }, this.inputs.retryMs ?? ZDS_RETRY_MS);
    this.retryTimer.unref();
  }
}

/**
 * The loop shared by the controllers that write only while this replica leads (the waypoint
 * deployment controller, the root-cert ConfigMaps). Each leadership is a term: gaining it starts a
 * full resync (list, queue everything, watch from there), losing it stops the term's watches,
 * timers and queue, and work of an older term stops at its next `leadingIn` check. A resync runs
 * again every `resyncMs`, 1 s after a watch ends, and with backoff after a failure. One queue
 * reconciles one key at a time; a key that fails is queued again after 1 s.
 */
import type { Logger } from 'pino';
import type { Leadership } from './leader-election.js';

export interface LeaderWorkQueueInputs {
  readonly leader: Leadership;
  readonly logger: Logger;
  /** Names the controller in log lines: `root-cert ConfigMap`, `waypoint controller`. */
  readonly name: string;
  /** The field naming a key in log lines: `namespace`, `gateway`. */
  readonly keyField: string;
  /** Time between full resyncs; 60 s by default. */
  readonly resyncMs?: number;
  /** Lists what to reconcile, queues it and starts the watches (handed to `watching`). */
  readonly resync: (term: number) => Promise<void>;
  /** Brings one key up to date; a throw queues it again. */
  readonly reconcile: (key: string, term: number) => Promise<void>;
}

export class LeaderWorkQueue {
  private term = 0;
  private closed = false;
  private failures = 0;
  private readonly queue = new Set<string>();
  private readonly retries = new Set<string>();
  private draining = false;
  private stops: Array<() => void> = [];
  private resyncTimer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;

  constructor(private readonly inputs: LeaderWorkQueueInputs) {
    inputs.leader.subscribe((leading) => this.onLeadership(leading));
    // Made after the election started: it may lead already.
    if (inputs.leader.isLeader) queueMicrotask(() => this.onLeadership(true));
  }

  /** Stops for good. */
  close(): void {
    this.closed = true;
    this.stopWork();
  }

  /** Whether `term` is still the current term, and this replica leads in it. */
  leadingIn(term: number): boolean {
    return this.term === term && this.inputs.leader.isLeader && !this.closed;
  }

  enqueue(key: string): void {
    this.queue.add(key);
    if (!this.draining) void this.drain(this.term);
  }

  /**
   * The watches a resync in `term` started: they replace the previous resync's and stop with the
   * term; a term already over stops them at once (and leaves a newer term's alone).
   */
  watching(term: number, stops: ReadonlyArray<() => void>): void {
    if (!this.leadingIn(term)) {
      for (const s of stops) s();
      return;
    }
    this.stopWatches();
    this.stops = [...stops];
  }

  /** A watch of `term` ended (410 Gone, a restart, a timeout): list again from scratch soon. */
  watchEnded(term: number): void {
    if (this.leadingIn(term)) this.scheduleResync(term, 1000);
  }

  private onLeadership(leading: boolean): void {
    this.stopWork();
    if (leading && !this.closed) void this.resync(this.term);
  }

  private stopWatches(): void {
    for (const s of this.stops) s();
    this.stops = [];
  }

  private stopWork(): void {
    this.term += 1;
    this.stopWatches();
    clearTimeout(this.resyncTimer);
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.retries.clear();
    this.queue.clear();
  }

  private async resync(term: number): Promise<void> {
    try {
      await this.inputs.resync(term);
      if (!this.leadingIn(term)) return;
      this.failures = 0;
      this.scheduleResync(term, this.inputs.resyncMs ?? 60_000);
    } catch (err) {
      if (!this.leadingIn(term)) return;
      this.inputs.logger.warn(
        { err },
        `${this.inputs.name} resync failed, retrying: ${(err as Error).message}`,
      );
      this.failures += 1;
      this.scheduleResync(term, Math.min(30_000, 500 * 2 ** Math.min(this.failures, 6)));
    }
  }

  private scheduleResync(term: number, ms: number): void {
    clearTimeout(this.resyncTimer);
    this.resyncTimer = setTimeout(() => {
      if (this.leadingIn(term)) void this.resync(term);
    }, ms);
    this.resyncTimer.unref();
  }

  private retryLater(key: string, term: number): void {
    this.retries.add(key);
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      const keys = [...this.retries];
      this.retries.clear();
      if (this.leadingIn(term)) for (const k of keys) this.enqueue(k);
    }, 1000);
    this.retryTimer.unref();
  }

  private async drain(term: number): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.size > 0 && this.leadingIn(term)) {
        const key = this.queue.values().next().value as string;
        this.queue.delete(key);
        try {
          await this.inputs.reconcile(key, term);
        } catch (err) {
          this.inputs.logger.warn(
            { err, [this.inputs.keyField]: key },
            `${this.inputs.name} ${key} failed, retrying: ${(err as Error).message}`,
          );
          this.retryLater(key, term);
        }
      }
    } finally {
      this.draining = false;
      // A new term may have queued work while the old one was finishing.
      if (this.queue.size > 0 && this.leadingIn(this.term)) void this.drain(this.term);
    }
  }
}

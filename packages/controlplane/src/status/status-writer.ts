/**
 * Writes `status.conditions` while this replica leads (istiod's ambient statusqueue): each
 * target's conditions are compared with what the object holds, and only a difference is written,
 * by server-side apply of the status subresource under the target's field manager (forced, as
 * istiod). One write at a time; a failure is retried with backoff.
 *
 * Invariant: a write never causes another. What was written is remembered with the object's
 * resourceVersion before and after; while the source still shows one of those two versions and
 * the wish is unchanged, nothing is written again (even if the server stored something other than
 * what was sent). Only a newer version of the object (someone else's change) or a new wish writes.
 */
import type { Logger } from 'pino';
import type { Leadership } from '../leader/leader-election.js';
import type { ObjectStatusView } from '../source/kube-api-source.js';
import { CONTENT_APPLY, KubeApiError, type KubeRest } from '../waypoint-controller/kube-rest.js';
import { type StatusTarget, statusToWrite } from './ambient-status.js';

export interface StatusWriterInputs {
  readonly kube: KubeRest;
  readonly logger: Logger;
  readonly leader: Leadership;
  /** The objects as the source last read them. */
  readonly view: (key: string) => ObjectStatusView | undefined;
  /** Every target as of the last build. */
  readonly targets: () => readonly StatusTarget[];
  /** Every so often every target is compared again, repairing a status edited by someone else. */
  readonly resyncMs?: number;
  readonly now?: () => number;
}

interface Written {
  readonly wish: string;
  readonly before: string;
  after: string;
}

export interface StatusWriteCounts {
  /** Status writes made. */
  writes: number;
  /** Writes that failed (retried). */
  failures: number;
}

export class StatusWriter {
  readonly counts: StatusWriteCounts = { writes: 0, failures: 0 };
  private readonly written = new Map<string, Written>();
  private readonly pending = new Map<string, StatusTarget>();
  private draining = false;
  private term = 0;
  private closed = false;
  private failures = 0;
  private retryTimer?: NodeJS.Timeout;
  private resyncTimer?: NodeJS.Timeout;

  constructor(private readonly inputs: StatusWriterInputs) {
    inputs.leader.subscribe((leading) => {
      this.term += 1;
      this.pending.clear();
      clearTimeout(this.retryTimer);
      clearTimeout(this.resyncTimer);
      // A new term starts from what the API holds, not from what an earlier term wrote.
      this.written.clear();
      if (leading) this.kick();
    });
  }

  /** Compares every target with its object and queues the differences (only while leading). */
  kick(): void {
    if (this.closed || !this.inputs.leader.isLeader) return;
    const now = new Date((this.inputs.now ?? Date.now)()).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const keys = new Set<string>();
    for (const t of this.inputs.targets()) {
      keys.add(t.key);
      if (this.needsWrite(t, now)) this.pending.set(t.key, t);
    }
    for (const k of this.written.keys()) if (!keys.has(k)) this.written.delete(k);
    this.scheduleResync();
    if (this.pending.size > 0 && !this.draining) void this.drain(this.term);
  }

  close(): void {
    this.closed = true;
    this.term += 1;
    this.pending.clear();
    clearTimeout(this.retryTimer);
    clearTimeout(this.resyncTimer);
  }

  private scheduleResync(): void {
    clearTimeout(this.resyncTimer);
    this.resyncTimer = setTimeout(() => this.kick(), this.inputs.resyncMs ?? 60_000);
    this.resyncTimer.unref();
  }

  private needsWrite(t: StatusTarget, now: string): StatusTarget | undefined {
    const view = this.inputs.view(t.key);
    if (!view) return undefined;
    if (!statusToWrite(t, view.status, now)) return undefined;
    const w = this.written.get(t.key);
    if (
      w &&
      w.wish === wishOf(t) &&
      (view.resourceVersion === w.before || view.resourceVersion === w.after)
    ) {
      // Written already: either its event is still on the way, or the server keeps something
      // else than what we sent, which writing again would not change.
      return undefined;
    }
    return t;
  }

  private async drain(term: number): Promise<void> {
    this.draining = true;
    try {
      while (this.pending.size > 0 && this.leading(term)) {
        const [key, target] = this.pending.entries().next().value as [string, StatusTarget];
        this.pending.delete(key);
        try {
          await this.write(target, term);
          this.failures = 0;
        } catch (err) {
          this.counts.failures += 1;
          this.failures += 1;
          this.inputs.logger.warn(
            { err, object: key },
            `status write of ${key} failed, retrying: ${(err as Error).message}`,
          );
          clearTimeout(this.retryTimer);
          this.retryTimer = setTimeout(
            () => this.kick(),
            Math.min(30_000, 500 * 2 ** Math.min(this.failures, 6)),
          );
          this.retryTimer.unref();
          return;
        }
      }
    } finally {
      this.draining = false;
    }
  }

  private leading(term: number): boolean {
    return !this.closed && this.term === term && this.inputs.leader.isLeader;
  }

  private async write(t: StatusTarget, term: number): Promise<void> {
    const now = new Date((this.inputs.now ?? Date.now)()).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const view = this.inputs.view(t.key);
    if (!view) return;
    const status = statusToWrite(t, view.status, now);
    if (!status || !this.leading(term)) return;
    const record: Written = { wish: wishOf(t), before: view.resourceVersion, after: view.resourceVersion };
    this.written.set(t.key, record);
    this.counts.writes += 1;
    try {
      const res = await this.inputs.kube.request<{ metadata?: { resourceVersion?: string } }>(
        'PATCH',
        `${t.path}/status?fieldManager=${encodeURIComponent(t.fieldManager)}&force=true`,
        {
          apiVersion: t.apiVersion,
          kind: t.kind,
          metadata: {
            name: t.name,
            namespace: t.namespace,
            // A route's parents are one list shared with other controllers, sent back whole: only
            // over the version they were read from (a conflict is retried after the next read).
            ...(t.parents && view.resourceVersion && { resourceVersion: view.resourceVersion }),
          },
          status,
        },
        CONTENT_APPLY,
      );
      record.after = res?.metadata?.resourceVersion ?? record.after;
      this.inputs.logger.debug({ object: t.key, status }, 'status written');
    } catch (err) {
      this.written.delete(t.key);
      // Deleted meanwhile: its DELETED event drops the target.
      if (err instanceof KubeApiError && err.status === 404) return;
      throw err;
    }
  }
}

function wishOf(t: StatusTarget): string {
  return JSON.stringify([[...t.desired], t.parents && [...t.parents.entries]]);
}

/**
 * Leader election on a coordination.k8s.io/v1 Lease, with client-go's rules (as istiod uses them
 * through pilot/pkg/leaderelection): a holder renews every retry period; another candidate takes
 * the Lease only once it has seen the same record unchanged for a whole lease duration on its own
 * clock (never by comparing clocks across machines); a leader that cannot renew within the renew
 * deadline stops leading, before anyone may take over. Every write carries the resourceVersion
 * read, so two candidates never both win one round. The clock and the API are injected.
 */

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface Lease {
  readonly metadata: { name: string; namespace: string; resourceVersion?: string };
  readonly spec: LeaseSpec;
}

/** The API calls the elector makes; a conflict or any failure rejects. */
export interface LeaseApi {
  get(): Promise<Lease | undefined>;
  create(lease: Lease): Promise<Lease>;
  update(lease: Lease): Promise<Lease>;
}

export interface LeaseTimings {
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
}

/** istiod's: a 30 s lease, renew deadline half of it, retry a quarter. */
export const DEFAULT_LEASE_TIMINGS: LeaseTimings = {
  leaseDurationMs: 30_000,
  renewDeadlineMs: 15_000,
  retryPeriodMs: 7_500,
};

export type LeaseDecision =
  | { readonly action: 'create' }
  | { readonly action: 'renew' }
  | { readonly action: 'takeover' }
  | { readonly action: 'wait'; readonly holder: string };

/**
 * What a candidate does with the Lease it read. `observedAtMs` is when this candidate first saw
 * the current record (holder and renew time) on its own clock.
 */
export function decideLease(
  lease: Lease | undefined,
  identity: string,
  observedAtMs: number,
  nowMs: number,
  leaseDurationMs: number,
): LeaseDecision {
  if (!lease) return { action: 'create' };
  const holder = lease.spec.holderIdentity ?? '';
  if (holder === identity) return { action: 'renew' };
  if (holder === '') return { action: 'takeover' };
  // The holder's own duration counts when it is longer: it promised to hold that long.
  const durationMs = Math.max(leaseDurationMs, (lease.spec.leaseDurationSeconds ?? 0) * 1000);
  if (nowMs < observedAtMs + durationMs) return { action: 'wait', holder };
  return { action: 'takeover' };
}

/** Kubernetes MicroTime: RFC 3339 with six fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export interface Clock {
  now(): number;
}

export interface LeaseElectorInputs {
  readonly name: string;
  readonly namespace: string;
  readonly identity: string;
  readonly api: LeaseApi;
  readonly timings: LeaseTimings;
  readonly clock?: Clock;
  /** Called with true on becoming leader, false on losing it. */
  readonly onChange?: (leading: boolean) => void;
  readonly onError?: (err: Error) => void;
}

export class LeaseElector {
  private leading = false;
  private observed?: { key: string; atMs: number };
  private lastRenewMs = 0;
  private timer?: NodeJS.Timeout;
  private running = false;
  private readonly clock: Clock;
  private ticking: Promise<void> = Promise.resolve();
  /** Successful acquisitions by this elector (for figures and tests). */
  acquisitions = 0;

  constructor(private readonly inputs: LeaseElectorInputs) {
    this.clock = inputs.clock ?? { now: () => Date.now() };
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** One round: read the Lease, then create, renew or take it over, or wait. Returns whether leading. */
  async tick(): Promise<boolean> {
    const { timings } = this.inputs;
    const now = this.clock.now();
    // A round never outlives the renew deadline: a hung request must not keep a leader leading,
    // nor stop the rounds (client-go bounds each renewal by the same deadline).
    const budgetMs = this.leading
      ? Math.max(1, this.lastRenewMs + timings.renewDeadlineMs - now)
      : timings.renewDeadlineMs;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`lease round took over ${budgetMs} ms`)), budgetMs);
      timer.unref();
    });
    try {
      return await Promise.race([this.round(now), deadline]);
    } catch (err) {
      this.inputs.onError?.(err as Error);
      // A leader that has not renewed within the renew deadline stops acting as one, so it has
      // stopped before a candidate (waiting a whole lease duration) can take over.
      if (this.leading && this.clock.now() - this.lastRenewMs >= timings.renewDeadlineMs)
        this.setLeading(false);
      return this.leading;
    } finally {
      clearTimeout(timer);
    }
  }

  private async round(now: number): Promise<boolean> {
    const { api, identity, timings } = this.inputs;
    {
      const lease = await api.get();
      if (lease) {
        const key = `${lease.spec.holderIdentity ?? ''}|${lease.spec.renewTime ?? ''}`;
        if (this.observed?.key !== key) this.observed = { key, atMs: now };
      }
      const d = decideLease(lease, identity, this.observed?.atMs ?? now, now, timings.leaseDurationMs);
      if (d.action === 'wait') {
        this.setLeading(false);
        return false;
      }
      const stamp = microTime(now);
      const spec: LeaseSpec = {
        holderIdentity: identity,
        leaseDurationSeconds: Math.max(1, Math.ceil(timings.leaseDurationMs / 1000)),
        renewTime: stamp,
        acquireTime: d.action === 'renew' ? (lease?.spec.acquireTime ?? stamp) : stamp,
        leaseTransitions:
          (lease?.spec.leaseTransitions ?? 0) +
          (d.action === 'takeover' && lease?.spec.holderIdentity ? 1 : 0),
      };
      const meta = { name: this.inputs.name, namespace: this.inputs.namespace };
      const written =
        d.action === 'create'
          ? await api.create({ metadata: meta, spec: { ...spec, leaseTransitions: 0 } })
          : await api.update({
              metadata: {
                ...meta,
                ...(lease?.metadata.resourceVersion && { resourceVersion: lease.metadata.resourceVersion }),
              },
              spec,
            });
      this.observed = { key: `${identity}|${written.spec.renewTime ?? stamp}`, atMs: now };
      this.lastRenewMs = now;
      if (!this.leading) this.acquisitions += 1;
      this.setLeading(true);
      return true;
    }
  }

  private setLeading(leading: boolean): void {
    if (leading === this.leading) return;
    this.leading = leading;
    this.inputs.onChange?.(leading);
  }

  /** Runs rounds every retry period until close() or destroy(). */
  start(): void {
    if (this.running) return;
    this.running = true;
    const loop = () => {
      if (!this.running) return;
      this.ticking = this.tick().then(() => {
        if (!this.running) return;
        this.timer = setTimeout(loop, this.inputs.timings.retryPeriodMs);
        this.timer.unref();
      });
    };
    loop();
  }

  /** Stops and, when leading, releases the Lease so another replica takes over at once. */
  async close(): Promise<void> {
    const wasLeading = this.leading;
    this.destroy();
    await this.ticking;
    if (!wasLeading) return;
    try {
      const lease = await this.inputs.api.get();
      if (lease?.spec.holderIdentity === this.inputs.identity) {
        await this.inputs.api.update({
          metadata: lease.metadata,
          spec: {
            ...lease.spec,
            holderIdentity: '',
            leaseDurationSeconds: 1,
            renewTime: microTime(this.clock.now()),
          },
        });
      }
    } catch (err) {
      this.inputs.onError?.(err as Error);
    }
  }

  /** Stops now, leaving the Lease as it is (as a killed process would). */
  destroy(): void {
    this.running = false;
    clearTimeout(this.timer);
    this.setLeading(false);
  }
}

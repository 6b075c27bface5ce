import type { Logger } from 'pino';
import { type BackoffPolicy, backoffDelay, CERT_BACKOFF } from '../backoff.js';
import { MeshError } from '../errors.js';
import type { CaClient } from './ca-client.js';
import { DEFAULT_CERT_TTL_SECONDS } from './local-ca.js';
import { certificateFacts, createCsr } from './node-x509.js';
import { planRotation } from './rotation-schedule.js';
import type { SpiffeId } from './spiffe-id.js';

/** A workload's key and certificate chain as issued by the CA. Immutable; rotation makes a new one. */
export interface WorkloadCertificate {
  readonly identity: SpiffeId;
  readonly keyPem: string;
  /** Leaf first, root last. */
  readonly chainPem: readonly string[];
  /** Trust anchors for peers: the root of this chain. */
  readonly rootsPem: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly serialNumber: string;
}

/** Time and timers, injectable so that tests can run rotation schedules without waiting. */
export interface CertClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const REAL_CLOCK: CertClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface CertManagerInputs {
  readonly ca: CaClient;
  readonly ttlSeconds?: number;
  readonly backoff?: BackoffPolicy;
  readonly logger?: Logger;
  readonly random?: () => number;
  readonly clock?: CertClock;
}

type EntryState = 'initializing' | 'available' | 'unavailable';

interface Entry {
  readonly identity: SpiffeId;
  cert?: WorkloadCertificate;
  /** When `cert` arrived: its rotation is planned from here, not from its backdated notBefore. */
  receivedAt?: number;
  pending?: Promise<WorkloadCertificate>;
  timer?: unknown;
  nextAttemptAt?: number;
  failures: number;
  /** Rotations in a row that the backoff paced (see planRotation). */
  early: number;
  lastError?: string;
}

export interface CertificateDump {
  identity: string;
  state: EntryState;
  serialNumber?: string;
  notBefore?: string;
  notAfter?: string;
  receivedAt?: string;
  nextRotation?: string;
  failures: number;
  lastError?: string;
}

/** Longest delay Node's timers accept. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * One certificate per identity: fetched on demand, cached, rotated at half the lifetime it had
 * left when it arrived (planRotation). When the CA fails, a still-valid certificate keeps serving
 * and issuance is retried with jittered exponential backoff. Consumers read `current()`/`fetch()`
 * per new connection, so a rotation reaches new connections only; open ones keep the certificate
 * they were made with. `retain()` drops the identities no workload here uses any more and warms
 * the others.
 */
export class CertManager {
  private readonly entries = new Map<string, Entry>();
  private readonly ttlSeconds: number;
  private readonly backoff: BackoffPolicy;
  private readonly clock: CertClock;
  private closed = false;

  constructor(private readonly inputs: CertManagerInputs) {
    this.ttlSeconds = inputs.ttlSeconds ?? DEFAULT_CERT_TTL_SECONDS;
    this.backoff = inputs.backoff ?? CERT_BACKOFF;
    this.clock = inputs.clock ?? REAL_CLOCK;
  }

  /** The valid certificate for `identity`, issuing one first if needed. */
  fetch(identity: SpiffeId): Promise<WorkloadCertificate> {
    if (this.closed) return Promise.reject(new MeshError('MESH_ERR_CLOSED', 'certificate manager'));
    const key = identity.toString();
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { identity, failures: 0, early: 0 };
      this.entries.set(key, entry);
    }
    const valid = this.usable(entry.cert);
    if (valid) return Promise.resolve(valid);
    if (entry.pending) return entry.pending;
    if (entry.timer !== undefined && entry.failures > 0) {
      // In backoff with nothing valid: say so now rather than hold the caller for up to 150 s.
      return Promise.reject(new MeshError('MESH_ERR_CA_UNAVAILABLE', `${key}: ${entry.lastError}`));
    }
    return this.issue(entry);
  }

  /** The cached certificate if it is still valid, without contacting the CA. */
  current(identity: SpiffeId): WorkloadCertificate | undefined {
    return this.usable(this.entries.get(identity.toString())?.cert);
  }

  /** Stops rotating `identity` and drops its certificate (the workload left this node). */
  forget(identity: SpiffeId): void {
    const entry = this.entries.get(identity.toString());
    if (!entry) return;
    this.clock.clearTimeout(entry.timer);
    entry.timer = undefined;
    this.entries.delete(identity.toString());
  }

  /**
   * Makes `live` the identities this manager holds. Every other one is forgotten: its rotation and
   * retries stop and its certificate is dropped, since the CA signs only identities with a pod on
   * this node and would refuse every further request. Every live one without a certificate is
   * fetched now rather than on its first connection (Istio's ztunnel prefetches the same way, in
   * src/cert_fetcher.rs), so that a pod enrolled while the CA is up still has one if the CA then
   * goes away. Call it once the connections that used a departing identity have closed (the node
   * agent calls it after releasing departed pods, whose release drains their connections):
   * dropping never touches an open connection, which holds its own key and chain, but a dropped
   * identity shows no more in the dump. Returns the dropped identities.
   */
  retain(live: Iterable<SpiffeId>): string[] {
    const keep = new Map([...live].map((id) => [id.toString(), id] as const));
    const dropped: string[] = [];
    for (const [key, entry] of this.entries) {
      if (keep.has(key)) continue;
      this.forget(entry.identity);
      dropped.push(key);
    }
    if (dropped.length > 0)
      this.inputs.logger?.info({ dropped }, 'certificates of departed identities dropped');
    for (const id of keep.values()) {
      this.fetch(id).catch(() => {
        // Logged, and retried with backoff, in issue().
      });
    }
    return dropped;
  }

  dump(): CertificateDump[] {
    return [...this.entries.values()].map((e) => {
      const cert = e.cert;
      return {
        identity: e.identity.toString(),
        state: this.usable(cert) ? 'available' : e.failures > 0 ? 'unavailable' : 'initializing',
        ...(cert && {
          serialNumber: cert.serialNumber,
          notBefore: cert.notBefore.toISOString(),
          notAfter: cert.notAfter.toISOString(),
          ...(e.receivedAt !== undefined && { receivedAt: new Date(e.receivedAt).toISOString() }),
        }),
        ...(e.nextAttemptAt !== undefined && { nextRotation: new Date(e.nextAttemptAt).toISOString() }),
        failures: e.failures,
        ...(e.lastError !== undefined && { lastError: e.lastError }),
      };
    });
  }

  close(): void {
    this.closed = true;
    for (const e of this.entries.values()) this.clock.clearTimeout(e.timer);
    this.entries.clear();
  }

  private issue(entry: Entry): Promise<WorkloadCertificate> {
    this.clock.clearTimeout(entry.timer);
    entry.timer = undefined;
    entry.nextAttemptAt = undefined;
    const pending = this.request(entry.identity).then(
      ({ cert, receivedAt }) => {
        entry.pending = undefined;
        if (this.closed || this.entries.get(entry.identity.toString()) !== entry) return cert;
        entry.cert = cert;
        entry.receivedAt = receivedAt;
        entry.failures = 0;
        entry.lastError = undefined;
        const plan = planRotation({
          receivedAt,
          notAfter: cert.notAfter.getTime(),
          early: entry.early,
          backoff: this.backoff,
          ...(this.inputs.random && { random: this.inputs.random }),
        });
        entry.early = plan.early;
        this.schedule(entry, receivedAt + plan.delayMs);
        this.inputs.logger?.info(
          { identity: entry.identity.toString(), serial: cert.serialNumber, notAfter: cert.notAfter },
          'certificate issued',
        );
        return cert;
      },
      (err: unknown) => {
        entry.pending = undefined;
        const error =
          err instanceof MeshError
            ? err
            : new MeshError('MESH_ERR_CA_UNAVAILABLE', (err as Error)?.message, { cause: err });
        if (this.closed || this.entries.get(entry.identity.toString()) !== entry) throw error;
        entry.lastError = error.message;
        const delay = backoffDelay(this.backoff, entry.failures, this.inputs.random);
        entry.failures += 1;
        this.schedule(entry, this.clock.now() + delay);
        this.inputs.logger?.warn(
          { identity: entry.identity.toString(), err: error.message, retryInMs: Math.round(delay) },
          this.usable(entry.cert)
            ? 'certificate rotation failed; keeping the valid certificate'
            : 'certificate issuance failed',
        );
        const valid = this.usable(entry.cert);
        if (valid) return valid;
        throw error;
      },
    );
    entry.pending = pending;
    return pending;
  }

  private schedule(entry: Entry, at: number): void {
    entry.nextAttemptAt = at;
    entry.timer = this.clock.setTimeout(
      () => {
        entry.timer = undefined;
        this.issue(entry).catch(() => {
          // Logged and rescheduled in issue().
        });
      },
      Math.min(Math.max(0, at - this.clock.now()), MAX_TIMER_MS),
    );
  }

  private async request(identity: SpiffeId): Promise<{ cert: WorkloadCertificate; receivedAt: number }> {
    const { keyPem, csrPem } = await createCsr(identity);
    const chain = await this.inputs.ca.createCertificate({ csrPem, ttlSeconds: this.ttlSeconds, identity });
    const receivedAt = this.clock.now();
    if (!Array.isArray(chain) || chain.length === 0) {
      throw new MeshError('MESH_ERR_CA_UNAVAILABLE', 'CA returned an empty chain');
    }
    const leaf = certificateFacts(chain[0] as string);
    if (leaf.uriSans.length !== 1 || leaf.uriSans[0] !== identity.toString()) {
      throw new MeshError(
        'MESH_ERR_INVALID_CERTIFICATE',
        `CA returned a certificate for ${leaf.uriSans.join(',')}`,
      );
    }
    if (leaf.notAfter.getTime() <= receivedAt) {
      // Counted as a failure, so that a CA handing out dead certificates is retried with backoff.
      throw new MeshError(
        'MESH_ERR_INVALID_CERTIFICATE',
        `CA returned a certificate that expired at ${leaf.notAfter.toISOString()}`,
      );
    }
    const cert: WorkloadCertificate = {
      identity,
      keyPem,
      chainPem: chain,
      rootsPem: [chain[chain.length - 1] as string],
      notBefore: leaf.notBefore,
      notAfter: leaf.notAfter,
      serialNumber: leaf.serialNumber,
    };
    return { cert, receivedAt };
  }

  private usable(cert: WorkloadCertificate | undefined): WorkloadCertificate | undefined {
    return cert && cert.notAfter.getTime() > this.clock.now() ? cert : undefined;
  }
}

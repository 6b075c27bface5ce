/**
 * A config source backed by a Kubernetes API server: one list + watch loop per kind (Namespace, Pod,
 * Service, ServiceAccount, the Gateway API and Istio kinds), as client-go's reflector does. Each
 * loop lists (a quorum read, in pages), then watches from the list's resourceVersion with bookmarks;
 * a watch that ends is resumed from the last resourceVersion seen, a 410 Gone (the server no longer
 * holds that version) makes it list again and replace what it held, and failures back off.
 *
 * Invariant: what `objects()` holds for a kind is, at every moment, the result of one list plus the
 * watch events after it, decoded by the same decoders as the manifest directory; an object that
 * fails to decode is reported with its field path and its last good version stays in force.
 * A kind whose CustomResourceDefinition is not installed is reported once and looked for again
 * (with backoff) while every other kind keeps working. `start()` resolves only when every kind has
 * been listed once or found missing, so no partial snapshot is ever built from it.
 */
import http from 'node:http';
import https from 'node:https';
import { createInterface } from 'node:readline';
import { type BackoffPolicy, backoffDelay } from '@ambient/shared';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { SnapshotMap } from '../ambient/snapshot-map.js';
import {
  DEFAULT_MANIFEST_LIMITS,
  decodeManifest,
  type KubeKind,
  type KubeObject,
  type ManifestLimits,
  manifestKey,
} from '../manifests/kube-objects.js';
import type { ConfigSource, InvalidResource } from './manifest-dir-source.js';

/** Where a kind is served. */
export interface KubeKindSpec {
  readonly kind: KubeKind;
  /** API group; '' for the core group. */
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  /** Served by a CustomResourceDefinition, so possibly not installed. */
  readonly custom: boolean;
}

export const KUBE_SOURCE_KINDS: readonly KubeKindSpec[] = Object.freeze([
  { kind: 'Namespace', group: '', version: 'v1', plural: 'namespaces', custom: false },
  { kind: 'Pod', group: '', version: 'v1', plural: 'pods', custom: false },
  { kind: 'Service', group: '', version: 'v1', plural: 'services', custom: false },
  { kind: 'ServiceAccount', group: '', version: 'v1', plural: 'serviceaccounts', custom: false },
  { kind: 'Gateway', group: 'gateway.networking.k8s.io', version: 'v1', plural: 'gateways', custom: true },
  {
    kind: 'HTTPRoute',
    group: 'gateway.networking.k8s.io',
    version: 'v1',
    plural: 'httproutes',
    custom: true,
  },
  {
    kind: 'AuthorizationPolicy',
    group: 'security.istio.io',
    version: 'v1',
    plural: 'authorizationpolicies',
    custom: true,
  },
  {
    kind: 'PeerAuthentication',
    group: 'security.istio.io',
    version: 'v1',
    plural: 'peerauthentications',
    custom: true,
  },
  {
    kind: 'VirtualService',
    group: 'networking.istio.io',
    version: 'v1',
    plural: 'virtualservices',
    custom: true,
  },
  {
    kind: 'DestinationRule',
    group: 'networking.istio.io',
    version: 'v1',
    plural: 'destinationrules',
    custom: true,
  },
] satisfies KubeKindSpec[]);

/** Reconnects after a failed list or watch: 0.5 s doubling to 30 s, jittered (client-go: 0.8 s to 30 s). */
export const KUBE_WATCH_BACKOFF: BackoffPolicy = Object.freeze({ initialMs: 500, maxMs: 30_000 });
/** Looking again for a CustomResourceDefinition that is not installed: 1 s doubling to 30 s. */
export const KUBE_CRD_POLL_BACKOFF: BackoffPolicy = Object.freeze({ initialMs: 1000, maxMs: 30_000 });

export interface KubeApiSourceInputs {
  readonly kubeConfig: KubeConfig;
  readonly logger?: Logger;
  readonly limits?: ManifestLimits;
  /** Defaults to every kind the mesh reads. */
  readonly kinds?: readonly KubeKindSpec[];
  readonly backoff?: BackoffPolicy;
  readonly crdPollBackoff?: BackoffPolicy;
  /** Server-side watch timeout; the watch is then resumed from the last resourceVersion. */
  readonly watchTimeoutSeconds?: number;
  /** Objects per list page. */
  readonly pageSize?: number;
}

/** Counts for /debug and tests. */
export interface KubeSourceStats {
  /** Lists made after a 410 Gone. */
  readonly relists: number;
  /** List or watch requests that failed and were retried after a backoff. */
  readonly failures: number;
  /** Watch streams opened. */
  readonly watches: number;
  /** Kinds found not served (their CRD not installed), by kind. */
  readonly missing: readonly KubeKind[];
  /** The resourceVersion each kind is at. */
  readonly resourceVersions: Readonly<Record<string, string>>;
}

export class KubeSourceError extends Error {
  constructor(
    readonly code: 'CP_ERR_KUBE_GONE' | 'CP_ERR_KUBE_STATUS' | 'CP_ERR_KUBE_RESPONSE',
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'KubeSourceError';
  }
}

interface KindState {
  readonly spec: KubeKindSpec;
  readonly apiVersion: string;
  readonly collection: string;
  /** Empty: list before watching. */
  rv: string;
  settled: boolean;
  missing: boolean;
  missingPolls: number;
}

/** Kinds whose status the control plane writes: their generation and status are kept as read. */
const STATUS_KINDS: ReadonlySet<KubeKind> = new Set<KubeKind>([
  'Service',
  'AuthorizationPolicy',
  'HTTPRoute',
]);

/** What the API server holds of an object besides its spec: for status writes. */
export interface ObjectStatusView {
  readonly generation: number;
  readonly resourceVersion: string;
  /** `status` as read (undefined when the object has none). */
  readonly status: unknown;
  /** An HTTPRoute's `spec.parentRefs` as read, refused or not: its status is kept per parent. */
  readonly parentRefs?: unknown;
}

interface Entry {
  readonly object: KubeObject;
  /** Canonical JSON of the decoded object: a change the mesh cannot see is no change. */
  readonly json: string;
}

export class KubeApiSource implements ConfigSource {
  private readonly current = new Map<string, Entry>();
  /** `current`'s objects, as `objects()` hands them out. */
  private readonly objectMap = new SnapshotMap<string, KubeObject>();
  private readonly invalidByKey = new Map<string, InvalidResource>();
  /** Generation and status of the objects of STATUS_KINDS, by key; not part of what `onChange` reports. */
  private readonly views = new Map<string, ObjectStatusView>();
  private readonly listeners: Array<(keys: readonly string[]) => void> = [];
  private readonly kinds: KindState[];
  private readonly limits: ManifestLimits;
  private readonly requests = new Set<http.ClientRequest>();
  private readonly sleepers = new Set<{ timer: NodeJS.Timeout; wake: () => void }>();
  private closed = false;
  private settledCount = 0;
  private onSettled?: () => void;
  private onClosed?: (err: Error) => void;
  private counts = { relists: 0, failures: 0, watches: 0 };

  constructor(private readonly inputs: KubeApiSourceInputs) {
    this.limits = inputs.limits ?? DEFAULT_MANIFEST_LIMITS;
    this.kinds = (inputs.kinds ?? KUBE_SOURCE_KINDS).map((spec) => {
      const apiVersion = spec.group ? `${spec.group}/${spec.version}` : spec.version;
      return {
        spec,
        apiVersion,
        collection: `${spec.group ? `/apis/${apiVersion}` : `/api/${apiVersion}`}/${spec.plural}`,
        rv: '',
        settled: false,
        missing: false,
        missingPolls: 0,
      };
    });
  }

  /** Resolves once every kind has been listed, or found not served. */
  start(): Promise<void> {
    const settled = new Promise<void>((resolve, reject) => {
      this.onSettled = resolve;
      this.onClosed = reject;
    });
    if (this.kinds.length === 0) this.onSettled?.();
    for (const k of this.kinds) void this.run(k);
    return settled;
  }

  close(): void {
    this.closed = true;
    // A start still waiting for its first sync will not get one.
    if (this.settledCount < this.kinds.length) this.onClosed?.(new Error('closed before the initial sync'));
    for (const req of this.requests) req.destroy();
    this.requests.clear();
    for (const s of this.sleepers) {
      clearTimeout(s.timer);
      s.wake();
    }
    this.sleepers.clear();
  }

  objects(): ReadonlyMap<string, KubeObject> {
    return this.objectMap.snapshot();
  }

  invalid(): readonly InvalidResource[] {
    return [...this.invalidByKey.values()];
  }

  /** The generation, resourceVersion and status of a Service, AuthorizationPolicy or HTTPRoute as last read. */
  statusOf(key: string): ObjectStatusView | undefined {
    return this.views.get(key);
  }

  /** Keys of the objects of a status kind as last read, accepted or refused. */
  statusKeys(kind: KubeKind): string[] {
    return [...this.views.keys()].filter((k) => k.startsWith(`${kind}/`));
  }

  /** The problems an object was refused for, when it was. */
  problemsOf(key: string): InvalidResource['problems'] | undefined {
    return this.invalidByKey.get(key)?.problems;
  }

  onChange(listener: (keys: readonly string[]) => void): void {
    this.listeners.push(listener);
  }

  stats(): KubeSourceStats {
    return {
      ...this.counts,
      missing: this.kinds.filter((k) => k.missing).map((k) => k.spec.kind),
      resourceVersions: Object.fromEntries(this.kinds.map((k) => [k.spec.kind, k.rv])),
    };
  }

  /** One kind's list + watch loop, until closed. */
  private async run(k: KindState): Promise<void> {
    let failures = 0;
    while (!this.closed) {
      try {
        if (!k.rv) {
          const served = await this.list(k);
          this.settle(k);
          if (!served) {
            await this.sleep(
              backoffDelay(this.inputs.crdPollBackoff ?? KUBE_CRD_POLL_BACKOFF, k.missingPolls++),
            );
            continue;
          }
          k.missingPolls = 0;
          failures = 0;
        }
        const opened = Date.now();
        const events = await this.watch(k);
        // A stream the server ends at once, empty, is a failure: do not spin on it.
        if (events > 0 || Date.now() - opened > 1000) failures = 0;
        else {
          this.counts.failures += 1;
          await this.sleep(backoffDelay(this.inputs.backoff ?? KUBE_WATCH_BACKOFF, failures++));
        }
      } catch (err) {
        if (this.closed) return;
        const e = err as Error & { status?: number };
        if (e instanceof KubeSourceError && e.code === 'CP_ERR_KUBE_GONE') {
          // The server no longer holds our version: list again now, as client-go's reflector does.
          this.counts.relists += 1;
          this.inputs.logger?.info(
            { kind: k.spec.kind, rv: k.rv },
            `${k.spec.kind}: ${e.message}; listing again`,
          );
          k.rv = '';
          continue;
        }
        if (e instanceof KubeSourceError && e.status === 404 && k.spec.custom && k.rv) {
          // The kind went away (its CRD deleted): the next list reports it missing.
          k.rv = '';
          continue;
        }
        this.counts.failures += 1;
        const delay = backoffDelay(this.inputs.backoff ?? KUBE_WATCH_BACKOFF, failures++);
        this.inputs.logger?.[failures === 1 ? 'warn' : 'debug'](
          { kind: k.spec.kind, err: e.message, retryMs: Math.round(delay) },
          `${k.spec.kind}: list/watch failed (${e.message}); retrying, the last state keeps serving`,
        );
        await this.sleep(delay);
      }
    }
  }

  private settle(k: KindState): void {
    if (k.settled) return;
    k.settled = true;
    this.settledCount += 1;
    if (this.settledCount === this.kinds.length) this.onSettled?.();
  }

  /** Lists a kind in pages and replaces what is held for it; false when the kind is not served. */
  private async list(k: KindState): Promise<boolean> {
    const items: unknown[] = [];
    let rv = '';
    let cont = '';
    do {
      const q = new URLSearchParams({ limit: String(this.inputs.pageSize ?? 500) });
      if (cont) q.set('continue', cont);
      const { status, body } = await this.get(`${k.collection}?${q}`);
      if (status === 404 && k.spec.custom) {
        this.markMissing(k);
        return false;
      }
      if (status === 410)
        throw new KubeSourceError('CP_ERR_KUBE_GONE', 'list continuation expired (410 Gone)', 410);
      if (status !== 200) throw statusError(`list ${k.collection}`, status, body);
      const list = body as { metadata?: { resourceVersion?: string; continue?: string }; items?: unknown[] };
      if (!Array.isArray(list.items))
        throw new KubeSourceError('CP_ERR_KUBE_RESPONSE', `list ${k.collection}: no items`);
      items.push(...list.items);
      if (!cont) rv = list.metadata?.resourceVersion ?? '';
      cont = list.metadata?.continue ?? '';
    } while (cont && !this.closed);
    const wasMissing = k.missing;
    if (wasMissing) {
      k.missing = false;
      this.invalidByKey.delete(crdKey(k));
      this.inputs.logger?.info(
        { kind: k.spec.kind },
        `${k.apiVersion} ${k.spec.kind} is served now: reading it`,
      );
    }
    if (!this.replace(k, items) && wasMissing) this.emit([]);
    k.rv = rv;
    return true;
  }

  private markMissing(k: KindState): void {
    const newly = !k.missing;
    if (newly) {
      k.missing = true;
      const message = `${k.apiVersion} ${k.spec.kind} is not served (CustomResourceDefinition ${k.spec.plural}.${k.spec.group} not installed): looked for again until it is; the other kinds are read meanwhile`;
      this.inputs.logger?.warn({ kind: k.spec.kind }, message);
      this.invalidByKey.set(crdKey(k), {
        file: k.collection,
        ref: `CustomResourceDefinition ${k.spec.plural}.${k.spec.group}`,
        problems: [{ path: 'apiVersion', message }],
      });
    }
    // Objects of a kind no longer served are gone (deleting a CRD deletes its objects).
    if (!this.replace(k, []) && newly) this.emit([]);
  }

  /**
   * Replaces a kind's objects with a fresh list: removed ones go, unchanged ones stay as they
   * were. Reports and returns whether anything changed.
   */
  private replace(k: KindState, items: readonly unknown[]): boolean {
    const prefix = `${k.spec.kind}/`;
    const seen = new Set<string>([crdKey(k)]);
    const changed: string[] = [];
    let invalidChanged = false;
    for (const item of items) {
      const r = this.apply(k, item);
      if (r.key) seen.add(r.key);
      if (r.changed) changed.push(r.key as string);
      invalidChanged ||= r.invalidChanged;
    }
    for (const key of [...this.current.keys()]) {
      if (key.startsWith(prefix) && !seen.has(key)) {
        this.current.delete(key);
        this.objectMap.delete(key);
        changed.push(key);
      }
    }
    for (const key of [...this.views.keys()])
      if (key.startsWith(prefix) && !seen.has(key)) this.views.delete(key);
    for (const key of [...this.invalidByKey.keys()]) {
      if (key.startsWith(prefix) && !seen.has(key)) {
        this.invalidByKey.delete(key);
        invalidChanged = true;
      }
    }
    if (changed.length || invalidChanged) this.emit(changed);
    return changed.length > 0 || invalidChanged;
  }

  /** Decodes one object into the held state. */
  private apply(k: KindState, raw: unknown): { key?: string; changed: boolean; invalidChanged: boolean } {
    // List items carry no kind or apiVersion: the collection says what they are.
    const doc =
      raw && typeof raw === 'object'
        ? { ...(raw as object), apiVersion: k.apiVersion, kind: k.spec.kind }
        : raw;
    const key = manifestKey(doc);
    if (!key) return { changed: false, invalidChanged: false };
    if (STATUS_KINDS.has(k.spec.kind)) {
      const o = doc as {
        metadata?: { generation?: unknown; resourceVersion?: unknown };
        spec?: { parentRefs?: unknown };
        status?: unknown;
      };
      this.views.set(key, {
        generation: typeof o.metadata?.generation === 'number' ? o.metadata.generation : 0,
        resourceVersion: typeof o.metadata?.resourceVersion === 'string' ? o.metadata.resourceVersion : '',
        status: o.status,
        ...(k.spec.kind === 'HTTPRoute' && { parentRefs: o.spec?.parentRefs }),
      });
    }
    const decoded = decodeManifest(doc, this.limits);
    if (decoded.ok === 'ignored') return { key, changed: false, invalidChanged: false };
    if (decoded.ok === false) {
      const last = this.current.get(key);
      this.invalidByKey.set(key, {
        file: objectPath(k, doc),
        ref: decoded.ref,
        problems: decoded.problems,
        ...(last && { kept: [key] }),
      });
      return { key, changed: false, invalidChanged: true };
    }
    const invalidChanged = this.invalidByKey.delete(key);
    const json = JSON.stringify(decoded.value);
    const prev = this.current.get(key);
    if (prev?.json === json) return { key, changed: false, invalidChanged };
    this.current.set(key, { object: decoded.value, json });
    this.objectMap.set(key, decoded.value);
    return { key, changed: true, invalidChanged };
  }

  private remove(k: KindState, raw: unknown): void {
    const doc =
      raw && typeof raw === 'object'
        ? { ...(raw as object), apiVersion: k.apiVersion, kind: k.spec.kind }
        : raw;
    const key = manifestKey(doc);
    if (!key) return;
    this.views.delete(key);
    const had = this.current.delete(key);
    this.objectMap.delete(key);
    const hadInvalid = this.invalidByKey.delete(key);
    if (had || hadInvalid) this.emit(had ? [key] : []);
  }

  private emit(keys: readonly string[]): void {
    for (const l of this.listeners) l(keys);
  }

  /** One watch stream from the kind's resourceVersion; resolves with the events seen when it ends. */
  private async watch(k: KindState): Promise<number> {
    const q = new URLSearchParams({
      watch: '1',
      resourceVersion: k.rv,
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(this.inputs.watchTimeoutSeconds ?? 300 + Math.floor(Math.random() * 300)),
    });
    const res = await this.open(`${k.collection}?${q}`);
    this.counts.watches += 1;
    if (res.statusCode !== 200) {
      const body = await readJson(res).catch(() => undefined);
      if (res.statusCode === 410)
        throw new KubeSourceError('CP_ERR_KUBE_GONE', `resourceVersion ${k.rv} is gone (410)`, 410);
      throw statusError(`watch ${k.collection}`, res.statusCode ?? 0, body);
    }
    let events = 0;
    let failure: Error | undefined;
    const lines = createInterface({ input: res, crlfDelay: Infinity });
    try {
      for await (const line of lines) {
        if (!line.trim()) continue;
        let ev: {
          type?: string;
          object?: { metadata?: { resourceVersion?: string }; code?: number; message?: string };
        };
        try {
          ev = JSON.parse(line);
        } catch {
          throw new KubeSourceError('CP_ERR_KUBE_RESPONSE', `watch ${k.collection}: a line is not JSON`);
        }
        events += 1;
        const rv = ev.object?.metadata?.resourceVersion;
        switch (ev.type) {
          case 'ADDED':
          case 'MODIFIED': {
            const r = this.apply(k, ev.object);
            if (r.changed || r.invalidChanged) this.emit(r.changed ? [r.key as string] : []);
            break;
          }
          case 'DELETED':
            this.remove(k, ev.object);
            break;
          case 'BOOKMARK':
            break;
          case 'ERROR': {
            const code = ev.object?.code ?? 0;
            if (code === 410)
              throw new KubeSourceError(
                'CP_ERR_KUBE_GONE',
                ev.object?.message ?? 'resourceVersion gone (410)',
                410,
              );
            throw new KubeSourceError(
              'CP_ERR_KUBE_STATUS',
              `watch ${k.collection}: ${ev.object?.message ?? code}`,
              code,
            );
          }
          default:
            throw new KubeSourceError(
              'CP_ERR_KUBE_RESPONSE',
              `watch ${k.collection}: event type ${String(ev.type)}`,
            );
        }
        if (rv) k.rv = rv;
      }
    } catch (err) {
      failure = err as Error;
    } finally {
      res.destroy();
    }
    if (failure && !(failure instanceof KubeSourceError) && events === 0) throw failure;
    if (failure instanceof KubeSourceError) throw failure;
    return events;
  }

  private async get(path: string): Promise<{ status: number; body: unknown }> {
    const res = await this.open(path);
    const status = res.statusCode ?? 0;
    // Error bodies may be plain text (`404 page not found`): only a success must be JSON.
    const body = status === 200 ? await readJson(res) : await readJson(res).catch(() => undefined);
    return { status, body };
  }

  /** Sends a GET with the kubeconfig's server, credentials and CA. */
  private async open(path: string): Promise<http.IncomingMessage> {
    const cluster = this.inputs.kubeConfig.getCurrentCluster();
    if (!cluster)
      throw new KubeSourceError('CP_ERR_KUBE_RESPONSE', 'the kubeconfig names no current cluster');
    const url = new URL(cluster.server.replace(/\/$/, '') + path);
    const opts: https.RequestOptions = { method: 'GET', headers: { accept: 'application/json' } };
    await this.inputs.kubeConfig.applyToHTTPSOptions(opts);
    // A plain-HTTP server (kubectl proxy, a test server) takes no TLS agent.
    if (url.protocol === 'http:') delete opts.agent;
    if (this.closed) throw new Error('closed');
    return new Promise((resolve, reject) => {
      const req = (url.protocol === 'http:' ? http : https).request(url, opts, (res) => {
        resolve(res);
      });
      this.requests.add(req);
      req.on('close', () => this.requests.delete(req));
      // No byte for this long: the connection is dead (watches get bookmarks well within it).
      req.setTimeout(this.watchIdleMs(), () => req.destroy(new Error('no response from the API server')));
      req.on('error', reject);
      req.end();
    });
  }

  private watchIdleMs(): number {
    return ((this.inputs.watchTimeoutSeconds ?? 600) + 30) * 1000;
  }

  private sleep(ms: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const s = {
        timer: setTimeout(() => {
          this.sleepers.delete(s);
          resolve();
        }, ms),
        wake: resolve,
      };
      s.timer.unref();
      this.sleepers.add(s);
    });
  }
}

function crdKey(k: KindState): string {
  return `${k.spec.kind}/crd`;
}

function objectPath(k: KindState, doc: unknown): string {
  const meta = ((doc as { metadata?: { name?: unknown; namespace?: unknown } })?.metadata ?? {}) as {
    name?: unknown;
    namespace?: unknown;
  };
  const base = k.collection.slice(0, k.collection.lastIndexOf('/'));
  const ns = typeof meta.namespace === 'string' && meta.namespace ? `/namespaces/${meta.namespace}` : '';
  return `${base}${ns}/${k.spec.plural}/${String(meta.name ?? '')}`;
}

function statusError(what: string, status: number, body: unknown): KubeSourceError {
  const message = (body as { message?: unknown })?.message;
  return new KubeSourceError(
    'CP_ERR_KUBE_STATUS',
    `${what}: HTTP ${status}${typeof message === 'string' ? ` (${message})` : ''}`,
    status,
  );
}

/** Reads a whole JSON response body; an unreadable one is an error of its own. */
function readJson(res: http.IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('error', reject);
    res.on('aborted', () => reject(new Error('response aborted')));
    res.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        resolve(text ? (JSON.parse(text) as unknown) : undefined);
      } catch {
        reject(
          new KubeSourceError('CP_ERR_KUBE_RESPONSE', `not JSON: ${text.slice(0, 200)}`, res.statusCode),
        );
      }
    });
  });
}

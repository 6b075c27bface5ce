/**
 * A config source backed by a directory of Kubernetes manifests (*.yaml, *.yml, *.json; several
 * documents per file, or a `kind: List`). The directory is watched: a changed file is parsed again
 * and only the objects whose content changed are reported, so unchanged objects keep their
 * identity and downstream caches stay warm. Files starting with a dot are ignored, so writers can
 * stage a file and rename it into place.
 *
 * An invalid edit never removes config, as a Kubernetes API server refuses an invalid update and
 * keeps the stored object: objects are identified by `kind/namespace/name`, and
 * - an object that fails to decode keeps the last good version its file gave it (a brand-new
 *   invalid object is only reported);
 * - a file, or a document, that cannot be read (syntax error, over a size limit, no readable kind
 *   and name) keeps every object the file last produced that its new version does not define;
 * - a removed file removes its objects, and a fixed file replaces them.
 * Every refusal is reported with its file, object and field path, and which objects stay in force.
 * Reading, parsing and decoding run in time slices, so a large write does not stall the process.
 */
import { type FSWatcher, watch } from 'node:fs';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { Problem } from '@ambient/shared';
import { Composer, type Document, isMap, isPair, isScalar, isSeq, LineCounter, Parser } from 'yaml';
import { SnapshotMap } from '../ambient/snapshot-map.js';
import { TimeSlicer } from '../ambient/time-slicer.js';
import {
  DEFAULT_MANIFEST_LIMITS,
  decodeManifest,
  type KubeObject,
  type ManifestLimits,
  manifestKey,
  objectKey,
} from '../manifests/kube-objects.js';

export interface InvalidResource {
  readonly file: string;
  /** Kind, namespace and name, as far as they could be read; the file name for a file-wide problem. */
  readonly ref: string;
  readonly problems: readonly Problem[];
  /** Keys of the objects whose last good version stays in force instead (absent: none). */
  readonly kept?: readonly string[];
}

/** Where the control plane's resources come from; a Kubernetes API source fits the same shape. */
export interface ConfigSource {
  start(): Promise<void>;
  close(): void;
  /**
   * Valid objects by `kind/namespace/name`, as they are now: later changes do not show in the
   * map returned. Between two reported changes it is the same map, and an unchanged object keeps
   * its identity across changes.
   */
  objects(): ReadonlyMap<string, KubeObject>;
  invalid(): readonly InvalidResource[];
  /**
   * Called with the keys of objects added, changed or removed; with none when only what is
   * reported as invalid changed. Every key whose entry in `objects()` changed must be reported:
   * the model updates only what the keys name when they are all Pods.
   */
  onChange(listener: (keys: readonly string[]) => void): void;
}

interface DocEntry {
  /** Canonical JSON of the document: equal text, equal object. */
  readonly json: string;
  readonly object: KubeObject;
}

interface FileEntry {
  mtimeMs: number;
  size: number;
  /** The objects in force from this file, by key (last good versions included). */
  docs: Map<string, DocEntry>;
  invalid: InvalidResource[];
}

const EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

export interface ManifestDirSourceInputs {
  readonly dir: string;
  /** Rescan period, a fallback for missed watch events. */
  readonly rescanMs?: number;
  readonly limits?: ManifestLimits;
  /** Shared with the rest of the control plane's work, so slices add up across stages. */
  readonly slicer?: TimeSlicer;
}

export class ManifestDirSource implements ConfigSource {
  private readonly files = new Map<string, FileEntry>();
  private readonly current = new Map<string, { object: KubeObject; json: string }>();
  /** `current`'s objects, as `objects()` hands them out. */
  private readonly objectMap = new SnapshotMap<string, KubeObject>();
  /** The files defining each key, in name order: the first one's object is in force. */
  private readonly definers = new Map<string, string[]>();
  private readonly listeners: Array<(keys: readonly string[]) => void> = [];
  private readonly limits: ManifestLimits;
  private readonly slicer: TimeSlicer;
  private watcher?: FSWatcher;
  private timer?: NodeJS.Timeout;
  private scanning: Promise<void> = Promise.resolve();
  private rescanRequested = false;

  constructor(private readonly inputs: ManifestDirSourceInputs) {
    this.limits = inputs.limits ?? DEFAULT_MANIFEST_LIMITS;
    this.slicer = inputs.slicer ?? new TimeSlicer();
  }

  async start(): Promise<void> {
    await mkdir(this.inputs.dir, { recursive: true });
    await this.scan();
    this.watcher = watch(this.inputs.dir, { persistent: false }, () => this.requestScan());
    this.watcher.on('error', () => this.requestScan());
    this.timer = setInterval(() => this.requestScan(), this.inputs.rescanMs ?? 2000);
    this.timer.unref();
  }

  close(): void {
    this.watcher?.close();
    clearInterval(this.timer);
  }

  objects(): ReadonlyMap<string, KubeObject> {
    return this.objectMap.snapshot();
  }

  invalid(): readonly InvalidResource[] {
    return [...this.files.values()].flatMap((f) => f.invalid);
  }

  onChange(listener: (keys: readonly string[]) => void): void {
    this.listeners.push(listener);
  }

  /** Scans now and resolves when done (tests, and `ambientctl` waiting for its own write). */
  rescan(): Promise<void> {
    this.requestScan();
    return this.scanning;
  }

  private requestScan(): void {
    if (this.rescanRequested) return;
    this.rescanRequested = true;
    this.scanning = this.scanning.then(async () => {
      this.rescanRequested = false;
      const { changed, reread } = await this.scan().catch(() => ({ changed: [], reread: false }));
      if (changed.length || reread) for (const l of this.listeners) l(changed);
    });
  }

  /** Reads files whose size or mtime changed: the keys whose content changed, and whether any file was read. */
  private async scan(): Promise<{ changed: string[]; reread: boolean }> {
    const names = (await readdir(this.inputs.dir).catch(() => [] as string[])).filter(
      (n) => !n.startsWith('.') && EXTENSIONS.has(extname(n)),
    );
    const seen = new Set(names);
    /** Files read again or gone, with the objects they gave before. */
    const dirty = new Map<string, ReadonlyMap<string, DocEntry> | undefined>();
    for (const name of names) {
      const path = join(this.inputs.dir, name);
      const st = await stat(path).catch(() => undefined);
      if (!st?.isFile()) {
        seen.delete(name);
        continue;
      }
      const prev = this.files.get(name);
      if (prev && prev.mtimeMs === st.mtimeMs && prev.size === st.size) continue;
      let parsed: Pick<FileEntry, 'docs' | 'invalid'>;
      if (st.size > this.limits.maxFileBytes) {
        // Refused unread: a file this large would hold the process for long, or exhaust it.
        parsed = unreadable(name, prev?.docs, new Map(), [
          {
            path: '',
            message: `the file is ${formatBytes(st.size)}, over the limit of ${formatBytes(this.limits.maxFileBytes)} for a manifest file`,
          },
        ]);
      } else {
        const text = await readFile(path, 'utf8').catch(() => undefined);
        if (text === undefined) continue;
        parsed = await parseFile(name, text, prev?.docs, this.limits, this.slicer);
      }
      this.files.set(name, { mtimeMs: st.mtimeMs, size: st.size, ...parsed });
      if (!dirty.has(name)) dirty.set(name, prev?.docs);
      await this.slicer.tick();
    }
    for (const [name, entry] of [...this.files]) {
      if (!seen.has(name)) {
        this.files.delete(name);
        if (!dirty.has(name)) dirty.set(name, entry.docs);
      }
    }
    return { changed: dirty.size ? this.merge(dirty) : [], reread: dirty.size > 0 };
  }

  /**
   * Brings the object map up to date with the files read again or gone (`dirty`, with what each
   * gave before), touching only the objects those files define or defined. Where several files
   * define an object, the first by name is in force and the others report it as a duplicate;
   * an unchanged object keeps its identity, wherever it moved. Returns the keys whose object was
   * added, replaced or removed.
   */
  private merge(dirty: ReadonlyMap<string, ReadonlyMap<string, DocEntry> | undefined>): string[] {
    const affected = new Set<string>();
    for (const [name, before] of dirty) {
      for (const key of before?.keys() ?? []) {
        affected.add(key);
        const files = this.definers.get(key);
        const at = files?.indexOf(name) ?? -1;
        if (!files || at < 0) continue;
        files.splice(at, 1);
        if (files.length === 0) this.definers.delete(key);
      }
      for (const key of this.files.get(name)?.docs.keys() ?? []) {
        affected.add(key);
        const files = this.definers.get(key);
        if (!files) this.definers.set(key, [name]);
        else if (!files.includes(name)) {
          const at = files.findIndex((f) => f > name);
          files.splice(at < 0 ? files.length : at, 0, name);
        }
      }
    }
    const changed: string[] = [];
    /** Files whose duplicate reports may have changed: every one defining an affected key. */
    const recheck = new Set<string>(dirty.keys());
    for (const key of affected) {
      const files = this.definers.get(key);
      const winner = files?.[0];
      const doc = winner === undefined ? undefined : this.files.get(winner)?.docs.get(key);
      for (const f of files ?? []) recheck.add(f);
      const prev = this.current.get(key);
      if (!doc) {
        if (prev) {
          this.current.delete(key);
          this.objectMap.delete(key);
          changed.push(key);
        }
        continue;
      }
      if (prev && prev.json === doc.json) continue;
      this.current.set(key, { object: doc.object, json: doc.json });
      this.objectMap.set(key, doc.object);
      changed.push(key);
    }
    for (const name of recheck) {
      const entry = this.files.get(name);
      if (!entry) continue;
      entry.invalid = entry.invalid.filter((i) => !i.ref.startsWith('duplicate:'));
      for (const key of entry.docs.keys()) {
        const first = this.definers.get(key)?.[0];
        if (first === undefined || first === name) continue;
        entry.invalid.push({
          file: name,
          ref: `duplicate:${key}`,
          problems: [{ path: 'metadata.name', message: `${key} is already defined in ${first}` }],
        });
      }
    }
    return changed;
  }
}

export function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}

/**
 * The outcome for a file that could not be read whole: the new objects it did yield, plus every
 * object it last produced that those do not define, kept in force.
 */
function unreadable(
  file: string,
  prev: ReadonlyMap<string, DocEntry> | undefined,
  docs: Map<string, DocEntry>,
  problems: readonly Problem[],
  invalid: InvalidResource[] = [],
): { docs: Map<string, DocEntry>; invalid: InvalidResource[] } {
  const kept: string[] = [];
  for (const [key, doc] of prev ?? []) {
    if (docs.has(key)) continue;
    docs.set(key, doc);
    kept.push(key);
  }
  return {
    docs,
    invalid: [{ file, ref: file, problems, ...(kept.length > 0 && { kept: kept.sort() }) }, ...invalid],
  };
}

/** Where a YAML document starts or ends (`---` or `...` at the start of a line). */
const DOCUMENT_MARKER = /^(?:---|\.\.\.)(?=[ \t\r\n]|$)/gm;

/**
 * The first document of a YAML text over `limit` bytes (its size and index), found without
 * parsing it; the largest one when none is over.
 */
function largestDocument(text: string, limit: number): { bytes: number; index: number } {
  let largest = { bytes: 0, index: 0 };
  let start = 0;
  let index = 0;
  const measure = (end: number) => {
    // UTF-8 takes at least a byte per UTF-16 unit and at most three: count only when in doubt.
    const length = end - start;
    const bytes = length > limit || length * 3 <= limit ? length : Buffer.byteLength(text.slice(start, end));
    if (bytes > largest.bytes) largest = { bytes, index };
  };
  for (const m of text.matchAll(DOCUMENT_MARKER)) {
    measure(m.index);
    if (largest.bytes > limit) return largest;
    if (text.slice(start, m.index).trim()) index += 1;
    start = m.index;
  }
  measure(text.length);
  return largest;
}

/** The field path of the node at a source offset of a YAML document, as near as it can be told. */
function pathAt(doc: Document, offset: number): string {
  let node: unknown = doc.contents;
  let path = '';
  for (let depth = 0; depth < 64; depth++) {
    if (isMap(node)) {
      const pair = node.items
        .filter((p) => isPair(p) && ((p.key as { range?: number[] })?.range?.[0] ?? Infinity) <= offset)
        .at(-1);
      if (!pair) break;
      const key = isScalar(pair.key) ? String(pair.key.value) : '?';
      path = path ? `${path}.${key}` : key;
      node = pair.value;
    } else if (isSeq(node)) {
      const items = node.items as Array<{ range?: number[] }>;
      let i = -1;
      for (const [k, item] of items.entries()) if ((item?.range?.[0] ?? Infinity) <= offset) i = k;
      if (i < 0) break;
      path = `${path}[${i}]`;
      node = items[i];
    } else break;
  }
  return path;
}

/**
 * Parses and decodes one file, in time slices. `prev` is what the file gave before: its objects
 * stay in force where the new version cannot be read or decoded.
 */
async function parseFile(
  file: string,
  text: string,
  prev: ReadonlyMap<string, DocEntry> | undefined,
  limits: ManifestLimits,
  slicer: TimeSlicer,
): Promise<{ docs: Map<string, DocEntry>; invalid: InvalidResource[] }> {
  const docs = new Map<string, DocEntry>();
  const invalid: InvalidResource[] = [];
  /** Problems that leave part of the file unread, so nothing it held can be taken as removed. */
  const unread: Problem[] = [];
  let raw: unknown[] = [];
  if (extname(file) === '.json') {
    try {
      const parsed = JSON.parse(text) as unknown;
      raw = Array.isArray(parsed) ? parsed : [parsed];
    } catch (err) {
      return unreadable(file, prev, docs, [{ path: '', message: `JSON: ${(err as Error).message}` }]);
    }
  } else {
    // One document is parsed in one go: refuse one too large to be an object before parsing it.
    const largest = largestDocument(text, limits.maxObjectBytes);
    if (largest.bytes > limits.maxObjectBytes) {
      return unreadable(file, prev, docs, [
        {
          path: '',
          message: `document ${largest.index + 1} is ${formatBytes(largest.bytes)}, over the limit of ${formatBytes(limits.maxObjectBytes)} for one object`,
        },
      ]);
    }
    const lines = new LineCounter();
    const documents = new Composer().compose(new Parser(lines.addNewLine).parse(text), true, text.length);
    for (const doc of documents) {
      if (doc.errors.length) {
        const first = doc.errors[0];
        const at = first?.pos[0] ?? 0;
        const { line, col } = lines.linePos(at);
        unread.push({
          path: pathAt(doc, at),
          message: `YAML: ${first?.message.split('\n')[0] ?? 'invalid'} at line ${line}, column ${col}`,
        });
      } else {
        const value = doc.toJS() as unknown;
        if (value !== null && value !== undefined) raw.push(value);
      }
      await slicer.tick();
    }
  }
  const expanded = raw.flatMap((d) =>
    d &&
    typeof d === 'object' &&
    (d as { kind?: unknown }).kind === 'List' &&
    Array.isArray((d as { items?: unknown }).items)
      ? ((d as { items: unknown[] }).items as unknown[])
      : [d],
  );
  for (const doc of expanded) {
    await slicer.tick();
    const json = JSON.stringify(doc) ?? 'null';
    const key = manifestKey(doc);
    const bytes = Buffer.byteLength(json);
    const decoded =
      bytes > limits.maxObjectBytes
        ? ({
            ok: false,
            ref: refOf(doc),
            problems: [
              {
                path: '',
                message: `the object is ${formatBytes(bytes)}, over the limit of ${formatBytes(limits.maxObjectBytes)} (as a Kubernetes API server refuses it)`,
              },
            ],
          } as const)
        : decodeManifest(doc, limits);
    if (decoded.ok === 'ignored') continue;
    if (decoded.ok === false) {
      if (key === undefined) {
        // Which object this was meant to be is unknown: it may be any the file held.
        unread.push(
          ...decoded.problems.map((p) => ({ path: p.path, message: `${decoded.ref}: ${p.message}` })),
        );
        continue;
      }
      const last = prev?.get(key);
      if (last && !docs.has(key)) docs.set(key, last);
      invalid.push({
        file,
        ref: decoded.ref,
        problems: decoded.problems,
        ...(last && { kept: [key] }),
      });
      continue;
    }
    const k = objectKey(decoded.value);
    const held = docs.get(k);
    if (held && held !== prev?.get(k)) {
      const { kind, metadata } = decoded.value;
      invalid.push({
        file,
        ref: `${kind} ${metadata.namespace ? `${metadata.namespace}/` : ''}${metadata.name}`,
        problems: [
          { path: 'metadata.name', message: `${k} is defined twice in this file; the first is kept` },
        ],
      });
      continue;
    }
    docs.set(k, { json, object: decoded.value });
  }
  if (unread.length) return unreadable(file, prev, docs, unread, invalid);
  return { docs, invalid };
}

function refOf(doc: unknown): string {
  const o = (doc && typeof doc === 'object' ? doc : {}) as Record<string, unknown>;
  const meta = (o.metadata && typeof o.metadata === 'object' ? o.metadata : {}) as Record<string, unknown>;
  const kind = typeof o.kind === 'string' && o.kind ? o.kind : '(no kind)';
  return `${kind} ${meta.namespace ? `${String(meta.namespace)}/` : ''}${String(meta.name ?? '(no name)')}`;
}

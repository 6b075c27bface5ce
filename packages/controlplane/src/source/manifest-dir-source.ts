/**
 * A config source backed by a directory of Kubernetes manifests (*.yaml, *.yml, *.json; several
 * documents per file, or a `kind: List`). The directory is watched: a changed file is parsed again
 * and only the objects whose content changed are reported, so unchanged objects keep their
 * identity and downstream caches stay warm. Files starting with a dot are ignored, so writers can
 * stage a file and rename it into place.
 */
import { type FSWatcher, watch } from 'node:fs';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { Problem } from '@ambient/shared';
import { parseAllDocuments } from 'yaml';
import { decodeManifest, type KubeObject, objectKey } from '../model/kube-objects.js';

export interface InvalidResource {
  readonly file: string;
  /** Kind, namespace and name, as far as they could be read. */
  readonly ref: string;
  readonly problems: readonly Problem[];
}

/** Where the control plane's resources come from; a Kubernetes API source fits the same shape. */
export interface ConfigSource {
  start(): Promise<void>;
  close(): void;
  /** Valid objects by `kind/namespace/name`. */
  objects(): ReadonlyMap<string, KubeObject>;
  invalid(): readonly InvalidResource[];
  /** Called with the keys of objects added, changed or removed. */
  onChange(listener: (keys: readonly string[]) => void): void;
}

interface FileEntry {
  mtimeMs: number;
  size: number;
  /** key -> canonical JSON of the document. */
  docs: Map<string, string>;
  invalid: InvalidResource[];
}

const EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

export interface ManifestDirSourceInputs {
  readonly dir: string;
  /** Rescan period, a fallback for missed watch events. */
  readonly rescanMs?: number;
}

export class ManifestDirSource implements ConfigSource {
  private readonly files = new Map<string, FileEntry>();
  private readonly current = new Map<string, { object: KubeObject; json: string; file: string }>();
  private readonly listeners: Array<(keys: readonly string[]) => void> = [];
  private watcher?: FSWatcher;
  private timer?: NodeJS.Timeout;
  private scanning: Promise<void> = Promise.resolve();
  private rescanRequested = false;

  constructor(private readonly inputs: ManifestDirSourceInputs) {}

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
    const out = new Map<string, KubeObject>();
    for (const [k, v] of this.current) out.set(k, v.object);
    return out;
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
      const changed = await this.scan().catch(() => []);
      if (changed.length) for (const l of this.listeners) l(changed);
    });
  }

  /** Reads files whose size or mtime changed; returns the keys whose content changed. */
  private async scan(): Promise<string[]> {
    const names = (await readdir(this.inputs.dir).catch(() => [] as string[])).filter(
      (n) => !n.startsWith('.') && EXTENSIONS.has(extname(n)),
    );
    const seen = new Set(names);
    let dirty = false;
    for (const name of names) {
      const path = join(this.inputs.dir, name);
      const st = await stat(path).catch(() => undefined);
      if (!st?.isFile()) {
        seen.delete(name);
        continue;
      }
      const prev = this.files.get(name);
      if (prev && prev.mtimeMs === st.mtimeMs && prev.size === st.size) continue;
      const text = await readFile(path, 'utf8').catch(() => undefined);
      if (text === undefined) continue;
      this.files.set(name, { mtimeMs: st.mtimeMs, size: st.size, ...parseFile(name, text) });
      dirty = true;
    }
    for (const name of [...this.files.keys()]) {
      if (!seen.has(name)) {
        this.files.delete(name);
        dirty = true;
      }
    }
    return dirty ? this.merge() : [];
  }

  /** Rebuilds the object map from the files, keeping unchanged objects as they were. */
  private merge(): string[] {
    const next = new Map<string, { json: string; file: string }>();
    for (const name of [...this.files.keys()].sort()) {
      const entry = this.files.get(name) as FileEntry;
      entry.invalid = entry.invalid.filter((i) => !i.ref.startsWith('duplicate:'));
      for (const [key, json] of entry.docs) {
        const other = next.get(key);
        if (other) {
          entry.invalid.push({
            file: name,
            ref: `duplicate:${key}`,
            problems: [{ path: 'metadata.name', message: `${key} is already defined in ${other.file}` }],
          });
          continue;
        }
        next.set(key, { json, file: name });
      }
    }
    const changed: string[] = [];
    for (const [key, { json, file }] of next) {
      const prev = this.current.get(key);
      if (prev && prev.json === json) {
        prev.file = file;
        continue;
      }
      const decoded = decodeManifest(JSON.parse(json));
      if (decoded.ok !== true) continue;
      this.current.set(key, { object: decoded.value, json, file });
      changed.push(key);
    }
    for (const key of [...this.current.keys()]) {
      if (!next.has(key)) {
        this.current.delete(key);
        changed.push(key);
      }
    }
    return changed;
  }
}

/** Parses one file into canonical documents by key, and the documents that were refused. */
function parseFile(file: string, text: string): { docs: Map<string, string>; invalid: InvalidResource[] } {
  const docs = new Map<string, string>();
  const invalid: InvalidResource[] = [];
  let raw: unknown[] = [];
  if (extname(file) === '.json') {
    try {
      const parsed = JSON.parse(text) as unknown;
      raw = Array.isArray(parsed) ? parsed : [parsed];
    } catch (err) {
      invalid.push({ file, ref: file, problems: [{ path: '', message: `JSON: ${(err as Error).message}` }] });
    }
  } else {
    for (const doc of parseAllDocuments(text)) {
      if (doc.errors.length) {
        const first = doc.errors[0];
        invalid.push({
          file,
          ref: file,
          problems: [{ path: '', message: `YAML: ${first?.message.split('\n')[0] ?? 'invalid'}` }],
        });
        continue;
      }
      const value = doc.toJS() as unknown;
      if (value !== null && value !== undefined) raw.push(value);
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
    const decoded = decodeManifest(doc);
    if (decoded.ok === 'ignored') continue;
    if (decoded.ok === false) {
      invalid.push({ file, ref: decoded.ref, problems: decoded.problems });
      continue;
    }
    const key = objectKey(decoded.value);
    if (docs.has(key)) {
      const { kind, metadata } = decoded.value;
      invalid.push({
        file,
        ref: `${kind} ${metadata.namespace ? `${metadata.namespace}/` : ''}${metadata.name}`,
        problems: [
          { path: 'metadata.name', message: `${key} is defined twice in this file; the first is kept` },
        ],
      });
      continue;
    }
    docs.set(key, JSON.stringify(doc));
  }
  return { docs, invalid };
}

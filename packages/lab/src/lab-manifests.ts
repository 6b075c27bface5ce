/**
 * The lab's stand-in for the Kubernetes API: a directory of manifests, one object per file
 * (`<kind>-<namespace>-<name>.yaml`), that the control plane watches. Writes are atomic (a dot
 * file renamed into place), so the control plane never reads half a file.
 */
import { randomBytes } from 'node:crypto';
import { readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeManifest } from '@ambient/controlplane';
import { formatProblems } from '@ambient/shared';
import { parse, parseAllDocuments, stringify } from 'yaml';

export interface ManifestRef {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

export class ManifestError extends Error {
  override readonly name = 'ManifestError';
}

export function manifestFile(ref: ManifestRef): string {
  return `${ref.kind.toLowerCase()}-${ref.namespace || 'cluster'}-${ref.name}.yaml`;
}

function refOf(doc: Record<string, unknown>): ManifestRef {
  const meta = (doc.metadata ?? {}) as Record<string, unknown>;
  const kind = String(doc.kind ?? '');
  const namespaced = kind !== 'Namespace';
  return {
    kind,
    namespace: namespaced ? String(meta.namespace ?? 'default') : '',
    name: String(meta.name ?? ''),
  };
}

export async function writeManifest(dir: string, doc: Record<string, unknown>): Promise<string> {
  const file = manifestFile(refOf(doc));
  const tmp = join(dir, `.${file}.${randomBytes(4).toString('hex')}`);
  await writeFile(tmp, stringify(doc));
  await rename(tmp, join(dir, file));
  return file;
}

/**
 * Validates every document of a YAML text as the control plane would, and writes them all, or
 * none when any is invalid (each problem named with its document and field).
 */
export async function applyManifests(dir: string, text: string): Promise<string[]> {
  const docs: Record<string, unknown>[] = [];
  const problems: string[] = [];
  parseAllDocuments(text).forEach((d, i) => {
    if (d.errors.length) {
      problems.push(`document ${i + 1}: YAML: ${d.errors[0]?.message.split('\n')[0]}`);
      return;
    }
    const value = d.toJS() as unknown;
    if (value === null || value === undefined) return;
    const decoded = decodeManifest(value);
    if (decoded.ok === false) {
      problems.push(`${decoded.ref}: ${formatProblems(decoded.problems)}`);
      return;
    }
    if (decoded.ok === 'ignored') {
      problems.push(`${decoded.ref}: kind is not one the mesh reads`);
      return;
    }
    docs.push(value as Record<string, unknown>);
  });
  if (problems.length) throw new ManifestError(`nothing applied:\n  ${problems.join('\n  ')}`);
  const files: string[] = [];
  for (const doc of docs) files.push(await writeManifest(dir, doc));
  return files;
}

/** Reads one object. */
export async function readManifest(dir: string, ref: ManifestRef): Promise<Record<string, unknown>> {
  try {
    return parse(await readFile(join(dir, manifestFile(ref)), 'utf8')) as Record<string, unknown>;
  } catch {
    throw new ManifestError(`no ${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ''}${ref.name}`);
  }
}

export async function deleteManifest(dir: string, ref: ManifestRef): Promise<void> {
  try {
    await unlink(join(dir, manifestFile(ref)));
  } catch {
    throw new ManifestError(`no ${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ''}${ref.name}`);
  }
}

/**
 * `kubectl label` semantics: `key=value` sets, `key-` removes. Returns the labels afterwards.
 */
export async function labelManifest(
  dir: string,
  ref: ManifestRef,
  changes: readonly string[],
): Promise<Record<string, string>> {
  const doc = await readManifest(dir, ref);
  const meta = (doc.metadata ?? {}) as Record<string, unknown>;
  const labels = { ...((meta.labels ?? {}) as Record<string, string>) };
  for (const change of changes) {
    const set = /^([A-Za-z0-9][-A-Za-z0-9_./]*)=([-A-Za-z0-9_.]*)$/.exec(change);
    const remove = /^([A-Za-z0-9][-A-Za-z0-9_./]*)-$/.exec(change);
    if (set?.[1] !== undefined) labels[set[1]] = set[2] ?? '';
    else if (remove?.[1] !== undefined) delete labels[remove[1]];
    else throw new ManifestError(`${JSON.stringify(change)} is neither key=value nor key-`);
  }
  doc.metadata = { ...meta, labels };
  await writeManifest(dir, doc);
  return labels;
}

/**
 * A manifest directory for tests of `ManifestDirSource`: a fresh temporary directory, files
 * written as a writer should (staged under a dot name, renamed into place, with increasing
 * mtimes so a rewrite is seen however fast the test runs), and sources closed afterwards.
 */
import { mkdtemp, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManifestDirSource, type ManifestDirSourceInputs } from './manifest-dir-source.js';

export class ManifestDirFixture {
  dir = '';
  private sources: ManifestDirSource[] = [];
  private clock = 0;

  async setUp(prefix: string): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), prefix));
    this.sources = [];
    this.clock = Math.floor(Date.now() / 1000);
  }

  async tearDown(): Promise<void> {
    for (const s of this.sources) s.close();
    await rm(this.dir, { recursive: true, force: true });
  }

  /** Closed at tear-down. */
  track(source: ManifestDirSource): ManifestDirSource {
    this.sources.push(source);
    return source;
  }

  async put(name: string, text: string): Promise<void> {
    const staged = join(this.dir, `.${name}.tmp`);
    await writeFile(staged, text);
    this.clock += 10;
    await utimes(staged, this.clock, this.clock);
    await rename(staged, join(this.dir, name));
  }

  /**
   * A started source on the directory with a long rescan period (tests drive scans with
   * rescan()), and the keys it reported since the last call of `changes`, sorted.
   */
  async open(
    options: Partial<Omit<ManifestDirSourceInputs, 'dir'>> = {},
  ): Promise<{ source: ManifestDirSource; changes: () => string[] }> {
    const source = this.track(new ManifestDirSource({ dir: this.dir, rescanMs: 600_000, ...options }));
    const reported: string[][] = [];
    source.onChange((keys) => reported.push([...keys]));
    await source.start();
    return { source, changes: () => reported.splice(0).flat().sort() };
  }
}

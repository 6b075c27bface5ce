import { type StatWatcher, unwatchFile, watchFile } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { formatProblems, type Problem } from '@ambient/shared';
import { type LocalConfig, parseLocalConfig } from './local-config.js';

export interface LocalConfigFileInputs {
  readonly path: string;
  /** A new valid config was adopted. */
  readonly onConfig: (config: LocalConfig) => void;
  /** A changed file was refused; the previous config stays in force. */
  readonly onRejected: (problems: readonly Problem[]) => void;
  /** How often the file is checked for changes. */
  readonly intervalMs?: number;
}

export class LocalConfigError extends Error {
  override readonly name = 'LocalConfigError';
  constructor(
    readonly path: string,
    readonly problems: readonly Problem[],
  ) {
    super(`${path}: ${formatProblems(problems)}`);
  }
}

/**
 * The local config file: loaded at start (an invalid file refuses to start, with every field
 * path), then watched; a changed file that is valid replaces the config, an invalid one is
 * reported and the last good config keeps serving.
 */
export class LocalConfigFile {
  private config?: LocalConfig;
  private watcher?: StatWatcher;
  private reading = Promise.resolve();
  /** The text last read: a poll that finds the same bytes again (one edit seen twice) is no change. */
  private lastText?: string;
  lastProblems: readonly Problem[] = [];

  constructor(private readonly inputs: LocalConfigFileInputs) {}

  get current(): LocalConfig | undefined {
    return this.config;
  }

  async start(): Promise<LocalConfig> {
    const first = await this.read();
    if (!first.ok) throw new LocalConfigError(this.inputs.path, first.problems);
    this.config = first.value;
    this.watcher = watchFile(
      this.inputs.path,
      { interval: this.inputs.intervalMs ?? 500, persistent: false },
      (cur, prev) => {
        if (cur.mtimeMs === prev.mtimeMs && cur.size === prev.size && cur.ino === prev.ino) return;
        // Serialize reloads so that a slow read never overtakes a newer one.
        this.reading = this.reading.then(async () => {
          await this.reload();
        });
      },
    );
    return first.value;
  }

  close(): void {
    if (this.watcher) unwatchFile(this.inputs.path);
    this.watcher = undefined;
  }

  /** Reads the file now (also used by tests and by an explicit reload request). */
  async reload(): Promise<boolean> {
    const before = this.lastText;
    const next = await this.read();
    if (this.lastText === before) return next.ok;
    if (!next.ok) {
      this.lastProblems = next.problems;
      this.inputs.onRejected(next.problems);
      return false;
    }
    this.lastProblems = [];
    this.config = next.value;
    this.inputs.onConfig(next.value);
    return true;
  }

  private async read() {
    let text: string;
    try {
      text = await readFile(this.inputs.path, 'utf8');
      this.lastText = text;
    } catch (err) {
      this.lastText = undefined;
      return {
        ok: false as const,
        problems: [{ path: '', message: `cannot read: ${(err as Error).message}` }],
      };
    }
    // An empty file is what a reader sees between an editor's truncate and write: refusing it
    // keeps the last good config (and its policies) instead of adopting "nothing".
    if (text.trim() === '') return { ok: false as const, problems: [{ path: '', message: 'is empty' }] };
    return parseLocalConfig(text);
  }
}

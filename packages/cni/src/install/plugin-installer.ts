/**
 * Installs the chained plugin on the host, as istio-cni's installer does (cni/pkg/install/
 * install.go, binaries.go, cniconfig.go): the binary copied atomically into the host's CNI bin
 * directory, our entry chained into the primary network config (the first usable `*.conf` or
 * `*.conflist` by name; a `.conf` is converted to `<name>.conflist`), and both checked again
 * whenever the directories change, so a config rewritten by the primary CNI gets our entry back.
 * Until a primary config exists there is nothing to chain into: the installer waits, not ready.
 */
import { type FSWatcher, watch } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { formatProblems } from '@ambient/shared';
import type { Logger } from 'pino';
import { CniError } from '../errors.js';
import {
  insertPlugin,
  isUsableNetworkConfig,
  PLUGIN_TYPE,
  type PluginEntry,
  removePlugin,
} from './conflist.js';

export interface PluginInstallerInputs {
  readonly binDir: string;
  readonly netDir: string;
  /** The built plugin executable to copy. */
  readonly pluginBinary: string;
  readonly entry: PluginEntry;
  readonly logger: Logger;
  /** Backstop re-check period, for a change a directory watch missed. */
  readonly recheckMs?: number;
}

/** The primary network config of `netDir`: the first usable .conf/.conflist by name. */
export async function primaryConfigFile(netDir: string): Promise<string | undefined> {
  const names = (await readdir(netDir).catch(() => [] as string[]))
    .filter((n) => n.endsWith('.conf') || n.endsWith('.conflist'))
    .sort();
  for (const name of names) {
    const text = await readFile(path.join(netDir, name), 'utf8').catch(() => undefined);
    if (text !== undefined && isUsableNetworkConfig(text)) return path.join(netDir, name);
  }
  return undefined;
}

/** Writes through a temporary file and a rename, keeping `mode`, so no reader sees half a file. */
async function atomicWrite(file: string, data: string | Buffer, mode: number): Promise<void> {
  const tmp = `${file}.tmp.${process.pid}`;
  await writeFile(tmp, data, { mode });
  await chmod(tmp, mode);
  await rename(tmp, file);
}

export class PluginInstaller {
  private watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private recheck: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private closed = false;
  private installedIn: string | undefined;

  constructor(private readonly inputs: PluginInstallerInputs) {}

  /** The conflist holding our entry after the last check; undefined: not installed (not ready). */
  get conflist(): string | undefined {
    return this.installedIn;
  }

  get binaryPath(): string {
    return path.join(this.inputs.binDir, PLUGIN_TYPE);
  }

  /** Installs once, then keeps the installation in place as the directories change. */
  async start(): Promise<void> {
    await mkdir(this.inputs.binDir, { recursive: true });
    await mkdir(this.inputs.netDir, { recursive: true });
    for (const dir of [this.inputs.binDir, this.inputs.netDir]) {
      const w = watch(dir, () => this.schedule());
      w.on('error', (err) => this.inputs.logger.warn({ err, dir }, 'directory watch failed'));
      this.watchers.push(w);
    }
    this.recheck = setInterval(() => this.schedule(), this.inputs.recheckMs ?? 10_000);
    this.recheck.unref();
    await this.check();
  }

  /** Runs one check now (after any running one); resolves when it is done. */
  check(): Promise<void> {
    this.running = this.running.then(() => this.installOnce()).catch(() => undefined);
    return this.running;
  }

  private schedule(): void {
    if (this.closed || this.timer) return;
    // Editors and CNI installers write in several steps: look once the burst is over.
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.check();
    }, 100);
    this.timer.unref();
  }

  private async installOnce(): Promise<void> {
    if (this.closed) return;
    try {
      await this.installBinary();
      this.installedIn = await this.installConfig();
    } catch (err) {
      this.installedIn = undefined;
      this.inputs.logger.error({ err }, 'plugin installation failed; retrying on the next change');
    }
  }

  private async installBinary(): Promise<void> {
    const want = await readFile(this.inputs.pluginBinary);
    const have = await readFile(this.binaryPath).catch(() => undefined);
    if (have?.equals(want)) return;
    await atomicWrite(this.binaryPath, want, 0o755);
    this.inputs.logger.info({ path: this.binaryPath }, 'plugin binary installed');
  }

  private async installConfig(): Promise<string | undefined> {
    const file = await primaryConfigFile(this.inputs.netDir);
    if (!file) {
      if (this.installedIn !== undefined || !this.waitingLogged) {
        this.waitingLogged = true;
        this.inputs.logger.warn({ dir: this.inputs.netDir }, 'no primary CNI network config yet; waiting');
      }
      return undefined;
    }
    const text = await readFile(file, 'utf8');
    const edit = insertPlugin(text, this.inputs.entry, path.basename(file));
    if (!edit.ok) throw new CniError('CNI_ERR_CONFLIST', formatProblems(edit.problems));
    const target = file.endsWith('.conf') ? `${file}list` : file;
    if (!edit.value.changed && target === file) return file;
    const mode = Number((await stat(file)).mode & 0o777);
    await atomicWrite(target, edit.value.text, mode);
    if (target !== file) await rm(file, { force: true });
    this.inputs.logger.info(
      { path: target, converted: target !== file },
      'plugin chained into the network config',
    );
    return target;
  }

  private waitingLogged = false;

  /** Stops watching; the installation stays (a restarting agent must keep new pods waiting). */
  close(): void {
    this.closed = true;
    for (const w of this.watchers) w.close();
    this.watchers = [];
    if (this.timer) clearTimeout(this.timer);
    if (this.recheck) clearInterval(this.recheck);
  }

  /** Removes our entry from every network config and the binary: the node's CNI is as before. */
  async uninstall(): Promise<void> {
    this.close();
    await this.running;
    const names = (await readdir(this.inputs.netDir).catch(() => [] as string[])).filter((n) =>
      n.endsWith('.conflist'),
    );
    for (const name of names) {
      const file = path.join(this.inputs.netDir, name);
      const text = await readFile(file, 'utf8').catch(() => undefined);
      if (text === undefined) continue;
      const edit = removePlugin(text, name);
      if (!edit.ok || !edit.value.changed) continue;
      await atomicWrite(file, edit.value.text, Number((await stat(file)).mode & 0o777));
      this.inputs.logger.info({ path: file }, 'plugin removed from the network config');
    }
    await rm(this.binaryPath, { force: true });
    this.installedIn = undefined;
  }
}

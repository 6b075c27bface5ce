/** The chained plugin executable for the suites, built once if missing (Go standard library only). */
import { execFile } from 'node:child_process';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const PLUGIN_DIR = path.resolve(import.meta.dirname, '../../packages/cni/plugin');
export const PLUGIN_BINARY = path.join(PLUGIN_DIR, 'bin/ambient-cni');

export async function pluginBinary(): Promise<string> {
  try {
    await access(PLUGIN_BINARY);
  } catch {
    await run('bash', [path.join(PLUGIN_DIR, 'build.sh')], { timeout: 300_000 });
  }
  return PLUGIN_BINARY;
}

export interface PluginRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  // biome-ignore lint/suspicious/noExplicitAny: the plugin's JSON output
  readonly json: any;
}

/** Runs the plugin as a container runtime does: CNI_* variables and the config on stdin. */
export function runPlugin(binary: string, env: Record<string, string>, stdin: string): Promise<PluginRun> {
  return new Promise((resolve) => {
    const child = execFile(
      binary,
      [],
      { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        let json: unknown;
        try {
          json = JSON.parse(stdout);
        } catch {
          json = undefined;
        }
        const code = err ? ((err as { code?: number }).code ?? 1) : 0;
        resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr, json });
      },
    );
    child.stdin?.end(stdin);
  });
}

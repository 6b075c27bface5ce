/**
 * The control plane under test: its built entry in a process of its own, on loopback ports, with
 * the environment a variant gives it; started when its /ready answers 200 (bounded in time).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { now, sleep } from './measure.js';

const CP_ENTRY = join(dirname(fileURLToPath(import.meta.url)), '../../../packages/controlplane/dist/main.js');

export interface ControlPlaneProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** From spawning to /ready. */
  readonly loadMs: number;
  readonly monitorUrl: string;
  /** NACKs the control plane counted (pilot_total_xds_rejects). */
  nacks(): Promise<number>;
}

export interface ControlPlaneProcessOptions {
  /** The variant's settings (CP_MANIFEST_DIR, CP_CA_DIR, CP_GRPC_PORT, ...). */
  readonly env: Readonly<Record<string, string>>;
  readonly monitorPort: number;
  readonly nodeArgs?: readonly string[];
  readonly readyTimeoutMs?: number;
  /** Told of the process as soon as it is spawned (to end it if the run is interrupted meanwhile). */
  readonly onSpawn?: (child: ChildProcess) => void;
}

/** Spawns the control plane; the caller ends `child` (also when this throws, it is already ended). */
export async function startControlPlaneProcess(
  opts: ControlPlaneProcessOptions,
): Promise<ControlPlaneProcess> {
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), CP_ENTRY], {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  opts.onSpawn?.(child);
  const startedAt = now();
  const monitorUrl = `http://127.0.0.1:${opts.monitorPort}`;
  const timeoutMs = opts.readyTimeoutMs ?? 60_000;
  try {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`control plane exited (${child.exitCode ?? child.signalCode}) before /ready`);
      const ok = await fetch(`${monitorUrl}/ready`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (now() - startedAt > timeoutMs)
        throw new Error(`control plane did not start in ${timeoutMs / 1000} s`);
      await sleep(100);
    }
  } catch (err) {
    child.kill('SIGTERM');
    throw err;
  }
  return {
    child,
    pid: child.pid as number,
    loadMs: now() - startedAt,
    monitorUrl,
    nacks: async () => {
      const metrics = await (await fetch(`${monitorUrl}/metrics`)).text();
      return Number(/^pilot_total_xds_rejects\S* (\d+)/m.exec(metrics)?.[1] ?? 0);
    },
  };
}

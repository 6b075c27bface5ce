/**
 * The control plane as the loopback suites run it: a working directory with `manifests/`,
 * `ca/` and `tokens.json`, and the real app serving gRPC on 127.0.0.1.
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlPlaneApp, parseControlPlaneConfig } from '@ambient/controlplane';
import type { Logger } from 'pino';

/** A fresh working directory with an empty manifest directory and these bearer tokens. */
export async function controlPlaneDir(prefix: string, tokens: Record<string, object>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await mkdir(join(dir, 'manifests'));
  await writeFile(join(dir, 'tokens.json'), JSON.stringify(tokens));
  return dir;
}

/** Starts the control plane on `dir` (gRPC on `port`, 0 for any) and returns it with its port. */
export async function startControlPlane(
  dir: string,
  logger: Logger,
  port = 0,
): Promise<{ cp: ControlPlaneApp; port: number }> {
  const config = parseControlPlaneConfig({
    CP_MANIFEST_DIR: join(dir, 'manifests'),
    CP_CA_DIR: join(dir, 'ca'),
    CP_TOKENS_FILE: join(dir, 'tokens.json'),
    CP_GRPC_ADDRESS: '127.0.0.1',
    CP_GRPC_PORT: String(port),
    CP_MONITOR_ADDRESS: '127.0.0.1',
    CP_MONITOR_PORT: '0',
  });
  if (!config.ok) throw new Error(JSON.stringify(config.problems));
  const cp = new ControlPlaneApp({ config: config.value, logger });
  return { cp, port: (await cp.start()).grpc.port };
}

/** Polls `probe` every 10 ms until it returns a value, or fails naming `what` after `timeoutMs`. */
export async function until<T>(
  what: string,
  probe: () => T | undefined | false,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

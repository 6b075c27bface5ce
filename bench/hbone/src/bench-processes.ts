import { type ChildProcess, spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';

/** Spawns `cmd` into `children`, forwarding its stderr (but iperf3's) with the command's name. */
export function spawnTracked(children: ChildProcess[], cmd: string, args: string[]): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr?.on('data', (d: Buffer) => {
    if (cmd !== 'iperf3') process.stderr.write(`[${cmd.split('/').pop()}] ${d}`);
  });
  children.push(child);
  return child;
}

/** Stops every child and removes the working directory, if one was made. */
export async function stopAll(children: ChildProcess[], workDir: string): Promise<void> {
  for (const c of children) c.kill('SIGTERM');
  if (workDir) await rm(workDir, { recursive: true, force: true });
}

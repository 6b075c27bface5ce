import type { ChildProcess } from 'node:child_process';

/**
 * What a bench run must undo (processes, temporary directories), undone in reverse order exactly
 * once: from the run's `finally`, or from a signal handler while the run is still going.
 */
export class Teardown {
  private readonly steps: Array<() => Promise<void> | void> = [];

  add(step: () => Promise<void> | void): void {
    this.steps.push(step);
  }

  async run(): Promise<void> {
    for (let step = this.steps.pop(); step; step = this.steps.pop()) {
      try {
        await step();
      } catch (err) {
        process.stderr.write(`bench: clean-up step failed: ${(err as Error).message}\n`);
      }
    }
  }
}

/** Ends a child process: SIGTERM, then SIGKILL past the grace period; resolves once it has exited. */
export function endProcess(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

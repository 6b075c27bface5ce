/**
 * Pods for the CNI suites without a container runtime: a named network namespace (ip netns) holding
 * the pod's IP, a `sleep` inside it standing for the pod's process, and (where the host's cgroup v1
 * pids hierarchy can be written) that process moved into a kubelet-style cgroup
 * `/kubepods/besteffort/pod<uid>/<container>`, so its /proc/<pid>/cgroup carries the pod UID.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdir, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const CGROUP_ROOT = '/sys/fs/cgroup/pids';

export const ip = async (...args: string[]) => (await run('ip', args, { encoding: 'utf8' })).stdout;

export class PodNetns {
  private sleeper: ChildProcess | undefined;
  private cgroupDirs: string[] = [];
  /** Whether the process sits in a real cgroup named after the pod. */
  realCgroup = false;

  private constructor(
    readonly name: string,
    readonly address: string,
  ) {}

  /** `/run/netns/<name>`, the path a runtime hands the CNI plugin. */
  get path(): string {
    return `/run/netns/${this.name}`;
  }

  get pid(): number {
    const pid = this.sleeper?.pid;
    if (pid === undefined) throw new Error('no process in the netns');
    return pid;
  }

  static async create(name: string, address: string): Promise<PodNetns> {
    await run('ip', ['netns', 'del', name]).catch(() => undefined);
    await ip('netns', 'add', name);
    await ip('-n', name, 'link', 'set', 'lo', 'up');
    await ip('-n', name, 'addr', 'add', `${address}/32`, 'dev', 'lo');
    return new PodNetns(name, address);
  }

  /** Starts the pod's process inside the netns; with a UID, moves it into the pod's cgroup if it can. */
  async startProcess(podUid?: string, containerId = 'c0ffee'): Promise<number> {
    const child = spawn('ip', ['netns', 'exec', this.name, 'sleep', '600'], { stdio: 'ignore' });
    this.sleeper = child;
    await new Promise((r) => setTimeout(r, 50));
    if (podUid) {
      const dir = path.join(CGROUP_ROOT, 'kubepods/besteffort', `pod${podUid}`, containerId);
      try {
        await mkdir(dir, { recursive: true });
        // Innermost first; the shared parents go when no other pod of the suite uses them.
        this.cgroupDirs = [
          dir,
          path.dirname(dir),
          path.join(CGROUP_ROOT, 'kubepods/besteffort'),
          path.join(CGROUP_ROOT, 'kubepods'),
        ];
        await writeFile(path.join(dir, 'cgroup.procs'), String(this.pid));
        this.realCgroup = true;
      } catch {
        this.realCgroup = false;
      }
    }
    return this.pid;
  }

  async destroy(): Promise<void> {
    const child = this.sleeper;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
    for (const dir of this.cgroupDirs) await rmdir(dir).catch(() => undefined);
    await run('ip', ['netns', 'del', this.name]).catch(() => undefined);
  }
}

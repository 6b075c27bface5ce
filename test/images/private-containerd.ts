/**
 * A containerd of the suite's own: config, root, state and socket under one temporary directory,
 * the CRI plugin off (no kubelet talks to it, and its OOM-score handling needs a capability root
 * lacks here), containers on runc with cgroupfs (ctr's default). ctr gives each container a new,
 * empty network namespace: nothing run here touches the host's network.
 * `stop()` leaves nothing behind: tasks, containers, shims, the daemon, mounts, the directory.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface CtrResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

const NAMESPACE = 'k8s.io';

export class PrivateContainerd {
  private constructor(
    readonly dir: string,
    readonly address: string,
    private readonly daemon: ChildProcess,
  ) {}

  static async start(): Promise<PrivateContainerd> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ambient-ctd-'));
    const address = path.join(dir, 'containerd.sock');
    writeFileSync(
      path.join(dir, 'config.toml'),
      [
        'version = 2',
        `root = "${dir}/root"`,
        `state = "${dir}/state"`,
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
        '[grpc]',
        `  address = "${address}"`,
        '[ttrpc]',
        `  address = "${address}.ttrpc"`,
        '[plugins."io.containerd.internal.v1.opt"]',
        `  path = "${dir}/opt"`,
        '',
      ].join('\n'),
    );
    const log = openSync(path.join(dir, 'containerd.log'), 'a');
    const daemon = spawn('containerd', ['--config', path.join(dir, 'config.toml')], {
      stdio: ['ignore', log, log],
    });
    const ctd = new PrivateContainerd(dir, address, daemon);
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (daemon.exitCode !== null) {
        const text = readFileSync(path.join(dir, 'containerd.log'), 'utf8');
        await ctd.stop();
        throw new Error(`containerd exited (${daemon.exitCode}): ${text.slice(-2000)}`);
      }
      if (existsSync(address) && (await ctd.ctr(['version'])).code === 0) return ctd;
      if (Date.now() > deadline) {
        await ctd.stop();
        throw new Error('containerd did not answer within 20 s');
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** `ctr --address <ours> -n k8s.io ...`; resolves with the exit code and output, never rejects. */
  ctr(args: string[], options: { input?: string; timeoutMs?: number } = {}): Promise<CtrResult> {
    return new Promise((resolve) => {
      const child = execFile(
        'ctr',
        ['--address', this.address, '-n', NAMESPACE, ...args],
        {
          encoding: 'utf8',
          maxBuffer: 64 << 20,
          timeout: options.timeoutMs ?? 60_000,
          killSignal: 'SIGKILL',
        },
        (err, stdout, stderr) => {
          const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
          resolve({ code, stdout, stderr });
        },
      );
      if (options.input !== undefined) child.stdin?.end(options.input);
      else child.stdin?.end();
    });
  }

  /** Full names of the images in the k8s.io namespace. */
  async images(): Promise<string[]> {
    const r = await this.ctr(['images', 'ls', '-q']);
    return r.stdout.split('\n').filter(Boolean);
  }

  async stop(): Promise<void> {
    if (this.daemon.exitCode === null && existsSync(this.address)) {
      const tasks = (await this.ctr(['tasks', 'ls', '-q'], { timeoutMs: 10_000 })).stdout.split('\n');
      for (const id of tasks.filter(Boolean)) {
        await this.ctr(['tasks', 'kill', '-s', 'SIGKILL', id], { timeoutMs: 10_000 });
        await this.ctr(['tasks', 'delete', '--force', id], { timeoutMs: 10_000 });
      }
      const containers = (await this.ctr(['containers', 'ls', '-q'], { timeoutMs: 10_000 })).stdout.split(
        '\n',
      );
      for (const id of containers.filter(Boolean))
        await this.ctr(['containers', 'rm', id], { timeoutMs: 10_000 });
    }
    if (this.daemon.exitCode === null && this.daemon.signalCode === null) {
      const exited = new Promise((r) => this.daemon.once('exit', r));
      this.daemon.kill('SIGTERM');
      const timer = setTimeout(() => this.daemon.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    // Shims outlive a daemon that stopped with tasks running: they are ours when started for our socket.
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      let cmdline = '';
      try {
        cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      if (cmdline.includes('containerd-shim') && cmdline.split('\0').includes(this.address)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    }
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4])
      .filter((m): m is string => m?.startsWith(`${this.dir}/`) ?? false)
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) await new Promise((r) => execFile('umount', ['-l', m], r));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Independent HTTP/2 implementations as test peers: nghttp2's programs, python3-h2 and Go's
 * net/http. Each is a separate process; this module finds, builds, starts and stops them.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { WorkloadCertificate } from '../identity/cert-manager.js';

export const NGHTTP = '/usr/bin/nghttp';
export const NGHTTPD = '/usr/sbin/nghttpd';
export const NGHTTPX = '/usr/sbin/nghttpx';
/** Debian's interpreter, where python3-h2 is installed (not whichever python3 is first on PATH). */
export const DEBIAN_PYTHON = '/usr/bin/python3';
export const GO = '/usr/bin/go';

/** Why a peer's tests cannot run here, or undefined when they can. */
export async function missingPeer(peer: 'nghttp2' | 'python3-h2' | 'go'): Promise<string | undefined> {
  switch (peer) {
    case 'nghttp2': {
      const absent = [NGHTTP, NGHTTPD, NGHTTPX].filter((p) => !existsSync(p));
      return absent.length > 0
        ? `${absent.join(', ')} missing (Debian nghttp2-client, nghttp2-server, nghttp2-proxy; scripts/setup.sh installs them)`
        : undefined;
    }
    case 'python3-h2': {
      if (!existsSync(DEBIAN_PYTHON)) return `${DEBIAN_PYTHON} missing`;
      const ok = await run(DEBIAN_PYTHON, ['-c', 'import h2'], {}).then(
        (r) => r.code === 0,
        () => false,
      );
      return ok ? undefined : `python3-h2 missing for ${DEBIAN_PYTHON} (scripts/setup.sh installs it)`;
    }
    case 'go':
      return existsSync(GO) ? undefined : `${GO} missing (Debian golang-go; scripts/setup.sh installs it)`;
  }
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end (bounded by `timeoutMs`), never rejecting on a non-zero exit. */
export function run(
  file: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number },
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      {
        env: options.env ?? process.env,
        cwd: options.cwd,
        timeout: options.timeoutMs ?? 30_000,
        maxBuffer: 64 * 1024 * 1024,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        if (err && typeof (err as { code?: unknown }).code !== 'number' && !err.killed) {
          reject(err);
          return;
        }
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
      },
    );
  });
}

/** A long-running peer process (a server). */
export interface PeerProcess {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first stdout or stderr match, rejects if the process exits first. */
  waitFor(pattern: RegExp): Promise<RegExpMatchArray>;
  stop(): Promise<void>;
}

export function startPeer(file: string, args: readonly string[], env?: NodeJS.ProcessEnv): PeerProcess {
  const child = spawn(file, args, { env: env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    for (const w of waiters) w();
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
    for (const w of waiters) w();
  });
  child.once('exit', () => {
    for (const w of waiters) w();
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitFor(pattern) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = out.match(pattern) ?? err.match(pattern);
          if (m) {
            waiters.delete(check);
            resolve(m);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            waiters.delete(check);
            reject(new Error(`${path.basename(file)} exited (${child.exitCode}): ${err || out}`));
          }
        };
        waiters.add(check);
        check();
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** A port that was free a moment ago, for peers that cannot listen on port 0 and report it. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

/** Resolves once something accepts TCP connections on the port. */
export async function waitForListener(port: number, peer: PeerProcess): Promise<void> {
  for (;;) {
    if (peer.child.exitCode !== null) throw new Error(`peer exited: ${peer.stderr() || peer.stdout()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** PEM files of one workload certificate, for peers that read them from disk. */
export interface PemFiles {
  readonly key: string;
  /** Leaf and intermediates. */
  readonly cert: string;
  /** The trust anchor. */
  readonly ca: string;
}

export async function writePemFiles(dir: string, name: string, cert: WorkloadCertificate): Promise<PemFiles> {
  const files = {
    key: path.join(dir, `${name}-key.pem`),
    cert: path.join(dir, `${name}-cert.pem`),
    ca: path.join(dir, `${name}-ca.pem`),
  };
  const chain = cert.chainPem.length > 1 ? cert.chainPem.slice(0, -1) : cert.chainPem;
  await writeFile(files.key, cert.keyPem, { mode: 0o600 });
  await writeFile(files.cert, chain.join(''));
  await writeFile(files.ca, cert.rootsPem.join(''));
  return files;
}

export async function tempDir(prefix: string): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** What building the Go peer cost, for the test to print. */
export interface GoBuild {
  readonly binary: string;
  readonly cached: boolean;
  readonly ms: number;
}

/**
 * Builds a standard-library-only Go program once per source content, into a cache under the
 * system's temporary directory. Offline: no module proxy, and a private build cache.
 */
export async function buildGoProgram(source: string): Promise<GoBuild> {
  const text = await readFile(source);
  const hash = createHash('sha256').update(text).digest('hex').slice(0, 16);
  const root = path.join(os.tmpdir(), 'ambient-mesh-go-peers');
  const dir = path.join(root, `${path.basename(source, '.go')}-${hash}`);
  const binary = path.join(dir, 'peer');
  if (existsSync(binary)) return { binary, cached: true, ms: 0 };
  await mkdir(root, { recursive: true });
  const work = await mkdtemp(path.join(root, 'build-'));
  const started = Date.now();
  try {
    await writeFile(path.join(work, 'main.go'), text);
    await writeFile(path.join(work, 'go.mod'), 'module peer\n\ngo 1.19\n');
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: work,
      GOPROXY: 'off',
      GOFLAGS: '-mod=mod',
      GOCACHE: path.join(root, 'gocache'),
      GOPATH: path.join(work, 'gopath'),
      GOTOOLCHAIN: 'local',
    };
    const result = await run(GO, ['build', '-o', 'peer', '.'], { env, cwd: work, timeoutMs: 170_000 });
    if (result.code !== 0) throw new Error(`go build failed: ${result.stderr}`);
    await mkdir(dir, { recursive: true });
    // Atomic: a concurrent run either sees no binary or a complete one.
    await rename(path.join(work, 'peer'), binary);
    return { binary, cached: false, ms: Date.now() - started };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

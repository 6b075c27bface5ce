/**
 * A real Kubernetes API server on loopback for tests and benchmarks: Debian's etcd and a
 * kube-apiserver built from Debian's kubernetes source package (scripts/kube/build-binaries.sh),
 * each on a free loopback port, with their own certificates and data under a temporary directory.
 * Nothing is reached beyond 127.0.0.1; `stop()` ends both processes and removes the directory.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface KubeApiServerOptions {
  /** Directory holding kube-apiserver (the build script prints it). */
  readonly binDir: string;
  /** etcd binary; Debian's etcd-server installs /usr/bin/etcd. */
  readonly etcd?: string;
  /** How long to wait for /readyz. */
  readonly startTimeoutMs?: number;
  /** Extra kube-apiserver flags (`--name=value`). */
  readonly extraArgs?: readonly string[];
  /**
   * Also run kube-controller-manager from binDir with these controllers (e.g. `garbagecollector`,
   * which deletes objects whose owner is gone). Absent: no controller runs.
   */
  readonly controllers?: readonly string[];
}

/** A free TCP port on 127.0.0.1 (the OS picks; closed again before use). */
export async function freeLoopbackPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  await run('openssl', args, { cwd });
}

/** A CA, a serving certificate for 127.0.0.1 and a service-account signing key. */
async function makePki(dir: string): Promise<void> {
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key'], dir);
  await openssl(
    ['req', '-x509', '-new', '-key', 'ca.key', '-subj', '/CN=lab-kube-ca', '-days', '2', '-out', 'ca.crt'],
    dir,
  );
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'server.key'], dir);
  await openssl(
    ['req', '-new', '-key', 'server.key', '-subj', '/CN=kube-apiserver', '-out', 'server.csr'],
    dir,
  );
  await writeFile(
    path.join(dir, 'server.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n',
  );
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
    ].concat(['-extfile', 'server.ext', '-out', 'server.crt']),
    dir,
  );
  await openssl(['genrsa', '-out', 'sa.key', '2048'], dir);
  await openssl(['rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
}

function waitExit(p: ChildProcess, ms: number): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    // Past the grace period the process is killed, and still awaited: a caller that restarts it
    // must not find it looking alive.
    const t = setTimeout(() => p.kill('SIGKILL'), ms);
    p.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

export class KubeApiServer {
  private constructor(
    readonly dir: string,
    /** https://127.0.0.1:<port> */
    readonly url: string,
    /** A bearer token of a member of system:masters. */
    readonly adminToken: string,
    /** A kubeconfig file for kubectl and @kubernetes/client-node, as that admin. */
    readonly kubeconfig: string,
    readonly caFile: string,
    private readonly procs: { etcd: ChildProcess; apiserver: ChildProcess; controllers?: ChildProcess },
    private readonly logs: { etcd: string[]; apiserver: string[]; controllers: string[] },
    private readonly spawnApiServer: () => ChildProcess,
  ) {}

  static async start(opts: KubeApiServerOptions): Promise<KubeApiServer> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kube-api-'));
    await makePki(dir);
    const adminToken = randomBytes(24).toString('hex');
    await writeFile(path.join(dir, 'tokens.csv'), `${adminToken},lab-admin,lab-admin,"system:masters"\n`);
    const [etcdClient, etcdPeer, apiPort] = [
      await freeLoopbackPort(),
      await freeLoopbackPort(),
      await freeLoopbackPort(),
    ];
    const logs = { etcd: [] as string[], apiserver: [] as string[], controllers: [] as string[] };
    const keep = (into: string[]) => (chunk: Buffer) => {
      into.push(chunk.toString());
      if (into.length > 200) into.splice(0, into.length - 200);
    };
    const etcd = spawn(
      opts.etcd ?? '/usr/bin/etcd',
      [
        `--data-dir=${path.join(dir, 'etcd')}`,
        `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
        `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
        '--log-level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    etcd.stdout?.on('data', keep(logs.etcd));
    etcd.stderr?.on('data', keep(logs.etcd));
    const apiArgs = [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      '--insecure-port=0',
      `--cert-dir=${dir}`,
      `--tls-cert-file=${path.join(dir, 'server.crt')}`,
      `--tls-private-key-file=${path.join(dir, 'server.key')}`,
      `--client-ca-file=${path.join(dir, 'ca.crt')}`,
      `--token-auth-file=${path.join(dir, 'tokens.csv')}`,
      '--authorization-mode=Node,RBAC',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${path.join(dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${path.join(dir, 'sa.key')}`,
      '--api-audiences=https://kubernetes.default.svc.cluster.local,istio-ca',
      '--service-cluster-ip-range=10.96.0.0/16',
      '--allow-privileged=true',
      '--enable-admission-plugins=NamespaceLifecycle,ServiceAccount',
      '--watch-cache=true',
      '--v=1',
      ...(opts.extraArgs ?? []),
    ];
    const spawnApiServer = () => {
      const p = spawn(path.join(opts.binDir, 'kube-apiserver'), apiArgs, {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      p.stdout?.on('data', keep(logs.apiserver));
      p.stderr?.on('data', keep(logs.apiserver));
      return p;
    };
    const apiserver = spawnApiServer();
    const url = `https://127.0.0.1:${apiPort}`;
    const caFile = path.join(dir, 'ca.crt');
    const kubeconfig = path.join(dir, 'kubeconfig');
    await writeFile(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        `- name: lab\n  cluster:\n    server: ${url}\n    certificate-authority: ${caFile}`,
        'users:',
        `- name: lab-admin\n  user:\n    token: ${adminToken}`,
        'contexts:',
        '- name: lab\n  context:\n    cluster: lab\n    user: lab-admin',
        'current-context: lab',
        '',
      ].join('\n'),
    );
    const server = new KubeApiServer(
      dir,
      url,
      adminToken,
      kubeconfig,
      caFile,
      { etcd, apiserver },
      logs,
      spawnApiServer,
    );
    try {
      await server.waitReady(opts.startTimeoutMs ?? 60_000);
      if (opts.controllers?.length) {
        const cm = spawn(
          path.join(opts.binDir, 'kube-controller-manager'),
          [
            `--kubeconfig=${kubeconfig}`,
            `--controllers=${opts.controllers.join(',')}`,
            '--leader-elect=false',
            '--bind-address=127.0.0.1',
            `--secure-port=${await freeLoopbackPort()}`,
            '--port=0',
            '--v=1',
          ],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        cm.stdout?.on('data', keep(logs.controllers));
        cm.stderr?.on('data', keep(logs.controllers));
        server.procs.controllers = cm;
      }
    } catch (err) {
      await server.stop();
      throw err;
    }
    return server;
  }

  /** Polls /readyz with the admin token until it answers 200. */
  private async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const ca = readFileSync(this.caFile);
    let last = '';
    while (Date.now() < deadline) {
      if (this.procs.apiserver.exitCode !== null)
        throw new Error(`kube-apiserver exited ${this.procs.apiserver.exitCode}: ${this.tail('apiserver')}`);
      if (this.procs.etcd.exitCode !== null)
        throw new Error(`etcd exited ${this.procs.etcd.exitCode}: ${this.tail('etcd')}`);
      last = await this.get('/readyz', ca).catch((e: Error) => e.message);
      if (last === '200') return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(
      `kube-apiserver not ready after ${timeoutMs} ms (last: ${last}): ${this.tail('apiserver')}`,
    );
  }

  private get(p: string, ca: Buffer): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = https.get(
        `${this.url}${p}`,
        { ca, headers: { authorization: `Bearer ${this.adminToken}` }, timeout: 2000 },
        (res) => {
          res.resume();
          resolve(String(res.statusCode));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
    });
  }

  /** The last lines a component printed, for error messages. */
  tail(which: 'etcd' | 'apiserver' | 'controllers', chars = 2000): string {
    return this.logs[which].join('').slice(-chars);
  }

  /** Process ids of etcd and the API server (benchmarks read their CPU time from /proc). */
  pids(): { etcd?: number; apiserver?: number } {
    return { etcd: this.procs.etcd.pid, apiserver: this.procs.apiserver.pid };
  }

  /** Stops the API server (only), leaving etcd and its data: for restart-mid-watch cases. */
  async stopApiServer(): Promise<void> {
    this.procs.apiserver.kill('SIGTERM');
    await waitExit(this.procs.apiserver, 10_000);
  }

  /** Starts the API server again on the same port and etcd, and waits until it is ready. */
  async startApiServer(timeoutMs = 60_000): Promise<void> {
    if (this.procs.apiserver.exitCode === null && this.procs.apiserver.signalCode === null) return;
    this.procs.apiserver = this.spawnApiServer();
    await this.waitReady(timeoutMs);
  }

  async stop(): Promise<void> {
    if (this.procs.controllers) {
      this.procs.controllers.kill('SIGTERM');
      await waitExit(this.procs.controllers, 10_000);
    }
    this.procs.apiserver.kill('SIGTERM');
    await waitExit(this.procs.apiserver, 10_000);
    this.procs.etcd.kill('SIGTERM');
    await waitExit(this.procs.etcd, 10_000);
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * The directory of the cached Kubernetes binaries, building them first when the cache is empty
 * (scripts/kube/build-binaries.sh; about 13 minutes on two cores, once per machine).
 */
export async function kubeBinaries(repoRoot: string): Promise<string> {
  const script = path.join(repoRoot, 'scripts/kube/build-binaries.sh');
  const { stdout } = await run('bash', [script], { maxBuffer: 16 * 1024 * 1024, timeout: 60 * 60_000 });
  const dir = stdout.trim().split('\n').pop() ?? '';
  if (!dir) throw new Error(`${script} printed no cache directory`);
  return dir;
}

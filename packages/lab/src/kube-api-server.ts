/**
 * A real Kubernetes API server on loopback for tests and benchmarks: Debian's etcd and a
 * kube-apiserver built from Debian's kubernetes source package (scripts/kube/build-binaries.sh),
 * each on a free loopback port, with their own certificates and data under a temporary directory.
 * Nothing is reached beyond 127.0.0.1; `stop()` ends both processes and removes the directory.
 *
 * With `netns`, both run inside that network namespace instead (the API server on
 * `advertiseAddress`:6443 there, etcd on the namespace's own loopback), and a pair of socat
 * processes carries a host loopback port to it through a unix socket, so the host reaches the API
 * server while nothing links the namespace to the host's network (KubeCluster runs it this way).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
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
  /** Extra kube-controller-manager flags (`--name=value`), with `controllers`. */
  readonly controllerArgs?: readonly string[];
  /**
   * Run etcd and the API server inside this network namespace (a name under /var/run/netns),
   * reached from the host through a unix-socket forward to a host loopback port (`url`).
   */
  readonly netns?: string;
  /** Inside `netns`: the address the API server advertises (the `kubernetes` Service's endpoint). */
  readonly advertiseAddress?: string;
  /** Default 10.96.0.0/16. */
  readonly serviceClusterIpRange?: string;
  /** More subjectAltName entries for the serving certificate (`IP:…`, `DNS:…`). */
  readonly extraSans?: readonly string[];
  /** Keep certificates, data and logs in this directory (created; removed by stop()). Default: a new temporary one. */
  readonly dir?: string;
  /**
   * Start the processes in their own session with output to `<dir>/logs/<name>.log`, so that they
   * outlive this Node process (a cluster brought up by a command that then exits).
   */
  readonly detached?: boolean;
}

/** The API server's port inside a network namespace (the namespace is its own, so a fixed one). */
export const NETNS_API_PORT = 6443;

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
async function makePki(dir: string, extraSans: readonly string[]): Promise<void> {
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
    `subjectAltName=${['IP:127.0.0.1', 'DNS:localhost', 'DNS:kubernetes.default.svc', ...extraSans].join(',')}\nextendedKeyUsage=serverAuth\n`,
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
  // The API server's client certificate towards kubelets (logs, exec, port-forward).
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'kubelet-client.key'], dir);
  await openssl(
    [
      'req',
      '-new',
      '-key',
      'kubelet-client.key',
      '-subj',
      '/O=system:masters/CN=kube-apiserver-kubelet-client',
    ].concat(['-out', 'kubelet-client.csr']),
    dir,
  );
  await writeFile(path.join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      'kubelet-client.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
    ].concat(['-days', '2', '-extfile', 'client.ext', '-out', 'kubelet-client.crt']),
    dir,
  );
}

type Component = 'etcd' | 'apiserver' | 'controllers' | 'forward-in' | 'forward-out';

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
    /** https://127.0.0.1:<port> (on the host, also when the server runs in a network namespace) */
    readonly url: string,
    /** A bearer token of a member of system:masters. */
    readonly adminToken: string,
    /** A kubeconfig file for kubectl and @kubernetes/client-node, as that admin. */
    readonly kubeconfig: string,
    readonly caFile: string,
    /**
     * Where processes inside the network namespace reach the API server (https://127.0.0.1:6443
     * there); `url` when there is no namespace.
     */
    readonly netnsUrl: string,
    /** A kubeconfig for processes inside the network namespace, as the admin. */
    readonly netnsKubeconfig: string,
    private readonly procs: Partial<Record<Component, ChildProcess>> & {
      etcd: ChildProcess;
      apiserver: ChildProcess;
    },
    private readonly logs: Record<Component, string[]>,
    private readonly spawnApiServer: () => ChildProcess,
    private readonly detached: boolean,
  ) {}

  /**
   * Starts etcd and the API server and waits until it is ready. On the host loopback their ports
   * are picked free and closed again before the processes bind them, so another process can take
   * one in between: a start that fails on a port already in use is tried again on new ports, up
   * to three times.
   */
  static async start(opts: KubeApiServerOptions): Promise<KubeApiServer> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await KubeApiServer.startOnce(opts);
      } catch (err) {
        const portTaken = /address already in use/.test(String((err as Error | undefined)?.message));
        if (!portTaken || opts.netns || attempt >= 3) throw err;
      }
    }
  }

  private static async startOnce(opts: KubeApiServerOptions): Promise<KubeApiServer> {
    const dir = opts.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'kube-api-')));
    await mkdir(path.join(dir, 'logs'), { recursive: true });
    const netns = opts.netns;
    const advertise = opts.advertiseAddress ?? '127.0.0.1';
    const sans = [...(opts.extraSans ?? [])];
    if (advertise !== '127.0.0.1') sans.push(`IP:${advertise}`);
    await makePki(dir, sans);
    const adminToken = randomBytes(24).toString('hex');
    await writeFile(path.join(dir, 'tokens.csv'), `${adminToken},lab-admin,lab-admin,"system:masters"\n`);
    // In a namespace of its own the ports are fixed; on the host loopback the OS picks free ones.
    const [etcdClient, etcdPeer, apiPort] = netns
      ? [2379, 2380, NETNS_API_PORT]
      : [await freeLoopbackPort(), await freeLoopbackPort(), await freeLoopbackPort()];
    const hostPort = netns ? await freeLoopbackPort() : apiPort;
    const detached = opts.detached ?? false;
    const logs: Record<Component, string[]> = {
      etcd: [],
      apiserver: [],
      controllers: [],
      'forward-in': [],
      'forward-out': [],
    };
    const keep = (into: string[]) => (chunk: Buffer) => {
      into.push(chunk.toString());
      if (into.length > 200) into.splice(0, into.length - 200);
    };
    const spawnComponent = (name: Component, cmd: string, args: string[], inNetns: boolean): ChildProcess => {
      // nsenter enters only the network namespace: mounts stay the host's, so what one component
      // mounts (kubelet's volumes) the others (containerd) see.
      const [file, argv] =
        inNetns && netns ? ['nsenter', [`--net=/var/run/netns/${netns}`, '--', cmd, ...args]] : [cmd, args];
      if (detached) {
        const fd = openSync(path.join(dir, 'logs', `${name}.log`), 'a');
        const p = spawn(file, argv, { stdio: ['ignore', fd, fd], detached: true });
        closeSync(fd);
        p.unref();
        return p;
      }
      const p = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
      p.stdout?.on('data', keep(logs[name]));
      p.stderr?.on('data', keep(logs[name]));
      return p;
    };
    const etcd = spawnComponent(
      'etcd',
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
      true,
    );
    const apiArgs = [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      `--bind-address=${netns ? '0.0.0.0' : '127.0.0.1'}`,
      `--advertise-address=${advertise}`,
      `--secure-port=${apiPort}`,
      '--insecure-port=0',
      `--cert-dir=${dir}`,
      `--tls-cert-file=${path.join(dir, 'server.crt')}`,
      `--tls-private-key-file=${path.join(dir, 'server.key')}`,
      `--client-ca-file=${path.join(dir, 'ca.crt')}`,
      `--token-auth-file=${path.join(dir, 'tokens.csv')}`,
      `--kubelet-client-certificate=${path.join(dir, 'kubelet-client.crt')}`,
      `--kubelet-client-key=${path.join(dir, 'kubelet-client.key')}`,
      '--kubelet-preferred-address-types=InternalIP,Hostname',
      '--authorization-mode=Node,RBAC',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${path.join(dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${path.join(dir, 'sa.key')}`,
      '--api-audiences=https://kubernetes.default.svc.cluster.local,istio-ca',
      `--service-cluster-ip-range=${opts.serviceClusterIpRange ?? '10.96.0.0/16'}`,
      '--allow-privileged=true',
      '--enable-admission-plugins=NamespaceLifecycle,ServiceAccount',
      '--watch-cache=true',
      '--v=1',
      ...(opts.extraArgs ?? []),
    ];
    const spawnApiServer = () =>
      spawnComponent('apiserver', path.join(opts.binDir, 'kube-apiserver'), apiArgs, true);
    const apiserver = spawnApiServer();
    const procs: Partial<Record<Component, ChildProcess>> & { etcd: ChildProcess; apiserver: ChildProcess } =
      {
        etcd,
        apiserver,
      };
    if (netns) {
      // Host loopback port -> unix socket -> the API server inside the namespace.
      const sock = path.join(dir, 'api.sock');
      procs['forward-in'] = spawnComponent(
        'forward-in',
        'socat',
        [`UNIX-LISTEN:${sock},fork,mode=600`, `TCP:127.0.0.1:${apiPort}`],
        true,
      );
      procs['forward-out'] = spawnComponent(
        'forward-out',
        'socat',
        [`TCP-LISTEN:${hostPort},bind=127.0.0.1,fork,reuseaddr`, `UNIX-CONNECT:${sock}`],
        false,
      );
    }
    const url = `https://127.0.0.1:${hostPort}`;
    const netnsUrl = `https://127.0.0.1:${apiPort}`;
    const caFile = path.join(dir, 'ca.crt');
    const kubeconfig = path.join(dir, 'kubeconfig');
    const netnsKubeconfig = path.join(dir, 'kubeconfig-netns');
    const config = (server: string) =>
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        `- name: lab\n  cluster:\n    server: ${server}\n    certificate-authority: ${caFile}`,
        'users:',
        `- name: lab-admin\n  user:\n    token: ${adminToken}`,
        'contexts:',
        '- name: lab\n  context:\n    cluster: lab\n    user: lab-admin',
        'current-context: lab',
        '',
      ].join('\n');
    // Renamed into place: a component started early waits for the file, never reads half of it.
    await writeFile(`${kubeconfig}.tmp`, config(url));
    await rename(`${kubeconfig}.tmp`, kubeconfig);
    await writeFile(`${netnsKubeconfig}.tmp`, config(netnsUrl));
    await rename(`${netnsKubeconfig}.tmp`, netnsKubeconfig);
    const server = new KubeApiServer(
      dir,
      url,
      adminToken,
      kubeconfig,
      caFile,
      netnsUrl,
      netnsKubeconfig,
      procs,
      logs,
      spawnApiServer,
      detached,
    );
    try {
      await server.waitReady(opts.startTimeoutMs ?? 60_000);
      if (opts.controllers?.length) {
        server.procs.controllers = spawnComponent(
          'controllers',
          path.join(opts.binDir, 'kube-controller-manager'),
          [
            `--kubeconfig=${netnsKubeconfig}`,
            `--controllers=${opts.controllers.join(',')}`,
            '--leader-elect=false',
            '--bind-address=127.0.0.1',
            `--secure-port=${netns ? 10257 : await freeLoopbackPort()}`,
            '--port=0',
            '--v=1',
            ...(opts.controllerArgs ?? []),
          ],
          true,
        );
      }
    } catch (err) {
      await server.stop();
      throw err;
    }
    return server;
  }

  /** Process ids of etcd, the API server, the controller manager and the forward, by component. */
  pids(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, p] of Object.entries(this.procs)) if (p?.pid) out[name] = p.pid;
    return out;
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
  tail(which: Component, chars = 2000): string {
    if (this.detached) {
      try {
        return readFileSync(path.join(this.dir, 'logs', `${which}.log`), 'utf8').slice(-chars);
      } catch {
        return '';
      }
    }
    return this.logs[which].join('').slice(-chars);
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
    for (const name of ['controllers', 'forward-out', 'forward-in', 'apiserver', 'etcd'] as const) {
      const p = this.procs[name];
      if (!p) continue;
      p.kill('SIGTERM');
      await waitExit(p, 10_000);
    }
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

/**
 * A real one-node Kubernetes on this machine, inside one network namespace (`<prefix>-node`)
 * linked to nothing: etcd, kube-apiserver (KubeApiServer in the namespace), kube-controller-manager,
 * kube-scheduler, a private containerd with runc, kubelet, kube-proxy (iptables) and dnsmasq as
 * cluster DNS. The host reaches the API server through a unix-socket forward to a loopback port.
 * Everything it writes lives under `<stateRoot>/<prefix>`; what kubelet changes outside it (global
 * sysctls, /var/log/pods, /var/log/containers) is put back by stop(), and by the next start with
 * the same prefix after a crash.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import {
  mkdir,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  rmdir,
  stat,
  symlink,
  unlink,
  writeFile,
} from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import {
  CLUSTER_API_SERVICE_IP,
  CLUSTER_DNS_IP,
  CLUSTER_NODE_IP,
  CLUSTER_POD_GATEWAY,
  CLUSTER_POD_RANGE,
  CLUSTER_SERVICE_RANGE,
  validPrefix,
} from './address-plan.js';
import { singleBinaryImageArchive } from './image-archive.js';
import { KubeApiServer, kubeBinaries } from './kube-api-server.js';

export const CLUSTER_STATE_ROOT = '/run/ambient-kube';
/** The pod sandbox image, built from the cached pause binary (a tag other than `latest`: never pulled). */
export const PAUSE_IMAGE = 'ambient.local/pause:v1.20.2';
const CNI_PLUGINS_DIR = '/usr/lib/cni';
/** What kubelet sets machine-wide (pkg/kubelet/cm/container_manager_linux.go, setupKernelTunables). */
export const KUBELET_SYSCTLS = [
  'vm/overcommit_memory',
  'vm/panic_on_oom',
  'kernel/panic',
  'kernel/panic_on_oops',
  'kernel/keys/root_maxkeys',
  'kernel/keys/root_maxbytes',
] as const;
/** The v1 cgroup hierarchies kubelet uses with the cgroupfs driver. */
const CGROUP_FS = '/sys/fs/cgroup';

export class KubeClusterError extends Error {
  override readonly name = 'KubeClusterError';
  constructor(
    readonly code: 'bad_prefix' | 'start_failed' | 'not_up' | 'command_failed',
    message: string,
  ) {
    super(message);
  }
}

export interface KubeClusterOptions {
  /** `[a-z][a-z0-9]{0,5}`, unique on the machine (e.g. a letter and the pid). */
  readonly prefix: string;
  /** Directory of the Kubernetes binaries; default: the cache scripts/kube/build-binaries.sh fills. */
  readonly binDir?: string;
  /** Default /run/ambient-kube; the cluster keeps everything in `<stateRoot>/<prefix>`. */
  readonly stateRoot?: string;
  /** How long to wait for the node to be Ready; default 120 s. */
  readonly startTimeoutMs?: number;
  /** Progress lines. */
  readonly log?: (line: string) => void;
  /** Leave a failed start's files and processes for inspection (the next start removes them). */
  readonly keepOnFailure?: boolean;
}

/** Everything a user or a test needs to reach and use a running cluster (also in `<dir>/state.json`). */
export interface KubeClusterInfo {
  readonly prefix: string;
  /** `<stateRoot>/<prefix>`: every file, socket and mount of the cluster is under it. */
  readonly dir: string;
  /** Network namespace name (`<prefix>-node`) and its path, for nsenter/setns. */
  readonly netns: string;
  readonly netnsPath: string;
  readonly nodeName: string;
  readonly nodeIp: string;
  readonly podRange: string;
  readonly serviceRange: string;
  readonly dnsIp: string;
  /** https://127.0.0.1:<port> on the host (the forward). */
  readonly url: string;
  /** Admin kubeconfig for the host (kubectl, @kubernetes/client-node). */
  readonly kubeconfig: string;
  /** Admin kubeconfig for processes inside the node namespace (https://127.0.0.1:6443). */
  readonly netnsKubeconfig: string;
  readonly caFile: string;
  readonly adminToken: string;
  readonly containerdSocket: string;
  readonly containerdRoot: string;
  readonly containerdState: string;
  /** CNI plugin binaries containerd runs (symlinks to Debian's); a chained plugin is installed here. */
  readonly cniBinDir: string;
  /** CNI configuration directory containerd reads (one conflist). */
  readonly cniConfDir: string;
  /** The conflist in it (bridge, host-local, portmap); a chained plugin is appended to its `plugins`. */
  readonly cniConfFile: string;
  readonly cniNetworkName: string;
  readonly kubeletRootDir: string;
  readonly pauseImage: string;
  /** Host pid of each long-running component. */
  readonly pids: Readonly<Record<string, number>>;
  /** Milliseconds from start() to: API server ready, node Ready and the default ServiceAccount's token. */
  readonly timings: { readonly apiReadyMs: number; readonly usableMs: number };
}

export interface SysctlRegistry {
  /** Values before the first cluster started. */
  originals: Record<string, string>;
  /** Prefixes of clusters that may have changed them. */
  holders: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

async function cmd(file: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err)
        reject(
          new KubeClusterError(
            'command_failed',
            `${file} ${args.join(' ')}: ${(stderr || err.message).trim()}`,
          ),
        );
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Runs `fn` holding an exclusive lock file (created with O_EXCL; a lock older than 30 s is stale). */
async function withLock<T>(lockPath: string, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      closeSync(openSync(lockPath, 'wx'));
      break;
    } catch {
      const age = await stat(lockPath).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      if (age > 30_000 || Date.now() > deadline) await rm(lockPath, { force: true });
      await sleep(50);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockPath, { force: true });
  }
}

async function netnsNames(): Promise<string[]> {
  const out = await cmd('ip', ['netns', 'list']);
  return out
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter(Boolean);
}

const readSysctl = (key: string) => readFile(`/proc/sys/${key}`, 'utf8').then((s) => s.trim());

/** Mount points at or under `dir`, deepest first. */
async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const points = info
    .split('\n')
    .map((l) => (l.split(' ')[4] ?? '').replace(/\\040/g, ' '))
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Host pids of processes under `dir`'s cluster: in the node namespace, in its cgroups, or naming `dir`. */
async function clusterPids(netns: string, dir: string, cgroupName: string): Promise<number[]> {
  const pids = new Set<number>();
  if ((await netnsNames()).includes(netns)) {
    const out = await cmd('ip', ['netns', 'pids', netns]).catch(() => '');
    for (const l of out.split('\n')) if (l.trim()) pids.add(Number(l.trim()));
  }
  for (const h of await readdir(CGROUP_FS).catch(() => [] as string[])) {
    const root = path.join(CGROUP_FS, h, cgroupName);
    if (!(await exists(root))) continue;
    const walk = async (d: string): Promise<void> => {
      const procs = await readFile(path.join(d, 'cgroup.procs'), 'utf8').catch(() => '');
      for (const l of procs.split('\n')) if (l.trim()) pids.add(Number(l.trim()));
      for (const e of await readdir(d, { withFileTypes: true }).catch(() => []))
        if (e.isDirectory()) await walk(path.join(d, e.name));
    };
    await walk(root);
  }
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const cmdline = await readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(`${dir}/`)) pids.add(Number(e));
  }
  pids.delete(process.pid);
  return [...pids].filter((p) => p > 1);
}

/**
 * kubelet 1.20 keeps its device-plugin socket in /var/lib/kubelet/device-plugins whatever its root
 * directory, and the CNI library its result cache in /var/lib/cni/results. Once no cluster runs,
 * they are removed, but only while they hold nothing else (a kubelet of the machine's own would
 * have more there, and keeps it).
 */
async function removeFixedPaths(): Promise<void> {
  // Not while any kubelet runs (another state root's cluster, or the machine's own).
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const stat = await readFile(`/proc/${e}/stat`, 'utf8').catch(() => '');
    // "pid (comm) state …"; a killed kubelet not yet reaped (Z) no longer runs.
    if (/^\d+ \(kubelet\) [^Z]/.test(stat)) return;
  }
  const plugins = '/var/lib/kubelet/device-plugins';
  const entries = await readdir(plugins).catch(() => undefined);
  const own = ['DEPRECATION', 'kubelet.sock'];
  if (
    entries?.every((e) => own.includes(e)) &&
    (await readdir('/var/lib/kubelet')).join() === 'device-plugins'
  ) {
    for (const e of entries) await rm(path.join(plugins, e), { force: true });
    await rmdir(plugins).catch(() => {});
    await rmdir('/var/lib/kubelet').catch(() => {});
  }
  await rmdir('/var/lib/cni/results').catch(() => {});
  await rmdir('/var/lib/cni').catch(() => {});
}

async function rmCgroupTree(d: string): Promise<void> {
  for (const e of await readdir(d, { withFileTypes: true }).catch(() => []))
    if (e.isDirectory()) await rmCgroupTree(path.join(d, e.name));
  await rmdir(d).catch(() => {});
}

const cgroupNameOf = (prefix: string) => `ambient-kube-${prefix}`;
const netnsOf = (prefix: string) => `${prefix}-node`;
const networkNameOf = (prefix: string) => `ambient-${prefix}`;

export class KubeCluster implements KubeClusterInfo {
  readonly prefix!: string;
  readonly dir!: string;
  readonly netns!: string;
  readonly netnsPath!: string;
  readonly nodeName!: string;
  readonly nodeIp!: string;
  readonly podRange!: string;
  readonly serviceRange!: string;
  readonly dnsIp!: string;
  readonly url!: string;
  readonly kubeconfig!: string;
  readonly netnsKubeconfig!: string;
  readonly caFile!: string;
  readonly adminToken!: string;
  readonly containerdSocket!: string;
  readonly containerdRoot!: string;
  readonly containerdState!: string;
  readonly cniBinDir!: string;
  readonly cniConfDir!: string;
  readonly cniConfFile!: string;
  readonly cniNetworkName!: string;
  readonly kubeletRootDir!: string;
  readonly pauseImage!: string;
  readonly pids!: Readonly<Record<string, number>>;
  readonly timings!: { readonly apiReadyMs: number; readonly usableMs: number };
  private readonly stateRoot: string;

  private constructor(info: KubeClusterInfo, stateRoot: string) {
    Object.assign(this, info);
    this.stateRoot = stateRoot;
  }

  /** The plain record (what state.json holds). */
  info(): KubeClusterInfo {
    const { stateRoot: _, ...rest } = this as unknown as KubeClusterInfo & { stateRoot: string };
    return { ...rest };
  }

  /** A handle on a cluster another process started (`kube-cluster-main.js up`). */
  static async attach(prefix: string, stateRoot = CLUSTER_STATE_ROOT): Promise<KubeCluster> {
    try {
      const info = JSON.parse(
        await readFile(path.join(stateRoot, prefix, 'state.json'), 'utf8'),
      ) as KubeClusterInfo;
      return new KubeCluster(info, stateRoot);
    } catch {
      throw new KubeClusterError('not_up', `no cluster "${prefix}" is up under ${stateRoot}`);
    }
  }

  static async start(opts: KubeClusterOptions): Promise<KubeCluster> {
    const t0 = Date.now();
    const log = opts.log ?? (() => {});
    const prefix = opts.prefix;
    if (!validPrefix(prefix))
      throw new KubeClusterError(
        'bad_prefix',
        `prefix ${JSON.stringify(prefix)} must match [a-z][a-z0-9]{0,5}`,
      );
    const stateRoot = opts.stateRoot ?? CLUSTER_STATE_ROOT;
    const removed = await KubeCluster.cleanup(prefix, stateRoot);
    if (removed.length) log(`removed what an earlier cluster "${prefix}" left: ${removed.join(', ')}`);
    const binDir = opts.binDir ?? (await kubeBinaries(path.resolve(import.meta.dirname, '../../..')));
    const dir = path.join(stateRoot, prefix);
    const netns = netnsOf(prefix);
    const cgroup = cgroupNameOf(prefix);
    const nodeName = `${prefix}-node`;
    const p = (...parts: string[]) => path.join(dir, ...parts);
    for (const d of ['logs', 'containerd', 'cni/bin', 'cni/net.d', 'cni/ipam', 'kubelet', 'dns/hosts.d'])
      await mkdir(p(d), { recursive: true });
    // Pod network namespaces are mounts under containerd's state directory. A node agent mounts
    // that directory as a hostPath with HostToContainer propagation (as istio-cni mounts
    // /var/run/netns), which kubelet refuses unless the host path is a shared mount: the host's
    // root here is private, so the directory is bound onto itself and made shared.
    const netnsDir = p('containerd', 'state', 'io.containerd.grpc.v1.cri', 'netns');
    await mkdir(netnsDir, { recursive: true });
    await cmd('mount', ['--bind', netnsDir, netnsDir]);
    await cmd('mount', ['--make-shared', netnsDir]);
    const pids: Record<string, number> = {};
    const spawnIn = (name: string, file: string, args: string[]) => {
      const fd = openSync(p('logs', `${name}.log`), 'a');
      // Only the network namespace: kubelet's volume mounts must be visible to containerd and runc.
      const child = spawn('nsenter', [`--net=/var/run/netns/${netns}`, '--', file, ...args], {
        stdio: ['ignore', fd, fd],
        detached: true,
      });
      closeSync(fd);
      child.unref();
      if (child.pid) pids[name] = child.pid;
      return child;
    };
    // Set when start fails, so that nothing still waiting starts a process after the cleanup.
    let abandoned = false;
    const tail = async (name: string) =>
      (await readFile(p('logs', `${name}.log`), 'utf8').catch(() => '')).slice(-3000);
    try {
      await KubeCluster.holdSysctls(prefix, stateRoot);
      // The node: a namespace whose only non-loopback address sits on a veth pair with both ends
      // inside it (kubelet refuses a loopback node IP; the kernel here has no dummy links). No
      // default route: with one, kubelet spends seconds probing for cloud metadata.
      await cmd('ip', ['netns', 'add', netns]);
      const ipn = (...args: string[]) => cmd('ip', ['-n', netns, ...args]);
      await ipn('link', 'set', 'lo', 'up');
      await ipn('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1');
      await ipn('addr', 'add', `${CLUSTER_NODE_IP}/24`, 'dev', 'eth0');
      await ipn('link', 'set', 'eth0', 'up');
      await ipn('link', 'set', 'eth1', 'up');
      await ipn('route', 'add', CLUSTER_SERVICE_RANGE, 'dev', 'eth0');
      const nsSysctl = (kv: string) => cmd('ip', ['netns', 'exec', netns, 'sysctl', '-qw', kv]);
      await nsSysctl('net.ipv4.ip_forward=1');
      // Pod-to-Service between pods on the same bridge: replies must pass iptables to be un-DNATed.
      await nsSysctl('net.bridge.bridge-nf-call-iptables=1').catch(() => {});
      await KubeCluster.makeCgroupRoot(cgroup);
      // CNI: private plugin and configuration directories (a chained plugin is installed there later).
      for (const plugin of await readdir(CNI_PLUGINS_DIR))
        await symlink(path.join(CNI_PLUGINS_DIR, plugin), p('cni/bin', plugin));
      const cniNetworkName = networkNameOf(prefix);
      const cniConfFile = p('cni/net.d', '10-ambient.conflist');
      await writeFile(
        cniConfFile,
        `${JSON.stringify(
          {
            cniVersion: '0.4.0',
            name: cniNetworkName,
            plugins: [
              {
                type: 'bridge',
                bridge: 'cni0',
                isGateway: true,
                ipMasq: false,
                hairpinMode: true,
                ipam: {
                  type: 'host-local',
                  ranges: [[{ subnet: CLUSTER_POD_RANGE, gateway: CLUSTER_POD_GATEWAY }]],
                  routes: [{ dst: '0.0.0.0/0' }],
                  dataDir: p('cni/ipam'),
                },
              },
              { type: 'portmap', capabilities: { portMappings: true } },
            ],
          },
          null,
          2,
        )}\n`,
      );
      // containerd: own root, state, socket; cgroupfs; overlayfs; runc may not set negative OOM
      // scores here (no CAP_SYS_RESOURCE), so the CRI plugin must not ask it to.
      const containerdSocket = p('containerd', 'containerd.sock');
      const cfg = `version = 2
root = "${p('containerd', 'root')}"
state = "${p('containerd', 'state')}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "${containerdSocket}"
[ttrpc]
  address = "${containerdSocket}.ttrpc"
[debug]
  level = "warn"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "${p('containerd', 'opt')}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "${p('containerd', 'runc')}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${p('cni/bin')}"
    conf_dir = "${p('cni/net.d')}"
    max_conf_num = 1
`;
      await writeFile(p('containerd', 'config.toml'), cfg);
      log(`node namespace ${netns} ready at ${Date.now() - t0} ms`);
      spawnIn('containerd', '/usr/bin/containerd', ['--config', p('containerd', 'config.toml')]);
      const pauseArchive = p('pause.tar');
      await writeFile(
        pauseArchive,
        singleBinaryImageArchive({
          ref: PAUSE_IMAGE,
          path: 'pause',
          binary: await readFile(path.join(binDir, 'pause')),
          entrypoint: ['/pause'],
        }),
      );
      const serviceAccountKey = p('api', 'sa.key');
      const apiP = KubeApiServer.start({
        binDir,
        netns,
        dir: p('api'),
        detached: true,
        advertiseAddress: CLUSTER_NODE_IP,
        serviceClusterIpRange: CLUSTER_SERVICE_RANGE,
        extraSans: [
          `IP:${CLUSTER_API_SERVICE_IP}`,
          'DNS:kubernetes',
          'DNS:kubernetes.default',
          'DNS:kubernetes.default.svc.cluster.local',
        ],
        controllers: ['*'],
        controllerArgs: [
          `--service-account-private-key-file=${serviceAccountKey}`,
          `--root-ca-file=${p('api', 'ca.crt')}`,
          `--cluster-signing-cert-file=${p('api', 'ca.crt')}`,
          `--cluster-signing-key-file=${p('api', 'ca.key')}`,
          `--cluster-cidr=${CLUSTER_POD_RANGE}`,
          `--service-cluster-ip-range=${CLUSTER_SERVICE_RANGE}`,
          '--allocate-node-cidrs=false',
          '--configure-cloud-routes=false',
          `--flex-volume-plugin-dir=${p('kubelet', 'volume-plugins')}`,
        ],
        startTimeoutMs: opts.startTimeoutMs ?? 120_000,
      });
      // The pause image goes in while the API server starts.
      const containerdReady = (async () => {
        const deadline = Date.now() + 30_000;
        for (;;) {
          const ok = await cmd('ctr', ['--address', containerdSocket, 'version']).then(
            () => true,
            () => false,
          );
          if (ok) break;
          if (Date.now() > deadline)
            throw new KubeClusterError('start_failed', `containerd not ready: ${await tail('containerd')}`);
          await sleep(100);
        }
        log(`containerd ready at ${Date.now() - t0} ms`);
        await cmd('ctr', ['--address', containerdSocket, '-n', 'k8s.io', 'images', 'import', pauseArchive]);
        log(`pause image imported at ${Date.now() - t0} ms`);
      })();
      // The node's components start while the API server does (they retry until it answers): their
      // own start-up, seconds on a busy machine, overlaps its. They need only its kubeconfig.
      const netnsKubeconfig = p('api', 'kubeconfig-netns');
      const caFile = p('api', 'ca.crt');
      const nodeComponents = (async () => {
        await containerdReady;
        while (!(await exists(netnsKubeconfig))) {
          if (abandoned) return;
          await sleep(50);
        }
        if (abandoned) return;
        spawnIn('kube-scheduler', path.join(binDir, 'kube-scheduler'), [
          `--kubeconfig=${netnsKubeconfig}`,
          '--leader-elect=false',
          '--bind-address=127.0.0.1',
          '--port=0',
          '--v=1',
        ]);
        await writeFile(p('kubelet', 'resolv.conf'), '');
        spawnIn('kubelet', path.join(binDir, 'kubelet'), [
          `--kubeconfig=${netnsKubeconfig}`,
          '--container-runtime=remote',
          `--container-runtime-endpoint=unix://${containerdSocket}`,
          `--image-service-endpoint=unix://${containerdSocket}`,
          '--runtime-request-timeout=5m',
          '--cgroup-driver=cgroupfs',
          `--cgroup-root=/${cgroup}`,
          `--root-dir=${p('kubelet')}`,
          `--cert-dir=${p('kubelet', 'pki')}`,
          `--volume-plugin-dir=${p('kubelet', 'volume-plugins')}`,
          `--node-ip=${CLUSTER_NODE_IP}`,
          `--hostname-override=${nodeName}`,
          `--cluster-dns=${CLUSTER_DNS_IP}`,
          '--cluster-domain=cluster.local',
          `--resolv-conf=${p('kubelet', 'resolv.conf')}`,
          `--pod-infra-container-image=${PAUSE_IMAGE}`,
          `--client-ca-file=${caFile}`,
          '--anonymous-auth=false',
          '--authorization-mode=AlwaysAllow',
          '--read-only-port=0',
          '--healthz-bind-address=127.0.0.1',
          '--fail-swap-on=false',
          '--image-gc-high-threshold=100',
          '--image-gc-low-threshold=99',
          '--serialize-image-pulls=false',
          '--node-status-update-frequency=4s',
          '--v=1',
        ]);
        spawnIn('kube-proxy', path.join(binDir, 'kube-proxy'), [
          `--kubeconfig=${netnsKubeconfig}`,
          `--hostname-override=${nodeName}`,
          '--proxy-mode=iptables',
          `--cluster-cidr=${CLUSTER_POD_RANGE}`,
          // 0: leave the machine-wide conntrack table size and timeouts as they are.
          '--conntrack-max-per-core=0',
          '--conntrack-tcp-timeout-established=0',
          '--conntrack-tcp-timeout-close-wait=0',
          '--metrics-bind-address=127.0.0.1:10249',
          '--healthz-bind-address=127.0.0.1:10256',
          '--v=1',
        ]);
        const hostsPath = p('dns', 'hosts.d', 'services');
        await writeFile(hostsPath, '');
        spawnIn('dnsmasq', '/usr/sbin/dnsmasq', [
          '--keep-in-foreground',
          '--conf-file=/dev/null',
          '--no-resolv',
          '--no-hosts',
          `--hostsdir=${p('dns', 'hosts.d')}`,
          `--listen-address=${CLUSTER_NODE_IP}`,
          '--bind-interfaces',
          '--local=/cluster.local/',
          '--user=root',
          `--pid-file=${p('dns', 'dnsmasq.pid')}`,
          '--log-facility=-',
        ]);
        spawnIn('cluster-dns', process.execPath, [
          path.join(import.meta.dirname, '../dist/cluster-dns-main.js'),
          netnsKubeconfig,
          hostsPath,
        ]);
      })();
      const [api] = await Promise.all([apiP, containerdReady, nodeComponents]);
      const apiReadyMs = Date.now() - t0;
      log(`API server ready in ${apiReadyMs} ms`);
      Object.assign(pids, Object.fromEntries(Object.entries(api.pids()).map(([k, v]) => [k, v])));
      const partial = {
        prefix,
        dir,
        netns,
        netnsPath: `/var/run/netns/${netns}`,
        nodeName,
        nodeIp: CLUSTER_NODE_IP,
        podRange: CLUSTER_POD_RANGE,
        serviceRange: CLUSTER_SERVICE_RANGE,
        dnsIp: CLUSTER_DNS_IP,
        url: api.url,
        kubeconfig: api.kubeconfig,
        netnsKubeconfig: api.netnsKubeconfig,
        caFile: api.caFile,
        adminToken: api.adminToken,
        containerdSocket,
        containerdRoot: p('containerd', 'root'),
        containerdState: p('containerd', 'state'),
        cniBinDir: p('cni/bin'),
        cniConfDir: p('cni/net.d'),
        cniConfFile,
        cniNetworkName,
        kubeletRootDir: p('kubelet'),
        pauseImage: PAUSE_IMAGE,
        pids,
        timings: { apiReadyMs, usableMs: 0 },
      } satisfies KubeClusterInfo;
      const cluster = new KubeCluster(partial, stateRoot);
      await cluster.writeState();
      // Cluster DNS: a selector-less kube-dns Service whose endpoint is dnsmasq on the node.
      await cluster.createDnsService();
      await cluster.writeState();
      await cluster.waitUsable(opts.startTimeoutMs ?? 120_000, tail);
      const usable = new KubeCluster(
        { ...partial, timings: { apiReadyMs, usableMs: Date.now() - t0 } },
        stateRoot,
      );
      await usable.writeState();
      log(`cluster usable in ${usable.timings.usableMs} ms`);
      return usable;
    } catch (err) {
      abandoned = true;
      const pidsNow = { ...pids };
      if (!opts.keepOnFailure) await KubeCluster.cleanup(prefix, stateRoot).catch(() => {});
      if (err instanceof KubeClusterError) throw err;
      throw new KubeClusterError(
        'start_failed',
        `${(err as Error).message} (components: ${Object.keys(pidsNow).join(', ')})`,
      );
    }
  }

  private async writeState(): Promise<void> {
    const file = path.join(this.dir, 'state.json');
    await writeFile(`${file}.tmp`, `${JSON.stringify(this.info(), null, 2)}\n`);
    await rename(`${file}.tmp`, file);
  }

  /** A request to the API server as the admin; resolves with status and parsed body. */
  async api(
    method: string,
    apiPath: string,
    body?: unknown,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const ca = await readFile(this.caFile);
    return new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = https.request(
        `${this.url}${apiPath}`,
        {
          method,
          ca,
          timeout: 10_000,
          headers: {
            authorization: `Bearer ${this.adminToken}`,
            accept: 'application/json',
            ...(data && { 'content-type': 'application/json', 'content-length': data.length }),
          },
        },
        async (res) => {
          let text = '';
          for await (const c of res) text += c;
          let parsed: Record<string, unknown> = {};
          try {
            parsed = JSON.parse(text) as Record<string, unknown>;
          } catch {
            parsed = { text };
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end(data);
    });
  }

  /** kubectl with the admin kubeconfig; resolves with stdout, rejects with stderr. */
  kubectl(args: readonly string[], input?: string): Promise<string> {
    return cmd('kubectl', ['--kubeconfig', this.kubeconfig, ...args], input);
  }

  /**
   * Imports a docker-archive or OCI image tar into the node's containerd (namespace k8s.io), where
   * pods find it; use a tag other than `latest` (or `imagePullPolicy: Never`), as nothing is pulled.
   * Resolves with the image names ctr reports.
   */
  async importImage(archivePath: string): Promise<string[]> {
    const out = await cmd('ctr', [
      '--address',
      this.containerdSocket,
      '-n',
      'k8s.io',
      'images',
      'import',
      archivePath,
    ]);
    return [...out.matchAll(/unpacking (\S+)/g)].map((m) => m[1] as string);
  }

  /** Runs a command inside the node's network namespace (iptables-save, ip route, curl to a pod...). */
  nodeExec(
    command: readonly string[],
    timeoutMs = 15_000,
  ): Promise<{ stdout: string; stderr: string; code: number }> {
    return new Promise((resolve) => {
      execFile(
        'nsenter',
        [`--net=${this.netnsPath}`, '--', ...command],
        { timeout: timeoutMs, maxBuffer: 32 * 1024 * 1024 },
        (err, stdout, stderr) => {
          const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
          resolve({ stdout, stderr, code });
        },
      );
    });
  }

  /**
   * The network namespace file of a running pod (pinned under containerd's state directory), for
   * `nsenter --net=` or for handing to a node agent: from the spec of the pod's sandbox container.
   */
  async podNetnsPath(namespace: string, pod: string): Promise<string> {
    const id = (
      await this.kubectl([
        'get',
        'pod',
        '-n',
        namespace,
        pod,
        '-o',
        'jsonpath={.status.containerStatuses[0].containerID}',
      ])
    )
      .trim()
      .replace(/^containerd:\/\//, '');
    if (!id) throw new KubeClusterError('not_up', `pod ${namespace}/${pod} has no running container`);
    type Info = {
      Spec?: {
        annotations?: Record<string, string>;
        linux?: { namespaces?: { type: string; path?: string }[] };
      };
    };
    const info = async (cid: string) =>
      JSON.parse(
        await cmd('ctr', ['--address', this.containerdSocket, '-n', 'k8s.io', 'containers', 'info', cid]),
      ) as Info;
    // An app container joins its sandbox's namespace through /proc/<pid>; the sandbox names the file.
    const sandbox = (await info(id)).Spec?.annotations?.['io.kubernetes.cri.sandbox-id'];
    if (!sandbox) throw new KubeClusterError('not_up', `pod ${namespace}/${pod}: no sandbox id`);
    const net = (await info(sandbox)).Spec?.linux?.namespaces?.find((n) => n.type === 'network')?.path;
    if (!net) throw new KubeClusterError('not_up', `pod ${namespace}/${pod}: no network namespace path`);
    return net;
  }

  private async createDnsService(): Promise<void> {
    const deadline = Date.now() + 30_000;
    const svc = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'kube-dns', namespace: 'kube-system', labels: { 'k8s-app': 'kube-dns' } },
      spec: {
        clusterIP: CLUSTER_DNS_IP,
        ports: [
          { name: 'dns', port: 53, protocol: 'UDP' },
          { name: 'dns-tcp', port: 53, protocol: 'TCP' },
        ],
      },
    };
    const eps = {
      apiVersion: 'v1',
      kind: 'Endpoints',
      metadata: { name: 'kube-dns', namespace: 'kube-system', labels: { 'k8s-app': 'kube-dns' } },
      subsets: [
        {
          addresses: [{ ip: CLUSTER_NODE_IP }],
          ports: [
            { name: 'dns', port: 53, protocol: 'UDP' },
            { name: 'dns-tcp', port: 53, protocol: 'TCP' },
          ],
        },
      ],
    };
    // kube-system appears shortly after the API server is ready.
    for (;;) {
      const r = await this.api('POST', '/api/v1/namespaces/kube-system/services', svc);
      if (r.status === 201 || r.status === 409) break;
      if (Date.now() > deadline)
        throw new KubeClusterError('start_failed', `kube-dns Service: ${r.status} ${JSON.stringify(r.body)}`);
      await sleep(200);
    }
    const r = await this.api('POST', '/api/v1/namespaces/kube-system/endpoints', eps);
    if (r.status !== 201 && r.status !== 409)
      throw new KubeClusterError('start_failed', `kube-dns Endpoints: ${r.status} ${JSON.stringify(r.body)}`);
  }

  /** Node Ready, and the default ServiceAccount has its token (pods are admitted from then on). */
  private async waitUsable(timeoutMs: number, tail: (name: string) => Promise<string>): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      const node = await this.api('GET', `/api/v1/nodes/${this.nodeName}`).catch(() => undefined);
      const conditions = ((
        node?.body.status as { conditions?: { type: string; status: string; message?: string }[] }
      )?.conditions ?? []) as { type: string; status: string; message?: string }[];
      const ready = conditions.find((c) => c.type === 'Ready');
      last = ready ? `Ready=${ready.status} ${ready.message ?? ''}` : `node ${node?.status ?? 'unreachable'}`;
      if (ready?.status === 'True') {
        const sa = await this.api('GET', '/api/v1/namespaces/default/serviceaccounts/default');
        if (sa.status === 200 && ((sa.body.secrets as unknown[]) ?? []).length > 0) return;
        last = 'default ServiceAccount has no token yet';
      }
      for (const name of Object.keys(this.pids)) {
        try {
          process.kill(this.pids[name] as number, 0);
        } catch {
          throw new KubeClusterError('start_failed', `${name} exited: ${await tail(name)}`);
        }
      }
      await sleep(250);
    }
    throw new KubeClusterError(
      'start_failed',
      `node not usable after ${timeoutMs} ms (${last}); kubelet: ${await tail('kubelet')}`,
    );
  }

  /** Resident memory in MiB of each component, of all containerd shims, and of all pod processes. */
  async memory(): Promise<Record<string, number>> {
    const rss = async (pid: number) => {
      const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
      const m = /VmRSS:\s+(\d+) kB/.exec(status);
      return m ? Number(m[1]) / 1024 : 0;
    };
    const out: Record<string, number> = {};
    const known = new Set<number>();
    for (const [name, pid] of Object.entries(this.pids)) {
      out[name] = Math.round((await rss(pid)) * 10) / 10;
      known.add(pid);
    }
    let shims = 0;
    let pods = 0;
    for (const pid of await clusterPids(this.netns, this.dir, cgroupNameOf(this.prefix))) {
      if (known.has(pid)) continue;
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      if (cmdline.includes('containerd-shim')) shims += await rss(pid);
      else pods += await rss(pid);
    }
    out.shims = Math.round(shims * 10) / 10;
    out.pods = Math.round(pods * 10) / 10;
    return out;
  }

  /** Ends every process, unmounts, and removes the namespace, cgroups, logs and files; puts sysctls back. */
  async stop(): Promise<void> {
    await KubeCluster.cleanup(this.prefix, this.stateRoot);
  }

  /**
   * Removes everything a cluster with this prefix made, running or crashed: processes, mounts,
   * the node namespace, cgroups, kubelet's pod logs, CNI results, its directory; and puts the
   * machine-wide sysctls back once no other cluster holds them. Returns what it found.
   */
  static async cleanup(prefix: string, stateRoot = CLUSTER_STATE_ROOT): Promise<string[]> {
    if (!validPrefix(prefix))
      throw new KubeClusterError(
        'bad_prefix',
        `prefix ${JSON.stringify(prefix)} must match [a-z][a-z0-9]{0,5}`,
      );
    const found: string[] = [];
    const dir = path.join(stateRoot, prefix);
    const netns = netnsOf(prefix);
    const cgroup = cgroupNameOf(prefix);
    // Processes first (nothing may restart a container or remount a volume while we clean).
    for (let round = 0; round < 50; round++) {
      const pids = await clusterPids(netns, dir, cgroup);
      if (!pids.length) break;
      if (round === 0) found.push(`${pids.length} processes`);
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      await sleep(100);
    }
    // Mounts (container root filesystems, pod network namespaces, kubelet's volumes), deepest first.
    for (let round = 0; round < 10; round++) {
      const points = await mountsUnder(dir);
      if (!points.length) break;
      if (round === 0) found.push(`${points.length} mounts`);
      for (const m of points) await cmd('umount', ['-l', m]).catch(() => {});
    }
    // kubelet writes pod logs outside its root directory: /var/log/pods/<ns>_<pod>_<uid>, with
    // links in /var/log/containers. The pod uids are the directories under its root.
    const uids = await readdir(path.join(dir, 'kubelet', 'pods')).catch(() => [] as string[]);
    if (uids.length) {
      const podLogDirs: string[] = [];
      for (const e of await readdir('/var/log/pods').catch(() => [] as string[]))
        if (uids.some((u) => e.endsWith(`_${u}`))) podLogDirs.push(path.join('/var/log/pods', e));
      for (const e of await readdir('/var/log/containers').catch(() => [] as string[])) {
        const link = path.join('/var/log/containers', e);
        const target = await readlink(link).catch(() => '');
        if (podLogDirs.some((d) => target.startsWith(`${d}/`))) await unlink(link).catch(() => {});
      }
      for (const d of podLogDirs) await rm(d, { recursive: true, force: true });
      if (podLogDirs.length) found.push(`${podLogDirs.length} pod log directories`);
    }
    if ((await netnsNames()).includes(netns)) {
      found.push(`namespace ${netns}`);
      await cmd('ip', ['netns', 'del', netns]).catch(() => {});
    }
    for (const h of await readdir(CGROUP_FS).catch(() => [] as string[])) {
      const root = path.join(CGROUP_FS, h, cgroup);
      if (await exists(root)) {
        await rmCgroupTree(root);
        if (!found.includes('cgroups')) found.push('cgroups');
      }
    }
    // Outside the cluster's directory, keyed by sandbox or task id: the CNI library's result cache
    // (`<network>-<id>-eth0`, `cni-loopback-<id>-lo`) and containerd's shim sockets
    // (/run/containerd/s/<sha256 of address/namespace/id>, runtime/v2/shim/util_unix.go).
    const ids = new Set<string>();
    for (const d of [
      path.join(dir, 'containerd', 'root', 'io.containerd.grpc.v1.cri', 'sandboxes'),
      path.join(dir, 'containerd', 'root', 'io.containerd.grpc.v1.cri', 'containers'),
      path.join(dir, 'containerd', 'state', 'io.containerd.runtime.v2.task', 'k8s.io'),
    ])
      for (const e of await readdir(d).catch(() => [] as string[])) ids.add(e);
    const network = networkNameOf(prefix);
    for (const e of await readdir('/var/lib/cni/results').catch(() => [] as string[])) {
      const lo = /^cni-loopback-([0-9a-f]+)-lo$/.exec(e);
      if (e.startsWith(`${network}-`) || (lo && ids.has(lo[1] as string)))
        await rm(path.join('/var/lib/cni/results', e), { force: true });
    }
    const address = path.join(dir, 'containerd', 'containerd.sock');
    for (const id of ids) {
      const hash = createHash('sha256')
        .update(path.join(address, 'k8s.io', id))
        .digest('hex');
      await rm(path.join('/run/containerd/s', hash), { force: true });
    }
    if (await exists(dir)) {
      found.push(dir);
      await rm(dir, { recursive: true, force: true });
    }
    await KubeCluster.releaseSysctls(prefix, stateRoot);
    return found;
  }

  /** Records the machine-wide sysctls kubelet changes, unless another running cluster already has. */
  private static async holdSysctls(prefix: string, stateRoot: string): Promise<void> {
    await mkdir(stateRoot, { recursive: true });
    await withLock(path.join(stateRoot, 'sysctls.lock'), async () => {
      const file = path.join(stateRoot, 'sysctls.json');
      let reg: SysctlRegistry | undefined;
      try {
        reg = JSON.parse(await readFile(file, 'utf8')) as SysctlRegistry;
      } catch {
        reg = undefined;
      }
      // A holder whose namespace is gone crashed without cleaning up; it holds nothing.
      const live = new Set(await netnsNames());
      if (reg) reg.holders = reg.holders.filter((h) => h !== prefix && live.has(netnsOf(h)));
      if (!reg || reg.holders.length === 0) {
        const originals = reg?.originals ?? {};
        if (!reg) for (const k of KUBELET_SYSCTLS) originals[k] = await readSysctl(k);
        reg = { originals, holders: [] };
      }
      reg.holders.push(prefix);
      await writeFile(`${file}.tmp`, JSON.stringify(reg, null, 2));
      await rename(`${file}.tmp`, file);
    });
  }

  /** Drops this cluster's hold; the last one out writes the original values back. */
  private static async releaseSysctls(prefix: string, stateRoot: string): Promise<void> {
    const file = path.join(stateRoot, 'sysctls.json');
    if (!(await exists(file))) return;
    await withLock(path.join(stateRoot, 'sysctls.lock'), async () => {
      let reg: SysctlRegistry;
      try {
        reg = JSON.parse(await readFile(file, 'utf8')) as SysctlRegistry;
      } catch {
        await rm(file, { force: true });
        return;
      }
      const live = new Set(await netnsNames());
      reg.holders = reg.holders.filter((h) => h !== prefix && live.has(netnsOf(h)));
      if (reg.holders.length) {
        await writeFile(`${file}.tmp`, JSON.stringify(reg, null, 2));
        await rename(`${file}.tmp`, file);
        return;
      }
      for (const [k, v] of Object.entries(reg.originals))
        await writeFile(`/proc/sys/${k}`, v).catch(() => {});
      await rm(file, { force: true });
      await removeFixedPaths();
    });
  }

  /** The values the machine had before any cluster changed them, while one holds them. */
  static async savedSysctls(stateRoot = CLUSTER_STATE_ROOT): Promise<SysctlRegistry | undefined> {
    try {
      return JSON.parse(await readFile(path.join(stateRoot, 'sysctls.json'), 'utf8')) as SysctlRegistry;
    } catch {
      return undefined;
    }
  }

  /** kubelet's cgroup root in every v1 hierarchy (cpuset needs its cpus and mems filled in). */
  private static async makeCgroupRoot(name: string): Promise<void> {
    for (const h of await readdir(CGROUP_FS)) {
      const parent = path.join(CGROUP_FS, h);
      if (!(await exists(path.join(parent, 'cgroup.procs')))) continue;
      const d = path.join(parent, name);
      await mkdir(d, { recursive: true });
      if (h === 'cpuset')
        for (const f of ['cpuset.cpus', 'cpuset.mems'])
          await writeFile(path.join(d, f), await readFile(path.join(parent, f), 'utf8'));
    }
  }
}

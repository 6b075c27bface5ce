/**
 * The mesh on a lab: the control plane runs inside the lab (in node0's namespace, on node0's IP,
 * ports 15012 and 15014), reading a manifest directory that stands in for the Kubernetes API; one
 * ztunnel per node takes its config over Delta ADS and its certificates from the control plane's
 * CA with a bearer token of its own. The lab writes its namespaces, pods and services there; a
 * namespace is enrolled by labelling it `istio.io/dataplane-mode=ambient`.
 */
import { type ChildProcess, execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { openSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { LocalCa } from '@ambient/shared';
import type { Lab, LabPod } from './lab.js';
import { deleteManifest, labelManifest, readManifest, writeManifest } from './lab-manifests.js';
import type { PodSpec } from './lab-spec.js';
import { waypointGateway } from './waypoint-gateway.js';

export interface LabMeshOptions {
  /** Working directory: CA root, manifests, tokens, logs. */
  readonly dir: string;
  /** Namespaces labelled for ambient enrollment when the mesh is first written. */
  readonly enrolledNamespaces: readonly string[];
  readonly logLevel?: string;
  /** Extra workloads on no lab node, to size a node agent's state (benchmarks). */
  readonly extraWorkloads?: number;
  /**
   * Node agents deliver connections from a pod's own waypoint to the app from the original client
   * address (ZT_PRESERVE_CLIENT_IP_THROUGH_WAYPOINT, our extension). Off: the app sees the
   * waypoint's address, as with upstream ztunnel.
   */
  readonly preserveClientIpThroughWaypoint?: boolean;
  /** Lifetime of workload certificates, such as "20s" (the control plane's CP_WORKLOAD_CERT_TTL). */
  readonly workloadCertTtl?: string;
  /**
   * More environment for the node agents (benchmarks: ZT_LOOP_STATS, or NODE_OPTIONS to compare
   * V8 settings), over the defaults.
   */
  readonly agentEnv?: Readonly<Record<string, string>>;
}

export const DATAPLANE_MODE_LABEL = 'istio.io/dataplane-mode';
export const CONTROL_PLANE_GRPC_PORT = 15012;
export const CONTROL_PLANE_MONITOR_PORT = 15014;

/** A package's built entry point (also when this module runs from sources, as in tests). */
function entry(pkg: string): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve(`${pkg}/package.json`)), 'dist', 'main.js');
}

export function ztunnelEntry(): string {
  return entry('@ambient/ztunnel');
}

export function controlPlaneEntry(): string {
  return entry('@ambient/controlplane');
}

export function waypointEntry(): string {
  return entry('@ambient/waypoint');
}

export const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';
/** Legacy (Istio before 1.22): the service account whose workloads a waypoint serves. */
export { FOR_SERVICE_ACCOUNT } from './waypoint-gateway.js';
/** On a namespace, service or pod: the waypoint its traffic goes through (or `none`). */
export const USE_WAYPOINT_LABEL = 'istio.io/use-waypoint';
/** On the Gateway: which traffic it serves, service (default), workload, all or none. */
export { WAYPOINT_FOR_LABEL } from './waypoint-gateway.js';

/** The label Istio's deployment controller puts on a waypoint's Service. */
const MANAGED = { 'gateway.istio.io/managed': 'istio.io-mesh-controller' };

export interface WaypointSpec {
  readonly namespace: string;
  /** The Gateway's name; its pods run as a service account of the same name. */
  readonly name: string;
  /** Legacy: serve this service account's workloads (`istio.io/for-service-account`). */
  readonly forServiceAccount?: string;
  /** `istio.io/waypoint-for`: service (default), workload, all or none. */
  readonly waypointFor?: string;
  readonly node?: number;
}

export interface DeployedWaypoint {
  readonly pod: LabPod;
  readonly vip: string;
  readonly pid?: number;
}

/**
 * V8 settings of the node agent, the same as the image's (Dockerfile: ENV NODE_OPTIONS, which the
 * chart keeps unless its `env.NODE_OPTIONS` is set). Semi-spaces of at most 8 MB bound the young
 * generation, which Node's default lets grow to 16 MB ones while 1,000 connections open (fresh RSS
 * above 100 MB in half the runs); 4 MB ones cost the sending agent about 1.7x the CPU per GB
 * tunnelled. The old generation keeps Node's limit: capped at 384 MB it kept the RSS lower after
 * bursts of connections, but cost about a quarter more CPU per byte tunnelled
 * (docs/performance-ztunnel-memory.md).
 */
export const ZTUNNEL_NODE_OPTIONS = '--max-semi-space-size=8';

/** Raises the soft descriptor limit to the hard one, then runs the node program. */
const WITH_ULIMIT = ['sh', '-c', 'ulimit -n "$(ulimit -Hn)" && exec "$0" "$@"', process.execPath];

export class LabMesh {
  /** The node agents' process ids, by node (the current process after a restart). */
  readonly pids: number[] = [];
  controlPlanePid?: number;
  private readonly agents: Array<ChildProcess | undefined> = [];

  constructor(
    readonly lab: Lab,
    private readonly options: LabMeshOptions,
  ) {}

  get manifestDir(): string {
    return join(this.options.dir, 'manifests');
  }

  /** The control plane's address, reachable from every lab node. */
  get controlPlaneAddress(): string {
    return `${this.node(0).ip}:${CONTROL_PLANE_GRPC_PORT}`;
  }

  async start(): Promise<void> {
    const { dir } = this.options;
    await mkdir(this.manifestDir, { recursive: true });
    await LocalCa.loadOrCreate(join(dir, 'ca'), { trustDomain: 'cluster.local' });
    await this.writeTokens();
    await this.writeManifests();
    await this.writePodNetns();
    await this.startControlPlane();
    for (const node of this.lab.nodes) this.startNodeAgent(node.index);
    for (const node of this.lab.nodes) await this.waitReady(node.index);
  }

  /** Starts (or restarts) one node's agent; it appends to the node's log. Does not wait for ready. */
  startNodeAgent(index: number): number | undefined {
    const { dir } = this.options;
    const node = this.node(index);
    const child = this.lab.start(
      node.netns,
      [...WITH_ULIMIT, ztunnelEntry()],
      {
        NODE_OPTIONS: ZTUNNEL_NODE_OPTIONS,
        ZT_NODE_NAME: `node${node.index}`,
        ZT_XDS_ADDRESS: this.controlPlaneAddress,
        ZT_ROOT_CERT: join(dir, 'ca', 'root-cert.pem'),
        ZT_TOKEN_FILE: join(dir, `token-node${node.index}`),
        ZT_POD_NETNS_FILE: join(dir, `pods-node${node.index}.json`),
        ZT_INSTANCE_IP: node.ip,
        ZT_METRICS_ADDRESS: node.ip,
        ZT_LOG_LEVEL: this.options.logLevel ?? 'warn',
        ...(this.options.preserveClientIpThroughWaypoint && {
          ZT_PRESERVE_CLIENT_IP_THROUGH_WAYPOINT: 'true',
        }),
        ...this.options.agentEnv,
      },
      openSync(join(dir, `ztunnel-node${node.index}.log`), 'a'),
    );
    this.agents[index] = child;
    if (child.pid) this.pids[index] = child.pid;
    return child.pid;
  }

  /**
   * Stops one node's agent with `signal` (SIGTERM drains, SIGKILL is a crash) and resolves once
   * the process has exited; the pods' capture rules are whatever the agent left behind.
   */
  async stopNodeAgent(index: number, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<void> {
    const child = this.agents[index];
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`node agent on node${index} did not exit within ${timeoutMs} ms`)),
        timeoutMs,
      );
      child.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
    });
    child.kill(signal);
    await exited;
    this.agents[index] = undefined;
  }

  /** Waits until one node's agent reports ready. */
  async waitNodeAgentReady(index: number, timeoutMs = 30_000): Promise<void> {
    await this.waitReady(index, timeoutMs);
  }

  /** A node agent's readiness answer: status line body ("ready" or "not ready, pending: <blockers, sorted>"). */
  async readiness(node: number): Promise<string> {
    const n = this.node(node);
    return (await curlIn(n.netns, `http://${n.ip}:15021/healthz/ready`).catch(() => '')).trim();
  }

  /** Starts the control plane in node0's namespace and waits until it serves. */
  async startControlPlane(): Promise<void> {
    const { dir } = this.options;
    const node = this.node(0);
    const child = this.lab.start(
      node.netns,
      [...WITH_ULIMIT, controlPlaneEntry()],
      this.controlPlaneEnv(),
      openSync(join(dir, 'controlplane.log'), 'a'),
    );
    this.controlPlanePid = child.pid;
    for (let i = 0; i < 300; i++) {
      if ((await this.controlPlaneGet('/ready').catch(() => '')) === 'ready\n') return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`the control plane did not become ready in 30 s (log: ${join(dir, 'controlplane.log')})`);
  }

  /** The control plane's settings in this lab (it runs in node0's namespace). */
  controlPlaneEnv(): Record<string, string> {
    const { dir } = this.options;
    const node = this.node(0);
    return {
      CP_MANIFEST_DIR: this.manifestDir,
      CP_CA_DIR: join(dir, 'ca'),
      CP_TOKENS_FILE: join(dir, 'tokens.json'),
      CP_GRPC_ADDRESS: node.ip,
      CP_MONITOR_ADDRESS: node.ip,
      CP_LOG_LEVEL: this.options.logLevel ?? 'warn',
      ...(this.options.workloadCertTtl && { CP_WORKLOAD_CERT_TTL: this.options.workloadCertTtl }),
    };
  }

  /** Stops the control plane; the node agents keep serving with their last config. */
  async stopControlPlane(): Promise<void> {
    const pid = this.controlPlanePid;
    if (pid === undefined) return;
    this.controlPlanePid = undefined;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      return;
    }
    for (let i = 0; i < 100; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /**
   * Deploys a waypoint as Istio's deployment controller would for an `istio-waypoint` Gateway:
   * the Gateway, a pod (outside ambient capture: it speaks HBONE itself) running as the
   * Gateway's service account with a token bound to it, and a Service for its HBONE port. The
   * control plane then puts the waypoint on the workloads and services it serves.
   */
  async deployWaypoint(spec: WaypointSpec, vip: string): Promise<DeployedWaypoint> {
    const { dir } = this.options;
    const node = spec.node ?? 0;
    const podSpec: PodSpec = {
      name: `${spec.name}-0`,
      namespace: spec.namespace,
      node,
      serviceAccount: spec.name,
      labels: { [GATEWAY_NAME_LABEL]: spec.name, [DATAPLANE_MODE_LABEL]: 'none' },
    };
    const pod =
      this.lab.pods.find((p) => p.namespace === spec.namespace && p.name === podSpec.name) ??
      (await this.lab.addPod(podSpec));
    const token = randomBytes(24).toString('base64url');
    const tokenFile = join(dir, `token-waypoint-${spec.namespace}-${spec.name}`);
    await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
    const table = JSON.parse(await readFile(join(dir, 'tokens.json'), 'utf8')) as Record<string, unknown>;
    table[token] = { namespace: spec.namespace, serviceAccount: spec.name };
    await writeFile(join(dir, '.tokens.json'), JSON.stringify(table, null, 2), { mode: 0o600 });
    await rename(join(dir, '.tokens.json'), join(dir, 'tokens.json'));

    const m = this.manifestDir;
    await writeManifest(m, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: spec.name, namespace: spec.namespace },
    });
    await writeManifest(m, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: pod.name, namespace: pod.namespace, labels: pod.labels ?? {} },
      spec: { nodeName: `node${node}`, serviceAccountName: spec.name },
      status: { phase: 'Running', podIP: pod.ip },
    });
    await writeManifest(m, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name: spec.name,
        namespace: spec.namespace,
        labels: { [GATEWAY_NAME_LABEL]: spec.name, ...MANAGED },
      },
      spec: {
        clusterIP: vip,
        selector: { [GATEWAY_NAME_LABEL]: spec.name },
        ports: [{ name: 'mesh', port: 15008, targetPort: 15008, appProtocol: 'all' }],
      },
    });
    await writeManifest(m, waypointGateway(spec));
    const child = this.startWaypoint(pod, spec.name, tokenFile);
    return { pod, vip, ...(child !== undefined && { pid: child }) };
  }

  /** Starts (or restarts) a waypoint pod's process. */
  startWaypoint(pod: LabPod, gateway: string, tokenFile: string): number | undefined {
    const { dir } = this.options;
    const child = this.lab.start(
      pod.netns,
      [...WITH_ULIMIT, waypointEntry()],
      {
        WP_XDS_ADDRESS: this.controlPlaneAddress,
        WP_ROOT_CERT: join(dir, 'ca', 'root-cert.pem'),
        WP_TOKEN_FILE: tokenFile,
        WP_NAMESPACE: pod.namespace,
        WP_GATEWAY_NAME: gateway,
        WP_SERVICE_ACCOUNT: gateway,
        WP_POD_NAME: pod.name,
        WP_INSTANCE_IP: pod.ip,
        WP_METRICS_ADDRESS: pod.ip,
        WP_LOG_LEVEL: this.options.logLevel ?? 'warn',
      },
      openSync(join(dir, `waypoint-${pod.namespace}-${gateway}.log`), 'a'),
    );
    return child.pid;
  }

  /** Whether a waypoint pod reports ready (certificate and first config in hand). */
  async waypointReady(pod: LabPod): Promise<boolean> {
    return (await curlIn(pod.netns, `http://${pod.ip}:15021/healthz/ready`).catch(() => '')) === 'ready\n';
  }

  async waitWaypointReady(pod: LabPod, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await this.waypointReady(pod)) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(
      `waypoint ${pod.namespace}/${pod.name} did not become ready (log in ${this.options.dir})`,
    );
  }

  /** A waypoint's Prometheus exposition, scraped from inside its pod. */
  waypointMetrics(pod: LabPod): Promise<string> {
    return curlIn(pod.netns, `http://${pod.ip}:15020/metrics`);
  }

  /** A waypoint's config dump. */
  async waypointConfigDump(pod: LabPod): Promise<Record<string, unknown>> {
    return JSON.parse(await curlIn(pod.netns, 'http://127.0.0.1:15000/config_dump')) as Record<
      string,
      unknown
    >;
  }

  /** The waypoint a namespace's `istio.io/use-waypoint` label names, if any. */
  async namespaceWaypoint(namespace: string): Promise<string | undefined> {
    const ns = await readManifest(this.manifestDir, { kind: 'Namespace', namespace: '', name: namespace });
    return (ns.metadata as { labels?: Record<string, string> } | undefined)?.labels?.[USE_WAYPOINT_LABEL];
  }

  /**
   * Labels a namespace `istio.io/use-waypoint=<waypoint>` (what `istioctl waypoint apply
   * --enroll-namespace` does), or removes the label.
   */
  async setNamespaceWaypoint(namespace: string, waypoint: string | undefined): Promise<void> {
    await labelManifest(this.manifestDir, { kind: 'Namespace', namespace: '', name: namespace }, [
      waypoint === undefined ? `${USE_WAYPOINT_LABEL}-` : `${USE_WAYPOINT_LABEL}=${waypoint}`,
    ]);
  }

  /** Labels a namespace in or out of ambient enrollment; the control plane pushes the change. */
  async setEnrolled(namespace: string, enrolled: boolean): Promise<void> {
    await labelManifest(this.manifestDir, { kind: 'Namespace', namespace: '', name: namespace }, [
      enrolled ? `${DATAPLANE_MODE_LABEL}=ambient` : `${DATAPLANE_MODE_LABEL}-`,
    ]);
  }

  /** Whether the control plane puts a pod on HBONE: its own label, else its namespace's. */
  async isEnrolled(pod: LabPod): Promise<boolean> {
    const own = pod.labels?.[DATAPLANE_MODE_LABEL];
    if (own) return own === 'ambient';
    const ns = await readManifest(this.manifestDir, {
      kind: 'Namespace',
      namespace: '',
      name: pod.namespace,
    }).catch(() => ({}) as Record<string, unknown>);
    const labels = ((ns.metadata as { labels?: Record<string, string> } | undefined)?.labels ?? {}) as Record<
      string,
      string
    >;
    return labels[DATAPLANE_MODE_LABEL] === 'ambient';
  }

  /** The node agent's Prometheus exposition, scraped from inside the node. */
  async metrics(node: number): Promise<string> {
    const n = this.node(node);
    return curlIn(n.netns, `http://${n.ip}:15020/metrics`);
  }

  /** The node agent's config dump. */
  /** The node agent's loop diagnostics (ZT_LOOP_STATS), starting a new window when `reset`. */
  async loopStats(node: number, reset = false): Promise<Record<string, unknown>> {
    const n = this.node(node);
    const url = `http://127.0.0.1:15000/debug/loop_stats${reset ? '?reset' : ''}`;
    return JSON.parse(await curlIn(n.netns, url)) as Record<string, unknown>;
  }

  async configDump(node: number): Promise<Record<string, unknown>> {
    const n = this.node(node);
    return JSON.parse(await curlIn(n.netns, 'http://127.0.0.1:15000/config_dump')) as Record<string, unknown>;
  }

  /** GET on the control plane's monitoring port (/metrics, /ready, /debug/connections, /debug/config). */
  controlPlaneGet(path: string): Promise<string> {
    const n = this.node(0);
    return curlIn(n.netns, `http://${n.ip}:${CONTROL_PLANE_MONITOR_PORT}${path}`);
  }

  async ready(node: number): Promise<boolean> {
    const n = this.lab.nodes[node];
    if (!n) return false;
    return (await curlIn(n.netns, `http://${n.ip}:15021/healthz/ready`).catch(() => '')) === 'ready\n';
  }

  private node(index: number) {
    const n = this.lab.nodes[index];
    if (!n) throw new Error(`no node${index}`);
    return n;
  }

  private async waitReady(node: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await this.ready(node)) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(
      `ztunnel on node${node} did not become ready in ${timeoutMs} ms (logs in ${this.options.dir})`,
    );
  }

  /** One bearer token per node agent, bound to its node; the control plane gets the table. */
  private async writeTokens(): Promise<void> {
    const { dir } = this.options;
    const table: Record<string, { node: string }> = {};
    for (const node of this.lab.nodes) {
      const token = randomBytes(24).toString('base64url');
      table[token] = { node: `node${node.index}` };
      await writeFile(join(dir, `token-node${node.index}`), `${token}\n`, { mode: 0o600 });
    }
    await writeFile(join(dir, 'tokens.json'), JSON.stringify(table, null, 2), { mode: 0o600 });
  }

  /** What each node's pod runtime knows: pod to network namespace. */
  private async writePodNetns(): Promise<void> {
    for (const node of this.lab.nodes) {
      const map = Object.fromEntries(
        this.lab.pods.filter((p) => p.node === node.index).map((p) => [`${p.namespace}/${p.name}`, p.netns]),
      );
      const file = join(this.options.dir, `pods-node${node.index}.json`);
      await writeFile(`${file}.tmp`, JSON.stringify(map, null, 2));
      await rename(`${file}.tmp`, file);
    }
  }

  private async writeManifests(): Promise<void> {
    const lab = this.lab;
    const dir = this.manifestDir;
    const enrolled = new Set(this.options.enrolledNamespaces);
    const namespaces = new Set([
      ...lab.pods.map((p) => p.namespace),
      ...lab.services.map((s) => s.namespace),
    ]);
    for (const ns of namespaces) {
      await writeManifest(dir, {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: ns, labels: enrolled.has(ns) ? { [DATAPLANE_MODE_LABEL]: 'ambient' } : {} },
      });
    }
    const accounts = new Set(lab.pods.map((p) => `${p.namespace}/${p.serviceAccount ?? 'default'}`));
    for (const a of accounts) {
      const [namespace, name] = a.split('/');
      await writeManifest(dir, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace } });
    }
    for (const p of lab.pods) {
      await writeManifest(dir, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: p.name, namespace: p.namespace, labels: p.labels ?? {} },
        spec: { nodeName: `node${p.node}`, serviceAccountName: p.serviceAccount ?? 'default' },
        status: { phase: 'Running', podIP: p.ip },
      });
    }
    for (const s of lab.services) {
      await writeManifest(dir, {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: s.name, namespace: s.namespace },
        spec: {
          clusterIP: s.vip,
          selector: s.selector,
          ports: s.ports.map((p) => ({
            ...(p.name && { name: p.name }),
            port: p.port,
            targetPort: p.targetPort,
          })),
        },
      });
    }
    const extra = this.options.extraWorkloads ?? 0;
    if (extra > 0) {
      // One JSON list: quick to parse, and kept apart from the lab's own objects.
      const items = Array.from({ length: extra }, (_, i) => ({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `w${i}`, namespace: 'synthetic', labels: { app: `w${i % 50}` } },
        spec: { nodeName: 'elsewhere', serviceAccountName: `sa${i % 50}` },
        status: { podIP: `198.18.${64 + Math.floor(i / 250)}.${(i % 250) + 1}` },
      }));
      await writeFile(
        join(dir, '.synthetic.json'),
        JSON.stringify({ apiVersion: 'v1', kind: 'List', items }),
      );
      await rename(join(dir, '.synthetic.json'), join(dir, 'synthetic.json'));
      await writeManifest(dir, {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: 'synthetic', labels: { [DATAPLANE_MODE_LABEL]: 'ambient' } },
      });
    }
  }

  // Pod churn and process restarts for fault tests.

  /**
   * Schedules a pod on a running mesh as the kubelet and API server would: its namespace and
   * link, its ServiceAccount and Pod objects, and its entry in the node's pod runtime map. The
   * control plane pushes it when it next reads the manifests (at once, or when it is back).
   */
  async addMeshPod(spec: PodSpec): Promise<LabPod> {
    const pod = await this.lab.addPod(spec);
    const m = this.manifestDir;
    const serviceAccount = spec.serviceAccount ?? 'default';
    await writeManifest(m, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: serviceAccount, namespace: spec.namespace },
    });
    await writeManifest(m, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: pod.name, namespace: pod.namespace, labels: pod.labels ?? {} },
      spec: { nodeName: `node${pod.node}`, serviceAccountName: serviceAccount },
      status: { phase: 'Running', podIP: pod.ip },
    });
    await this.writePodNetns();
    return pod;
  }

  /** Deletes a pod's object: the mesh lets it go (its network namespace stays, unused). */
  async removeMeshPod(pod: LabPod): Promise<void> {
    await deleteManifest(this.manifestDir, { kind: 'Pod', namespace: pod.namespace, name: pod.name });
  }

  /** Starts a deployed waypoint's process again (after it died), with its own token. */
  restartWaypoint(pod: LabPod, gateway: string): number | undefined {
    return this.startWaypoint(
      pod,
      gateway,
      join(this.options.dir, `token-waypoint-${pod.namespace}-${gateway}`),
    );
  }
}

function curlIn(netns: string, url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', ['netns', 'exec', netns, 'curl', '-s', '--max-time', '2', url], (err, stdout) =>
      err ? reject(err) : resolve(stdout),
    );
  });
}

/**
 * The mesh on a lab: one CA root for the lab, Istio ztunnel's local config written from the lab's
 * pods and services, and one ztunnel process per node. Pods in enrolled namespaces use HBONE.
 */
import { execFile } from 'node:child_process';
import { openSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { LocalCa } from '@ambient/shared';
import { stringify } from 'yaml';
import type { Lab, LabPod } from './lab.js';

export interface LabMeshOptions {
  /** Working directory: CA root, config file, ztunnel logs. */
  readonly dir: string;
  readonly enrolledNamespaces: readonly string[];
  /** Run the node agents detached, logging to files, so they outlive this process. */
  readonly detached?: boolean;
  readonly logLevel?: string;
  /** Extra workloads on no lab node, to size a node agent's state (benchmarks). */
  readonly extraWorkloads?: number;
}

export function ztunnelEntry(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@ambient/ztunnel')), 'main.js');
}

export class LabMesh {
  readonly pids: number[] = [];
  private enrolled: Set<string>;

  constructor(
    readonly lab: Lab,
    private readonly options: LabMeshOptions,
  ) {
    this.enrolled = new Set(options.enrolledNamespaces);
  }

  get configFile(): string {
    return join(this.options.dir, 'ztunnel.yaml');
  }

  async start(): Promise<void> {
    await mkdir(this.options.dir, { recursive: true });
    await LocalCa.loadOrCreate(join(this.options.dir, 'ca'), { trustDomain: 'cluster.local' });
    await this.writeConfig();
    for (const node of this.lab.nodes) {
      const log = this.options.detached
        ? openSync(join(this.options.dir, `ztunnel-node${node.index}.log`), 'a')
        : undefined;
      const child = this.lab.start(
        node.netns,
        // Thousands of tunnelled connections need more than the default 1024 descriptors: raise the
        // soft limit to the hard one.
        ['sh', '-c', 'ulimit -n "$(ulimit -Hn)" && exec "$0" "$@"', process.execPath, ztunnelEntry()],
        {
          ZT_NODE_NAME: `node${node.index}`,
          ZT_CONFIG_FILE: this.configFile,
          ZT_CA_DIR: join(this.options.dir, 'ca'),
          ZT_METRICS_ADDRESS: node.ip,
          ZT_LOG_LEVEL: this.options.logLevel ?? 'warn',
        },
        log,
      );
      if (child.pid) this.pids.push(child.pid);
    }
    for (const node of this.lab.nodes) await this.waitReady(node.index);
  }

  /** Enrolls or releases a namespace: the node agents pick the change up from the config file. */
  async setEnrolled(namespace: string, enrolled: boolean): Promise<void> {
    if (enrolled) this.enrolled.add(namespace);
    else this.enrolled.delete(namespace);
    await this.writeConfig();
  }

  isEnrolled(pod: LabPod): boolean {
    return this.enrolled.has(pod.namespace);
  }

  /** The node agent's Prometheus exposition, scraped from inside the node. */
  async metrics(node: number): Promise<string> {
    const n = this.lab.nodes[node];
    if (!n) throw new Error(`no node ${node}`);
    return curlIn(n.netns, `http://${n.ip}:15020/metrics`);
  }

  async ready(node: number): Promise<boolean> {
    const n = this.lab.nodes[node];
    if (!n) return false;
    return (await curlIn(n.netns, `http://${n.ip}:15021/healthz/ready`).catch(() => '')) === 'ready\n';
  }

  private async waitReady(node: number): Promise<void> {
    for (let i = 0; i < 300; i++) {
      if (await this.ready(node)) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`ztunnel on node${node} did not become ready in 30 s (logs in ${this.options.dir})`);
  }

  private async writeConfig(): Promise<void> {
    const lab = this.lab;
    const workloads = lab.pods.map((p) => {
      const services: Record<string, Record<number, number>> = {};
      for (const s of lab.services) {
        if (!s.endpoints.includes(p)) continue;
        services[`${s.namespace}/${s.name}.${s.namespace}.svc.cluster.local`] = Object.fromEntries(
          s.ports.map((port) => [port.port, port.targetPort]),
        );
      }
      return {
        uid: `lab//v1/Pod/${p.namespace}/${p.name}`,
        name: p.name,
        namespace: p.namespace,
        serviceAccount: p.serviceAccount ?? 'default',
        workloadIps: [p.ip],
        protocol: this.isEnrolled(p) ? 'HBONE' : 'TCP',
        node: `node${p.node}`,
        netns: p.netns,
        services,
      };
    });
    for (let i = 0; i < (this.options.extraWorkloads ?? 0); i++) {
      workloads.push({
        uid: `lab//v1/Pod/synthetic/w${i}`,
        name: `w${i}`,
        namespace: 'synthetic',
        serviceAccount: `sa${i % 50}`,
        workloadIps: [`198.18.${64 + Math.floor(i / 250)}.${(i % 250) + 1}`],
        protocol: 'HBONE',
        node: 'elsewhere',
        netns: '',
        services: {},
      });
    }
    const services = lab.services.map((s) => ({
      name: s.name,
      namespace: s.namespace,
      hostname: `${s.name}.${s.namespace}.svc.cluster.local`,
      vips: [`/${s.vip}`],
      ports: Object.fromEntries(s.ports.map((p) => [p.port, p.targetPort])),
    }));
    const tmp = `${this.configFile}.tmp`;
    await writeFile(tmp, stringify({ workloads, services, policies: [] }));
    await rename(tmp, this.configFile);
  }
}

function curlIn(netns: string, url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', ['netns', 'exec', netns, 'curl', '-s', '--max-time', '2', url], (err, stdout) =>
      err ? reject(err) : resolve(stdout),
    );
  });
}

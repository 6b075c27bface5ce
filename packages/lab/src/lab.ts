import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { formatProblems } from '@ambient/shared';
import {
  fabricNetns,
  nodeIp,
  nodeLink,
  nodeNetns,
  POD_GATEWAY,
  podIp,
  podLink,
  podNetns,
  podSubnet,
  serviceVip,
  validPrefix,
} from './address-plan.js';
import { type LabSpec, type PodSpec, type ServiceSpec, validateLabSpec } from './lab-spec.js';

const run = promisify(execFile);

export interface LabPod extends PodSpec {
  readonly ip: string;
  readonly netns: string;
  /** Path of the namespace file, for tools that take one (setns). */
  readonly netnsPath: string;
  readonly slot: number;
}

export interface LabService extends ServiceSpec {
  readonly vip: string;
  readonly endpoints: readonly LabPod[];
}

export interface LabNode {
  readonly index: number;
  readonly ip: string;
  readonly netns: string;
}

export class LabError extends Error {
  override readonly name = 'LabError';
}

async function ip(args: string[]): Promise<void> {
  try {
    await run('ip', args);
  } catch (err) {
    throw new LabError(
      `ip ${args.join(' ')}: ${((err as { stderr?: string }).stderr ?? String(err)).trim()}`,
    );
  }
}

/** A veth pair: `link` stays in `netns`, its peer becomes `eth0` inside `peerNetns`. */
function veth(netns: string, link: string, peerNetns: string): Promise<void> {
  return ip(['-n', netns, 'link', 'add', link, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', peerNetns]);
}

async function inNetns(netns: string, cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('ip', ['netns', 'exec', netns, cmd, ...args], (err, stdout, stderr) => {
      if (err) reject(new LabError(`${netns}: ${cmd} ${args.join(' ')}: ${(stderr || err.message).trim()}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/**
 * A cluster made of network namespaces: a fabric namespace bridging the nodes, a namespace per
 * node and per pod, kube-proxy-like VIP rules on every node, and per-pod /etc/hosts. Nothing is
 * connected to the host's own network namespace.
 */
export class Lab {
  readonly nodes: readonly LabNode[];
  private readonly podList: LabPod[];
  readonly services: readonly LabService[];
  private readonly children = new Set<ChildProcess>();
  private destroyed = false;

  private constructor(
    readonly prefix: string,
    spec: LabSpec,
  ) {
    this.nodes = Array.from({ length: spec.nodes }, (_, i) => ({
      index: i,
      ip: nodeIp(i),
      netns: nodeNetns(prefix, i),
    }));
    this.podList = [];
    for (const p of spec.pods) this.podList.push(this.place(p));
    this.services = spec.services.map((s, k) => ({
      ...s,
      vip: serviceVip(k),
      endpoints: this.pods.filter(
        (p) =>
          p.namespace === s.namespace && Object.entries(s.selector).every(([k2, v]) => p.labels?.[k2] === v),
      ),
    }));
  }

  get pods(): readonly LabPod[] {
    return this.podList;
  }

  /** The next slot on the pod's node: a pod's address follows from its place in the spec. */
  private place(p: PodSpec): LabPod {
    const slot = this.podList.filter((x) => x.node === p.node).length;
    const netns = podNetns(this.prefix, p.node, slot);
    return { ...p, slot, ip: podIp(p.node, slot), netns, netnsPath: `/var/run/netns/${netns}` };
  }

  /**
   * Adds a pod to a running lab (a waypoint, say): its namespace, link and routes. Append its
   * spec to the lab's saved spec so that attach() places it the same way.
   */
  async addPod(spec: PodSpec): Promise<LabPod> {
    if (!this.nodes[spec.node]) throw new LabError(`no node${spec.node}`);
    if (this.podList.some((x) => x.namespace === spec.namespace && x.name === spec.name))
      throw new LabError(`pod ${spec.namespace}/${spec.name} exists`);
    const pod = this.place(spec);
    await this.buildPod(pod);
    this.podList.push(pod);
    return pod;
  }

  /** A handle on a lab that is already built (by another process), for exec and teardown. */
  static attach(prefix: string, spec: LabSpec): Lab {
    return new Lab(prefix, spec);
  }

  /** Builds the lab, first removing whatever a crashed run with the same prefix left behind. */
  static async create(prefix: string, input: LabSpec): Promise<Lab> {
    if (!validPrefix(prefix))
      throw new LabError(`prefix ${JSON.stringify(prefix)} must match [a-z][a-z0-9]{0,5}`);
    const spec = validateLabSpec(input);
    if (!spec.ok) throw new LabError(`invalid lab spec: ${formatProblems(spec.problems)}`);
    await Lab.cleanup(prefix);
    const lab = new Lab(prefix, spec.value);
    try {
      await lab.build();
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return lab;
  }

  /** Deletes every namespace and hosts file belonging to labs with this prefix. */
  static async cleanup(prefix: string): Promise<string[]> {
    const { stdout } = await run('ip', ['netns', 'list']);
    const mine = stdout
      .split('\n')
      .map((l) => l.split(' ')[0] ?? '')
      .filter((n) => n.startsWith(`${prefix}-`));
    for (const ns of mine) {
      await ip(['netns', 'del', ns]).catch(() => {});
      await rm(`/etc/netns/${ns}`, { recursive: true, force: true });
    }
    return mine;
  }

  pod(namespace: string, name: string): LabPod {
    const p = this.pods.find((x) => x.namespace === namespace && x.name === name);
    if (!p) throw new LabError(`no pod ${namespace}/${name}`);
    return p;
  }

  service(namespace: string, name: string): LabService {
    const s = this.services.find((x) => x.namespace === namespace && x.name === name);
    if (!s) throw new LabError(`no service ${namespace}/${name}`);
    return s;
  }

  /** Runs a command to completion inside a pod. */
  async exec(
    pod: LabPod,
    cmd: string[],
    timeoutMs = 15_000,
  ): Promise<{ stdout: string; stderr: string; code: number }> {
    return new Promise((resolve) => {
      execFile('ip', ['netns', 'exec', pod.netns, ...cmd], { timeout: timeoutMs }, (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ stdout, stderr, code });
      });
    });
  }

  /**
   * Starts a long-running app inside a pod (or node); it is stopped by destroy(). A `logFile`
   * detaches it (output to the file), so that it outlives this process (`ambientctl lab up`).
   */
  start(
    netns: string,
    cmd: string[],
    env?: Readonly<Record<string, string>>,
    logFile?: number,
  ): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', netns, ...cmd], {
      stdio: logFile === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', logFile, logFile],
      detached: logFile !== undefined,
      ...(env && { env: { ...process.env, ...env } }),
    });
    if (logFile !== undefined) child.unref();
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    const exits = [...this.children].map(
      (c) =>
        new Promise<void>((resolve) => {
          // Not unref'd: this wait must keep the process alive until the namespaces are removed.
          const t = setTimeout(resolve, 3_000);
          c.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
        }),
    );
    for (const c of this.children) c.kill('SIGTERM');
    await Promise.all(exits);
    await Lab.cleanup(this.prefix);
  }

  /** Namespaces of this lab's processes are gone with the lab; kill strays started detached. */
  static killProcesses(pids: readonly number[]): void {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
  }

  private async build(): Promise<void> {
    const fabric = fabricNetns(this.prefix);
    await ip(['netns', 'add', fabric]);
    await ip(['-n', fabric, 'link', 'set', 'lo', 'up']);
    await ip(['-n', fabric, 'link', 'add', 'br0', 'type', 'bridge']);
    await ip(['-n', fabric, 'link', 'set', 'br0', 'up']);
    for (const node of this.nodes) {
      await ip(['netns', 'add', node.netns]);
      const link = nodeLink(this.prefix, node.index);
      await veth(fabric, link, node.netns);
      await ip(['-n', fabric, 'link', 'set', link, 'master', 'br0', 'up']);
      await ip(['-n', node.netns, 'link', 'set', 'lo', 'up']);
      await ip(['-n', node.netns, 'addr', 'add', `${node.ip}/24`, 'dev', 'eth0']);
      await ip(['-n', node.netns, 'link', 'set', 'eth0', 'up']);
      await inNetns(node.netns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
      for (const other of this.nodes) {
        if (other.index !== node.index) {
          await ip(['-n', node.netns, 'route', 'add', podSubnet(other.index), 'via', other.ip]);
        }
      }
    }
    for (const pod of this.pods) await this.buildPod(pod);
    if (this.services.length > 0) {
      const rules = this.kubeProxyRules();
      for (const node of this.nodes) await inNetns(node.netns, 'iptables-restore', ['--noflush'], rules);
    }
  }

  private async buildPod(pod: LabPod): Promise<void> {
    const node = this.nodes[pod.node] as LabNode;
    const link = podLink(this.prefix, pod.node, pod.slot);
    await ip(['netns', 'add', pod.netns]);
    await veth(node.netns, link, pod.netns);
    await ip(['-n', node.netns, 'addr', 'add', `${POD_GATEWAY}/32`, 'dev', link]);
    await ip(['-n', node.netns, 'link', 'set', link, 'up']);
    await ip(['-n', node.netns, 'route', 'add', `${pod.ip}/32`, 'dev', link]);
    await ip(['-n', pod.netns, 'link', 'set', 'lo', 'up']);
    await ip(['-n', pod.netns, 'addr', 'add', `${pod.ip}/32`, 'dev', 'eth0']);
    await ip(['-n', pod.netns, 'link', 'set', 'eth0', 'up']);
    await ip(['-n', pod.netns, 'route', 'add', POD_GATEWAY, 'dev', 'eth0', 'scope', 'link']);
    await ip(['-n', pod.netns, 'route', 'add', 'default', 'via', POD_GATEWAY, 'dev', 'eth0']);
    await this.writeHosts(pod);
  }

  /** Per-pod /etc/hosts (ip netns exec bind-mounts /etc/netns/<ns>/hosts over /etc/hosts). */
  private async writeHosts(pod: LabPod): Promise<void> {
    const lines = ['127.0.0.1 localhost', `${pod.ip} ${pod.name}`];
    for (const s of this.services) {
      const fqdn = `${s.name}.${s.namespace}.svc.cluster.local`;
      const names =
        s.namespace === pod.namespace
          ? `${fqdn} ${s.name}.${s.namespace} ${s.name}`
          : `${fqdn} ${s.name}.${s.namespace}`;
      lines.push(`${s.vip} ${names}`);
    }
    await mkdir(`/etc/netns/${pod.netns}`, { recursive: true });
    await writeFile(`/etc/netns/${pod.netns}/hosts`, `${lines.join('\n')}\n`);
  }

  /** kube-proxy's iptables mode in miniature: VIP:port DNAT to a random ready endpoint. */
  kubeProxyRules(): string {
    const lines = [
      '*nat',
      ':LAB-SERVICES - [0:0]',
      '-A PREROUTING -j LAB-SERVICES',
      '-A OUTPUT -j LAB-SERVICES',
    ];
    this.services.forEach((s, k) => {
      s.ports.forEach((port, j) => {
        const chain = `LAB-SVC-${k}-${j}`;
        lines.push(`:${chain} - [0:0]`);
        lines.push(`-A LAB-SERVICES -d ${s.vip}/32 -p tcp --dport ${port.port} -j ${chain}`);
        const eps = s.endpoints;
        eps.forEach((ep, e) => {
          const remaining = eps.length - e;
          const pick =
            remaining > 1 ? `-m statistic --mode random --probability ${(1 / remaining).toFixed(5)} ` : '';
          lines.push(`-A ${chain} ${pick}-p tcp -j DNAT --to-destination ${ep.ip}:${port.targetPort}`);
        });
        // No endpoints: no DNAT, and nodes have no default route, so the client gets "unreachable".
      });
    });
    lines.push('COMMIT');
    return `${lines.join('\n')}\n`;
  }
}

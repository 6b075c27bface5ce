/** Pods on a real kube-apiserver as a kubelet would have them, and the rules inside a pod's netns. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { WorkloadInfo, ZtunnelLink } from '@ambient/cni';
import type { KubeApiServer } from '@ambient/lab';
import type { PodNetns } from './pod-netns.js';

const run = promisify(execFile);

/** ztunnel's side of ZDS, recorded; `down` makes it refuse every workload. */
export class RecordingLink implements ZtunnelLink {
  readonly calls: string[] = [];
  down = false;
  async addWorkload(uid: string, netnsPath: string, info: WorkloadInfo): Promise<void> {
    if (this.down) {
      this.calls.push(`refused ${uid}`);
      throw new Error('no ztunnel connected');
    }
    this.calls.push(`add ${uid} ${netnsPath} ${info.namespace}/${info.name} ${info.serviceAccount}`);
  }
  async removeWorkload(uid: string): Promise<void> {
    this.calls.push(`del ${uid}`);
  }
}

export class KubePods {
  constructor(private readonly api: KubeApiServer) {}

  async kubectl(...args: string[]): Promise<string> {
    return (await run('kubectl', ['--kubeconfig', this.api.kubeconfig, ...args], { encoding: 'utf8' }))
      .stdout;
  }

  async apply(obj: object): Promise<void> {
    const p = execFile('kubectl', ['--kubeconfig', this.api.kubeconfig, 'apply', '-f', '-']);
    let err = '';
    p.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    p.stdin?.end(JSON.stringify(obj));
    const code = await new Promise<number | null>((r) => p.once('exit', r));
    if (code !== 0) throw new Error(`kubectl apply: ${err}`);
  }

  /** A namespace with the `default` account the ServiceAccount admission plugin looks for. */
  async namespace(name: string, labels: Record<string, string> = {}): Promise<void> {
    await this.kubectl('create', 'namespace', name);
    await this.kubectl('create', 'serviceaccount', '-n', name, 'default');
    for (const [k, v] of Object.entries(labels)) await this.kubectl('label', 'namespace', name, `${k}=${v}`);
  }

  /** Creates the pod through the API as scheduled on `node`; returns its UID. */
  async createPod(
    namespace: string,
    name: string,
    node: string,
    labels: Record<string, string> = {},
  ): Promise<string> {
    await this.apply({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace, labels },
      spec: {
        nodeName: node,
        automountServiceAccountToken: false,
        containers: [{ name: 'app', image: 'lab/app:test' }],
      },
    });
    return (await this.kubectl('get', 'pod', '-n', namespace, name, '-o', 'jsonpath={.metadata.uid}')).trim();
  }

  /** What a kubelet reports once the sandbox is up: Running, with the pod's IP. */
  async patchRunning(namespace: string, name: string, ip: string): Promise<void> {
    const patch = { status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] } };
    await this.kubectl(
      'patch',
      'pod',
      '-n',
      namespace,
      name,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify(patch),
    );
  }
}

/** The rules the agent owns inside a pod's netns: the iptables chains and the policy rule. */
export async function rulesIn(n: PodNetns): Promise<{ iptables: boolean; ipRule: boolean }> {
  const saved = (await run('ip', ['netns', 'exec', n.name, 'iptables-save'], { encoding: 'utf8' })).stdout;
  const rules = (await run('ip', ['-n', n.name, 'rule', 'show'], { encoding: 'utf8' })).stdout;
  return {
    iptables: saved.includes('-A ISTIO_OUTPUT') && saved.includes('--to-ports 15001'),
    ipRule: /fwmark 0x111\/0xfff lookup 100/.test(rules),
  };
}

export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

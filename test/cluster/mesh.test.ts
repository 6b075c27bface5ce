/**
 * The mesh on a real one-node Kubernetes (KubeCluster): the images built offline and imported, the
 * umbrella chart installed with Helm, demo pods enrolled by a namespace label, and what crosses the
 * node's bridge captured with tcpdump: between enrolled pods only HBONE (TLS on 15008), plaintext
 * again once the label goes. Prints the time of each step and the memory of our components.
 */
import { execFile, spawn } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { fetchFromZtunnel, findZtunnelPods, KubeClient, runCli } from '@ambient/cli';
import { KubeCluster, kubeBinaries, singleBinaryImageArchive } from '@ambient/lab';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { helm } from '../charts/helm.js';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const isRoot = process.getuid?.() === 0;
const PREFIX = `m${process.pid % 100000}`;
const IMAGE_DIR = path.join(ROOT, 'node_modules/.cache/mesh-images');
const BUSYBOX_IMAGE = 'ambient.local/busybox:mesh';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const since = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(1)} s`;

/** The demo: a busybox httpd Deployment and Service, and a client pod. */
const demoObjects = [
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'demo' } },
  {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'demo' },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: {
          terminationGracePeriodSeconds: 0,
          containers: [
            {
              name: 'httpd',
              image: BUSYBOX_IMAGE,
              command: [
                '/bin/busybox',
                'sh',
                '-c',
                'mkdir -p /www && echo web > /www/index.html && echo admin > /www/admin && exec /bin/busybox httpd -f -p 80 -h /www',
              ],
              ports: [{ containerPort: 80 }],
            },
          ],
        },
      },
    },
  },
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'demo' },
    spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 80 }] },
  },
  clientPod('client'),
];

function clientPod(name: string) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'demo', labels: { app: name } },
    spec: {
      terminationGracePeriodSeconds: 0,
      containers: [{ name: 'client', image: BUSYBOX_IMAGE, command: ['/bin/busybox', 'sleep', '3600'] }],
    },
  };
}

interface Packet {
  readonly src: string;
  readonly sport: number;
  readonly dst: string;
  readonly dport: number;
  /** A connection's first packet (SYN without ACK). */
  readonly syn: boolean;
  readonly text: string;
}

/** tcpdump -nn -A lines into packets (header line, then the payload's printable text). */
function parseCapture(out: string): Packet[] {
  const packets: { src: string; sport: number; dst: string; dport: number; syn: boolean; text: string }[] =
    [];
  const header = /\bIP (\d+\.\d+\.\d+\.\d+)\.(\d+) > (\d+\.\d+\.\d+\.\d+)\.(\d+):/;
  for (const line of out.split('\n')) {
    const m = header.exec(line);
    const last = packets[packets.length - 1];
    if (m)
      packets.push({
        src: m[1] ?? '',
        sport: Number(m[2]),
        dst: m[3] ?? '',
        dport: Number(m[4]),
        syn: line.includes('Flags [S],'),
        text: '',
      });
    else if (last) last.text += `${line}\n`;
  }
  return packets;
}

/** RSS (MiB) of our components' processes in this cluster's pods, by component (summed over replicas). */
async function meshMemory(prefix: string): Promise<Record<string, string>> {
  const out: Record<string, number[]> = {};
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const cmdline = await readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '');
    const m = /\/app\/packages\/(controlplane|ztunnel|cni|waypoint)\/dist\/main\.js/.exec(cmdline);
    if (!m?.[1]) continue;
    const cgroup = await readFile(`/proc/${e}/cgroup`, 'utf8').catch(() => '');
    if (!cgroup.includes(`ambient-kube-${prefix}`)) continue;
    const status = await readFile(`/proc/${e}/status`, 'utf8').catch(() => '');
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    out[m[1]] ??= [];
    out[m[1]]?.push(kb / 1024);
  }
  return Object.fromEntries(
    Object.entries(out).map(([k, v]) => [k, `${v.map((x) => x.toFixed(0)).join('+')} (${v.length})`]),
  );
}

describe.skipIf(!isRoot)('the mesh installed with Helm on a real one-node Kubernetes', () => {
  let cluster: KubeCluster;
  const timings: string[] = [];
  const note = (line: string) => {
    timings.push(line);
    console.log(line);
  };
  const helmEnv = () => ({ KUBECONFIG: cluster.kubeconfig });
  const kubectl = (args: string[], stdin?: string) => cluster.kubectl(args, stdin);
  const apply = (objects: unknown[]) =>
    kubectl(['apply', '-f', '-'], objects.map((o) => JSON.stringify(o)).join('\n'));
  /** A request from a demo pod, bounded from inside; answers the body or the error, and wget's exit code. */
  const request = async (pod: string, url: string) => {
    const out = await kubectl([
      'exec',
      '-n',
      'demo',
      pod,
      '--',
      '/bin/busybox',
      'sh',
      '-c',
      `/bin/busybox timeout 10 /bin/busybox wget -q -O- ${url} 2>&1; echo "rc=$?"`,
    ]);
    const m = /rc=(\d+)\s*$/.exec(out);
    return { body: out.replace(/rc=\d+\s*$/, ''), ok: m?.[1] === '0' };
  };
  const podIp = async (ns: string, selector: string) =>
    (
      await kubectl(['get', 'pods', '-n', ns, '-l', selector, '-o', 'jsonpath={.items[0].status.podIP}'])
    ).trim();
  const waitFor = async (what: string, check: () => Promise<boolean>, ms: number) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (await check().catch(() => false)) return;
      await sleep(500);
    }
    throw new Error(`timed out after ${ms} ms waiting for ${what}`);
  };
  /** Captures TCP between two addresses on the node's bridge while `during` runs (bounded by count and time). */
  const capture = async (a: string, b: string | undefined, during: () => Promise<void>) => {
    const dump = spawn(
      'nsenter',
      [
        `--net=${cluster.netnsPath}`,
        '--',
        'tcpdump',
        '-i',
        'cni0',
        '-nn',
        '-l',
        '-A',
        '-c',
        '400',
        b ? `tcp and host ${a} and host ${b}` : `tcp and host ${a}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    dump.stdout.on('data', (d: Buffer) => {
      out += d.toString('latin1');
    });
    dump.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const exited = new Promise<void>((r) => dump.on('close', () => r()));
    const limit = setTimeout(() => dump.kill('SIGINT'), 30_000);
    try {
      await waitFor('tcpdump to listen', async () => err.includes('listening on'), 10_000);
      await during();
      await sleep(300);
    } finally {
      dump.kill('SIGINT');
      await exited;
      clearTimeout(limit);
    }
    return parseCapture(out);
  };
  const rollout = (kind: string, name: string, ns = 'istio-system', timeout = '120s') =>
    kubectl(['rollout', 'status', '-n', ns, `${kind}/${name}`, `--timeout=${timeout}`]);
  const meshReady = async () => {
    await rollout('deployment', 'controlplane');
    await rollout('daemonset', 'ztunnel');
    await rollout('daemonset', 'ambient-cni-node');
  };
  const cli = async (args: string[]) => {
    let out = '';
    let err = '';
    const code = await runCli(args, {
      env: { PATH: process.env.PATH },
      out: (l) => {
        out += `${l}\n`;
      },
      err: (l) => {
        err += `${l}\n`;
      },
      signal: AbortSignal.timeout(60_000),
    });
    return { code, out, err };
  };

  beforeAll(async () => {
    let t0 = Date.now();
    const { stdout } = await run(
      'node',
      [path.join(ROOT, 'scripts/image/build-images.mjs'), 'build', '--out', IMAGE_DIR],
      { timeout: 300_000, maxBuffer: 1 << 24 },
    );
    expect(stdout).toContain('ambient-mesh/cni:0.1.0');
    note(`images built in ${since(t0)}`);
    t0 = Date.now();
    cluster = await KubeCluster.start({ prefix: PREFIX, binDir: await kubeBinaries(ROOT) });
    note(`cluster up in ${since(t0)}`);
    t0 = Date.now();
    await run(
      'node',
      [
        path.join(ROOT, 'scripts/image/build-images.mjs'),
        'import',
        '--out',
        IMAGE_DIR,
        '--address',
        cluster.containerdSocket,
      ],
      { timeout: 180_000 },
    );
    const archive = path.join(cluster.dir, 'busybox-image.tar');
    await writeFile(
      archive,
      singleBinaryImageArchive({
        ref: BUSYBOX_IMAGE,
        path: 'bin/busybox',
        binary: await readFile('/bin/busybox'),
        entrypoint: ['/bin/busybox'],
      }),
    );
    await cluster.importImage(archive);
    note(`images imported in ${since(t0)}`);
  }, 420_000);

  afterAll(async () => {
    if (cluster) {
      const memory = await cluster.memory().catch(() => ({}));
      console.log(
        `memory (RSS MiB): ${Object.entries(memory)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}`,
      );
      const t0 = Date.now();
      await cluster.stop().catch(() => {});
      console.log(`teardown in ${since(t0)}`);
    }
    await KubeCluster.cleanup(PREFIX);
    console.log(timings.join('\n'));
  }, 120_000);

  it('installs the umbrella chart with --wait: control plane 2 replicas Ready, ztunnel and cni DaemonSets Ready', async () => {
    const t0 = Date.now();
    const r = await helm(
      [
        'install',
        'ambient',
        path.join(ROOT, 'charts/ambient'),
        '-n',
        'istio-system',
        '--create-namespace',
        '--set',
        'base.gatewayAPI.installCRDs=true',
        '--set',
        `cni.cniBinDir=${cluster.cniBinDir}`,
        '--set',
        `cni.cniConfDir=${cluster.cniConfDir}`,
        '--set',
        `cni.cniNetnsDir=${cluster.containerdState}/io.containerd.grpc.v1.cri/netns`,
        '--wait',
        '--timeout',
        '180s',
      ],
      helmEnv(),
    );
    expect(r.stderr.replace(/.*found symbolic link.*\n/g, '')).toBe('');
    expect(r.code).toBe(0);
    note(`helm install --wait in ${since(t0)}`);
    // Helm's --wait counts a DaemonSet with maxUnavailable 1 ready at 0 of 1: wait for the rollouts too.
    await meshReady();
    note(`mesh Ready (control plane, ztunnel, cni) in ${since(t0)}`);
    const cp = JSON.parse(
      await kubectl(['get', 'deployment', '-n', 'istio-system', 'controlplane', '-o', 'json']),
    );
    expect(cp.status.readyReplicas).toBe(2);
    for (const ds of ['ztunnel', 'ambient-cni-node']) {
      const d = JSON.parse(await kubectl(['get', 'daemonset', '-n', 'istio-system', ds, '-o', 'json']));
      expect(d.status.numberReady, ds).toBe(1);
    }
    // The agent chained its plugin into the cluster's conflist.
    const conf = JSON.parse(await readFile(cluster.cniConfFile, 'utf8'));
    expect(conf.plugins.map((p: { type: string }) => p.type)).toEqual(['bridge', 'portmap', 'ambient-cni']);
  }, 240_000);

  it('enrolls the demo namespace by label: only HBONE (TLS on 15008) crosses the bridge between the pods, and plaintext again once the label goes', async () => {
    let t0 = Date.now();
    await apply(demoObjects);
    await rollout('deployment', 'web', 'demo', '90s');
    await kubectl(['wait', '-n', 'demo', '--for=condition=Ready', 'pod/client', '--timeout=90s']);
    note(`demo pods Ready in ${since(t0)}`);
    const client = await podIp('demo', 'app=client');
    const web = await podIp('demo', 'app=web');
    expect((await request('client', 'http://web/')).body).toBe('web\n');

    t0 = Date.now();
    await kubectl(['label', 'namespace', 'demo', 'istio.io/dataplane-mode=ambient']);
    // Enrolled once a request goes over 15008 (the agent installs the rules, ztunnel takes the pods).
    await waitFor(
      'the demo pods to be captured',
      async () => {
        const packets = await capture(client, web, async () => {
          await request('client', 'http://web/');
        });
        return packets.length > 0 && packets.every((p) => p.sport === 15008 || p.dport === 15008);
      },
      60_000,
    );
    note(`demo enrolled (first request over 15008) ${since(t0)} after the label`);
    let answers: { ok: boolean; body: string }[] = [];
    const packets = await capture(client, web, async () => {
      answers = [];
      for (let i = 0; i < 3; i++) answers.push(await request('client', 'http://web/'));
    });
    expect(answers.map((a) => a.body)).toEqual(['web\n', 'web\n', 'web\n']);
    expect(packets.length).toBeGreaterThan(0);
    for (const p of packets) {
      expect([p.sport, p.dport], `${p.src}:${p.sport} > ${p.dst}:${p.dport}`).toContain(15008);
      expect(p.text).not.toContain('GET /');
      expect(p.text).not.toContain('HTTP/1.');
    }
    // A TLS handshake record (content type 22, version 3.x) opens the connection to 15008.
    const sent = packets
      .filter((p) => p.dport === 15008)
      .map((p) => p.text)
      .join('');
    expect(sent.length).toBeGreaterThan(0);

    t0 = Date.now();
    await kubectl(['label', 'namespace', 'demo', 'istio.io/dataplane-mode-']);
    let plain: Packet[] = [];
    await waitFor(
      'plaintext after the label was removed',
      async () => {
        plain = await capture(client, web, async () => {
          expect((await request('client', 'http://web/')).body).toBe('web\n');
        });
        return plain.some((p) => p.dport === 80 && p.text.includes('GET / HTTP/1.'));
      },
      60_000,
    );
    note(`demo un-enrolled (plaintext on 80) ${since(t0)} after the label went`);
    // No new connection goes to 15008 (an HBONE connection pooled before may still be closing).
    expect(plain.some((p) => p.syn && p.dport === 15008)).toBe(false);
    expect(plain.some((p) => p.syn && p.dport === 80)).toBe(true);
    await kubectl(['label', 'namespace', 'demo', 'istio.io/dataplane-mode=ambient']);
  }, 300_000);

  it('captures a pod started after enrollment from its first connection', async () => {
    const t0 = Date.now();
    await apply([clientPod('late')]);
    await kubectl(['wait', '-n', 'demo', '--for=condition=Ready', 'pod/late', '--timeout=90s']);
    note(`pod started in the enrolled namespace Ready in ${since(t0)}`);
    const late = await podIp('demo', 'app=late');
    const web = await podIp('demo', 'app=web');
    let first = { ok: false, body: '' };
    const packets = await capture(late, web, async () => {
      first = await request('late', 'http://web/');
    });
    expect(first.body).toBe('web\n');
    expect(packets.length).toBeGreaterThan(0);
    for (const p of packets) {
      expect([p.sport, p.dport], `${p.src}:${p.sport} > ${p.dst}:${p.dport}`).toContain(15008);
      expect(p.text).not.toContain('GET /');
    }
  }, 150_000);

  const ztunnelMetrics = async () => {
    const kube = KubeClient.fromFile(cluster.kubeconfig);
    const [pod] = await findZtunnelPods(kube, { namespace: 'istio-system', selector: 'app=ztunnel' });
    if (!pod) throw new Error('no ztunnel pod');
    return fetchFromZtunnel(kube, pod, 'metrics');
  };
  const denials = (metrics: string) =>
    metrics
      .split('\n')
      .filter(
        (l) => l.startsWith('istio_tcp_connections_failed_total{') && l.includes('response_flags="DENY"'),
      )
      .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);

  it('denies the client by an AuthorizationPolicy, and the ztunnel counts the denial', async () => {
    const before = denials(await ztunnelMetrics());
    const t0 = Date.now();
    await apply([
      {
        apiVersion: 'security.istio.io/v1',
        kind: 'AuthorizationPolicy',
        metadata: { name: 'deny-client', namespace: 'demo' },
        spec: {
          selector: { matchLabels: { app: 'web' } },
          action: 'DENY',
          rules: [{ from: [{ source: { principals: ['cluster.local/ns/demo/sa/default'] } }] }],
        },
      },
    ]);
    await waitFor(
      'the policy to deny the client',
      async () => !(await request('client', 'http://web/')).ok,
      30_000,
    );
    note(`AuthorizationPolicy enforced ${since(t0)} after it was applied`);
    let after = before;
    await waitFor(
      'the denial in the metrics',
      async () => {
        after = denials(await ztunnelMetrics());
        return after > before;
      },
      15_000,
    );
    expect(after).toBeGreaterThan(before);
    await kubectl(['delete', 'authorizationpolicy', '-n', 'demo', 'deny-client']);
    await waitFor(
      'the client allowed again',
      async () => (await request('client', 'http://web/')).ok,
      30_000,
    );
  }, 120_000);

  it('deploys a waypoint with ambientctl: the controller makes its Deployment and Service, Programmed, and an L7 policy on it answers 403 for the denied path only', async () => {
    const t0 = Date.now();
    const r = await cli([
      'waypoint',
      'apply',
      '-n',
      'demo',
      '--enroll-namespace',
      '--wait',
      '--waypoint-timeout',
      '120s',
      '--kubeconfig',
      cluster.kubeconfig,
    ]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('waypoint demo/waypoint applied');
    await rollout('deployment', 'waypoint', 'demo', '120s');
    note(`waypoint applied and Ready in ${since(t0)}`);
    const gw = JSON.parse(await kubectl(['get', 'gateway', '-n', 'demo', 'waypoint', '-o', 'json']));
    expect(gw.status.conditions.find((c: { type: string }) => c.type === 'Programmed')?.status).toBe('True');
    expect((await kubectl(['get', 'service', '-n', 'demo', 'waypoint', '-o', 'name'])).trim()).toBe(
      'service/waypoint',
    );
    expect(
      (
        await kubectl([
          'get',
          'namespace',
          'demo',
          '-o',
          'jsonpath={.metadata.labels.istio\\.io/use-waypoint}',
        ])
      ).trim(),
    ).toBe('waypoint');
    await apply([
      {
        apiVersion: 'security.istio.io/v1',
        kind: 'AuthorizationPolicy',
        metadata: { name: 'no-admin', namespace: 'demo' },
        spec: {
          targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }],
          action: 'DENY',
          rules: [{ to: [{ operation: { paths: ['/admin'] } }] }],
        },
      },
    ]);
    let denied = { ok: true, body: '' };
    await waitFor(
      'the waypoint to answer 403 for /admin',
      async () => {
        denied = await request('client', 'http://web/admin');
        return denied.body.includes('403');
      },
      60_000,
    );
    note(`L7 policy on the waypoint enforced ${since(t0)} after the apply`);
    expect(denied.ok).toBe(false);
    const allowed = await request('client', 'http://web/');
    expect(allowed).toEqual({ ok: true, body: 'web\n' });
  }, 240_000);

  it('ambientctl metrics prints the node agent connections and bytes, and ztunnel-config workloads lists the demo pods', async () => {
    let t0 = Date.now();
    const m = await cli(['metrics', '--kubeconfig', cluster.kubeconfig]);
    expect(m.err).toBe('');
    expect(m.code).toBe(0);
    note(`ambientctl metrics in ${since(t0)}`);
    console.log(m.out.trim());
    expect(m.out).toContain(cluster.nodeName);
    expect(m.out).toMatch(/client/);
    t0 = Date.now();
    const w = await cli(['ztunnel-config', 'workloads', '--kubeconfig', cluster.kubeconfig]);
    expect(w.err).toBe('');
    expect(w.code).toBe(0);
    note(`ambientctl ztunnel-config workloads in ${since(t0)}`);
    console.log(w.out.trim());
    for (const name of ['client', 'late', 'web-']) expect(w.out).toContain(name);
    expect(w.out.split('\n').some((l) => l.includes('client') && l.includes('HBONE'))).toBe(true);
  }, 90_000);

  it('node agent restart: the DaemonSet recreates the ztunnel, enrolled pods stay captured meanwhile (no plaintext escapes), and new connections work again', async () => {
    const client = await podIp('demo', 'app=client');
    const old = (
      await kubectl([
        'get',
        'pods',
        '-n',
        'istio-system',
        '-l',
        'app=ztunnel',
        '-o',
        'jsonpath={.items[0].metadata.name}',
      ])
    ).trim();
    const t0 = Date.now();
    const answers: boolean[] = [];
    const packets = await capture(client, undefined, async () => {
      await kubectl(['delete', 'pod', '-n', 'istio-system', old, '--wait=false']);
      // Requests while the agent is away: refused or answered through a ztunnel, never around it.
      const end = Date.now() + 60_000;
      for (let i = 0; i < 40 && Date.now() < end; i++) {
        const r = await request('client', 'http://web/');
        answers.push(r.ok);
        const pods = await kubectl([
          'get',
          'pods',
          '-n',
          'istio-system',
          '-l',
          'app=ztunnel',
          '-o',
          'jsonpath={.items[*].metadata.name}',
        ]);
        if (r.ok && !pods.includes(old)) break;
        await sleep(500);
      }
    });
    await rollout('daemonset', 'ztunnel');
    note(
      `ztunnel restarted and Ready in ${since(t0)}; requests meanwhile: ${answers.map((a) => (a ? 'ok' : 'refused')).join(' ')}`,
    );
    for (const p of packets) {
      expect([p.sport, p.dport], `${p.src}:${p.sport} > ${p.dst}:${p.dport}`).toContain(15008);
      expect(p.text).not.toContain('GET /');
    }
    await waitFor(
      'a request through the new ztunnel',
      async () => (await request('client', 'http://web/')).ok,
      60_000,
    );
    const after = await capture(client, undefined, async () => {
      expect(await request('client', 'http://web/')).toEqual({ ok: true, body: 'web\n' });
    });
    expect(after.length).toBeGreaterThan(0);
    for (const p of after) expect([p.sport, p.dport]).toContain(15008);
  }, 240_000);

  it('helm upgrade changing the log level keeps the mesh working', async () => {
    const t0 = Date.now();
    const r = await helm(
      [
        'upgrade',
        'ambient',
        path.join(ROOT, 'charts/ambient'),
        '-n',
        'istio-system',
        '--reuse-values',
        '--set',
        'global.logLevel=debug',
        '--wait',
        '--timeout',
        '180s',
      ],
      helmEnv(),
    );
    expect(r.code, r.stderr).toBe(0);
    await meshReady();
    note(`helm upgrade --wait and rollouts in ${since(t0)}`);
    const ds = JSON.parse(await kubectl(['get', 'daemonset', '-n', 'istio-system', 'ztunnel', '-o', 'json']));
    const env = ds.spec.template.spec.containers[0].env as { name: string; value?: string }[];
    expect(env.find((e) => e.name === 'ZT_LOG_LEVEL')?.value).toBe('debug');
    await waitFor(
      'a request after the upgrade',
      async () => (await request('client', 'http://web/')).ok,
      60_000,
    );
    const client = await podIp('demo', 'app=client');
    const packets = await capture(client, undefined, async () => {
      expect(await request('client', 'http://web/')).toEqual({ ok: true, body: 'web\n' });
    });
    expect(packets.length).toBeGreaterThan(0);
    for (const p of packets) expect([p.sport, p.dport]).toContain(15008);
    // Everything of ours is running here (control plane, ztunnel, cni agent, waypoint).
    const ours = await meshMemory(PREFIX);
    note(
      `memory of the mesh (RSS MiB per process): ${Object.entries(ours)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    );
    expect(Object.keys(ours).sort()).toEqual(['cni', 'controlplane', 'waypoint', 'ztunnel']);
  }, 300_000);

  it('un-enrolled then uninstalled with helm: the demo pods talk plaintext again, the plugin is gone from the conflist, and a new pod starts', async () => {
    // As Istio's uninstall steps: un-enroll first (the agent removes the in-pod rules), then uninstall.
    const t0 = Date.now();
    await kubectl(['label', 'namespace', 'demo', 'istio.io/dataplane-mode-', 'istio.io/use-waypoint-']);
    const r = await helm(
      ['uninstall', 'ambient', '-n', 'istio-system', '--wait', '--timeout', '120s'],
      helmEnv(),
    );
    expect(r.code, r.stderr).toBe(0);
    await waitFor(
      'the mesh pods gone',
      async () => (await kubectl(['get', 'pods', '-n', 'istio-system', '-o', 'name'])).trim() === '',
      90_000,
    );
    note(`helm uninstall and mesh pods gone in ${since(t0)}`);
    const client = await podIp('demo', 'app=client');
    const web = await podIp('demo', 'app=web');
    const packets = await capture(client, web, async () => {
      expect(await request('client', `http://${web}/`)).toEqual({ ok: true, body: 'web\n' });
    });
    expect(packets.some((p) => p.dport === 80 && p.text.includes('GET / HTTP/1.'))).toBe(true);
    expect(packets.some((p) => p.syn && p.dport === 15008)).toBe(false);
    // The stopping agent saw its DaemonSet go and took its plugin out: pods created after the
    // uninstall start with plain networking instead of waiting for an agent that is gone.
    const conf = JSON.parse(await readFile(cluster.cniConfFile, 'utf8'));
    expect(conf.plugins.map((p: { type: string }) => p.type)).toEqual(['bridge', 'portmap']);
    const t1 = Date.now();
    await apply([clientPod('after')]);
    await kubectl(['wait', '-n', 'demo', '--for=condition=Ready', 'pod/after', '--timeout=90s']);
    note(`a pod created after the uninstall Ready in ${since(t1)}`);
    expect(await request('after', `http://${web}/`)).toEqual({ ok: true, body: 'web\n' });
  }, 300_000);
});

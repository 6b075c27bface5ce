/**
 * A real one-node Kubernetes inside a network namespace (KubeCluster): the node registers Ready,
 * pods run in runc containers from images imported without a registry, reach each other over the
 * CNI bridge and a Service through kube-proxy by its DNS name, DNS follows Service changes, and
 * stopping leaves nothing behind. Prints the start, pod and teardown times and the memory used.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { KUBELET_SYSCTLS, KubeCluster, kubeBinaries, singleBinaryImageArchive } from '@ambient/lab';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const isRoot = process.getuid?.() === 0;
const PREFIX = `k${process.pid % 100000}`;
const BUSYBOX_IMAGE = 'ambient.local/busybox:test';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** kubelet's and the CNI library's fixed machine paths that exist. */
const fixedPaths = async () => {
  const out: string[] = [];
  for (const p of ['/var/lib/kubelet', '/var/lib/cni', '/usr/libexec/kubernetes'])
    if (
      await readdir(p).then(
        () => true,
        () => false,
      )
    )
      out.push(p);
  return out;
};

const readSysctls = async () =>
  Object.fromEntries(
    await Promise.all(
      KUBELET_SYSCTLS.map(async (k) => [k, (await readFile(`/proc/sys/${k}`, 'utf8')).trim()] as const),
    ),
  );

/** Two web pods as the brief's users would write them: the pause image, busybox from the host. */
const webPod = (name: string) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, labels: { app: 'web' } },
  spec: {
    containers: [
      {
        name: 'httpd',
        image: 'ambient.local/pause:v1.20.2',
        command: [
          '/bb/busybox',
          'sh',
          '-c',
          'echo "$POD_NAME" > /www/index.html && exec /bb/busybox httpd -f -p 8080 -h /www',
        ],
        env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
        volumeMounts: [
          { name: 'bb', mountPath: '/bb/busybox' },
          { name: 'www', mountPath: '/www' },
          { name: 'istio-token', mountPath: '/var/run/secrets/tokens' },
        ],
      },
    ],
    volumes: [
      { name: 'bb', hostPath: { path: '/bin/busybox', type: 'File' } },
      { name: 'www', emptyDir: {} },
      {
        name: 'istio-token',
        projected: {
          sources: [
            { serviceAccountToken: { audience: 'istio-ca', expirationSeconds: 3600, path: 'istio-token' } },
          ],
        },
      },
    ],
  },
});

/** The client runs from an image imported with importImage (busybox as its only file). */
const clientPod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'client', labels: { app: 'client' } },
  spec: {
    containers: [{ name: 'client', image: BUSYBOX_IMAGE, command: ['/bin/busybox', 'sleep', '3600'] }],
    terminationGracePeriodSeconds: 0,
  },
};

const webService = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'web' },
  spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] },
};

describe.skipIf(!isRoot)('a real one-node Kubernetes in a network namespace', () => {
  let cluster: KubeCluster;
  let sysctlsBefore: Record<string, string>;
  let fixedPathsBefore: string[];
  const exec = (pod: string, ...cmd: string[]) => cluster.kubectl(['exec', pod, '--', ...cmd]);

  beforeAll(async () => {
    // The machine's own values: those another running cluster saved, else the current ones.
    sysctlsBefore = (await KubeCluster.savedSysctls())?.originals ?? (await readSysctls());
    fixedPathsBefore = await fixedPaths();
    const binDir = await kubeBinaries(ROOT);
    cluster = await KubeCluster.start({ prefix: PREFIX, binDir });
    console.log(
      `cluster usable in ${cluster.timings.usableMs} ms (API server ready in ${cluster.timings.apiReadyMs} ms)`,
    );
  }, 180_000);

  afterAll(async () => {
    // Whatever the stop test did not get to.
    await KubeCluster.cleanup(PREFIX);
  }, 60_000);

  it('registers the node Ready on its address from the node range, with the default ServiceAccount token issued', async () => {
    const node = JSON.parse(await cluster.kubectl(['get', 'node', cluster.nodeName, '-o', 'json']));
    const ready = node.status.conditions.find((c: { type: string }) => c.type === 'Ready');
    expect(ready.status).toBe('True');
    expect(node.status.addresses).toContainEqual({ type: 'InternalIP', address: '198.18.224.10' });
    expect(node.status.nodeInfo.containerRuntimeVersion).toMatch(/^containerd:\/\//);
    const sa = JSON.parse(await cluster.kubectl(['get', 'serviceaccount', 'default', '-o', 'json']));
    expect(sa.secrets.length).toBeGreaterThan(0);
    // The harness hands out the CNI directories a chained plugin is installed into.
    const conf = JSON.parse(await readFile(cluster.cniConfFile, 'utf8'));
    expect(conf.plugins.map((p: { type: string }) => p.type)).toEqual(['bridge', 'portmap']);
    expect(path.dirname(cluster.cniConfFile)).toBe(cluster.cniConfDir);
    expect(await readdir(cluster.cniBinDir)).toEqual(
      expect.arrayContaining(['bridge', 'host-local', 'portmap', 'loopback']),
    );
  });

  it('runs two pause-image pods and one from an imported image, and the pods reach each other over the bridge', async () => {
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
    expect(await cluster.importImage(archive)).toContain(BUSYBOX_IMAGE);
    const t0 = Date.now();
    const objects = [webPod('web-a'), webPod('web-b'), clientPod, webService];
    await cluster.kubectl(['apply', '-f', '-'], objects.map((o) => JSON.stringify(o)).join('\n'));
    await cluster.kubectl([
      'wait',
      '--for=condition=Ready',
      'pod/web-a',
      'pod/web-b',
      'pod/client',
      '--timeout=60s',
    ]);
    console.log(`3 pods Running in ${Date.now() - t0} ms`);
    const pods = JSON.parse(await cluster.kubectl(['get', 'pods', '-o', 'json'])).items as {
      metadata: { name: string };
      status: { podIP: string; phase: string };
    }[];
    const ip = (name: string) => pods.find((p) => p.metadata.name === name)?.status.podIP as string;
    for (const name of ['web-a', 'web-b', 'client'])
      expect(ip(name)).toMatch(/^198\.18\.(228|229|230|231)\./);
    // Pod to pod, both ways across the bridge.
    expect(await exec('client', '/bin/busybox', 'wget', '-qO-', `http://${ip('web-a')}:8080/`)).toBe(
      'web-a\n',
    );
    expect(await exec('web-a', '/bb/busybox', 'wget', '-qO-', `http://${ip('web-b')}:8080/`)).toBe('web-b\n');
    // The pod's own network namespace, as a node agent would enter it; and the node reaches the pod.
    const netnsPath = await cluster.podNetnsPath('default', 'web-a');
    expect(netnsPath.startsWith(`${cluster.containerdState}/`)).toBe(true);
    const { stdout: addrs } = await run('nsenter', [
      `--net=${netnsPath}`,
      'ip',
      '-4',
      '-o',
      'addr',
      'show',
      'eth0',
    ]);
    expect(addrs).toContain(`${ip('web-a')}/22`);
    const fromNode = await cluster.nodeExec(['/bin/busybox', 'wget', '-qO-', `http://${ip('web-a')}:8080/`]);
    expect(fromNode.stdout).toBe('web-a\n');
  }, 90_000);

  it('mounts the default ServiceAccount token and a projected istio-ca token, both accepted by TokenReview', async () => {
    const review = async (token: string, audiences?: string[]) => {
      const r = await cluster.api('POST', '/apis/authentication.k8s.io/v1/tokenreviews', {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenReview',
        spec: { token, ...(audiences && { audiences }) },
      });
      expect(r.status).toBe(201);
      return r.body.status as { authenticated?: boolean; user?: { username: string }; audiences?: string[] };
    };
    const legacy = await exec(
      'web-a',
      '/bb/busybox',
      'cat',
      '/var/run/secrets/kubernetes.io/serviceaccount/token',
    );
    const legacyStatus = await review(legacy);
    expect(legacyStatus.authenticated).toBe(true);
    expect(legacyStatus.user?.username).toBe('system:serviceaccount:default:default');
    const projected = await exec('web-a', '/bb/busybox', 'cat', '/var/run/secrets/tokens/istio-token');
    const status = await review(projected, ['istio-ca']);
    expect(status.authenticated).toBe(true);
    expect(status.audiences).toEqual(['istio-ca']);
    expect(status.user?.username).toBe('system:serviceaccount:default:default');
    // The projected token is for istio-ca only.
    expect((await review(projected, ['someone-else'])).authenticated).toBeFalsy();
  });

  it('reaches a Service by its DNS name through kube-proxy, answered by both endpoints', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20 && seen.size < 2; i++)
      seen.add(
        (
          await exec('client', '/bin/busybox', 'wget', '-qO-', 'http://web.default.svc.cluster.local/')
        ).trim(),
      );
    expect([...seen].sort()).toEqual(['web-a', 'web-b']);
    // The short name resolves through the pod's search path.
    expect(['web-a\n', 'web-b\n']).toContain(
      await exec('client', '/bin/busybox', 'wget', '-qO-', 'http://web/'),
    );
    const resolv = await exec('client', '/bin/busybox', 'cat', '/etc/resolv.conf');
    expect(resolv).toContain(`nameserver ${cluster.dnsIp}`);
    // kube-proxy's iptables rules in the node's namespace, not the host's.
    const rules = await cluster.nodeExec(['iptables-save', '-t', 'nat']);
    expect(rules.stdout).toContain('KUBE-SVC-');
    expect(rules.stdout).toContain('default/web');
  }, 60_000);

  it('answers for a Service created after start, and no longer once it is deleted', async () => {
    const lookup = () =>
      exec('client', '/bin/busybox', 'nslookup', 'late.default.svc.cluster.local').catch(
        (e: Error) => `failed: ${e.message}`,
      );
    const t0 = Date.now();
    await cluster.kubectl(['create', 'service', 'clusterip', 'late', '--tcp=81:8080']);
    const ip = (await cluster.kubectl(['get', 'service', 'late', '-o', 'jsonpath={.spec.clusterIP}'])).trim();
    let answer = '';
    for (let i = 0; i < 40 && !answer.includes(`Address: ${ip}`); i++) {
      answer = await lookup();
      if (!answer.includes(`Address: ${ip}`)) await sleep(250);
    }
    expect(answer).toContain(`Address: ${ip}`);
    console.log(`a new Service answered by DNS ${Date.now() - t0} ms after it was created`);
    await cluster.kubectl(['delete', 'service', 'late']);
    for (let i = 0; i < 40 && answer.includes(`Address: ${ip}`); i++) {
      answer = await lookup();
      if (answer.includes(`Address: ${ip}`)) await sleep(250);
    }
    expect(answer).not.toContain(`Address: ${ip}`);
    expect(answer).toMatch(/NXDOMAIN|can't find|failed/);
  }, 60_000);

  it('stops leaving no process, mount, namespace, cgroup, pod log or changed sysctl behind', async () => {
    const memory = await cluster.memory();
    const total = Object.values(memory).reduce((a, b) => a + b, 0);
    console.log(
      `memory (RSS MiB): ${Object.entries(memory)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}; total ${Math.round(total)}`,
    );
    const uids = await readdir(path.join(cluster.kubeletRootDir, 'pods'));
    expect(uids.length).toBeGreaterThanOrEqual(3);
    const podProcs = (
      await readFile(`/sys/fs/cgroup/pids/ambient-kube-${PREFIX}/cgroup.procs`, 'utf8').catch(() => '')
    )
      .split('\n')
      .filter(Boolean);
    const t0 = Date.now();
    await cluster.stop();
    console.log(`teardown in ${Date.now() - t0} ms`);

    for (const [name, pid] of Object.entries(cluster.pids)) {
      const alive = await readFile(`/proc/${pid}/cmdline`, 'utf8').then(
        (c) => c.includes(cluster.dir),
        () => false,
      );
      expect(alive, `${name} (${pid})`).toBe(false);
    }
    for (const pid of podProcs)
      expect(await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).toBe('');
    const strays: string[] = [];
    for (const e of await readdir('/proc')) {
      if (!/^\d+$/.test(e)) continue;
      const c = await readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '');
      if (c.includes(`${cluster.dir}/`)) strays.push(`${e} ${c.replace(/\0/g, ' ')}`);
    }
    expect(strays).toEqual([]);
    expect(await readFile('/proc/self/mountinfo', 'utf8')).not.toContain(cluster.dir);
    const { stdout: netns } = await run('ip', ['netns', 'list']);
    expect(netns).not.toContain(cluster.netns);
    for (const h of ['pids', 'memory', 'cpu', 'cpuset'])
      expect(await readdir(`/sys/fs/cgroup/${h}`)).not.toContain(`ambient-kube-${PREFIX}`);
    const logs = [...(await readdir('/var/log/pods')), ...(await readdir('/var/log/containers'))];
    for (const uid of uids) expect(logs.filter((l) => l.includes(uid))).toEqual([]);
    await expect(readdir(cluster.dir)).rejects.toThrow();
    // Put back, unless another cluster on this machine still holds kubelet's values.
    const held = await KubeCluster.savedSysctls();
    if (held?.holders.length) expect(held.holders).not.toContain(PREFIX);
    else {
      expect(await readSysctls()).toEqual(sysctlsBefore);
      // And no directory kubelet or CNI made outside the cluster's own is left.
      expect((await fixedPaths()).filter((p) => !fixedPathsBefore.includes(p))).toEqual([]);
    }
  }, 60_000);
});

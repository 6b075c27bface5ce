/**
 * What a crashed cluster leaves behind is removed by the next cleanup (also run by start): its
 * processes, mounts, namespace, cgroups, kubelet's pod logs, CNI results, directory, and the
 * machine-wide sysctl it changed. Built by hand here (no Kubernetes binaries needed).
 */
import { execFile, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { hostsFile, serviceRecord } from './cluster-dns.js';
import { kubeBinaries } from './kube-api-server.js';
import { KubeCluster, KubeClusterError } from './kube-cluster.js';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;
const PREFIX = `c${process.pid % 100000}`;
const STATE_ROOT = `/run/ambient-kube-test-${process.pid}`;

describe('cluster DNS hosts file', () => {
  it('has one sorted line per Service with a cluster IP, and none for headless ones', () => {
    const records = [
      { metadata: { name: 'web', namespace: 'b' }, spec: { clusterIP: '198.18.232.20' } },
      { metadata: { name: 'api', namespace: 'a' }, spec: { clusterIP: '198.18.232.21' } },
      { metadata: { name: 'headless', namespace: 'a' }, spec: { clusterIP: 'None' } },
      { metadata: { name: 'pending', namespace: 'a' }, spec: {} },
    ]
      .map(serviceRecord)
      .filter((r) => r !== undefined);
    expect(hostsFile(records)).toBe(
      '198.18.232.20 web.b.svc.cluster.local\n198.18.232.21 api.a.svc.cluster.local\n',
    );
    expect(hostsFile([])).toBe('');
  });
});

describe('KubeCluster prefixes', () => {
  it('refuses a prefix that would not fit interface and namespace names', async () => {
    await expect(KubeCluster.cleanup('Bad-Prefix')).rejects.toBeInstanceOf(KubeClusterError);
    await expect(KubeCluster.start({ prefix: 'toolong1' })).rejects.toMatchObject({ code: 'bad_prefix' });
  });
});

afterAll(async () => {
  if (!isRoot) return;
  await KubeCluster.cleanup(PREFIX, STATE_ROOT);
  await rm(STATE_ROOT, { recursive: true, force: true });
});

describe.skipIf(!isRoot)('KubeCluster.cleanup after a crash', () => {
  it('kills, unmounts and removes everything a crashed cluster left, and puts a held sysctl back', async () => {
    const dir = path.join(STATE_ROOT, PREFIX);
    const netns = `${PREFIX}-node`;
    await run('ip', ['netns', 'add', netns]);
    // A process inside the node namespace, and one on the host naming the cluster's directory.
    const inNs = spawn('ip', ['netns', 'exec', netns, 'sleep', '600'], { stdio: 'ignore', detached: true });
    const named = spawn('sh', ['-c', `sleep 600 # ${dir}/x`], { stdio: 'ignore', detached: true });
    // A pod's volume mount under kubelet's root, and the pod's logs outside it.
    const uid = '0b5ac2f4-0000-4000-8000-00000000c1c1';
    const vol = path.join(dir, 'kubelet', 'pods', uid, 'volumes', 'tmp');
    await mkdir(vol, { recursive: true });
    await run('mount', ['-t', 'tmpfs', 'tmpfs', vol]);
    const podLogs = `/var/log/pods/default_crashed_${uid}`;
    await mkdir(path.join(podLogs, 'c'), { recursive: true });
    await writeFile(path.join(podLogs, 'c', '0.log'), 'x\n');
    await mkdir('/var/log/containers', { recursive: true });
    const link = `/var/log/containers/crashed_default_c-${PREFIX}.log`;
    await symlink(path.join(podLogs, 'c', '0.log'), link);
    // kubelet's cgroup root, with the process in it.
    const cg = `/sys/fs/cgroup/pids/ambient-kube-${PREFIX}`;
    await mkdir(path.join(cg, 'kubepods'), { recursive: true });
    const inCgroup = spawn('sleep', ['600'], { stdio: 'ignore', detached: true });
    await writeFile(path.join(cg, 'kubepods', 'cgroup.procs'), String(inCgroup.pid));
    // A CNI result the crashed containerd never deleted.
    await mkdir('/var/lib/cni/results', { recursive: true });
    const result = `/var/lib/cni/results/ambient-${PREFIX}-abc123-eth0`;
    await writeFile(result, '{}');
    // The sysctl registry: this cluster holds kubelet's changes; root_maxkeys was changed.
    const key = 'kernel/keys/root_maxkeys';
    const original = (await readFile(`/proc/sys/${key}`, 'utf8')).trim();
    await writeFile(
      path.join(STATE_ROOT, 'sysctls.json'),
      JSON.stringify({ originals: { [key]: original }, holders: [PREFIX] }),
    );
    await writeFile(`/proc/sys/${key}`, String(Number(original) + 1));
    await new Promise((r) => setTimeout(r, 200));

    const found = await KubeCluster.cleanup(PREFIX, STATE_ROOT);
    expect(found).toEqual(
      expect.arrayContaining([`namespace ${netns}`, 'cgroups', '1 pod log directories', dir]),
    );
    for (const child of [inNs, named, inCgroup]) {
      const gone = await readFile(`/proc/${child.pid}/cmdline`, 'utf8').then(
        (c) => c === '',
        () => true,
      );
      expect(gone, `pid ${child.pid}`).toBe(true);
    }
    expect(await readFile('/proc/self/mountinfo', 'utf8')).not.toContain(dir);
    expect((await run('ip', ['netns', 'list'])).stdout).not.toContain(netns);
    expect(await readdir('/sys/fs/cgroup/pids')).not.toContain(`ambient-kube-${PREFIX}`);
    expect(await readdir('/var/log/pods')).not.toContain(path.basename(podLogs));
    expect(await readdir('/var/log/containers')).not.toContain(path.basename(link));
    expect(await readdir('/var/lib/cni/results').catch(() => [])).not.toContain(path.basename(result));
    await expect(readdir(dir)).rejects.toThrow();
    expect((await readFile(`/proc/sys/${key}`, 'utf8')).trim()).toBe(original);
    expect(await readdir(STATE_ROOT)).not.toContain('sysctls.json');
  });
});

describe.skipIf(!isRoot)('KubeCluster.start when a component cannot start', () => {
  it('fails with the component and its output, and leaves no process, namespace or directory behind', async () => {
    const real = await kubeBinaries(path.resolve(import.meta.dirname, '../../..'));
    const bin = await mkdtemp(path.join(os.tmpdir(), 'kube-bin-'));
    try {
      for (const b of ['kube-controller-manager', 'kube-scheduler', 'kubelet', 'kube-proxy', 'pause'])
        await symlink(path.join(real, b), path.join(bin, b));
      await writeFile(
        path.join(bin, 'kube-apiserver'),
        '#!/bin/sh\necho "apiserver: broken on purpose" >&2\nexit 3\n',
      );
      await chmod(path.join(bin, 'kube-apiserver'), 0o755);
      const prefix = `f${process.pid % 100000}`;
      const err = await KubeCluster.start({ prefix, binDir: bin, stateRoot: STATE_ROOT }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(KubeClusterError);
      expect((err as KubeClusterError).code).toBe('start_failed');
      expect((err as Error).message).toContain('kube-apiserver exited 3');
      expect((err as Error).message).toContain('broken on purpose');
      // Components started early (containerd, kubelet, ...) are gone with the rest.
      await new Promise((r) => setTimeout(r, 500));
      const dir = path.join(STATE_ROOT, prefix);
      const strays: string[] = [];
      for (const e of await readdir('/proc')) {
        if (!/^\d+$/.test(e)) continue;
        const c = await readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '');
        if (c.includes(`${dir}/`)) strays.push(c.replace(/\0/g, ' '));
      }
      expect(strays).toEqual([]);
      expect((await run('ip', ['netns', 'list'])).stdout).not.toContain(`${prefix}-node`);
      await expect(readdir(dir)).rejects.toThrow();
      expect(await readdir(STATE_ROOT)).not.toContain('sysctls.json');
    } finally {
      await rm(bin, { recursive: true, force: true });
    }
  }, 60_000);
});

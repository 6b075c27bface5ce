/**
 * The /proc scan that finds running pods' network namespaces (upstream podcgroupns_linux.go) on
 * real processes in real network namespaces: the pod UID read from the process's cgroup (a real
 * kubelet-style cgroup where the pids hierarchy can be written, else a synthetic cgroup file beside
 * the real netns link), the netns accepted only when it holds the pod's IP, the host netns skipped.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ProcNetnsFinder, podFromCgroupFile } from '@ambient/cni';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PodNetns } from './pod-netns.js';

const isRoot = process.getuid?.() === 0;
const run = promisify(execFile);
const PREFIX = `s${process.pid % 100000}`;
const UID_A = '0a1b2c3d-1111-4222-8333-444455556666';
const UID_B = '0a1b2c3d-7777-4888-9999-aaaabbbbcccc';

describe.skipIf(!isRoot)('ProcNetnsFinder on real network namespaces (root)', () => {
  let a: PodNetns;
  let b: PodNetns;
  let hostSleep: ReturnType<typeof execFile> | undefined;
  let dir: string;

  beforeAll(async () => {
    a = await PodNetns.create(`${PREFIX}a`, '198.18.77.10');
    b = await PodNetns.create(`${PREFIX}b`, '198.18.77.11');
    await a.startProcess(UID_A);
    await b.startProcess(UID_B);
    dir = await mkdtemp(path.join(tmpdir(), 'proc-scan-'));
  });

  afterAll(async () => {
    hostSleep?.kill('SIGKILL');
    await a?.destroy();
    await b?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('finds a pod by the UID in its real cgroup, with the netns of the pod', async (ctx) => {
    if (!a.realCgroup) ctx.skip();
    const cgroup = await readFile(`/proc/${a.pid}/cgroup`, 'utf8');
    expect(podFromCgroupFile(cgroup)?.podUid).toBe(UID_A);
    const found = await new ProcNetnsFinder({ proc: '/proc' }).find(
      new Map([
        [UID_A, { ips: [a.address] }],
        [UID_B, { ips: [b.address] }],
      ]),
    );
    expect([...found.keys()].sort()).toEqual([UID_A, UID_B]);
    const fa = found.get(UID_A);
    expect(fa?.pid).toBe(a.pid);
    expect(fa?.netnsPath).toBe(`/proc/${a.pid}/ns/net`);
    // The same namespace as the one the runtime created: same inode.
    expect((await stat(fa?.netnsPath ?? '')).ino).toBe((await stat(a.path)).ino);
  });

  it('refuses the pairing when the netns does not hold one of the pod IPs', async (ctx) => {
    if (!a.realCgroup) ctx.skip();
    const found = await new ProcNetnsFinder({ proc: '/proc' }).find(
      new Map([[UID_A, { ips: ['198.18.77.99'] }]]),
    );
    expect(found.size).toBe(0);
  });

  it('skips a pod without IPs yet, and pods not asked for', async (ctx) => {
    if (!a.realCgroup) ctx.skip();
    const finder = new ProcNetnsFinder({ proc: '/proc' });
    expect((await finder.find(new Map([[UID_A, { ips: [] }]]))).size).toBe(0);
    expect([...(await finder.find(new Map([[UID_B, { ips: [b.address] }]]))).keys()]).toEqual([UID_B]);
  });

  it('synthetic cgroup file (the real cgroup cannot carry a pod UID here): the process in the pod netns is found, the host-netns one is skipped', async () => {
    // A /proc look-alike: per pid the real ns/net link and stat, and a kubelet-style cgroup file.
    const proc = path.join(dir, 'proc');
    await mkdir(path.join(proc, 'self/ns'), { recursive: true });
    await symlink('/proc/self/ns/net', path.join(proc, 'self/ns/net'));
    const hostChild = execFile('sleep', ['600']);
    hostSleep = hostChild;
    const hostPid = hostChild.pid as number;
    for (const [pid, uid] of [
      [a.pid, UID_A],
      [hostPid, UID_B],
    ] as const) {
      await mkdir(path.join(proc, String(pid), 'ns'), { recursive: true });
      await symlink(`/proc/${pid}/ns/net`, path.join(proc, String(pid), 'ns/net'));
      // Read and written (a copy of a /proc file would be empty: its size reads as 0).
      await writeFile(path.join(proc, String(pid), 'stat'), await readFile(`/proc/${pid}/stat`));
      await writeFile(
        path.join(proc, String(pid), 'cgroup'),
        `4:memory:/kubepods/burstable/pod${uid}/abc\n0::/\n`,
      );
    }
    const found = await new ProcNetnsFinder({ proc }).find(
      new Map([
        [UID_A, { ips: [a.address] }],
        // In the host netns: refused before its addresses are even read.
        [UID_B, { ips: ['127.0.0.1'] }],
      ]),
    );
    expect([...found.keys()]).toEqual([UID_A]);
    expect((await stat(found.get(UID_A)?.netnsPath ?? '')).ino).toBe((await stat(a.path)).ino);
    const { stdout } = await run('nsenter', [`--net=${found.get(UID_A)?.netnsPath}`, 'ip', '-o', 'addr']);
    expect(stdout).toContain(a.address);
  });
});

/**
 * Finds the network namespaces of pods already running on the node by scanning the host's /proc,
 * as istio-cni does when its agent starts (cni/pkg/nodeagent/podcgroupns_linux.go): each process's
 * netns inode is read once; the host's own netns is skipped; the pod UID comes from the process's
 * cgroup; the pairing is accepted only when the netns holds one of the pod's IPs (a process of
 * another pod transiting a netns must not steal it); where several processes share a pod, the
 * oldest (the sandbox's pause process) names the netns.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { podFromCgroupFile } from './cgroup-pod-uid.js';

export interface ProcNetnsFinderInputs {
  /** The host's /proc (CNI_HOST_PROC). */
  readonly proc: string;
  /** The addresses inside a netns; `ip -o addr` in it by default. */
  readonly addressesIn?: (netnsPath: string) => Promise<string[]>;
}

/** A pod the scan looks for, with the IPs its netns must hold. */
export interface WantedPod {
  readonly ips: readonly string[];
}

export interface FoundNetns {
  /** `<proc>/<pid>/ns/net` of the pod's oldest process. */
  readonly netnsPath: string;
  readonly pid: number;
  readonly inode: bigint;
}

/** `ip -o addr show` inside the netns, addresses without prefix length. */
export function netnsAddresses(netnsPath: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    execFile('nsenter', [`--net=${netnsPath}`, 'ip', '-o', 'addr', 'show'], (err, stdout) => {
      if (err) reject(err);
      else resolve([...stdout.matchAll(/\binet6? ([0-9a-fA-F.:]+)\//g)].map((m) => m[1] as string));
    });
  });
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks), counted after the command's ')'. */
export function startTimeOf(statText: string): bigint | undefined {
  const fields = statText
    .slice(statText.lastIndexOf(')') + 1)
    .trim()
    .split(/\s+/);
  const v = fields[19];
  return v && /^\d+$/.test(v) ? BigInt(v) : undefined;
}

export class ProcNetnsFinder {
  constructor(private readonly inputs: ProcNetnsFinderInputs) {}

  /** The netns of each wanted pod found running; pods not found are absent from the result. */
  async find(wanted: ReadonlyMap<string, WantedPod>): Promise<Map<string, FoundNetns>> {
    const proc = this.inputs.proc;
    const addressesIn = this.inputs.addressesIn ?? netnsAddresses;
    const host = await stat(path.join(proc, 'self/ns/net'), { bigint: true }).catch(() => undefined);
    const seen = new Set<bigint>();
    const found = new Map<string, FoundNetns & { start: bigint }>();
    const entries = await readdir(proc, { withFileTypes: true });
    for (const entry of entries) {
      if (!entry.isDirectory() || !/^\d+$/.test(entry.name)) continue;
      const dir = path.join(proc, entry.name);
      const netnsPath = path.join(dir, 'ns/net');
      try {
        const ns = await stat(netnsPath, { bigint: true });
        if (host && ns.ino === host.ino && ns.dev === host.dev) continue;
        if (seen.has(ns.ino)) continue;
        const pod = podFromCgroupFile(await readFile(path.join(dir, 'cgroup'), 'utf8'));
        const want = pod && wanted.get(pod.podUid);
        if (!pod || !want || want.ips.length === 0) continue;
        const start = startTimeOf(await readFile(path.join(dir, 'stat'), 'utf8'));
        if (start === undefined) continue;
        const addrs = await addressesIn(netnsPath);
        if (!want.ips.some((ip) => addrs.includes(ip))) continue;
        seen.add(ns.ino);
        const have = found.get(pod.podUid);
        if (have && have.start <= start) continue;
        found.set(pod.podUid, { netnsPath, pid: Number(entry.name), inode: ns.ino, start });
      } catch {
        // The process ended during the scan, or is not ours to read: not a pod we can pair.
      }
    }
    return new Map([...found].map(([uid, { netnsPath, pid, inode }]) => [uid, { netnsPath, pid, inode }]));
  }
}

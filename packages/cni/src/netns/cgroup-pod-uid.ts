/**
 * The pod UID in a process's cgroup paths, as istio-cni reads it
 * (cni/pkg/nodeagent/podcgroupns_linux.go, `getPodUIDAndContainerIDFromCGroupPath`): kubelet
 * names a pod's cgroup `pod<uid>` (cgroupfs: `/kubepods/burstable/pod1234-...`, systemd:
 * `kubepods-burstable-pod1234_....slice`), and the last path element is the container.
 */

// Go's [[:punct:]] and [[:xdigit:]], which the upstream patterns use.
const P = '[!-/:-@[-`{-~]';
const NP = '[^!-/:-@[-`{-~]';
const X = '[0-9A-Fa-f]';
const POD_CGROUP = new RegExp(
  `${P}pod(${X}{8}${P}?${X}{4}${P}?${X}{4}${P}?${X}{4}${P}?${X}{12})${P}(?:${NP}+${P})*(${NP}+)$`,
);

export interface CgroupPod {
  readonly podUid: string;
  readonly containerId: string;
}

/** Punctuation (systemd writes `_` for `-`) becomes `-`, as upstream's canonicalizePodUID. */
function canonicalUid(raw: string): string {
  return raw.replace(new RegExp(P, 'g'), '-');
}

/** The pod of one cgroup path, or undefined. */
export function podFromCgroupPath(path: string): CgroupPod | undefined {
  const m = POD_CGROUP.exec(path.replace(/\.scope$/, ''));
  if (!m) return undefined;
  return { podUid: canonicalUid(m[1] as string), containerId: m[2] as string };
}

/**
 * The pod of a /proc/<pid>/cgroup file (`hierarchy:controllers:path` lines), or undefined when no
 * line names one. Lines naming two different pods or containers are refused (undefined), as
 * upstream refuses them: such a process cannot be told apart.
 */
export function podFromCgroupFile(text: string): CgroupPod | undefined {
  let found: CgroupPod | undefined;
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const parts = line.split(':');
    if (parts.length < 3) return undefined;
    const pod = podFromCgroupPath(parts.slice(2).join(':'));
    if (!pod) continue;
    if (found && (found.podUid !== pod.podUid || found.containerId !== pod.containerId)) return undefined;
    found = pod;
  }
  return found;
}

/**
 * Where everything in a lab lives, all inside the benchmarking range 198.18.0.0/15:
 *   198.18.0.0/24     the service network joining the nodes (node i: 198.18.0.(10+i))
 *   198.18.(16+i).0/24 pods of node i (pod j: 198.18.(16+i).(10+j)), each on its own veth with a
 *                     /32 route; every pod's gateway is 169.254.1.1 on its node's side of the veth
 *   198.19.0.0/16     service VIPs (service k: 198.19.(k >> 8).(k & 255), skipping .0)
 * Namespace and interface names carry the lab's prefix so several labs can coexist.
 */
export const SERVICE_NETWORK = '198.18.0.0/24';
export const VIP_RANGE = '198.19.0.0/16';

export function nodeIp(node: number): string {
  return `198.18.0.${10 + node}`;
}

export function podSubnet(node: number): string {
  return `198.18.${16 + node}.0/24`;
}

/** Pods route through their node (Calico-style point-to-point veths): the same link-local gateway everywhere. */
export const POD_GATEWAY = '169.254.1.1';

export function podIp(node: number, slot: number): string {
  return `198.18.${16 + node}.${10 + slot}`;
}

export function serviceVip(index: number): string {
  const n = index + 1;
  return `198.19.${n >> 8}.${n & 255}`;
}

/** Names: netns `<prefix>-net`, `<prefix>-n<i>`, `<prefix>-n<i>p<j>`; links `<prefix>n<i>`, `<prefix>n<i>p<j>`. */
export function fabricNetns(prefix: string): string {
  return `${prefix}-net`;
}

export function nodeNetns(prefix: string, node: number): string {
  return `${prefix}-n${node}`;
}

export function podNetns(prefix: string, node: number, slot: number): string {
  return `${prefix}-n${node}p${slot}`;
}

/** Interface names stay within Linux's 15 characters: the prefix is at most 6. */
export function nodeLink(prefix: string, node: number): string {
  return `${prefix}n${node}`;
}

export function podLink(prefix: string, node: number, slot: number): string {
  return `${prefix}n${node}p${slot}`;
}

export const MAX_PREFIX_LENGTH = 6;
const PREFIX = /^[a-z][a-z0-9]{0,5}$/;

export function validPrefix(prefix: string): boolean {
  return PREFIX.test(prefix);
}

/**
 * A real one-node Kubernetes (KubeCluster) uses its own sub-ranges, apart from the lab's, so that
 * a lab and a cluster never claim the same address:
 *   198.18.224.0/24   the node network (the node: 198.18.224.10, on a veth inside its namespace)
 *   198.18.228.0/22   pods (host-local IPAM on the node's bridge; gateway 198.18.228.1)
 *   198.18.232.0/22   Service cluster IPs (kubernetes: 198.18.232.1, cluster DNS: 198.18.232.10)
 */
export const CLUSTER_NODE_NETWORK = '198.18.224.0/24';
export const CLUSTER_NODE_IP = '198.18.224.10';
export const CLUSTER_POD_RANGE = '198.18.228.0/22';
export const CLUSTER_POD_GATEWAY = '198.18.228.1';
export const CLUSTER_SERVICE_RANGE = '198.18.232.0/22';
export const CLUSTER_API_SERVICE_IP = '198.18.232.1';
export const CLUSTER_DNS_IP = '198.18.232.10';

import type { ZtunnelReader } from '../ztunnel/ztunnel-commands.js';
import type { KubeClient } from './kube-client.js';
import { fetchFromZtunnel, findZtunnelPods, type ZtunnelLocator, type ZtunnelPod } from './ztunnel-pods.js';

/** A cluster's node agents: the ztunnel pod of each node, read through the API server. */
export function kubeZtunnelReader(kube: KubeClient, where: ZtunnelLocator): ZtunnelReader {
  const pods = new Map<string, ZtunnelPod>();
  return {
    async nodes(node) {
      const found = await findZtunnelPods(kube, where, node);
      for (const p of found) pods.set(p.node, p);
      return found.map((p) => p.node);
    },
    async read(node, endpoint) {
      const pod = pods.get(node) ?? (await findZtunnelPods(kube, where, node))[0];
      if (!pod) throw new Error(`no ztunnel pod on node ${node}`);
      return fetchFromZtunnel(kube, pod, endpoint);
    },
  };
}

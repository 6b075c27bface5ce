import { AppsV1Api, type KubeConfig } from '@kubernetes/client-node';

/** What the agent learned of its own DaemonSet as it stops. */
export type DaemonSetLookup =
  | { readonly kind: 'present' }
  | { readonly kind: 'deleting' }
  | { readonly kind: 'gone' }
  | { readonly kind: 'revoked'; readonly status: number }
  | { readonly kind: 'error'; readonly message: string };

/**
 * Whether a stopping agent takes its plugin out of the node's CNI config, as istio-cni's
 * `ShouldStopCleanup` (istio/istio cni/pkg/nodeagent/server.go) decides it: a DaemonSet still
 * present is an upgrade or a node reboot, so the plugin stays and new pods wait for the next agent
 * (fail closed); a DaemonSet that is gone or being deleted, or access to it revoked (the uninstall
 * removes the agent's role with its DaemonSet), is an uninstall, so the plugin goes and new pods
 * start with plain networking. Any other answer (API server unreachable, a timeout) keeps the
 * plugin: where istio-cni's default for a config it does not own removes it, we stay closed.
 */
export function removePluginOnStop(lookup: DaemonSetLookup): boolean {
  return lookup.kind === 'gone' || lookup.kind === 'deleting' || lookup.kind === 'revoked';
}

/** Reads the agent's DaemonSet once, bounded by `timeoutMs`. */
export async function lookupDaemonSet(
  kc: KubeConfig,
  namespace: string,
  name: string,
  timeoutMs = 5_000,
): Promise<DaemonSetLookup> {
  const apps = kc.makeApiClient(AppsV1Api);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const ds = await Promise.race([apps.readNamespacedDaemonSet({ name, namespace }), timeout]);
    return ds.metadata?.deletionTimestamp ? { kind: 'deleting' } : { kind: 'present' };
  } catch (err) {
    const code = (err as { code?: number }).code;
    if (code === 404) return { kind: 'gone' };
    if (code === 401 || code === 403) return { kind: 'revoked', status: code };
    return { kind: 'error', message: (err as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

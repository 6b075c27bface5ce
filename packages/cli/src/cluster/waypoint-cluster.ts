/**
 * `ambientctl waypoint apply|list|delete|status` against a cluster, in the form and words of
 * istioctl (istio/istio istioctl/pkg/waypoint/waypoint.go). The Gateway is the one the lab form
 * writes (waypointGateway); the control plane's waypoint controller deploys it and writes its
 * Accepted and Programmed conditions, which list and status read.
 */
import { waypointGateway } from '@ambient/lab';
import { CliError } from '../cli-error.js';
import { checkWaypointArgs } from '../lab-commands.js';
import { formatTable } from '../tab-writer.js';
import { isNotFound, type KubeClient } from './kube-client.js';

const GW_API = '/apis/gateway.networking.k8s.io/v1';
export const WAYPOINT_CLASS = 'istio-waypoint';
export const FIELD_MANAGER = 'ambientctl';
const USE_WAYPOINT = 'istio.io/use-waypoint';
const DATAPLANE_MODE = 'istio.io/dataplane-mode';
/** istioctl's default for --waypoint-timeout. */
export const DEFAULT_WAYPOINT_TIMEOUT_MS = 90_000;

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}
export interface GatewayJson {
  metadata: { name: string; namespace: string; labels?: Record<string, string> };
  spec: { gatewayClassName: string };
  status?: { conditions?: Condition[] };
}

const gatewaysPath = (ns?: string) =>
  ns === undefined ? `${GW_API}/gateways` : `${GW_API}/namespaces/${encodeURIComponent(ns)}/gateways`;
const gatewayPath = (ns: string, name: string) => `${gatewaysPath(ns)}/${encodeURIComponent(name)}`;

const programmed = (gw: GatewayJson) => gw.status?.conditions?.find((c) => c.type === 'Programmed');

export interface WaitOptions {
  /** Poll interval (istioctl: 1 s). */
  readonly pollMs?: number;
  readonly timeoutMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function namespaceLabels(kube: KubeClient, ns: string): Promise<Record<string, string>> {
  const o = await kube.get<{ metadata: { labels?: Record<string, string> } }>(
    `/api/v1/namespaces/${encodeURIComponent(ns)}`,
    true,
  );
  if (!o) throw new CliError('CLI_ERR_ARGS', `namespace: ${ns} not found`);
  return o.metadata.labels ?? {};
}

/** Polls the Gateway until Programmed is True; the error names the waypoint and what it last said. */
async function waitProgrammed(
  kube: KubeClient,
  ns: string,
  name: string,
  w: WaitOptions,
  what: string,
): Promise<GatewayJson> {
  const timeout = w.timeoutMs ?? DEFAULT_WAYPOINT_TIMEOUT_MS;
  const sleep = w.sleep ?? defaultSleep;
  const start = Date.now();
  for (;;) {
    const gw = await kube.get<GatewayJson>(gatewayPath(ns, name), true);
    const p = gw && programmed(gw);
    if (gw && p?.status === 'True') return gw;
    if (Date.now() - start > timeout) {
      const last = gw
        ? p
          ? `: Programmed ${p.status} (${p.reason ?? ''}) ${p.message ?? ''}`.trimEnd()
          : ': no Programmed condition yet'
        : ': not found';
      throw new CliError('CLI_ERR_TIMEOUT', `${what}\t${ns}/${name}${last}`);
    }
    await sleep(w.pollMs ?? 1000);
  }
}

export interface ClusterApplyOptions {
  readonly namespace: string;
  readonly name?: string;
  readonly waypointFor?: string;
  readonly enrollNamespace?: boolean;
  readonly overwrite?: boolean;
  readonly wait?: boolean;
  readonly waiting?: WaitOptions;
  readonly print: (l: string) => void;
}

/**
 * Server-side apply of the Gateway as field manager `ambientctl`; with --wait, until Programmed;
 * with --enroll-namespace, then labels the namespace. As istioctl, a namespace that already uses
 * a waypoint is left alone (a warning, nothing applied) unless --overwrite; unlike istioctl, using
 * the same waypoint already is no reason to stop (the lab form decides the same way).
 */
export async function clusterWaypointApply(kube: KubeClient, o: ClusterApplyOptions): Promise<void> {
  const name = o.name || 'waypoint';
  checkWaypointArgs(name, o.waypointFor);
  const ns = o.namespace;
  const labels = await namespaceLabels(kube, ns);
  if (o.enrollNamespace) {
    const current = labels[USE_WAYPOINT];
    if (!o.overwrite && current && current !== name) {
      o.print(
        `⚠️ Warning: namespace (${ns}) already has an enrolled Waypoint. Consider adding the \`--overwrite\` flag to your apply command.`,
      );
      return;
    }
    if (labels[DATAPLANE_MODE] !== 'ambient')
      o.print(
        `⚠️ Warning: namespace is not enrolled in ambient. Consider running\t\`kubectl label namespace ${ns} istio.io/dataplane-mode=ambient\``,
      );
  }
  const gw = waypointGateway({ namespace: ns, name, ...(o.waypointFor && { waypointFor: o.waypointFor }) });
  try {
    await kube.apply(gatewayPath(ns, name), gw, FIELD_MANAGER);
  } catch (err) {
    if (isNotFound(err))
      throw new CliError(
        'CLI_ERR_API',
        `missing Kubernetes Gateway CRDs need to be installed before applying a waypoint: ${(err as Error).message}`,
        404,
      );
    throw err;
  }
  o.print(`✅ waypoint ${ns}/${name} applied`);
  if (o.wait) {
    await waitProgrammed(kube, ns, name, o.waiting ?? {}, 'timed out while waiting for waypoint');
    o.print(`✅ waypoint ${ns}/${name} is ready!`);
  }
  if (o.enrollNamespace) {
    await kube.mergePatch(`/api/v1/namespaces/${encodeURIComponent(ns)}`, {
      metadata: { labels: { [USE_WAYPOINT]: name } },
    });
    o.print(`✅ namespace ${ns} labeled with "${USE_WAYPOINT}: ${name}"`);
  }
}

async function listWaypoints(kube: KubeClient, ns: string | undefined): Promise<GatewayJson[] | undefined> {
  const list = (await kube.get<{ items: GatewayJson[] }>(gatewaysPath(ns))) as { items: GatewayJson[] };
  if (list.items.length === 0) return undefined;
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return list.items
    .filter((g) => g.spec.gatewayClassName === WAYPOINT_CLASS)
    .sort((a, b) => cmp(a.metadata.namespace, b.metadata.namespace) || cmp(a.metadata.name, b.metadata.name));
}

/** istioctl's `waypoint list`: NAME, REVISION, TRAFFIC TYPE, PROGRAMMED (NAMESPACE first with -A). */
export async function clusterWaypointList(
  kube: KubeClient,
  o: { namespace: string; allNamespaces: boolean; print: (l: string) => void },
): Promise<void> {
  const gws = await listWaypoints(kube, o.allNamespaces ? undefined : o.namespace);
  if (!gws) {
    o.print('No waypoints found.');
    return;
  }
  const rows = [
    [...(o.allNamespaces ? ['NAMESPACE'] : []), 'NAME', 'REVISION', 'TRAFFIC TYPE', 'PROGRAMMED'],
  ];
  for (const g of gws) {
    const l = g.metadata.labels ?? {};
    rows.push([
      ...(o.allNamespaces ? [g.metadata.namespace] : []),
      g.metadata.name,
      l['istio.io/rev'] || 'default',
      // istioctl's words: an unlabelled Gateway shows `none` (the control plane serves `service`).
      l['istio.io/waypoint-for'] || 'none',
      programmed(g)?.status ?? 'False',
    ]);
  }
  o.print(formatTable(rows, 5).trimEnd());
}

/** istioctl's `waypoint delete NAME...` or `--all`: names that are not waypoints are reported, not errors. */
export async function clusterWaypointDelete(
  kube: KubeClient,
  o: { namespace: string; names: readonly string[]; all: boolean; print: (l: string) => void },
): Promise<void> {
  if (o.all && o.names.length > 0)
    throw new CliError('CLI_ERR_ARGS', 'cannot specify waypoint names when deleting all waypoints');
  if (!o.all && o.names.length === 0)
    throw new CliError('CLI_ERR_ARGS', 'must specify a waypoint name or delete all using --all');
  const ns = o.namespace;
  const existing = new Set((await listWaypoints(kube, ns))?.map((g) => g.metadata.name) ?? []);
  const names: string[] = [];
  for (const n of o.all ? existing : o.names) {
    if (existing.has(n)) names.push(n);
    else o.print(`waypoint ${ns}/${n} not found`);
  }
  const failures: string[] = [];
  for (const n of names) {
    try {
      if (await kube.delete(gatewayPath(ns, n))) o.print(`waypoint ${ns}/${n} deleted`);
      else o.print(`waypoint ${ns}/${n} not found`);
    } catch (err) {
      failures.push((err as Error).message);
    }
  }
  if (failures.length > 0) throw new CliError('CLI_ERR_API', failures.join('; '));
}

/**
 * istioctl's `waypoint status`: each waypoint's Programmed condition (STATUS, TYPE, REASON,
 * MESSAGE), waiting for it to be True with --wait (the default). istioctl prints a row at every
 * poll; this prints one per waypoint, the last seen.
 */
export async function clusterWaypointStatus(
  kube: KubeClient,
  o: {
    namespace: string;
    allNamespaces: boolean;
    wait: boolean;
    waiting?: WaitOptions;
    print: (l: string) => void;
  },
): Promise<void> {
  const gws = await listWaypoints(kube, o.allNamespaces ? undefined : o.namespace);
  if (!gws) {
    o.print('No waypoints found.');
    return;
  }
  const rows = [[...(o.allNamespaces ? ['NAMESPACE'] : []), 'NAME', 'STATUS', 'TYPE', 'REASON', 'MESSAGE']];
  let failure: CliError | undefined;
  // One deadline for all of them, as istioctl's.
  const total = o.waiting?.timeoutMs ?? DEFAULT_WAYPOINT_TIMEOUT_MS;
  const start = Date.now();
  for (const g of gws) {
    let seen = g;
    if (o.wait && !failure) {
      try {
        seen = await waitProgrammed(
          kube,
          g.metadata.namespace,
          g.metadata.name,
          { ...o.waiting, timeoutMs: Math.max(0, total - (Date.now() - start)) },
          'timed out while retrieving status for waypoint',
        );
      } catch (err) {
        if (!(err instanceof CliError && err.code === 'CLI_ERR_TIMEOUT')) throw err;
        failure = err;
        seen = (await kube.get<GatewayJson>(gatewayPath(g.metadata.namespace, g.metadata.name), true)) ?? g;
      }
    }
    const c = programmed(seen);
    rows.push([
      ...(o.allNamespaces ? [seen.metadata.namespace] : []),
      seen.metadata.name,
      c?.status ?? '',
      c?.type ?? '',
      c?.reason ?? '',
      c?.message ?? '',
    ]);
  }
  o.print(formatTable(rows, 5).trimEnd());
  if (failure) throw failure;
}

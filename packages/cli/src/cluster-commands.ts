/**
 * The commands that have a cluster form: they choose their target (cluster-target.ts) and run
 * the lab or the cluster implementation. main.ts only parses arguments and calls these.
 */
import { readFile } from 'node:fs/promises';
import { CliError } from './cli-error.js';
import { type ClusterTarget, selectTarget } from './cluster/cluster-target.js';
import { KubeClient } from './cluster/kube-client.js';
import { kubeZtunnelReader } from './cluster/kube-ztunnel-reader.js';
import {
  clusterWaypointApply,
  clusterWaypointDelete,
  clusterWaypointList,
  clusterWaypointStatus,
} from './cluster/waypoint-cluster.js';
import { DEFAULT_ZTUNNEL_NAMESPACE, DEFAULT_ZTUNNEL_SELECTOR } from './cluster/ztunnel-pods.js';
import { parseDuration } from './duration.js';
import { labZtunnelReader, waypointApply } from './lab-commands.js';
import { printTcpTraffic, printZtunnelConfig } from './ztunnel/ztunnel-commands.js';
import {
  type OutputFormat,
  parseZtunnelDump,
  renderZtunnelConfig,
  type ZtunnelConfigKind,
} from './ztunnel/ztunnel-config-view.js';

export type Env = Readonly<Record<string, string | undefined>>;

export interface TargetArgs {
  readonly lab?: string;
  readonly kubeconfig?: string;
  readonly env: Env;
  readonly print: (l: string) => void;
}

function kube(target: ClusterTarget): KubeClient {
  if (target.kind !== 'kube') throw new Error('not a cluster target');
  return KubeClient.connect(target);
}

function clusterOnly(command: string, a: TargetArgs): KubeClient {
  const target = selectTarget({ ...a, labForm: false }, a.env);
  if (target.kind === 'lab')
    throw new CliError(
      'CLI_ERR_ARGS',
      `${command} works on a cluster only (a lab shows its waypoints in: ambientctl lab status)`,
    );
  return kube(target);
}

export async function waypointApplyCommand(
  a: TargetArgs & {
    namespace?: string;
    name?: string;
    waypointFor?: string;
    enrollNamespace: boolean;
    overwrite: boolean;
    serviceAccount?: string;
    node?: number;
    wait: boolean;
    waypointTimeout: string;
  },
): Promise<void> {
  const target = selectTarget({ ...a, labForm: true }, a.env);
  if (target.kind === 'lab') {
    await waypointApply({
      lab: target.name,
      namespace: a.namespace ?? 'default',
      ...(a.serviceAccount && { serviceAccount: a.serviceAccount }),
      ...(a.name && { name: a.name }),
      ...(a.waypointFor !== undefined && { waypointFor: a.waypointFor }),
      enrollNamespace: a.enrollNamespace,
      overwrite: a.overwrite,
      ...(a.node !== undefined && { node: a.node }),
      print: a.print,
    });
    return;
  }
  if (a.serviceAccount !== undefined || a.node !== undefined)
    throw new CliError(
      'CLI_ERR_ARGS',
      '--service-account and --node are options of the lab form only (--lab NAME)',
    );
  const timeoutMs = parseDuration('--waypoint-timeout', a.waypointTimeout);
  const k = kube(target);
  await clusterWaypointApply(k, {
    namespace: a.namespace ?? k.defaultNamespace,
    ...(a.name && { name: a.name }),
    ...(a.waypointFor !== undefined && { waypointFor: a.waypointFor }),
    enrollNamespace: a.enrollNamespace,
    overwrite: a.overwrite,
    wait: a.wait,
    waiting: { timeoutMs },
    print: a.print,
  });
}

export async function waypointListCommand(
  a: TargetArgs & { namespace?: string; allNamespaces: boolean },
): Promise<void> {
  const k = clusterOnly('waypoint list', a);
  await clusterWaypointList(k, {
    namespace: a.namespace ?? k.defaultNamespace,
    allNamespaces: a.allNamespaces,
    print: a.print,
  });
}

export async function waypointDeleteCommand(
  a: TargetArgs & { namespace?: string; names: readonly string[]; all: boolean },
): Promise<void> {
  const k = clusterOnly('waypoint delete', a);
  await clusterWaypointDelete(k, {
    namespace: a.namespace ?? k.defaultNamespace,
    names: a.names,
    all: a.all,
    print: a.print,
  });
}

export async function waypointStatusCommand(
  a: TargetArgs & { namespace?: string; allNamespaces: boolean; wait: boolean; waypointTimeout: string },
): Promise<void> {
  const timeoutMs = parseDuration('--waypoint-timeout', a.waypointTimeout);
  const k = clusterOnly('waypoint status', a);
  await clusterWaypointStatus(k, {
    namespace: a.namespace ?? k.defaultNamespace,
    allNamespaces: a.allNamespaces,
    wait: a.wait,
    waiting: { timeoutMs },
    print: a.print,
  });
}

export interface ZtunnelArgs extends TargetArgs {
  readonly node?: string;
  readonly ztunnelNamespace?: string;
  readonly ztunnelSelector?: string;
}

async function reader(a: ZtunnelArgs) {
  const target = selectTarget({ ...a, labForm: true }, a.env);
  if (target.kind === 'lab') return labZtunnelReader(target.name);
  return kubeZtunnelReader(kube(target), {
    namespace: a.ztunnelNamespace ?? DEFAULT_ZTUNNEL_NAMESPACE,
    selector: a.ztunnelSelector ?? DEFAULT_ZTUNNEL_SELECTOR,
  });
}

export async function ztunnelConfigCommand(
  a: ZtunnelArgs & { kind: ZtunnelConfigKind; output: OutputFormat; file?: string },
): Promise<void> {
  if (a.file !== undefined) {
    if (a.node !== undefined)
      throw new CliError('CLI_ERR_ARGS', 'at most one of --file, --node, or pod name must be passed');
    let text: string;
    try {
      text = await readFile(a.file, 'utf8');
    } catch (err) {
      throw new CliError('CLI_ERR_ARGS', `cannot read ${a.file}: ${(err as Error).message}`);
    }
    a.print(
      renderZtunnelConfig(parseZtunnelDump(text, `file ${a.file}`), a.kind, a.output, new Date()).replace(
        /\n$/,
        '',
      ),
    );
    return;
  }
  await printZtunnelConfig(await reader(a), {
    kind: a.kind,
    output: a.output,
    print: a.print,
    ...(a.node !== undefined && { node: a.node }),
  });
}

export async function metricsCommand(a: ZtunnelArgs): Promise<void> {
  await printTcpTraffic(await reader(a), { print: a.print, ...(a.node !== undefined && { node: a.node }) });
}

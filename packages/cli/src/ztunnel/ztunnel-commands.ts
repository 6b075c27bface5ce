/**
 * `ambientctl ztunnel-config` and `ambientctl metrics`: what they print, over any way of reading
 * node agents (a cluster's pods, or a lab's nodes).
 */
import { CliError } from '../cli-error.js';
import { parsePrometheusText, tcpTrafficRows, tcpTrafficTable } from './tcp-traffic-table.js';
import {
  type OutputFormat,
  parseZtunnelDump,
  renderZtunnelConfig,
  type ZtunnelConfigKind,
} from './ztunnel-config-view.js';

export interface ZtunnelReader {
  /** Nodes running a node agent, sorted (only `node`, when given: an error if it runs none). */
  nodes(node?: string): Promise<string[]>;
  /** The agent's `/config_dump` (JSON text) or `/metrics` (Prometheus text). */
  read(node: string, endpoint: 'config_dump' | 'metrics'): Promise<string>;
}

export async function printZtunnelConfig(
  reader: ZtunnelReader,
  o: { kind: ZtunnelConfigKind; node?: string; output: OutputFormat; now?: Date; print: (s: string) => void },
): Promise<void> {
  const nodes = await reader.nodes(o.node);
  // As istioctl: certificates differ per node, so with several one must be named.
  if (o.node === undefined && o.kind === 'certificates' && nodes.length > 1)
    throw new CliError('CLI_ERR_ARGS', `ztunnel pod name or --node must be set (nodes: ${nodes.join(', ')})`);
  const node = nodes[0] as string;
  const dump = parseZtunnelDump(await reader.read(node, 'config_dump'), `on node ${node}`);
  o.print(renderZtunnelConfig(dump, o.kind, o.output, o.now ?? new Date()).replace(/\n$/, ''));
}

export async function printTcpTraffic(
  reader: ZtunnelReader,
  o: { node?: string; print: (s: string) => void },
): Promise<void> {
  const nodes = await reader.nodes(o.node);
  const read = await Promise.all(
    nodes.map(async (node) => ({
      node,
      rows: tcpTrafficRows(parsePrometheusText(await reader.read(node, 'metrics'))),
    })),
  );
  o.print(tcpTrafficTable(read).replace(/\n$/, ''));
}

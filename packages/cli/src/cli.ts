import yargs, { type Argv } from 'yargs';
import {
  metricsCommand,
  waypointApplyCommand,
  waypointDeleteCommand,
  waypointListCommand,
  waypointStatusCommand,
  type ZtunnelArgs,
  ztunnelConfigCommand,
} from './cluster-commands.js';
import { runHboneDemo } from './hbone-demo.js';
import {
  applyFile,
  deleteFile,
  demoLab,
  labDown,
  labExec,
  labelObject,
  labStatus,
  labUp,
  WAYPOINT_FOR,
} from './lab-commands.js';
import { OUTPUT_FORMATS, type OutputFormat, type ZtunnelConfigKind } from './ztunnel/ztunnel-config-view.js';

/** What a run of ambientctl reads and writes; main.ts passes the process's own. */
export interface CliIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
  readonly signal: AbortSignal;
}

// --lab has no default here: whether it was given decides between a lab and a cluster
// (cluster/cluster-target.ts).
const LAB_OPTION = {
  type: 'string',
  describe: 'lab name: use this lab even when a kubeconfig is set',
} as const;
const KUBECONFIG_OPTION = {
  type: 'string',
  describe: 'kubeconfig file (else KUBECONFIG, else in-cluster; without any: the lab demo)',
} as const;

function targetOf(io: CliIo, argv: { lab?: string; kubeconfig?: string }) {
  return {
    env: io.env,
    print: io.out,
    ...(argv.lab !== undefined && { lab: argv.lab }),
    ...(argv.kubeconfig !== undefined && { kubeconfig: argv.kubeconfig }),
  };
}

function ztunnelOptions<T>(y: Argv<T>) {
  return y
    .option('node', { type: 'string', describe: 'the node whose agent to read (lab: node0, node1, ...)' })
    .option('ztunnel-namespace', {
      type: 'string',
      default: 'istio-system',
      describe: 'cluster: namespace of the ztunnel pods',
    })
    .option('ztunnel-selector', {
      type: 'string',
      default: 'app=ztunnel',
      describe: 'cluster: label selector of the ztunnel pods',
    })
    .option('lab', LAB_OPTION)
    .option('kubeconfig', KUBECONFIG_OPTION);
}

function ztunnelArgsOf(
  io: CliIo,
  argv: {
    lab?: string;
    kubeconfig?: string;
    node?: string;
    'ztunnel-namespace': string;
    'ztunnel-selector': string;
  },
): ZtunnelArgs {
  return {
    ...targetOf(io, argv),
    ...(argv.node !== undefined && { node: argv.node }),
    ztunnelNamespace: argv['ztunnel-namespace'],
    ztunnelSelector: argv['ztunnel-selector'],
  };
}
/** Runs one command line (without the program name); resolves with the exit code. */
export async function runCli(args: readonly string[], io: CliIo): Promise<number> {
  let exitCode = 0;
  const print = io.out;
  const target = (argv: { lab?: string; kubeconfig?: string }) => targetOf(io, argv);
  const ztunnelArgs = (argv: Parameters<typeof ztunnelArgsOf>[1]) => ztunnelArgsOf(io, argv);
  await yargs([...args])
    .scriptName('ambientctl')
    .parserConfiguration({ 'populate--': true })
    .command('demo', 'run a self-contained demonstration', (y) =>
      y
        .command(
          'hbone',
          'tunnel TCP connections through an HBONE client/server pair on loopback and show the verified identities',
          (h) =>
            h
              .option('connections', { type: 'number', default: 3, describe: 'demo connections to make' })
              .option('keep', {
                type: 'boolean',
                default: false,
                describe: 'keep the tunnel port open until Ctrl-C',
              })
              .option('port', { type: 'number', default: 0, describe: 'tunnel port (0 picks a free one)' })
              .option('ca-dir', {
                type: 'string',
                describe: 'directory holding the CA root (created if empty)',
              }),
          async (argv) => {
            await runHboneDemo({
              connections: argv.connections,
              keep: argv.keep,
              port: argv.port,
              ...(argv['ca-dir'] !== undefined && { caDir: argv['ca-dir'] }),
              signal: io.signal,
              print: print,
            });
          },
        )
        .command(
          'lab',
          'bring up a two-node lab with a ztunnel per node, curl across it through the mesh, show the metrics, tear it down',
          (h) =>
            h
              .option('keep', { type: 'boolean', default: false, describe: 'leave the lab up afterwards' })
              .option('name', { type: 'string', default: 'demo', describe: 'lab name: [a-z][a-z0-9]{0,5}' }),
          async (argv) => {
            await demoLab({ keep: argv.keep, name: argv.name, print: print });
          },
        )
        .demandCommand(1),
    )
    .command('lab', 'a local cluster of network namespaces with the mesh (needs root)', (y) =>
      y
        .option('name', { type: 'string', default: 'demo', describe: 'lab name: [a-z][a-z0-9]{0,5}' })
        .command('up', 'create the lab, its apps and one ztunnel per node', {}, async (argv) => {
          await labUp(String(argv.name), print);
        })
        .command('down', 'stop everything and remove the lab', {}, async (argv) => {
          await labDown(String(argv.name), print);
        })
        .command('status', 'nodes, pods, services and ztunnel readiness', {}, async (argv) => {
          await labStatus(String(argv.name), print);
        })
        .command(
          'exec <target> [cmd..]',
          'run a command in a pod (namespace/pod) or node (node0)',
          (e) =>
            e
              .positional('target', { type: 'string', demandOption: true })
              .positional('cmd', { type: 'string', array: true }),
          async (argv) => {
            // Everything after `--` is the command, untouched by option parsing.
            const rest = (argv['--'] as string[] | undefined) ?? (argv.cmd as string[] | undefined) ?? [];
            exitCode = await labExec(
              String(argv.name),
              String(argv.target),
              rest.length > 0 ? rest.map(String) : ['sh'],
            );
          },
        )
        .demandCommand(1),
    )
    .command(
      'label <kind> <objectName> <labels..>',
      'set (key=value) or remove (key-) labels on an object in a lab; e.g. label namespace demo istio.io/dataplane-mode=ambient',
      (y) =>
        y
          .positional('kind', {
            type: 'string',
            demandOption: true,
            describe: 'namespace, pod, service, ...',
          })
          .positional('objectName', { type: 'string', demandOption: true })
          .positional('labels', { type: 'string', array: true, demandOption: true })
          .option('namespace', { alias: 'n', type: 'string', default: 'default' })
          .option('lab', { type: 'string', default: 'demo', describe: 'lab name' }),
      async (argv) => {
        await labelObject({
          lab: argv.lab,
          kind: String(argv.kind),
          name: String(argv.objectName),
          namespace: argv.namespace,
          labels: (argv.labels as string[]).map(String),
          print: print,
        });
      },
    )
    .command('waypoint', 'deploy, list, delete and check L7 waypoints (in a lab or a cluster)', (y) =>
      y
        .option('name', { type: 'string', describe: 'name of the waypoint (default waypoint)' })
        .command(
          'apply',
          'apply an istio-waypoint Gateway (in a lab: also its pod and Service, waiting until it is ready)',
          (yy) =>
            yy
              .option('namespace', {
                alias: 'n',
                type: 'string',
                describe: "namespace (default: the context's, else default)",
              })
              .option('for', {
                type: 'string',
                choices: [...WAYPOINT_FOR],
                describe: 'traffic the waypoint serves: istio.io/waypoint-for (unset: service)',
              })
              .option('enroll-namespace', {
                type: 'boolean',
                default: false,
                describe: 'label the namespace istio.io/use-waypoint=<name>',
              })
              .option('overwrite', {
                type: 'boolean',
                default: false,
                describe: 'with --enroll-namespace, replace the waypoint the namespace already uses',
              })
              .option('wait', {
                alias: 'w',
                type: 'boolean',
                default: false,
                describe: 'cluster: wait until the Gateway is Programmed',
              })
              .option('waypoint-timeout', {
                type: 'string',
                default: '90s',
                describe: 'cluster: how long --wait waits',
              })
              .option('service-account', {
                type: 'string',
                describe:
                  "lab, legacy: serve this service account's workloads (istio.io/for-service-account)",
              })
              .option('node', {
                type: 'number',
                describe: 'lab node for the waypoint pod (default: the last)',
              })
              .option('lab', LAB_OPTION)
              .option('kubeconfig', KUBECONFIG_OPTION),
          async (argv) => {
            await waypointApplyCommand({
              ...target(argv),
              ...(argv.namespace !== undefined && { namespace: argv.namespace }),
              ...(argv.name && { name: argv.name }),
              ...(argv.for !== undefined && { waypointFor: argv.for }),
              enrollNamespace: argv['enroll-namespace'],
              overwrite: argv.overwrite,
              ...(argv['service-account'] !== undefined && { serviceAccount: argv['service-account'] }),
              ...(argv.node !== undefined && { node: argv.node }),
              wait: argv.wait,
              waypointTimeout: argv['waypoint-timeout'],
            });
          },
        )
        .command(
          'list',
          'list the waypoints of a namespace, or of all with -A (cluster)',
          (yy) =>
            yy
              .option('namespace', { alias: 'n', type: 'string' })
              .option('all-namespaces', { alias: 'A', type: 'boolean', default: false })
              .option('kubeconfig', KUBECONFIG_OPTION),
          async (argv) => {
            await waypointListCommand({
              ...target(argv),
              ...(argv.namespace !== undefined && { namespace: argv.namespace }),
              allNamespaces: argv['all-namespaces'],
            });
          },
        )
        .command(
          'delete [names..]',
          'delete waypoints by name, or all of a namespace with --all (cluster)',
          (yy) =>
            yy
              .positional('names', { type: 'string', array: true })
              .option('namespace', { alias: 'n', type: 'string' })
              .option('all', {
                type: 'boolean',
                default: false,
                describe: 'delete all waypoints in the namespace',
              })
              .option('kubeconfig', KUBECONFIG_OPTION),
          async (argv) => {
            const names = [
              ...((argv.names as string[] | undefined) ?? []),
              ...(argv.name ? [argv.name] : []),
            ];
            await waypointDeleteCommand({
              ...target(argv),
              ...(argv.namespace !== undefined && { namespace: argv.namespace }),
              names: names.map(String),
              all: argv.all,
            });
          },
        )
        .command(
          'status',
          "show each waypoint's Programmed condition, waiting for it with --wait (cluster)",
          (yy) =>
            yy
              .option('namespace', { alias: 'n', type: 'string' })
              .option('all-namespaces', { alias: 'A', type: 'boolean', default: false })
              .option('wait', {
                alias: 'w',
                type: 'boolean',
                default: true,
                describe: 'wait for the waypoint to be ready',
              })
              .option('waypoint-timeout', { type: 'string', default: '90s' })
              .option('kubeconfig', KUBECONFIG_OPTION),
          async (argv) => {
            await waypointStatusCommand({
              ...target(argv),
              ...(argv.namespace !== undefined && { namespace: argv.namespace }),
              allNamespaces: argv['all-namespaces'],
              wait: argv.wait,
              waypointTimeout: argv['waypoint-timeout'],
            });
          },
        )
        .demandCommand(1),
    )
    .command(
      ['ztunnel-config', 'zc'],
      "tables of a node agent's config (from its /config_dump), as istioctl ztunnel-config",
      (y) => {
        const kinds: Array<[ZtunnelConfigKind, string[], string]> = [
          ['workloads', ['workload', 'w'], 'workloads the node agent knows'],
          ['services', ['service', 's', 'svc'], 'services, their VIPs, waypoint and healthy endpoints'],
          ['policies', ['policy', 'pol'], 'authorization policies'],
          ['certificates', ['certificate', 'certs', 'cert'], 'workload certificates the node agent holds'],
        ];
        for (const [kind, aliases, describe] of kinds)
          y.command(
            [kind, ...aliases],
            describe,
            (yy) =>
              ztunnelOptions(yy)
                .option('output', {
                  alias: 'o',
                  type: 'string',
                  choices: [...OUTPUT_FORMATS],
                  default: 'short',
                })
                .option('file', {
                  alias: 'f',
                  type: 'string',
                  describe: 'read a config dump from this file instead',
                }),
            async (argv) => {
              await ztunnelConfigCommand({
                ...ztunnelArgs(argv),
                kind,
                output: argv.output as OutputFormat,
                ...(argv.file !== undefined && { file: argv.file }),
              });
            },
          );
        return y.demandCommand(1);
      },
    )
    .command(
      'metrics',
      "each node agent's TCP connections and bytes by source and destination workload (its /metrics)",
      (y) => ztunnelOptions(y),
      async (argv) => {
        await metricsCommand(ztunnelArgs(argv));
      },
    )
    .command(
      'apply',
      'validate manifests (Namespace, Pod, Service, ServiceAccount, AuthorizationPolicy, PeerAuthentication, Gateway, HTTPRoute, VirtualService, DestinationRule) and write them all to a lab, or none',
      (y) =>
        y
          .option('filename', {
            alias: 'f',
            type: 'string',
            demandOption: true,
            describe: 'YAML file, or - for stdin',
          })
          .option('lab', { type: 'string', default: 'demo', describe: 'lab name' }),
      async (argv) => {
        await applyFile({ lab: argv.lab, file: argv.filename, print: print });
      },
    )
    .command(
      'delete',
      'remove the objects a manifest file names from a lab',
      (y) =>
        y
          .option('filename', {
            alias: 'f',
            type: 'string',
            demandOption: true,
            describe: 'YAML file, or - for stdin',
          })
          .option('lab', { type: 'string', default: 'demo', describe: 'lab name' }),
      async (argv) => {
        await deleteFile({ lab: argv.lab, file: argv.filename, print: print });
      },
    )
    .demandCommand(1)
    .strict()
    .fail((msg, err, y) => {
      if (err) {
        io.err(`ambientctl: ${err.message}`);
      } else {
        io.err(`ambientctl: ${msg}\n`);
        y.showHelp((h) => io.err(h));
      }
      exitCode = 1;
    })
    .exitProcess(false)
    .help()
    .parseAsync()
    .catch(() => {
      // Already reported by fail() above, which also set the exit code.
    });
  return exitCode;
}

#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
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
  waypointApply,
} from './lab-commands.js';

const controller = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => controller.abort());

await yargs(hideBin(process.argv))
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
            signal: controller.signal,
            print: (line) => console.log(line),
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
          await demoLab({ keep: argv.keep, name: argv.name, print: (line) => console.log(line) });
        },
      )
      .demandCommand(1),
  )
  .command('lab', 'a local cluster of network namespaces with the mesh (needs root)', (y) =>
    y
      .option('name', { type: 'string', default: 'demo', describe: 'lab name: [a-z][a-z0-9]{0,5}' })
      .command('up', 'create the lab, its apps and one ztunnel per node', {}, async (argv) => {
        await labUp(String(argv.name), (l) => console.log(l));
      })
      .command('down', 'stop everything and remove the lab', {}, async (argv) => {
        await labDown(String(argv.name), (l) => console.log(l));
      })
      .command('status', 'nodes, pods, services and ztunnel readiness', {}, async (argv) => {
        await labStatus(String(argv.name), (l) => console.log(l));
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
          process.exitCode = await labExec(
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
        .positional('kind', { type: 'string', demandOption: true, describe: 'namespace, pod, service, ...' })
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
        print: (l) => console.log(l),
      });
    },
  )
  .command('waypoint', 'deploy an L7 waypoint in a lab', (y) =>
    y
      .command(
        'apply',
        'deploy a waypoint (an istio-waypoint Gateway, its pod and Service) and wait until it is ready',
        (yy) =>
          yy
            .option('namespace', { alias: 'n', type: 'string', default: 'default' })
            .option('name', {
              type: 'string',
              describe: 'Gateway name (default waypoint; <service-account>-waypoint with --service-account)',
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
            .option('service-account', {
              type: 'string',
              describe: "legacy: serve this service account's workloads (istio.io/for-service-account)",
            })
            .option('node', { type: 'number', describe: 'lab node for the waypoint pod (default: the last)' })
            .option('lab', { type: 'string', default: 'demo', describe: 'lab name' }),
        async (argv) => {
          await waypointApply({
            lab: argv.lab,
            namespace: argv.namespace,
            ...(argv['service-account'] && { serviceAccount: argv['service-account'] }),
            ...(argv.name && { name: argv.name }),
            ...(argv.for && { waypointFor: argv.for }),
            enrollNamespace: argv['enroll-namespace'],
            overwrite: argv.overwrite,
            ...(argv.node !== undefined && { node: argv.node }),
            print: (l) => console.log(l),
          });
        },
      )
      .demandCommand(1),
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
      await applyFile({ lab: argv.lab, file: argv.filename, print: (l) => console.log(l) });
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
      await deleteFile({ lab: argv.lab, file: argv.filename, print: (l) => console.log(l) });
    },
  )
  .demandCommand(1)
  .strict()
  .fail((msg, err, y) => {
    if (err) {
      console.error(`ambientctl: ${err.message}`);
    } else {
      console.error(`ambientctl: ${msg}\n`);
      y.showHelp();
    }
    process.exitCode = 1;
  })
  .help()
  .parseAsync()
  .catch(() => {
    // Already reported by fail() above, which also set the exit code.
  });

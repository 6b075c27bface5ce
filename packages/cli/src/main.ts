#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { runHboneDemo } from './hbone-demo.js';

const controller = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => controller.abort());

await yargs(hideBin(process.argv))
  .scriptName('ambientctl')
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
      .demandCommand(1),
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
  .parseAsync();

#!/usr/bin/env node
// The entry point: the only place that reads the process's environment and signals and exits.
import { hideBin } from 'yargs/helpers';
import { runCli } from './cli.js';

const controller = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => controller.abort());

process.exitCode = await runCli(hideBin(process.argv), {
  env: process.env,
  out: (line) => console.log(line),
  err: (line) => console.error(line),
  signal: controller.signal,
});

#!/usr/bin/env node
// The only place that reads the environment, handles signals and sets the exit code.
import { formatProblems } from '@ambient/shared';
import { pino } from 'pino';
import { ZtunnelApp } from './app/ztunnel-app.js';
import { parseZtunnelConfig } from './app/ztunnel-config.js';

const parsed = parseZtunnelConfig(process.env);
if (!parsed.ok) {
  console.error(`ztunnel: invalid settings: ${formatProblems(parsed.problems)}`);
  process.exit(2);
}
const logger = pino({ level: parsed.value.logLevel, base: { node: parsed.value.nodeName } });
const app = new ZtunnelApp({ config: parsed.value, logger });
try {
  const addresses = await app.start();
  logger.info(addresses, 'listening');
} catch (err) {
  logger.fatal({ err }, `ztunnel failed to start: ${(err as Error).message}`);
  process.exit(1);
}
let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, drainMs: parsed.value.drainMs }, 'draining');
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'drain failed');
        process.exit(1);
      },
    );
  });
}

#!/usr/bin/env node
// The only place that reads the environment, handles signals and sets the exit code.
import { formatProblems } from '@ambient/shared';
import { pino } from 'pino';
import { ControlPlaneApp } from './app/controlplane-app.js';
import { parseControlPlaneConfig } from './app/controlplane-config.js';

const parsed = parseControlPlaneConfig(process.env);
if (!parsed.ok) {
  console.error(`controlplane: invalid settings: ${formatProblems(parsed.problems)}`);
  process.exit(2);
}
const logger = pino({ level: parsed.value.logLevel, base: { component: 'controlplane' } });
const app = new ControlPlaneApp({ config: parsed.value, logger });
try {
  await app.start();
} catch (err) {
  logger.fatal({ err }, `control plane failed to start: ${(err as Error).message}`);
  process.exit(1);
}
let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  });
}

#!/usr/bin/env node
// The only place that reads the environment, handles signals and sets the exit code.
import { formatProblems } from '@ambient/shared';
import { pino } from 'pino';
import { WaypointApp } from './app/waypoint-app.js';
import { parseWaypointSettings } from './app/waypoint-settings.js';

const parsed = parseWaypointSettings(process.env);
if (!parsed.ok) {
  console.error(`waypoint: invalid settings: ${formatProblems(parsed.problems)}`);
  process.exit(2);
}
const logger = pino({
  level: parsed.value.logLevel,
  base: { waypoint: `${parsed.value.namespace}/${parsed.value.gatewayName}`, pod: parsed.value.podName },
});
const app = new WaypointApp({ settings: parsed.value, logger });
try {
  const addresses = await app.start();
  logger.info(addresses, 'listening');
} catch (err) {
  logger.fatal({ err }, `waypoint failed to start: ${(err as Error).message}`);
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

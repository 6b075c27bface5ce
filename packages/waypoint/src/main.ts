#!/usr/bin/env node
// The only place that reads the environment, handles signals and sets the exit code.
import { runComponent } from '@ambient/shared';
import { WaypointApp } from './app/waypoint-app.js';
import { parseWaypointSettings } from './app/waypoint-settings.js';

await runComponent(process, {
  name: 'waypoint',
  parseSettings: parseWaypointSettings,
  logBindings: (settings) => ({
    waypoint: `${settings.namespace}/${settings.gatewayName}`,
    pod: settings.podName,
  }),
  create: (settings, logger) => new WaypointApp({ settings, logger }),
});

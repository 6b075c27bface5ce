#!/usr/bin/env node
// The only place that reads the environment, handles signals and sets the exit code.
import { runComponent } from '@ambient/shared';
import { ControlPlaneApp } from './app/controlplane-app.js';
import { parseControlPlaneConfig } from './app/controlplane-config.js';

await runComponent(process, {
  name: 'controlplane',
  parseSettings: parseControlPlaneConfig,
  logBindings: () => ({ component: 'controlplane' }),
  create: (config, logger) => new ControlPlaneApp({ config, logger }),
});

#!/usr/bin/env node
// The only place that reads the environment, handles signals and sets the exit code.
import { runComponent } from '@ambient/shared';
import { ZtunnelApp } from './app/ztunnel-app.js';
import { parseZtunnelConfig } from './app/ztunnel-config.js';

await runComponent(process, {
  name: 'ztunnel',
  parseSettings: parseZtunnelConfig,
  logBindings: (config) => ({ node: config.nodeName }),
  create: (config, logger) => new ZtunnelApp({ config, logger }),
});

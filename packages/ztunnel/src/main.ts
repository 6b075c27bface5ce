#!/usr/bin/env node
// The only place that reads the environment, handles signals and sets the exit code.
import { runComponent } from '@ambient/shared';
import { applyV8Flags } from './app/v8-flags.js';
import { ZtunnelApp } from './app/ztunnel-app.js';
import { parseZtunnelConfig } from './app/ztunnel-config.js';

applyV8Flags();

await runComponent(process, {
  name: 'ztunnel',
  parseSettings: parseZtunnelConfig,
  logBindings: (config) => ({ node: config.nodeName }),
  create: (config, logger) => new ZtunnelApp({ config, logger }),
});

#!/usr/bin/env node
// The only place that reads the environment, handles signals and sets the exit code.
//   main.js             runs the node agent (the DaemonSet's container)
//   main.js uninstall   removes the plugin from the node's CNI config and bin dir, then exits
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadKubeConfig } from '@ambient/controlplane';
import { formatProblems, runComponent } from '@ambient/shared';
import { ZdsServer } from '@ambient/ztunnel';
import { type Logger, pino } from 'pino';
import type { ZtunnelLink } from './agent/ztunnel-link.js';
import { CniApp } from './app/cni-app.js';
import { type CniConfig, parseCniConfig } from './config/cni-config.js';
import { PLUGIN_TYPE } from './install/conflist.js';
import { PluginInstaller } from './install/plugin-installer.js';
import { lookupDaemonSet, removePluginOnStop } from './install/shutdown-cleanup.js';

// The cni image carries the plugin at /opt/ambient-cni/bin (docs/images.md); a checkout has it
// where packages/cni/plugin/build.sh writes it.
const IMAGE_PLUGIN_BINARY = '/opt/ambient-cni/bin/ambient-cni';
const PLUGIN_BINARY = existsSync(IMAGE_PLUGIN_BINARY)
  ? IMAGE_PLUGIN_BINARY
  : fileURLToPath(new URL('../plugin/bin/ambient-cni', import.meta.url));

/**
 * The ztunnel link: the ZDS server on CNI_ZDS_SOCKET that the node's ztunnel connects to, as
 * Istio's CNI agent serves it (istio/istio cni/pkg/nodeagent/ztunnelserver.go). A pod is acked only
 * once that ztunnel took it; with none connected, enrolled pods keep their rules and stay closed.
 */
function connectZtunnel(
  config: CniConfig,
  logger: Logger,
): { link: ZtunnelLink; start(): Promise<void>; close(): Promise<void> } {
  const zds = new ZdsServer({ socketPath: config.zdsSocket, log: logger });
  return { link: zds, start: () => zds.start(), close: () => zds.close() };
}

function kubeConfigOf(config: CniConfig) {
  return loadKubeConfig({
    kubeconfig: config.kubeconfig,
    serviceHost: config.kubernetesServiceHost,
    servicePort: config.kubernetesServicePort,
  });
}

/** Takes the plugin out of the node's CNI config and bin dir. */
function uninstallPlugin(config: CniConfig, logger: Logger): Promise<void> {
  return new PluginInstaller({
    binDir: config.hostBinDir,
    netDir: config.hostNetDir,
    pluginBinary: PLUGIN_BINARY,
    logger,
    entry: {
      type: PLUGIN_TYPE,
      name: PLUGIN_TYPE,
      agent_socket: '',
      exclude_namespaces: [],
      timeout_seconds: 0,
    },
  }).uninstall();
}

if (process.argv[2] === 'uninstall') {
  const parsed = parseCniConfig(process.env);
  if (!parsed.ok) {
    process.stderr.write(`cni: invalid settings: ${formatProblems(parsed.problems)}\n`);
    process.exit(2);
  }
  const config = parsed.value;
  const logger = pino({ level: config.logLevel, base: { component: 'cni', node: config.nodeName } });
  await uninstallPlugin(config, logger);
} else {
  await runComponent(process, {
    name: 'cni',
    parseSettings: parseCniConfig,
    logBindings: (c) => ({ component: 'cni', node: c.nodeName }),
    create: (config, logger) => {
      const ztunnel = connectZtunnel(config, logger);
      const app = new CniApp({
        config,
        logger,
        kubeConfig: kubeConfigOf(config),
        link: ztunnel.link,
        pluginBinary: PLUGIN_BINARY,
      });
      return {
        start: async () => {
          await ztunnel.start();
          return app.start();
        },
        close: async () => {
          await app.close();
          await ztunnel.close();
          // An uninstall takes the plugin out, so new pods start with plain networking; an upgrade
          // or a reboot leaves it, so they wait for the next agent.
          const lookup = await lookupDaemonSet(
            kubeConfigOf(config),
            config.podNamespace,
            config.daemonSetName,
          );
          const remove = removePluginOnStop(lookup);
          logger.info(
            { daemonSet: `${config.podNamespace}/${config.daemonSetName}`, lookup, removePlugin: remove },
            remove ? 'the agent is being uninstalled: removing the plugin' : 'leaving the plugin in place',
          );
          if (remove) await uninstallPlugin(config, logger);
        },
      };
    },
  });
}

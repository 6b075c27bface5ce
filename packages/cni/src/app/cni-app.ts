/**
 * The CNI node agent's wiring (upstream cni/pkg/nodeagent/server.go, healthServer.go): the plugin
 * event server, the informers feeding the reconciler, the /proc scan of pods already running, the
 * plugin installer, and GET /readyz (503 until the informers listed once, running pods were
 * scanned, the event server listens and the plugin is chained; GET /healthz always 200).
 */
import http from 'node:http';
import { installCapture, removeCapture } from '@ambient/ztunnel';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { type CaptureRules, NodeAgent } from '../agent/node-agent.js';
import { PluginEventServer } from '../agent/plugin-event-server.js';
import type { ZtunnelLink } from '../agent/ztunnel-link.js';
import { type CniConfig, netnsInAgent } from '../config/cni-config.js';
import { DEFAULT_EXCLUDED_NAMESPACES } from '../enroll/enrollment.js';
import { PLUGIN_TYPE } from '../install/conflist.js';
import { PluginInstaller } from '../install/plugin-installer.js';
import { KubeWatch } from '../kube/kube-watch.js';
import { ProcNetnsFinder } from '../netns/proc-netns-finder.js';

/** How long the plugin waits for the agent's answer (capture and ztunnel's ack included). */
export const PLUGIN_TIMEOUT_SECONDS = 30;

export interface CniAppInputs {
  readonly config: CniConfig;
  readonly logger: Logger;
  readonly kubeConfig: KubeConfig;
  /** ztunnel, over ZDS in a node; a recorder in tests. */
  readonly link: ZtunnelLink;
  /** The built plugin executable the installer copies. */
  readonly pluginBinary: string;
  /** The in-pod rules; @ambient/ztunnel's installCapture/removeCapture by default. */
  readonly capture?: CaptureRules;
  /** Passed through to the installer (tests shorten it). */
  readonly installRecheckMs?: number;
}

export interface CniAddresses {
  readonly pluginEventSocket: string;
  readonly readyPort: number;
  readonly conflist: string | undefined;
}

export class CniApp {
  readonly agent: NodeAgent;
  readonly events: PluginEventServer;
  readonly installer: PluginInstaller;
  readonly kube: KubeWatch;
  private readonly health: http.Server;
  private scanned = false;
  private listening = false;

  constructor(private readonly inputs: CniAppInputs) {
    const { config, logger } = inputs;
    this.kube = new KubeWatch({
      kubeConfig: inputs.kubeConfig,
      nodeName: config.nodeName,
      logger,
      handlers: {
        podChanged: (p) => this.agent.podChanged(p),
        podDeleted: (p) => this.agent.podDeleted(p),
        namespaceChanged: (n, l) => this.agent.namespaceChanged(n, l),
      },
    });
    this.agent = new NodeAgent({
      link: inputs.link,
      capture: inputs.capture ?? { install: installCapture, remove: removeCapture },
      finder: new ProcNetnsFinder({ proc: config.hostProc }),
      kube: this.kube,
      logger,
    });
    this.events = new PluginEventServer({
      socketPath: config.pluginEventSocket,
      logger,
      onAdd: (ev) => this.agent.pluginAdd({ ...ev, netns: netnsInAgent(config.hostMounts, ev.netns) }),
    });
    this.installer = new PluginInstaller({
      binDir: config.hostBinDir,
      netDir: config.hostNetDir,
      pluginBinary: inputs.pluginBinary,
      logger,
      ...(inputs.installRecheckMs !== undefined && { recheckMs: inputs.installRecheckMs }),
      entry: {
        type: PLUGIN_TYPE,
        name: PLUGIN_TYPE,
        agent_socket: config.pluginEventSocket,
        exclude_namespaces: [...DEFAULT_EXCLUDED_NAMESPACES],
        timeout_seconds: PLUGIN_TIMEOUT_SECONDS,
      },
    });
    this.health = http.createServer((req, res) => {
      const url = (req.url ?? '').split('?')[0];
      if (url === '/healthz') return void res.writeHead(200).end('ok\n');
      if (url !== '/readyz') return void res.writeHead(404).end();
      const pending = this.pending();
      if (pending.length === 0) res.writeHead(200, { 'content-type': 'text/plain' }).end('ready\n');
      else
        res
          .writeHead(503, { 'content-type': 'text/plain' })
          .end(`not ready, pending: ${pending.join(', ')}\n`);
    });
  }

  /** What readiness still waits for. */
  pending(): string[] {
    const p: string[] = [];
    if (!this.kube.synced) p.push('informers');
    if (!this.scanned) p.push('running-pods');
    if (!this.listening) p.push('plugin-events');
    if (this.installer.conflist === undefined) p.push('plugin-install');
    return p;
  }

  async start(): Promise<CniAddresses> {
    const { config } = this.inputs;
    await new Promise<void>((resolve, reject) => {
      this.health.once('error', reject);
      this.health.listen(config.readyPort, () => resolve());
    });
    // The event server listens before the plugin is chained, so no ADD finds it missing; it answers
    // from the API server directly until the informers have listed.
    await this.events.start();
    this.listening = true;
    await this.kube.start();
    await this.agent.enrollRunning();
    this.scanned = true;
    await this.installer.start();
    const port = (this.health.address() as { port: number }).port;
    return {
      pluginEventSocket: config.pluginEventSocket,
      readyPort: port,
      conflist: this.installer.conflist,
    };
  }

  /**
   * Stops the agent. The plugin stays chained and the pods' rules stay in place: while no agent
   * runs, new pods wait and captured pods stay captured (fail closed). `uninstall()` removes it.
   */
  async close(): Promise<void> {
    this.installer.close();
    this.agent.close();
    await this.events.close();
    await this.kube.close();
    await new Promise<void>((resolve) => {
      this.health.close(() => resolve());
      this.health.closeAllConnections();
    });
  }

  /** Removes the plugin from the node (the DaemonSet is being deleted), then stops. */
  async uninstall(): Promise<void> {
    await this.installer.uninstall();
    await this.close();
  }
}

/**
 * The node agent: config file -> state -> one in-pod proxy per enrolled pod on this node, plus
 * the admin (15000), metrics (15020) and readiness (15021) endpoints. Config changes apply live:
 * new pods are enrolled, departed ones released, open connections re-authorized.
 *
 * Capture rules belong to the pod, not to this process: stopping or crashing leaves them in place,
 * so a pod's traffic is refused (no listener behind the redirect) until a node agent serves it
 * again. Only un-enrollment removes them, also when it happened while no node agent was running.
 */
import { existsSync, readFileSync, type StatWatcher, unwatchFile, watchFile } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type BackoffPolicy,
  backoffDelay,
  type CaClient,
  CertManager,
  formatProblems,
  GrpcCaClient,
  HboneMetrics,
  type HttpHandler,
  LocalCa,
  listenHttp,
  XdsClientMetrics,
  type ZdsWorkloadInfo,
} from '@ambient/shared';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { adminHandler } from '../admin/admin-server.js';
import { installCapture, removeCapture } from '../capture/inpod-capture.js';
import { loadAddon, NetnsSockets } from '../capture/netns-sockets.js';
import type { LocalConfig } from '../config/local-config.js';
import { LocalConfigFile } from '../config/local-config-file.js';
import { InpodProxy } from '../proxy/inpod-proxy.js';
import { podBlocker, Readiness } from '../readiness/readiness.js';
import type { Workload } from '../state/workload.js';
import { ZtunnelState } from '../state/ztunnel-state.js';
import { TcpMetrics } from '../telemetry/tcp-metrics.js';
import { XdsConfigSource } from '../xds/xds-config-source.js';
import { closeFds } from '../zds/seqpacket.js';
import { ZdsClient } from '../zds/zds-client.js';
import { ZdsError } from '../zds/zds-error.js';
import { ZdsMetrics } from '../zds/zds-metrics.js';
import { type ZdsNetns, ZdsWorkloadManager } from '../zds/zds-workload-manager.js';
import { planEnrollment } from './enrollment-plan.js';
import { HeapTrimmer, loopUtilization } from './heap-trimmer.js';
import { LoopStats } from './loop-stats.js';
import { metricsHandler } from './metrics-endpoint.js';
import type { ZtunnelConfig } from './ztunnel-config.js';

export interface ZtunnelAppInputs {
  readonly config: ZtunnelConfig;
  readonly logger: Logger;
}

export interface ZtunnelAddresses {
  readonly admin: AddressInfo;
  readonly metrics: AddressInfo;
  readonly readiness: AddressInfo;
}

function netnsPath(netns: string): string {
  return netns.startsWith('/') ? netns : `/var/run/netns/${netns}`;
}

/** Retries of a pod whose enrollment (or release) failed. */
export const ENROLL_BACKOFF: BackoffPolicy = Object.freeze({ initialMs: 200, maxMs: 15_000 });

/** The readiness blocker of the ZDS connection (upstream's task name). */
export const ZDS_BLOCKER = 'workload proxy manager';

/** A pod whose enrollment or release failed, and when it is tried again. */
interface Retry {
  attempt: number;
  timer?: NodeJS.Timeout;
}

export class ZtunnelApp {
  private readonly registry = new Registry();
  private readonly hboneMetrics = new HboneMetrics(this.registry);
  private readonly tcpMetrics = new TcpMetrics(this.registry);
  private readonly proxies = new Map<string, { proxy: InpodProxy; netnsPath: string; workload: Workload }>();
  private readonly servers: http.Server[] = [];
  private readonly readiness = new Readiness(['config', 'enrollment']);
  private state?: ZtunnelState;
  /** Pods this node should serve, by uid, as of the last config (served or not yet). */
  private wanted = new Map<string, Workload>();
  private certs?: CertManager;
  private file?: LocalConfigFile;
  private xds?: XdsConfigSource;
  private podNetns = new Map<string, string>();
  private podNetnsWatcher?: StatWatcher;
  private lastConfig?: LocalConfig;
  private sockets?: NetnsSockets;
  private trimmer?: HeapTrimmer;
  private readonly loopStats?: LoopStats;
  private applying = Promise.resolve();
  private configRejections = 0;
  /** Network namespaces whose capture is to be removed (pods no longer enrolled): path -> pod. */
  private readonly releasing = new Map<string, string>();
  /** Pending retries, by pod uid (enrollment) or netns path (release). */
  private readonly retries = new Map<string, Retry>();
  /** Set once the first config has been reconciled (stale rules on the node are swept then). */
  private swept = false;
  private closing = false;
  /** ZDS mode: pods the CNI agent handed over, by its uid, and their netns as a /proc/self/fd path. */
  private readonly zdsPods = new Map<string, { info: ZdsWorkloadInfo; path: string }>();
  /** ZDS mode: the netns fds held, by path; closed once no pod names and no proxy uses them. */
  private readonly zdsFds = new Map<string, number>();
  /** Why the last enrollment of a pod (by workload uid) failed. */
  private readonly enrollErrors = new Map<string, string>();
  private zds?: ZdsClient;
  /** ZDS mode: pods draining in the background, by netns path, and their drains. */
  private readonly draining = new Map<string, number>();
  private readonly drains = new Set<Promise<void>>();

  constructor(private readonly inputs: ZtunnelAppInputs) {
    collectDefaultMetrics({ register: this.registry });
    if (inputs.config.loopStats) this.loopStats = new LoopStats({ now: () => performance.now() });
  }

  async start(): Promise<ZtunnelAddresses> {
    const { config, logger } = this.inputs;
    const readiness = await this.serve(config.metricsAddress, config.readinessPort, this.readiness.handler);
    const metrics = await this.serve(
      config.metricsAddress,
      config.metricsPort,
      metricsHandler(this.registry),
    );
    const admin = await this.serve(
      config.adminAddress,
      config.adminPort,
      adminHandler({
        nodeName: config.nodeName,
        trustDomain: config.trustDomain,
        settings: config,
        logger,
        state: () => this.state,
        certs: () => this.certs,
        enrolled: () => [...this.proxies.values()].map((e) => e.workload),
        pending: () => [...this.wanted.values()].filter((w) => !this.proxies.has(w.uid)),
        staticConfig: () => (this.file ? this.state?.config : undefined),
        configRejections: () => this.configRejections,
        lastConfigProblems: () => this.file?.lastProblems ?? [],
        xds: () => this.xds,
        loopStats: () => this.loopStats,
      }),
    );
    if (config.podSource === 'zds') this.readiness.block(ZDS_BLOCKER);
    this.sockets = NetnsSockets.load();
    this.loopStats?.start();
    this.trimmer = HeapTrimmer.fromAddon(
      loadAddon(),
      { utilization: loopUtilization() },
      (trim) => this.loopStats?.timeTrim(trim) ?? trim,
    );
    if (this.trimmer) this.trimmer.start();
    else
      logger.warn('the netns-sockets addon has no mallocTrim (built before it): freed C heap is not trimmed');
    this.certs = new CertManager({ ca: await this.caClient(), logger: logger.child({ component: 'certs' }) });
    this.loadPodNetns();
    const first = await this.startConfig();
    this.readiness.unblock('config');
    this.apply(first);
    await this.applying;
    this.readiness.unblock('enrollment');
    if (config.podSource === 'zds') this.startZds();
    logger.info(
      { node: config.nodeName, enrolled: [...this.proxies.keys()], blockers: this.readiness.pending() },
      'ztunnel started',
    );
    return { admin, metrics, readiness };
  }

  /**
   * Stops accepting, drains open connections until the deadline. The pods stay captured: their
   * traffic is refused until a node agent serves them again (fail closed), as with Istio, where
   * the rules belong to the pod's network namespace and outlive ztunnel.
   */
  async close(): Promise<void> {
    this.closing = true;
    this.trimmer?.stop();
    this.loopStats?.stop();
    this.readiness.block('draining');
    for (const r of this.retries.values()) clearTimeout(r.timer);
    this.retries.clear();
    await this.zds?.close();
    this.file?.close();
    this.xds?.close();
    if (this.podNetnsWatcher && this.inputs.config.podNetnsFile) unwatchFile(this.inputs.config.podNetnsFile);
    await this.applying;
    await Promise.all([...this.proxies.values()].map(({ proxy }) => proxy.close(this.inputs.config.drainMs)));
    this.proxies.clear();
    await Promise.all([...this.drains]);
    this.zdsPods.clear();
    this.releaseUnusedNetns();
    this.certs?.close();
    for (const s of this.servers) s.close();
  }

  /** The built-in CA from its files, or the control plane's CA service with this node's token. */
  private async caClient(): Promise<CaClient> {
    const { config } = this.inputs;
    if (!config.caAddress) {
      return LocalCa.loadOrCreate(config.caDir as string, { trustDomain: config.trustDomain });
    }
    return new GrpcCaClient({
      target: config.caAddress,
      credentials: grpc.credentials.createSsl(readFileSync(config.rootCertFile as string)),
      channelOptions: {
        'grpc.ssl_target_name_override': config.controlPlaneName,
        'grpc.default_authority': config.controlPlaneName,
      },
      token: () => this.token(),
      clusterId: config.clusterId,
      impersonate: true,
    });
  }

  private async token(): Promise<string> {
    return (await readFile(this.inputs.config.tokenFile as string, 'utf8')).trim();
  }

  /** The first config: from the control plane when its address is set, else from the local file. */
  private startConfig(): Promise<LocalConfig> {
    const { config, logger } = this.inputs;
    if (config.xdsAddress) {
      this.xds = new XdsConfigSource({
        target: config.xdsAddress,
        rootCertPem: readFileSync(config.rootCertFile as string, 'utf8'),
        serverName: config.controlPlaneName,
        token: () => this.token(),
        clusterId: config.clusterId,
        // Istio ztunnel's node identity and metadata.
        node: {
          id: `ztunnel~${config.instanceIp}~${config.podName}.${config.podNamespace}~${config.podNamespace}.svc.cluster.local`,
          metadata: {
            NAME: config.podName,
            NAMESPACE: config.podNamespace,
            INSTANCE_IPS: config.instanceIp,
            NODE_NAME: config.nodeName,
            CLUSTER_ID: config.clusterId,
          },
        },
        logger: logger.child({ component: 'xds' }),
        metrics: new XdsClientMetrics(this.registry),
        onConfig: (c) => this.apply(c),
      });
      return this.xds.start();
    }
    this.file = new LocalConfigFile({
      path: config.configFile as string,
      onConfig: (c) => this.apply(c),
      onRejected: (problems) => {
        this.configRejections += 1;
        logger.error({ problems }, `config rejected, previous config kept: ${formatProblems(problems)}`);
      },
    });
    return this.file.start();
  }

  /** Reads the pod runtime's `namespace/name -> netns` map, and re-applies config when it changes. */
  private loadPodNetns(): void {
    const file = this.inputs.config.podNetnsFile;
    if (!file || this.inputs.config.podSource === 'zds') return;
    const read = () => {
      try {
        const parsed = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
        this.podNetns = new Map(
          Object.entries(parsed).filter((e): e is [string, string] => typeof e[1] === 'string'),
        );
      } catch (err) {
        this.inputs.logger.warn({ err, file }, 'pod netns map unreadable; keeping the previous one');
      }
    };
    read();
    this.podNetnsWatcher = watchFile(file, { interval: 500, persistent: false }, () => {
      read();
      if (this.lastConfig) this.apply(this.lastConfig);
    });
  }

  private apply(config: LocalConfig): void {
    if (this.closing) return;
    this.lastConfig = config;
    this.applying = this.applying
      .then(() => this.reconcile(config))
      .catch((err: unknown) => {
        this.inputs.logger.error({ err }, 'applying config failed');
      });
  }

  private async reconcile(config: LocalConfig): Promise<void> {
    const { logger } = this.inputs;
    this.state = new ZtunnelState(config, this.inputs.config.trustDomain);
    const wanted = new Map<string, Workload>();
    const zds = this.inputs.config.podSource === 'zds';
    const onNode = this.state.workloadsOnNode(this.inputs.config.nodeName);
    if (zds) {
      // Only the CNI agent says which pods are served, and in which netns. A pod comes in its CNI
      // ADD, before the API server (and so the control plane) knows its address: as upstream's
      // inpod state manager, it is served from the agent's WorkloadInfo alone, keyed by its pod
      // uid, and the proxy finds its address in the config once the control plane sends it.
      for (const [uid, p] of this.zdsPods) {
        const known = onNode.find((x) => x.namespace === p.info.namespace && x.name === p.info.name);
        wanted.set(uid, {
          ...(known ?? provisionalWorkload(uid, p.info, this.inputs.config.nodeName)),
          uid,
          netns: p.path,
        });
      }
    } else {
      for (const w of onNode) {
        const netns = w.netns ?? this.podNetns.get(`${w.namespace}/${w.name}`);
        if (w.protocol === 'HBONE' && netns && w.ips[0]) wanted.set(w.uid, { ...w, netns });
      }
    }
    this.wanted = wanted;
    // Readiness waits for every pod that should be served, each under its own name.
    for (const b of this.readiness.pending()) if (b.startsWith('pod ')) this.readiness.unblock(b);
    for (const w of wanted.values()) if (!this.proxies.has(w.uid)) this.readiness.block(podBlocker(w));

    const plan = planEnrollment({
      wanted: new Map([...wanted].map(([uid, w]) => [uid, netnsPath(w.netns as string)])),
      served: new Map([...this.proxies].map(([uid, e]) => [uid, e.netnsPath])),
      releasing: this.releasing,
      ...(!this.swept &&
        !zds && { sweep: new Map([...this.podNetns].map(([pod, ns]) => [netnsPath(ns), pod])) }),
    });
    this.swept = true;
    for (const uid of plan.stop) {
      const entry = this.proxies.get(uid);
      this.proxies.delete(uid);
      if (!entry) continue;
      const closing = entry.proxy.close(this.inputs.config.drainMs);
      if (!zds) {
        await closing;
        continue;
      }
      // With ZDS the ack of a del does not wait for the drain (upstream drains in the background,
      // statemanager.rs shutdown_workload); the netns stays open until the drain is over.
      const path = entry.netnsPath;
      this.draining.set(path, (this.draining.get(path) ?? 0) + 1);
      const done = closing
        .catch((err: unknown) => logger.warn({ err, uid }, 'draining pod failed'))
        .finally(() => {
          const left = (this.draining.get(path) ?? 1) - 1;
          if (left > 0) this.draining.set(path, left);
          else this.draining.delete(path);
          this.drains.delete(done);
          this.releaseUnusedNetns();
        });
      this.drains.add(done);
    }
    for (const path of this.releasing.keys()) {
      if (!plan.release.has(path)) {
        this.releasing.delete(path);
        this.succeeded(path);
      }
    }
    // With ZDS the CNI agent owns the capture rules: it removes them on un-enrollment.
    for (const [ns, pod] of zds ? [] : plan.release) {
      this.releasing.set(ns, pod);
      try {
        if (await removeCapture(ns)) logger.info({ pod, netns: ns }, 'pod released');
        this.releasing.delete(ns);
        this.succeeded(ns);
      } catch (err) {
        if (!existsSync(ns)) {
          // The pod and its network namespace are gone, and its rules with them.
          this.releasing.delete(ns);
          this.succeeded(ns);
          continue;
        }
        logger.error({ err, pod, netns: ns }, 'removing capture failed; retrying');
        this.retry(ns);
      }
    }

    // After departed pods drained: stop rotating identities that no enrolled pod here uses.
    this.certs?.retain([...wanted.values()].map((w) => (this.state as ZtunnelState).identity(w)));
    for (const uid of plan.enroll) {
      const w = wanted.get(uid) as Workload;
      const ns = netnsPath(w.netns as string);
      let proxy: InpodProxy | undefined;
      try {
        if (!zds) await installCapture(ns);
        proxy = new InpodProxy({
          workload: w,
          netnsPath: ns,
          state: () => this.state as ZtunnelState,
          sockets: this.sockets as NetnsSockets,
          certs: this.certs as CertManager,
          metrics: this.hboneMetrics,
          tcpMetrics: this.tcpMetrics,
          preserveClientIpThroughWaypoint: this.inputs.config.preserveClientIpThroughWaypoint,
          logger: logger.child({ pod: `${w.namespace}/${w.name}` }),
          hboneHandshake: this.inputs.config.hboneHandshake,
          hboneClient: this.inputs.config.hboneClient,
          clusterId: this.inputs.config.clusterId,
          responseBaggage: this.inputs.config.enableResponseBaggage,
        });
        await proxy.start();
        this.proxies.set(uid, { proxy, netnsPath: ns, workload: w });
        this.readiness.unblock(podBlocker(w));
        this.succeeded(uid);
        this.enrollErrors.delete(uid);
        logger.info({ uid, netns: ns }, 'pod enrolled');
      } catch (err) {
        this.enrollErrors.set(uid, (err as Error).message);
        // The rules stay: the pod's traffic is refused until a retry serves it (fail closed).
        logger.error({ err, uid }, 'enrolling pod failed; retrying');
        await proxy?.close(0).catch(() => {});
        this.retry(uid);
      }
    }
    for (const key of this.retries.keys()) {
      if (!wanted.has(key) && !this.releasing.has(key)) this.succeeded(key);
    }
    if (zds) this.releaseUnusedNetns();
    let closed = 0;
    for (const { proxy } of this.proxies.values()) closed += proxy.reauthorize();
    if (closed > 0) logger.info({ closed }, 'connections closed by a policy change');
  }

  /** ZDS mode: the CNI agent's connection, driving which pods are served. */
  private startZds(): void {
    const { config, logger } = this.inputs;
    const manager = new ZdsWorkloadManager({
      start: (uid, info, netns) => this.zdsStart(uid, info, netns),
      stop: (uid) => this.zdsStop(uid),
      release: (netns) => closeFds([netns.fd]),
    });
    this.zds = new ZdsClient({
      socketPath: config.zdsSocket,
      manager,
      logger: logger.child({ component: 'zds' }),
      metrics: new ZdsMetrics(this.registry),
      onReadiness: (ready) =>
        ready ? this.readiness.unblock(ZDS_BLOCKER) : this.readiness.block(ZDS_BLOCKER),
    });
    this.zds.start();
  }

  /** Serves a pod the CNI agent added: the same reconcile as a file-named pod, then checks it is served. */
  private async zdsStart(uid: string, info: ZdsWorkloadInfo, netns: ZdsNetns): Promise<void> {
    const path = `/proc/self/fd/${netns.fd}`;
    this.zdsFds.set(path, netns.fd);
    this.zdsPods.set(uid, { info, path });
    this.refreshZdsNetns();
    if (this.lastConfig) this.apply(this.lastConfig);
    await this.applying;
    if ([...this.proxies.values()].some((e) => e.netnsPath === path)) return;
    const pod = `${info.namespace}/${info.name}`;
    const reason = !this.state
      ? `no config from the control plane yet for ${pod}`
      : `enrolling ${pod} failed: ${this.enrollErrors.get(uid) ?? 'unknown'}`;
    throw new ZdsError('ZT_ERR_ZDS_PROXY', reason);
  }

  /** Stops serving a pod; its netns fd is closed once its proxy has drained. */
  private zdsStop(uid: string): void {
    if (!this.zdsPods.delete(uid)) return;
    this.refreshZdsNetns();
    if (this.lastConfig && !this.closing) this.apply(this.lastConfig);
    else this.releaseUnusedNetns();
  }

  private refreshZdsNetns(): void {
    this.podNetns = new Map(
      [...this.zdsPods.values()].map((p) => [`${p.info.namespace}/${p.info.name}`, p.path]),
    );
  }

  /** Closes each held netns fd no pod names and no proxy uses any more (each exactly once). */
  private releaseUnusedNetns(): void {
    const used = new Set([...this.zdsPods.values()].map((p) => p.path));
    for (const path of this.draining.keys()) used.add(path);
    for (const e of this.proxies.values()) used.add(e.netnsPath);
    for (const [path, fd] of this.zdsFds) {
      if (used.has(path)) continue;
      this.zdsFds.delete(path);
      closeFds([fd]);
    }
  }

  /** Re-applies the last config after a backoff, for a pod whose enrollment or release failed. */
  private retry(uid: string): void {
    const r = this.retries.get(uid) ?? { attempt: 0 };
    this.retries.set(uid, r);
    if (r.timer || this.closing) return;
    const delay = backoffDelay(ENROLL_BACKOFF, r.attempt);
    r.attempt += 1;
    r.timer = setTimeout(() => {
      r.timer = undefined;
      if (this.lastConfig) this.apply(this.lastConfig);
    }, delay);
    r.timer.unref();
  }

  private succeeded(uid: string): void {
    const r = this.retries.get(uid);
    if (!r) return;
    clearTimeout(r.timer);
    this.retries.delete(uid);
  }

  private async serve(host: string, port: number, handler: HttpHandler): Promise<AddressInfo> {
    const server = await listenHttp(host, port, handler);
    this.servers.push(server);
    return server.address() as AddressInfo;
  }
}

/** A pod the CNI agent handed over before the control plane sent its workload: HBONE, no address yet. */
export function provisionalWorkload(uid: string, info: ZdsWorkloadInfo, node: string): Workload {
  return {
    uid,
    name: info.name,
    namespace: info.namespace,
    serviceAccount: info.serviceAccount || 'default',
    ips: [],
    protocol: 'HBONE',
    node,
    network: '',
    services: new Map(),
    authorizationPolicies: [],
  };
}

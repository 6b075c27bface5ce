/**
 * The control plane: manifests -> mesh model -> ADS (Delta and state of the world) to every
 * proxy, plus the CA, on one TLS gRPC port (15012), and monitoring over HTTP (15014). Changes are debounced: a push goes out once
 * the source has been quiet for `debounceMs`, or `debounceMaxMs` after the first change at most.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ADDRESS_CODEC,
  ADDRESS_TYPE_URL,
  AUTHORIZATION_CODEC,
  AUTHORIZATION_TYPE_URL,
  LocalCa,
  SpiffeId,
  type securityapi,
  type workloadapi,
} from '@ambient/shared';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { type MeshModel, MeshModelBuilder, type ModelProblem } from '../ambient/mesh-model.js';
import { SnapshotMap } from '../ambient/snapshot-map.js';
import { TimeSlicer } from '../ambient/time-slicer.js';
import { createAuthenticator } from '../auth/authenticators.js';
import type { Authenticator } from '../auth/token-authenticator.js';
import { CaService } from '../ca/ca-service.js';
import { LeaderElection } from '../leader/leader-election.js';
import type { KubeObject } from '../manifests/kube-objects.js';
import { RootCertController } from '../namespace-controller/root-cert-controller.js';
import { KubeApiSource } from '../source/kube-api-source.js';
import { loadKubeConfig } from '../source/kube-config-loader.js';
import { type ConfigSource, ManifestDirSource } from '../source/manifest-dir-source.js';
import { meshStatusTargets } from '../status/ambient-status.js';
import { StatusWriter } from '../status/status-writer.js';
import { ControlPlaneMetrics, XDS_METRIC_TYPES } from '../telemetry/controlplane-metrics.js';
import { KubeRest } from '../waypoint-controller/kube-rest.js';
import { startWaypointController } from '../waypoint-controller/start-waypoint-controller.js';
import type { WaypointController } from '../waypoint-controller/waypoint-controller.js';
import { EnvoyEncoder, WAYPOINT_TYPE_URLS } from '../waypoint-xds/envoy-encoder.js';
import { WaypointResourceBuilder, type WaypointResources } from '../waypoint-xds/waypoint-resources.js';
import { DeltaAdsServer } from '../xds/delta-ads-server.js';
import { type ProxyDirectory, waypointScope } from '../xds/proxy-admission.js';
import {
  encodeResources,
  ResourceEncoder,
  type ResourceEntry,
  SnapshotStore,
  type TypeSnapshot,
} from '../xds/snapshot-store.js';
import { SotwAdsServer } from '../xds/sotw-ads-server.js';
import type { ControlPlaneConfig } from './controlplane-config.js';

export interface ControlPlaneAppInputs {
  readonly config: ControlPlaneConfig;
  readonly logger: Logger;
  /** Defaults to the source the config names (a manifest directory or a Kubernetes API server). */
  readonly source?: ConfigSource;
}

export interface ControlPlaneAddresses {
  readonly grpc: { address: string; port: number };
  readonly monitor: AddressInfo;
}

export class ControlPlaneApp {
  readonly registry = new Registry();
  readonly metrics = new ControlPlaneMetrics(this.registry);
  readonly source: ConfigSource;
  private readonly builder: MeshModelBuilder;
  private readonly waypointBuilder: WaypointResourceBuilder;
  private readonly addressEncoder = new ResourceEncoder<workloadapi.Address>(ADDRESS_CODEC);
  private readonly authorizationEncoder = new ResourceEncoder<securityapi.Authorization>(AUTHORIZATION_CODEC);
  private ads?: DeltaAdsServer;
  private sotw?: SotwAdsServer;
  private authenticator?: Authenticator;
  private grpcServer?: grpc.Server;
  private monitor?: http.Server;
  private model?: MeshModel;
  private waypoints?: WaypointResources;
  /** The objects of the last build: what admission checks waypoint pods against. */
  private objects: ReadonlyMap<string, KubeObject> = new Map();
  private ca?: LocalCa;
  /** Deploys waypoints for istio-waypoint Gateways while this replica holds the Lease. */
  waypointController?: WaypointController;
  /** The Lease every writer of this replica shares. */
  leader?: LeaderElection;
  /** Writes ZtunnelAccepted and istio.io/WaypointBound while leading. */
  statusWriter?: StatusWriter;
  /** Keeps the CA root ConfigMap in every namespace while leading. */
  rootCertController?: RootCertController;
  /** Keys (`kind/namespace/name`) of the objects changed since the last build. */
  private pendingKeys = new Set<string>();
  /** What the last publish sent, and the model it came from: the base of an incremental one. */
  private published?: {
    model: MeshModel;
    addresses: TypeSnapshot;
    /** The published addresses, to encode the next incremental change into. */
    addressMap: SnapshotMap<string, ResourceEntry>;
    authorizations: TypeSnapshot;
  };
  private firstChangeAt?: number;
  private quietTimer?: NodeJS.Timeout;
  private maxTimer?: NodeJS.Timeout;
  private pushes = 0;
  private lastPushMs = 0;
  /** One clock for every long computation, so the event loop is handed back across stages. */
  private readonly slicer = new TimeSlicer();
  /** The refusals already logged, as JSON. */
  private reportedInvalid = new Set<string>();
  /** The notices already logged, as JSON. */
  private reportedNotices = new Set<string>();
  /** Set once the first build from a fully synced source is published: what /ready reports. */
  private synced = false;
  /** Builds run one after another (the model builder keeps state between builds). */
  private building: Promise<void> = Promise.resolve();

  constructor(private readonly inputs: ControlPlaneAppInputs) {
    const { config } = inputs;
    const limits = {
      maxFileBytes: config.maxManifestFileBytes,
      maxObjectBytes: config.maxObjectBytes,
      maxPolicyValues: config.maxPolicyValues,
    };
    this.source =
      inputs.source ??
      (config.configSource === 'kubernetes'
        ? new KubeApiSource({
            kubeConfig: loadKubeConfig({
              kubeconfig: config.kubeconfig,
              serviceHost: config.kubernetesServiceHost,
              servicePort: config.kubernetesServicePort,
            }),
            logger: inputs.logger.child({ component: 'kube-source' }),
            limits,
          })
        : new ManifestDirSource({ dir: config.manifestDir, slicer: this.slicer, limits }));
    this.builder = new MeshModelBuilder({
      clusterId: config.clusterId,
      trustDomain: config.trustDomain,
      rootNamespace: config.rootNamespace,
      domainSuffix: config.domainSuffix,
      sendDryRunPolicies: config.sendDryRunPolicies,
    });
    this.waypointBuilder = new WaypointResourceBuilder(
      { trustDomain: config.trustDomain, domainSuffix: config.domainSuffix },
      new EnvoyEncoder(),
    );
    collectDefaultMetrics({ register: this.registry });
  }

  get rootCertPem(): string {
    return (this.ca as LocalCa).rootPem;
  }

  async start(): Promise<ControlPlaneAddresses> {
    const { config, logger } = this.inputs;
    this.ca = await LocalCa.loadOrCreate(config.caDir, { trustDomain: config.trustDomain });
    // A node agent's node is its pod's, among the pods of the last build (as identitiesOnNode).
    const authenticator = await createAuthenticator(
      config,
      (ns, name) => this.proxyDirectory().pod(ns, name),
      logger,
    );
    this.authenticator = authenticator;
    // One store, two protocols: Delta and state-of-the-world streams see the same resources.
    const store = new SnapshotStore();
    this.ads = new DeltaAdsServer({
      logger: logger.child({ component: 'ads' }),
      metrics: this.metrics,
      authenticator,
      typeLabels: XDS_METRIC_TYPES,
      proxies: this.proxyDirectory(),
      store,
    });
    this.sotw = new SotwAdsServer({
      logger: logger.child({ component: 'ads-sotw' }),
      metrics: this.metrics,
      authenticator,
      typeLabels: XDS_METRIC_TYPES,
      proxies: this.proxyDirectory(),
      store,
    });
    // Monitoring first, so /ready can say "not ready" while the source's initial sync runs.
    const monitor = await this.serveMonitor();
    await this.source.start();
    this.source.onChange((keys) => this.onChange(keys));
    await this.rebuild(undefined);
    const serving = await this.ca.issueServing(
      SpiffeId.of(config.trustDomain, config.rootNamespace, 'istiod'),
      config.serverNames,
      365 * 24 * 3600,
    );
    const server = new grpc.Server({ 'grpc.max_send_message_length': 256 * 1024 * 1024 });
    this.ads.register(server);
    this.sotw.register(server);
    new CaService({
      ca: this.ca,
      authenticator,
      identitiesOnNode: (node) => this.model?.identitiesByNode.get(node) ?? new Set(),
      metrics: this.metrics,
      logger: logger.child({ component: 'ca' }),
      workloadCertTtlSeconds: config.workloadCertTtlSeconds,
    }).register(server);
    const creds = grpc.ServerCredentials.createSsl(
      null,
      [{ private_key: Buffer.from(serving.keyPem), cert_chain: Buffer.from(serving.chainPem.join('\n')) }],
      false,
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${config.grpcAddress}:${config.grpcPort}`, creds, (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    this.grpcServer = server;
    this.startWriters();
    this.synced = true;
    logger.info(
      {
        grpcPort: port,
        monitor: monitor.port,
        source: config.configSource,
        ...(config.configSource === 'directory' && { manifests: config.manifestDir }),
      },
      'control plane ready',
    );
    return { grpc: { address: config.grpcAddress, port }, monitor };
  }

  /**
   * The writers that need the Lease (waypoint controller, status, root-cert ConfigMaps) on one
   * API connection and one election; they write only while this replica leads.
   */
  private startWriters(): void {
    const { config, logger } = this.inputs;
    const le = config.leaderElection;
    if (!le) return;
    const kube = new KubeRest(
      // The same API server connection as the source and TokenReview (CP_KUBECONFIG, else in-cluster).
      loadKubeConfig({
        kubeconfig: config.kubeconfig,
        serviceHost: config.kubernetesServiceHost,
        servicePort: config.kubernetesServicePort,
      }),
    );
    const leader = new LeaderElection({
      kube,
      logger: logger.child({ component: 'leader-election' }),
      identity: le.identity,
      namespace: le.leaseNamespace,
      timings: le.timings,
    });
    this.leader = leader;
    if (config.waypointController)
      this.waypointController = startWaypointController(
        config,
        config.waypointController,
        kube,
        leader,
        logger,
      );
    const source = this.source;
    if (config.writeStatus && source instanceof KubeApiSource) {
      this.statusWriter = new StatusWriter({
        kube,
        leader,
        logger: logger.child({ component: 'status' }),
        view: (key) => source.statusOf(key),
        targets: () =>
          this.model
            ? meshStatusTargets(this.model, this.objects, source, {
                rootNamespace: config.rootNamespace,
                domainSuffix: config.domainSuffix,
              })
            : [],
      });
    }
    if (config.rootCertConfigMap) {
      this.rootCertController = new RootCertController({
        kube,
        leader,
        logger: logger.child({ component: 'namespace-controller' }),
        configMapName: config.rootCertConfigMap,
        rootCertPem: () => this.rootCertPem,
      });
    }
    leader.start();
  }

  /** Stops serving: open streams end and proxies keep their last config until one is back. */
  async close(): Promise<void> {
    this.statusWriter?.close();
    this.rootCertController?.close();
    await this.waypointController?.close();
    await this.leader?.close();
    this.authenticator?.close();
    clearTimeout(this.quietTimer);
    clearTimeout(this.maxTimer);
    this.source.close();
    this.ads?.closeAll();
    this.sotw?.closeAll();
    const server = this.grpcServer;
    if (server) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 1000);
        t.unref();
        server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    await new Promise<void>((resolve) => (this.monitor ? this.monitor.close(() => resolve()) : resolve()));
    this.monitor?.closeAllConnections();
  }

  /** Waypoint pods and gateways as of the last build, for xDS admission. */
  private proxyDirectory(): ProxyDirectory {
    return {
      pod: (namespace, name) => {
        const o = this.objects.get(`Pod/${namespace}/${name}`);
        return o?.kind === 'Pod' ? o : undefined;
      },
      gateway: (namespace, name) => {
        const o = this.objects.get(`Gateway/${namespace}/${name}`);
        return o?.kind === 'Gateway' ? o : undefined;
      },
    };
  }

  /** The current model, for status and tests. */
  currentModel(): MeshModel | undefined {
    return this.model;
  }

  adsDump() {
    return [...(this.ads?.dump() ?? []), ...(this.sotw?.dump() ?? [])];
  }

  /** The xDS server, for composing another source of resources (a second registry, a test). */
  get adsServer(): DeltaAdsServer | undefined {
    return this.ads;
  }

  private onChange(keys: readonly string[]): void {
    if (keys.length === 0) {
      // Only the refusals changed: nothing to push, but they are reported now (a refused route's
      // status says so).
      this.reportInvalid();
      this.statusWriter?.kick();
      return;
    }
    for (const k of keys) this.pendingKeys.add(k);
    const { debounceMs, debounceMaxMs } = this.inputs.config;
    if (this.firstChangeAt === undefined) {
      this.firstChangeAt = Date.now();
      this.maxTimer = setTimeout(() => this.flush(), debounceMaxMs);
    }
    clearTimeout(this.quietTimer);
    this.quietTimer = setTimeout(() => this.flush(), debounceMs);
  }

  private flush(): void {
    clearTimeout(this.quietTimer);
    clearTimeout(this.maxTimer);
    const changedAt = this.firstChangeAt;
    const keys = this.pendingKeys;
    this.firstChangeAt = undefined;
    this.pendingKeys = new Set();
    void this.rebuild(keys, changedAt);
  }

  private rebuild(keys: ReadonlySet<string> | undefined, changedAt?: number): Promise<void> {
    this.building = this.building
      .then(() => this.build(keys, changedAt))
      .catch((err: Error) => {
        // Whatever the failed build left half done, the next one starts from scratch.
        this.builder.reset();
        this.published = undefined;
        this.inputs.logger.error({ err }, `build failed, the last config keeps serving: ${err.message}`);
      });
    return this.building;
  }

  /** Model, encoding and publishing, in time slices: a large change never holds the process long. */
  private async build(keys: ReadonlySet<string> | undefined, changedAt?: number): Promise<void> {
    const started = performance.now();
    const objects = this.source.objects();
    const update = await this.slicer.run(this.builder.updateSteps(objects, keys));
    const { model } = update;
    const base = this.published;
    // Only what the model says changed is encoded and compared, when the model was derived from
    // exactly what was published last and that is still what is served (nothing else published
    // over it); anything else is encoded and compared whole.
    const incremental =
      base &&
      update.changedAddresses &&
      update.previous === base.model &&
      this.ads?.snapshot(ADDRESS_TYPE_URL) === base.addresses &&
      this.ads.snapshot(AUTHORIZATION_TYPE_URL) === base.authorizations
        ? base
        : undefined;
    const addresses = incremental
      ? await this.slicer.run(
          this.addressEncoder.encodeChangedSteps(
            incremental.addressMap,
            model.addresses,
            update.changedAddresses as ReadonlySet<string>,
          ),
        )
      : await this.slicer.run(this.addressEncoder.encodeSteps(model.addresses));
    const sameAuthorizations = incremental && model.authorizations === incremental.model.authorizations;
    const authorizations = sameAuthorizations
      ? incremental.authorizations
      : await this.slicer.run(this.authorizationEncoder.encodeSteps(model.authorizations));
    this.model = model;
    this.objects = objects;
    const snapshots = new Map<string, TypeSnapshot>([
      [ADDRESS_TYPE_URL, addresses],
      [AUTHORIZATION_TYPE_URL, authorizations],
    ]);
    const only = incremental
      ? new Map<string, Iterable<string>>([
          [ADDRESS_TYPE_URL, update.changedAddresses as ReadonlySet<string>],
          ...(sameAuthorizations ? [[AUTHORIZATION_TYPE_URL, []] as [string, string[]]] : []),
        ])
      : undefined;
    this.published = undefined;
    this.ads?.publish(snapshots, changedAt, only);
    this.published = {
      model,
      addresses,
      addressMap: incremental?.addressMap ?? new SnapshotMap(addresses),
      authorizations,
    };
    // Every waypoint's resources are computed again: they depend on routes, rules, policies,
    // services and pods alike, and unchanged ones keep their content hash and are not re-sent.
    // Pods reach them only through a waypoint Gateway, so with none there is nothing a pod-only
    // change can alter (the build would read every object to find that out).
    const podsOnly = keys !== undefined && keys.size > 0 && [...keys].every((k) => k.startsWith('Pod/'));
    const last = this.waypoints;
    const waypoints =
      podsOnly && last && last.byGateway.size === 0 && last.problems.length === 0
        ? last
        : this.waypointBuilder.build(objects, model);
    this.waypoints = waypoints;
    const scoped = new Map<string, Map<string, TypeSnapshot>>();
    for (const set of waypoints.byGateway.values()) {
      const [ns = '', name = ''] = set.gateway.split('/');
      scoped.set(
        waypointScope(ns, name),
        new Map(
          [...set.resources].map(([typeUrl, msgs]) => [typeUrl, encodeResources(typeUrl, msgs)] as const),
        ),
      );
    }
    this.ads?.publishScoped(WAYPOINT_TYPE_URLS, scoped, changedAt);
    this.pushes += 1;
    this.lastPushMs = performance.now() - started;
    this.reportInvalid();
    this.reportNotices([...model.problems, ...waypoints.problems]);
    this.statusWriter?.kick();
  }

  /**
   * What is accepted but not (all) usable: counted by kind, logged once while it lasts, and
   * listed in /debug/config. The rest of the config is served as usual.
   */
  private reportNotices(notices: readonly ModelProblem[]): void {
    const byKind = new Map<string, number>();
    const reported = new Set<string>();
    for (const n of notices) {
      const kind = n.ref.slice(0, n.ref.indexOf(' '));
      byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
      const id = JSON.stringify(n);
      reported.add(id);
      if (this.reportedNotices.has(id)) continue;
      this.inputs.logger.warn({ resource: n.ref, path: n.path }, `${n.ref}: ${n.path}: ${n.message}`);
    }
    this.reportedNotices = reported;
    this.metrics.configNotices.reset();
    for (const [kind, n] of byKind) this.metrics.configNotices.set({ kind }, n);
  }

  private reportInvalid(): void {
    const invalid = this.source.invalid();
    this.metrics.invalidResources.set(invalid.length);
    // Each refusal is logged once while it lasts, not again with every push.
    const reported = new Set<string>();
    for (const i of invalid) {
      const id = JSON.stringify(i);
      reported.add(id);
      if (this.reportedInvalid.has(id)) continue;
      this.inputs.logger.warn(
        { file: i.file, resource: i.ref, problems: i.problems, ...(i.kept && { kept: i.kept }) },
        i.kept ? 'invalid resource refused, last good version kept' : 'invalid resource refused',
      );
    }
    this.reportedInvalid = reported;
  }

  private async serveMonitor(): Promise<AddressInfo> {
    const { config } = this.inputs;
    const server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://monitor');
      const json = (body: unknown) => {
        res.setHeader('content-type', 'application/json');
        res.end(`${JSON.stringify(body, null, 2)}\n`);
      };
      if (url.pathname === '/metrics') {
        this.registry.metrics().then(
          (text) => {
            res.setHeader('content-type', this.registry.contentType);
            res.end(text);
          },
          (err: Error) => {
            res.statusCode = 500;
            res.end(err.message);
          },
        );
        return;
      }
      if (url.pathname === '/ready') {
        if (!this.synced) {
          res.statusCode = 503;
          res.end('not ready: the initial sync of the config source is not complete\n');
          return;
        }
        res.end('ready\n');
        return;
      }
      if (url.pathname === '/debug/connections') return json(this.adsDump());
      if (url.pathname === '/debug/config') {
        const m = this.model;
        return json({
          workloads: m ? [...m.addresses.values()].filter((a) => 'workload' in a).length : 0,
          services: m ? [...m.addresses.values()].filter((a) => 'service' in a).length : 0,
          authorizations: m ? [...m.authorizations.keys()] : [],
          pushes: this.pushes,
          lastBuildMs: Math.round(this.lastPushMs * 10) / 10,
          invalid: this.source.invalid(),
          ...(this.source instanceof KubeApiSource && { kubernetes: this.source.stats() }),
          notices: m?.problems ?? [],
          waypoints: Object.fromEntries(
            [...(this.waypoints?.byGateway.values() ?? [])].map((set) => [
              set.gateway,
              Object.fromEntries([...set.resources].map(([typeUrl, msgs]) => [typeUrl, [...msgs.keys()]])),
            ]),
          ),
          waypointNotices: this.waypoints?.problems ?? [],
          ...(this.waypointController && {
            waypointController: {
              leader: this.waypointController.isLeader,
              writes: this.waypointController.writes,
            },
          }),
          ...(this.leader && {
            leaderElection: {
              identity: config.leaderElection?.identity,
              leader: this.leader.isLeader,
              ...(this.statusWriter && { statusWrites: this.statusWriter.counts }),
              ...(this.rootCertController && { rootCertConfigMapWrites: this.rootCertController.writes }),
            },
          }),
        });
      }
      res.statusCode = 404;
      res.end('endpoints: /metrics /ready /debug/connections /debug/config\n');
    });
    this.monitor = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.monitorPort, config.monitorAddress, () => resolve());
    });
    return server.address() as AddressInfo;
  }
}

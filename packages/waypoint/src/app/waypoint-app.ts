/**
 * The waypoint: its certificate from the control plane's CA, its config over Delta ADS (Envoy
 * Listener, RouteConfiguration, Cluster, ClusterLoadAssignment), HBONE accepted on 15008 and
 * handed to the L7 proxy (HTTP chains) or spliced to an endpoint (TCP chains); admin (15000),
 * metrics (15020) and readiness (15021) endpoints.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  backoffDelay,
  CertManager,
  DeltaAdsClient,
  dialTcp,
  GrpcCaClient,
  HboneClient,
  HboneMetrics,
  type HboneRequest,
  HboneServer,
  type HttpHandler,
  listenHttp,
  SpiffeId,
  sendJson,
  sendText,
  XdsClientMetrics,
} from '@ambient/shared';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type {
  FilterChain,
  HttpChain,
  TcpChain,
  UpstreamEndpoint,
  WaypointConfig,
} from '../config/waypoint-config.js';
import { createLoadBalancer } from '../lb/create-load-balancer.js';
import type { LoadBalancer } from '../lb/load-balancer.js';
import { matchCidr } from '../match/cidr-match.js';
import { HttpProxy } from '../proxy/http-proxy.js';
import { UpstreamPool } from '../proxy/upstream-pool.js';
import { hboneRefusal, REPLIES } from '../proxy/waypoint-errors.js';
import { RequestMetrics } from '../telemetry/request-metrics.js';
import { type TcpConnectionRecord, TcpMetrics } from '../telemetry/tcp-metrics.js';
import {
  endpointPeer,
  serviceOfChain,
  sourcePeer,
  type TrafficParties,
  tcpLabels,
} from '../telemetry/waypoint-labels.js';
import { WaypointConfigStore } from '../xds/waypoint-config-store.js';
import { waypointReadinessHandler } from './waypoint-readiness.js';
import type { WaypointSettings } from './waypoint-settings.js';

/** Retries for the waypoint's first certificate: 200 ms doubling to 5 s, jittered. */
const FIRST_CERT_BACKOFF = { initialMs: 200, maxMs: 5_000 };

export interface WaypointAppInputs {
  readonly settings: WaypointSettings;
  readonly logger: Logger;
}

export interface WaypointAddresses {
  readonly hbone: AddressInfo;
  readonly admin: AddressInfo;
  readonly metrics: AddressInfo;
  readonly readiness: AddressInfo;
}

/** The filter chain for an original destination: a port match first, then the longest prefix. */
export function matchChain(
  chains: readonly FilterChain[],
  host: string,
  port: number,
): FilterChain | undefined {
  let best: FilterChain | undefined;
  let bestRank = -1;
  for (const c of chains) {
    if (c.port !== 0 && c.port !== port) continue;
    let rank = c.port !== 0 ? 1000 : 0;
    if (c.prefixes.length > 0) {
      const longest = Math.max(...c.prefixes.filter((p) => matchCidr(host, p)).map((p) => p.prefixLen));
      if (longest < 0) continue;
      rank += longest + 1;
    }
    if (rank > bestRank) {
      best = c;
      bestRank = rank;
    }
  }
  return best;
}

/** `k=v,k2=v2` (W3C baggage) into a map; malformed members are skipped. */
export function parseBaggage(value: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const member of (value ?? '').split(',')) {
    const [kv] = member.split(';');
    const eq = kv?.indexOf('=') ?? -1;
    if (!kv || eq <= 0) continue;
    try {
      out.set(kv.slice(0, eq).trim(), decodeURIComponent(kv.slice(eq + 1).trim()));
    } catch {
      // skip a member that does not decode
    }
  }
  return out;
}

/** Per config snapshot: `address|principal` -> the first endpoint it lists there with that identity. */
const endpointsByPeer = new WeakMap<WaypointConfig, Map<string, UpstreamEndpoint>>();

/**
 * The workload at the verified source address, when this waypoint knows it (an endpoint of one of
 * its clusters) and it holds the peer's identity: telemetry names the source from what was verified.
 * Indexed once per config, so a tunnel costs one lookup, not a scan of every endpoint.
 */
export function knownSource(
  config: WaypointConfig,
  sourceIp: string,
  principal: string,
): { knownSource?: UpstreamEndpoint } {
  let index = endpointsByPeer.get(config);
  if (!index) {
    index = new Map();
    for (const eps of config.endpoints.values())
      for (const e of eps) {
        const key = `${e.address}|${e.identity?.toString() ?? ''}`;
        if (e.identity && !index.has(key)) index.set(key, e);
      }
    endpointsByPeer.set(config, index);
  }
  const known = index.get(`${sourceIp}|${principal}`);
  return known !== undefined ? { knownSource: known } : {};
}

export class WaypointApp {
  private readonly registry = new Registry();
  private readonly hboneMetrics = new HboneMetrics(this.registry);
  private readonly requestMetrics = new RequestMetrics(this.registry);
  private readonly tcpMetrics = new TcpMetrics(this.registry);
  /** TCP-chain tunnels open now: their bytes are counted when the HBONE server ends them. */
  private readonly tcpTunnels = new WeakMap<HboneRequest, TcpConnectionRecord>();
  private readonly store: WaypointConfigStore;
  private readonly identity: SpiffeId;
  /** Named reasons not to be ready yet; ready when empty. */
  private readonly blockers = new Set<string>(['certificate', 'config']);
  private readonly servers: http.Server[] = [];
  private certs?: CertManager;
  private xds?: DeltaAdsClient;
  private hboneServer?: HboneServer;
  private hboneClient?: HboneClient;
  private upstreams?: UpstreamPool;
  private proxy?: HttpProxy;

  constructor(private readonly inputs: WaypointAppInputs) {
    collectDefaultMetrics({ register: this.registry });
    const s = inputs.settings;
    this.identity = SpiffeId.of(s.trustDomain, s.namespace, s.serviceAccount);
    this.store = new WaypointConfigStore();
  }

  async start(): Promise<WaypointAddresses> {
    const { settings: s, logger } = this.inputs;
    const readiness = await this.serve(
      s.metricsAddress,
      s.readinessPort,
      waypointReadinessHandler(() => [...this.blockers]),
    );
    const metrics = await this.serve(s.metricsAddress, s.metricsPort, async (req, res) => {
      if (req.url !== '/metrics' && req.url !== '/stats/prometheus') return sendText(res, 404, 'not found\n');
      res.setHeader('content-type', this.registry.contentType);
      sendText(res, 200, await this.registry.metrics());
    });
    const admin = await this.serve(s.adminAddress, s.adminPort, (req, res) => this.admin(req, res));

    const root = readFileSync(s.rootCertFile);
    const channelOptions = {
      'grpc.ssl_target_name_override': s.controlPlaneName,
      'grpc.default_authority': s.controlPlaneName,
    };
    this.certs = new CertManager({
      ca: new GrpcCaClient({
        target: s.caAddress,
        credentials: grpc.credentials.createSsl(root),
        channelOptions,
        token: () => this.token(),
        clusterId: s.clusterId,
        impersonate: false,
      }),
      logger: logger.child({ component: 'certs' }),
    });
    const certs = this.certs;
    this.hboneClient = new HboneClient({
      certificates: certs,
      metrics: this.hboneMetrics,
      logger,
      pingIntervalMs: s.hbonePingIntervalMs,
      pingTimeoutMs: s.hbonePingTimeoutMs,
    });
    this.upstreams = new UpstreamPool({
      hbone: this.hboneClient,
      identity: this.identity,
      dialTcp: (host, port, timeoutMs) => dialTcp({ host, port }, timeoutMs),
    });
    this.proxy = new HttpProxy({
      config: () => this.store.config,
      upstreams: this.upstreams,
      metrics: this.requestMetrics,
      logger: logger.child({ component: 'http' }),
      clusterName: s.clusterId,
      maxHeadersCount: s.maxHeadersCount,
      http1Direct: s.http1Direct,
      ...(s.accessLog &&
        logger.isLevelEnabled('info') && { accessLog: (entry) => logger.info(entry, 'access') }),
    });

    this.xds = new DeltaAdsClient({
      target: s.xdsAddress,
      credentials: grpc.credentials.createSsl(root),
      channelOptions,
      callMetadata: async () => ({ authorization: `Bearer ${await this.token()}`, clusterid: s.clusterId }),
      // Istio's waypoint (a router proxy) node identity and metadata.
      node: {
        id: `router~${s.instanceIp}~${s.podName}.${s.namespace}~${s.namespace}.svc.cluster.local`,
        cluster: `${s.gatewayName}.${s.namespace}`,
        metadata: {
          NAME: s.podName,
          NAMESPACE: s.namespace,
          GATEWAY_NAME: s.gatewayName,
          SERVICE_ACCOUNT: s.serviceAccount,
          INSTANCE_IPS: s.instanceIp,
          CLUSTER_ID: s.clusterId,
        },
      },
      logger: logger.child({ component: 'xds' }),
      metrics: new XdsClientMetrics(this.registry),
      subscriptions: this.store.subscriptions(),
    });
    this.xds.start();

    await this.firstCertificate(certs);
    this.blockers.delete('certificate');
    this.hboneServer = new HboneServer({
      certificateFor: () => certs.fetch(this.identity),
      onRequest: (req) => this.onTunnel(req),
      onTunnelClosed: (req, stats) => this.tcpTunnels.get(req)?.bytes(stats.aToB, stats.bToA),
      metrics: this.hboneMetrics,
      logger,
    });
    const hbone = await this.hboneServer.listen(s.hbonePort, s.listenAddress);
    this.xds.synced().then(() => {
      this.blockers.delete('config');
      logger.info({ identity: this.identity.toString() }, 'waypoint ready');
    });
    return { hbone, admin, metrics, readiness };
  }

  /**
   * The waypoint's own certificate, retried with backoff until the CA issues it: a token the CA
   * does not know yet (just created) or a CA that is away delays readiness, never crashes.
   */
  private async firstCertificate(certs: CertManager): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await certs.fetch(this.identity);
        return;
      } catch (err) {
        if (this.blockers.has('draining')) throw err;
        const delay = backoffDelay(FIRST_CERT_BACKOFF, attempt);
        this.inputs.logger.warn(
          { err: (err as Error).message, retryInMs: Math.round(delay) },
          'waypoint certificate not issued yet; retrying',
        );
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** Resolves once the first full config has arrived. */
  ready(): Promise<void> {
    return this.xds?.synced() ?? Promise.resolve();
  }

  async close(): Promise<void> {
    this.blockers.add('draining');
    await this.hboneServer?.close(this.inputs.settings.drainMs);
    this.proxy?.close();
    this.upstreams?.close();
    await this.hboneClient?.close(1_000);
    this.xds?.close();
    this.certs?.close();
    for (const s of this.servers) s.close();
  }

  private token(): Promise<string> {
    return readFile(this.inputs.settings.tokenFile, 'utf8').then((t) => t.trim());
  }

  /** A CONNECT to the waypoint: its authority (the original VIP:port) picks the filter chain. */
  private async onTunnel(req: HboneRequest): Promise<Duplex> {
    const listener = this.store.config.listener;
    const chain = listener ? matchChain(listener.chains, req.target.host, req.target.port) : undefined;
    if (!chain) {
      const reason = REPLIES.WP_ERR_NO_FILTER_CHAIN.metricReason;
      if (reason) this.requestMetrics.downstreamErrors.inc({ reason });
      throw hboneRefusal(
        'WP_ERR_NO_FILTER_CHAIN',
        `no filter chain for ${req.target.host}:${req.target.port} on this waypoint`,
      );
    }
    // The client's address is the verified HBONE connection's (in-pod, the client's ztunnel dials
    // from inside the client pod, so it is the pod's IP); a Forwarded header is the client's word.
    const sourceIp = req.remoteAddress.replace('::ffff:', '');
    const handler = chain.handler;
    const baggage = parseBaggage(req.baggage);
    const known = knownSource(this.store.config, sourceIp, req.peer.toString());
    if (handler.kind === 'tcp') return this.tcpUpstream(req, chain, handler, baggage, known.knownSource);
    return (this.proxy as HttpProxy).connection({
      peer: req.peer,
      sourceIp,
      target: req.target,
      chain: chain as FilterChain & { handler: HttpChain },
      baggage,
      ...known,
    });
  }

  /**
   * A TCP chain: the connection goes to one endpoint of the chain's cluster, by its lb policy, and
   * is counted in Istio's TCP metrics: opened once the endpoint is connected, closed when the
   * endpoint side closes, its bytes when the tunnel ends, failed (with the refusal's response
   * flag) when it cannot be opened.
   */
  private readonly tcpBalancers = new Map<string, LoadBalancer>();
  private async tcpUpstream(
    req: HboneRequest,
    chain: FilterChain,
    handler: TcpChain,
    baggage: ReadonlyMap<string, string>,
    known: UpstreamEndpoint | undefined,
  ): Promise<Duplex> {
    const clusterName = handler.cluster;
    const config = this.store.config;
    const cluster = config.clusters.get(clusterName);
    const ownClusterId = this.inputs.settings.clusterId;
    const service = cluster?.service ?? serviceOfChain(chain.name);
    const parties = (ep?: UpstreamEndpoint): TrafficParties => ({
      source: sourcePeer({ peer: req.peer, baggage, ...(known && { known }) }, ownClusterId),
      ...(ep && { destination: endpointPeer(ep, ownClusterId) }),
      ...(service && { service }),
      ownClusterId,
    });
    let lb = this.tcpBalancers.get(clusterName);
    if (cluster && lb?.policy !== cluster.lbPolicy) {
      lb = createLoadBalancer(cluster.lbPolicy);
      this.tcpBalancers.set(clusterName, lb);
    }
    const ep = lb?.pick(config.endpoints.get(clusterName) ?? []);
    if (!cluster || !ep) {
      this.tcpMetrics.failed.inc(tcpLabels(parties(), REPLIES.WP_ERR_TCP_NO_ENDPOINT.flag));
      throw hboneRefusal('WP_ERR_TCP_NO_ENDPOINT', `no endpoint for cluster ${clusterName}`);
    }
    let upstream: Duplex;
    try {
      upstream = await (this.upstreams as UpstreamPool).connect(ep, cluster.connectTimeoutMs);
    } catch (err) {
      this.tcpMetrics.failed.inc(tcpLabels(parties(ep), REPLIES.WP_ERR_TCP_UPSTREAM_CONNECT.flag));
      throw hboneRefusal('WP_ERR_TCP_UPSTREAM_CONNECT', (err as Error).message, { cause: err });
    }
    // Closed with the labels it was opened with, even if the config changes meanwhile.
    const record = this.tcpMetrics.open(tcpLabels(parties(ep)));
    this.tcpTunnels.set(req, record);
    upstream.once('close', () => record.closed());
    return upstream;
  }

  private admin(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.url !== '/config_dump') {
      sendText(res, 404, 'not found\n');
      return;
    }
    const c = this.store.config;
    sendJson(
      res,
      {
        identity: this.identity.toString(),
        listener: c.listener,
        routes: [...c.routes.values()],
        clusters: [...c.clusters.values()],
        endpoints: Object.fromEntries(c.endpoints),
        warnings: this.store.warnings,
        xds: this.xds?.dump(),
        certificates: this.certs?.dump(),
        upstreams: this.upstreams?.stats(),
        upstreamsDirect: this.proxy?.directStats(),
      },
      // Decoded config holds regexes, sets and maps: shown as their sources and entries.
      (_k, v) =>
        v instanceof RegExp
          ? v.source
          : v instanceof Set
            ? [...v]
            : v instanceof Map
              ? Object.fromEntries(v)
              : v,
    );
  }

  private async serve(host: string, port: number, handler: HttpHandler): Promise<AddressInfo> {
    const server = await listenHttp(host, port, handler);
    this.servers.push(server);
    return server.address() as AddressInfo;
  }
}

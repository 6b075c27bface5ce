/**
 * The proxy for one enrolled pod, with all its sockets inside the pod's network namespace:
 *   15001 outbound: captured connections, to a service VIP (round robin over endpoints) or a
 *         workload; HBONE with the pod's own certificate when the destination is enrolled,
 *         plain TCP otherwise;
 *   15008 inbound HBONE: mutual TLS as the pod's identity, L4 authorization on the verified
 *         peer (certificate and socket address), then delivery to the app from the peer's address;
 *   15006 inbound plaintext from clients that are not enrolled: authorization without a
 *         principal (a STRICT policy refuses it), then the same delivery.
 */
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import {
  type CertManager,
  formatBaggage,
  formatForwarded,
  type HandshakeLimits,
  HboneClient,
  type HboneClientTimings,
  type HboneMetrics,
  type HboneRequest,
  HboneServer,
  type HostPort,
  MeshError,
  newTraceparent,
  parseBaggage,
  resetSocket,
  type SpliceStats,
  splice,
} from '@ambient/shared';
import type { Logger } from 'pino';
import { authorize, type ConnectionFacts } from '../authz/authorization.js';
import { INBOUND_HBONE_PORT, INBOUND_PLAINTEXT_PORT, OUTBOUND_CAPTURE_PORT } from '../capture/inpod-rules.js';
import { type NetnsSockets, ZTUNNEL_MARK } from '../capture/netns-sockets.js';
import { connectionFailureFor } from '../errors/connection-failures.js';
import { ZtunnelError } from '../errors/ztunnel-error.js';
import type { Service } from '../state/service.js';
import type { GatewayAddress, Workload } from '../state/workload.js';
import type { ZtunnelState } from '../state/ztunnel-state.js';
import {
  type ConnectionParties,
  guessInboundService,
  serviceLabel,
  type TcpMetrics,
  tcpLabels,
  workloadBaggage,
} from '../telemetry/tcp-metrics.js';
import { resolveInboundTarget } from './inbound-target.js';
import { chooseWaypoint } from './waypoint-choice.js';

export interface InpodProxyInputs {
  readonly workload: Workload;
  readonly netnsPath: string;
  readonly state: () => ZtunnelState;
  readonly sockets: NetnsSockets;
  readonly certs: CertManager;
  readonly metrics: HboneMetrics;
  readonly tcpMetrics: TcpMetrics;
  readonly logger: Logger;
  /** Deliver from the client address this pod's own waypoint names (see ZtunnelConfig). */
  readonly preserveClientIpThroughWaypoint?: boolean;
  /** Bounds on TLS handshakes in progress at this pod's 15008 listener (defaults when absent). */
  readonly hboneHandshake?: HandshakeLimits;
  /** Connect deadline and liveness of this pod's outbound HBONE connections (defaults when absent). */
  readonly hboneClient?: HboneClientTimings;
  /** The node agent's cluster, for workloads whose source names none (default `Kubernetes`). */
  readonly clusterId?: string;
  /**
   * Read the peer's `baggage` for telemetry and answer CONNECT with this pod's, as upstream's
   * ENABLE_RESPONSE_BAGGAGE (default on).
   */
  readonly responseBaggage?: boolean;
}

/** An accepted inbound connection, kept so that a policy change can re-check it. */
interface OpenInbound {
  readonly facts: ConnectionFacts;
  readonly upstream: net.Socket;
}

export class InpodProxy {
  private readonly servers: net.Server[] = [];
  private readonly hboneServer: HboneServer;
  private readonly hboneClient: HboneClient;
  private readonly open = new Set<OpenInbound>();
  private readonly tunnelParties = new WeakMap<HboneRequest, ConnectionParties>();

  private readonly cluster: string;
  private readonly responseBaggage: boolean;

  /**
   * The pod's address: the workload's, or, for a pod handed over before the control plane knew
   * its address (a CNI ADD), the current config's; empty until then (inbound is refused).
   */
  private get podIp(): string {
    const w = this.inputs.workload;
    if (w.ips[0]) return w.ips[0];
    const known = this.inputs
      .state()
      .workloadsOnNode(w.node)
      .find((x) => x.namespace === w.namespace && x.name === w.name);
    return known?.ips[0] ?? '';
  }

  constructor(private readonly inputs: InpodProxyInputs) {
    this.cluster = inputs.clusterId ?? 'Kubernetes';
    this.responseBaggage = inputs.responseBaggage ?? true;
    const { sockets, netnsPath, certs, metrics, logger } = inputs;
    this.hboneClient = new HboneClient({
      certificates: certs,
      metrics,
      logger,
      dialSocket: (address) => sockets.connect(netnsPath, { target: address, mark: ZTUNNEL_MARK }),
      ...inputs.hboneClient,
    });
    this.hboneServer = new HboneServer({
      certificateFor: async (localAddress) => {
        const w = inputs.state().workloadByIp(localAddress.replace('::ffff:', ''));
        return w ? certs.fetch(inputs.state().identity(w)) : undefined;
      },
      // A service `hostname:port` is delivered to this pod's target port for that service port.
      hostnameAuthority: true,
      answerHeaders: (req) => this.answerHeaders(req.localAddress),
      onRequest: async (req) => {
        const target = req.target;
        if (!target.hostname && target.host !== this.podIp) {
          throw new MeshError('MESH_ERR_HBONE_BAD_REQUEST', `${target.host} is not this pod (${this.podIp})`);
        }
        const st = inputs.state();
        const local = st.workloadByIp(this.podIp) ?? inputs.workload;
        const { port, services } = resolveInboundTarget(st, local, target);
        // Authorized and reported on what was verified: the peer's certificate and its socket
        // address, never a Forwarded address or baggage a client chose (istio/ztunnel
        // src/proxy/inbound.rs).
        const remote = req.remoteAddress.replace('::ffff:', '');
        const facts: ConnectionFacts = {
          principal: req.peer.toString().slice('spiffe://'.length),
          namespace: req.peer.namespace,
          sourceIp: remote,
          destinationIp: this.podIp,
          destinationPort: port,
        };
        const service = guessInboundService(services, local, port, req.forwardedHost);
        const parties: ConnectionParties = {
          ...this.inboundParties(remote, req.peer.toString(), true),
          ...(this.responseBaggage &&
            req.baggage !== undefined && { derivedSource: parseBaggage(req.baggage) }),
          ...(service && { service: serviceLabel(service) }),
        };
        // Opt-in: the app sees the original client that this pod's own waypoint names.
        const deliverFrom =
          this.inputs.preserveClientIpThroughWaypoint && req.forwardedIp && this.fromOwnWaypoint(req.peer)
            ? req.forwardedIp
            : remote;
        const upstream = await this.admit(facts, parties, deliverFrom, true);
        // Closed with the labels it was opened with, even if the config changes meanwhile.
        this.tunnelParties.set(req, parties);
        return upstream;
      },
      onTunnelClosed: (req, stats) => {
        const parties = this.tunnelParties.get(req);
        if (parties) this.count(parties, stats);
      },
      metrics,
      logger,
      ...(inputs.hboneHandshake && { handshake: inputs.hboneHandshake }),
    });
  }

  async start(): Promise<void> {
    const { sockets, netnsPath } = this.inputs;
    const listen = async (port: number, handler: (s: net.Socket) => void, pauseOnConnect = false) => {
      this.servers.push(
        await sockets.listen(netnsPath, { port, transparent: true, pauseOnConnect }, handler),
      );
    };
    await listen(OUTBOUND_CAPTURE_PORT, (s) => this.guard(s, this.outbound(s)));
    await listen(INBOUND_PLAINTEXT_PORT, (s) => this.guard(s, this.inboundPlaintext(s)));
    await listen(INBOUND_HBONE_PORT, (s) => this.hboneServer.accept(s), true);
  }

  async close(deadlineMs = 5_000): Promise<void> {
    for (const s of this.servers.splice(0)) s.close();
    await Promise.all([this.hboneServer.close(deadlineMs), this.hboneClient.close(deadlineMs)]);
  }

  /**
   * Re-checks every open inbound connection against the current state's policies and closes
   * those that are no longer allowed (call after a config change). Returns how many it closed.
   */
  reauthorize(): number {
    let closed = 0;
    for (const conn of [...this.open]) {
      if (!this.decide(conn.facts).allowed) {
        // A reset, not a FIN: the app must not take a revoked upload for a complete one. The
        // tunnel then resets the client's side too (RST_STREAM over HBONE).
        resetSocket(conn.upstream);
        this.open.delete(conn);
        closed += 1;
      }
    }
    return closed;
  }

  get openInbound(): number {
    return this.open.size;
  }

  private guard(socket: net.Socket, work: Promise<void>): void {
    socket.on('error', () => {});
    work.catch((err: unknown) => {
      const { reason } = connectionFailureFor(err);
      this.inputs.logger.debug({ reason, err: (err as Error).message }, 'connection refused');
      socket.destroy();
    });
  }

  private async outbound(down: net.Socket): Promise<void> {
    const { sockets, netnsPath } = this.inputs;
    const st = this.inputs.state();
    const dst = sockets.originalDst(down);
    const svc = st.serviceByVip(dst.host, this.inputs.workload.namespace);
    let target: HostPort = dst;
    let dstWorkload = st.workloadByIp(dst.host);
    if (svc) {
      const ep = st.pickEndpoint(svc, dst.port);
      if (!ep) throw new ZtunnelError('ZT_ERR_NO_ENDPOINT', `${svc.hostname}:${dst.port}`);
      target = { host: ep.address, port: ep.port };
      dstWorkload = ep.workload;
    }
    const source = st.workloadByIp(this.podIp) ?? this.inputs.workload;
    // A VIP goes through its service's waypoint, a pod IP through its workload's: HBONE to a
    // waypoint pod with the original address as authority (see waypoint-choice.ts).
    const addressed = svc ? undefined : dstWorkload;
    const serviceGateway = svc && st.serviceWaypoint(svc);
    const choice = chooseWaypoint({
      ...(svc && { addressedService: serviceGateway ? { waypoint: serviceGateway } : {} }),
      addressedWorkload: addressed,
      fromWorkloadWaypoint:
        addressed?.waypoint !== undefined &&
        st
          .waypointPods(addressed.waypoint)
          .some((wp) => wp.ips.includes(this.podIp) && `${st.identity(wp)}` === `${st.identity(source)}`),
    });
    if (choice.via !== 'direct') return this.viaWaypoint(down, dst, choice.gateway, source, svc, dstWorkload);
    const hbone = dstWorkload?.protocol === 'HBONE';
    const parties: ConnectionParties = {
      reporter: 'source',
      source,
      sourcePrincipal: st.identity(source).toString(),
      ...(dstWorkload && { destination: dstWorkload }),
      ...(dstWorkload && hbone && { destinationPrincipal: st.identity(dstWorkload).toString() }),
      ...(svc && { service: { hostname: svc.hostname, namespace: svc.namespace, name: svc.name } }),
      mtls: hbone,
    };
    let up: Duplex;
    try {
      up =
        hbone && dstWorkload
          ? await this.hboneClient.connect({
              source: st.identity(source),
              destination: st.identity(dstWorkload),
              address: { host: target.host, port: INBOUND_HBONE_PORT },
              authority: `${target.host}:${target.port}`,
              ...this.connectHeaders(down, source, svc),
            })
          : await sockets.connect(netnsPath, { target, mark: ZTUNNEL_MARK });
    } catch (err) {
      this.fail(parties, err);
      throw err;
    }
    this.inputs.tcpMetrics.opened.inc(tcpLabels(parties, '-', this.cluster));
    this.count(parties, await splice(down, up));
  }

  private async viaWaypoint(
    down: net.Socket,
    dst: HostPort,
    gw: GatewayAddress,
    source: Workload,
    svc: Service | undefined,
    dstWorkload: Workload | undefined,
  ): Promise<void> {
    const st = this.inputs.state();
    const wp = st.waypointWorkload(gw);
    const parties: ConnectionParties = {
      reporter: 'source',
      source,
      sourcePrincipal: st.identity(source).toString(),
      ...(wp && { destination: wp, destinationPrincipal: st.identity(wp).toString() }),
      ...(svc && { service: { hostname: svc.hostname, namespace: svc.namespace, name: svc.name } }),
      ...(!svc && dstWorkload && { destination: dstWorkload }),
      mtls: true,
    };
    const address = wp?.ips[0];
    if (!wp || !address) {
      const err = new ZtunnelError('ZT_ERR_WAYPOINT_UNREACHABLE', gw.hostname ?? gw.address ?? '?');
      this.fail(parties, err);
      throw err;
    }
    let up: Duplex;
    try {
      up = await this.hboneClient.connect({
        source: st.identity(source),
        destination: st.identity(wp),
        address: { host: address, port: gw.port || INBOUND_HBONE_PORT },
        authority: `${dst.host}:${dst.port}`,
        ...this.connectHeaders(down, source, svc),
      });
    } catch (err) {
      this.fail(parties, err);
      throw err;
    }
    this.inputs.tcpMetrics.opened.inc(tcpLabels(parties, '-', this.cluster));
    this.count(parties, await splice(down, up));
  }

  /**
   * The headers every outbound CONNECT carries, as upstream's create_hbone_request
   * (istio/ztunnel src/proxy/outbound.rs): `forwarded` with the client address and, when it
   * addressed a service, `;host=<service hostname>`; `baggage` describing the source workload;
   * and a fresh `traceparent`.
   */
  private connectHeaders(
    down: net.Socket,
    source: Workload,
    svc: Service | undefined,
  ): { forwarded: string; baggage?: string; traceparent: string } {
    const { baggage, kind } = workloadBaggage(source, this.cluster);
    const text = formatBaggage(baggage, kind);
    return {
      forwarded: formatForwarded({ host: this.podIp, port: down.remotePort ?? 0 }, svc?.hostname),
      ...(text !== '' && { baggage: text }),
      traceparent: newTraceparent(),
    };
  }

  /** This pod's `baggage` on a 200 answer, as upstream's build_response (when enabled). */
  private answerHeaders(localAddress: string): Record<string, string> | undefined {
    if (!this.responseBaggage) return undefined;
    const st = this.inputs.state();
    const w = st.workloadByIp(localAddress.replace('::ffff:', '')) ?? this.inputs.workload;
    const { baggage, kind } = workloadBaggage(w, this.cluster);
    const text = formatBaggage(baggage, kind);
    return text === '' ? undefined : { baggage: text };
  }

  private async inboundPlaintext(down: net.Socket): Promise<void> {
    const dst = this.inputs.sockets.originalDst(down);
    const sourceIp = (down.remoteAddress ?? '').replace('::ffff:', '');
    const st = this.inputs.state();
    const local = st.workloadByIp(this.podIp) ?? this.inputs.workload;
    // As upstream's inbound_passthrough.rs: the service guessed from the port, no baggage here.
    const service = guessInboundService(st.servicesOf(local), local, dst.port);
    const parties: ConnectionParties = {
      ...this.inboundParties(sourceIp, undefined, false),
      ...(service && { service: serviceLabel(service) }),
    };
    const up = await this.admit({ sourceIp, destinationIp: dst.host, destinationPort: dst.port }, parties);
    this.count(parties, await splice(down, up));
  }

  /** Authorizes, delivers to the app, counts, and tracks the connection for re-authorization. */
  private async admit(
    facts: ConnectionFacts,
    parties: ConnectionParties,
    deliverFrom = facts.sourceIp,
    /** Into an HBONE stream: read with frame-header headroom. */
    framedReads = false,
  ): Promise<net.Socket> {
    const decision = this.decide(facts);
    if (!decision.allowed) {
      const by = decision.policy ? ` by ${decision.policy}` : '';
      const err = new MeshError('MESH_ERR_HBONE_DENIED', `${decision.reason}${by}`);
      this.fail(parties, err);
      throw err;
    }
    let upstream: net.Socket;
    try {
      upstream = await this.deliver(
        { host: facts.destinationIp, port: facts.destinationPort },
        deliverFrom,
        framedReads,
      );
    } catch (err) {
      this.fail(parties, err);
      throw err;
    }
    this.inputs.tcpMetrics.opened.inc(tcpLabels(parties, '-', this.cluster));
    const entry: OpenInbound = { facts, upstream };
    this.open.add(entry);
    upstream.once('close', () => this.open.delete(entry));
    return upstream;
  }

  /** Whether an HBONE peer is the identity of a waypoint serving this pod. */
  private fromOwnWaypoint(peer: { toString(): string }): boolean {
    const st = this.inputs.state();
    const self = st.workloadByIp(this.podIp) ?? this.inputs.workload;
    const id = peer.toString();
    const gateways = [self.waypoint, ...st.servicesOf(self).map((s) => s.waypoint)];
    return gateways.some(
      (gw) => gw !== undefined && st.waypointPods(gw).some((wp) => st.identity(wp).toString() === id),
    );
  }

  private decide(facts: ConnectionFacts) {
    const st = this.inputs.state();
    const w = st.workloadByIp(facts.destinationIp) ?? this.inputs.workload;
    return authorize(st.policiesFor(w), facts);
  }

  private inboundParties(sourceIp: string, peer: string | undefined, mtls: boolean): ConnectionParties {
    const st = this.inputs.state();
    const source = st.workloadByIp(sourceIp);
    const destination = st.workloadByIp(this.podIp) ?? this.inputs.workload;
    return {
      reporter: 'destination',
      ...(source && { source }),
      ...(peer !== undefined && { sourcePrincipal: peer }),
      destination,
      destinationPrincipal: st.identity(destination).toString(),
      mtls,
    };
  }

  /** Counts a failed connection with the response flag CONNECTION_FAILURES gives its error. */
  private fail(parties: ConnectionParties, err: unknown): void {
    this.inputs.tcpMetrics.failed.inc(tcpLabels(parties, connectionFailureFor(err).flag, this.cluster));
  }

  /** Close and byte counters: the client's bytes are "received", the app's are "sent". */
  private count(parties: ConnectionParties, stats: SpliceStats): void {
    const labels = tcpLabels(parties, '-', this.cluster);
    const m = this.inputs.tcpMetrics;
    m.closed.inc(labels);
    // Access log with the fields of Istio ztunnel's.
    this.inputs.logger.info(
      {
        direction: parties.reporter === 'source' ? 'outbound' : 'inbound',
        'src.workload': labels.source_workload,
        'src.namespace': labels.source_workload_namespace,
        'src.identity': labels.source_principal,
        'dst.workload': labels.destination_workload,
        'dst.namespace': labels.destination_workload_namespace,
        'dst.identity': labels.destination_principal,
        'dst.service': labels.destination_service,
        bytes_sent: parties.reporter === 'source' ? stats.aToB : stats.bToA,
        bytes_recv: parties.reporter === 'source' ? stats.bToA : stats.aToB,
        ...(stats.error && { error: stats.error.message }),
      },
      'connection complete',
    );
    m.received.inc(labels, parties.reporter === 'source' ? stats.aToB : stats.bToA);
    m.sent.inc(labels, parties.reporter === 'source' ? stats.bToA : stats.aToB);
  }

  /** Connects to the app from the given source address (transparent), marked so capture skips it. */
  private deliver(target: HostPort, sourceIp: string, framedReads: boolean): Promise<net.Socket> {
    return this.inputs.sockets.connect(this.inputs.netnsPath, {
      target,
      source: sourceIp,
      mark: ZTUNNEL_MARK,
      framedReads,
    });
  }
}

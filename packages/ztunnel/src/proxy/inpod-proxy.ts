/**
 * The proxy for one enrolled pod, with all its sockets inside the pod's network namespace:
 *   15001 outbound: captured connections, to a service VIP (round robin over endpoints) or a
 *         workload; HBONE with the pod's own certificate when the destination is enrolled,
 *         plain TCP otherwise;
 *   15008 inbound HBONE: mutual TLS as the pod's identity, L4 authorization, then delivery to the
 *         app from the client pod's own address;
 *   15006 inbound plaintext from clients that are not enrolled: authorization without a
 *         principal (a STRICT policy refuses it), then the same delivery.
 */
import type net from 'node:net';
import {
  type CertManager,
  HboneClient,
  type HboneMetrics,
  HboneServer,
  type HostPort,
  MeshError,
  splice,
} from '@ambient/shared';
import type { Logger } from 'pino';
import { authorize, type ConnectionFacts } from '../authz/authorization.js';
import { INBOUND_HBONE_PORT, INBOUND_PLAINTEXT_PORT, OUTBOUND_CAPTURE_PORT } from '../capture/inpod-rules.js';
import { type NetnsSockets, ZTUNNEL_MARK } from '../capture/netns-sockets.js';
import type { Workload } from '../config/local-config.js';
import type { ZtunnelState } from '../state/ztunnel-state.js';

export interface InpodProxyInputs {
  readonly workload: Workload;
  readonly netnsPath: string;
  readonly state: () => ZtunnelState;
  readonly sockets: NetnsSockets;
  readonly certs: CertManager;
  readonly metrics: HboneMetrics;
  readonly logger: Logger;
}

export class InpodProxy {
  private readonly servers: net.Server[] = [];
  private readonly hboneServer: HboneServer;
  private readonly hboneClient: HboneClient;
  private readonly podIp: string;

  constructor(private readonly inputs: InpodProxyInputs) {
    this.podIp = inputs.workload.ips[0] ?? '';
    const { sockets, netnsPath, certs, metrics, logger } = inputs;
    this.hboneClient = new HboneClient({
      certificates: certs,
      metrics,
      logger,
      dialSocket: (address) => sockets.connect(netnsPath, { target: address, mark: ZTUNNEL_MARK }),
    });
    this.hboneServer = new HboneServer({
      certificateFor: async (localAddress) => {
        const w = inputs.state().workloadByIp(localAddress.replace('::ffff:', ''));
        return w ? certs.fetch(inputs.state().identity(w)) : undefined;
      },
      onRequest: async (req) => {
        const target = req.target;
        if (target.host !== this.podIp) {
          throw new MeshError('MESH_ERR_HBONE_BAD_REQUEST', `${target.host} is not this pod (${this.podIp})`);
        }
        const sourceIp = req.forwardedIp ?? req.remoteAddress.replace('::ffff:', '');
        this.authorize({
          principal: req.peer.toString().slice('spiffe://'.length),
          namespace: req.peer.namespace,
          sourceIp,
          destinationIp: target.host,
          destinationPort: target.port,
        });
        return this.deliver(target, sourceIp);
      },
      metrics,
      logger,
    });
  }

  async start(): Promise<void> {
    const { sockets, netnsPath } = this.inputs;
    const listen = async (port: number, handler: (s: net.Socket) => void) => {
      this.servers.push(await sockets.listen(netnsPath, { port, transparent: true }, handler));
    };
    await listen(OUTBOUND_CAPTURE_PORT, (s) => this.guard(s, this.outbound(s)));
    await listen(INBOUND_PLAINTEXT_PORT, (s) => this.guard(s, this.inboundPlaintext(s)));
    await listen(INBOUND_HBONE_PORT, (s) => this.hboneServer.accept(s));
  }

  async close(deadlineMs = 5_000): Promise<void> {
    for (const s of this.servers.splice(0)) s.close();
    await Promise.all([this.hboneServer.close(deadlineMs), this.hboneClient.close(deadlineMs)]);
  }

  private guard(socket: net.Socket, work: Promise<void>): void {
    socket.on('error', () => {});
    work.catch((err: unknown) => {
      this.inputs.logger.debug({ err: (err as Error).message }, 'connection refused');
      socket.destroy();
    });
  }

  private async outbound(down: net.Socket): Promise<void> {
    const { sockets, netnsPath } = this.inputs;
    const st = this.inputs.state();
    const dst = sockets.originalDst(down);
    const svc = st.serviceByVip(dst.host);
    let target: HostPort = dst;
    let dstWorkload = st.workloadByIp(dst.host);
    if (svc) {
      const ep = st.pickEndpoint(svc, dst.port);
      if (!ep) throw new MeshError('MESH_ERR_HBONE_UPSTREAM', `no endpoint for ${svc.hostname}:${dst.port}`);
      target = { host: ep.address, port: ep.port };
      dstWorkload = ep.workload;
    }
    const source = st.workloadByIp(this.podIp) ?? this.inputs.workload;
    if (dstWorkload?.protocol === 'HBONE') {
      const stream = await this.hboneClient.connect({
        source: st.identity(source),
        destination: st.identity(dstWorkload),
        address: { host: target.host, port: INBOUND_HBONE_PORT },
        authority: `${target.host}:${target.port}`,
        forwarded: `for="${this.podIp}:${down.remotePort}"`,
      });
      await splice(down, stream);
      return;
    }
    const up = await sockets.connect(netnsPath, { target, mark: ZTUNNEL_MARK });
    await splice(down, up);
  }

  private async inboundPlaintext(down: net.Socket): Promise<void> {
    const dst = this.inputs.sockets.originalDst(down);
    const sourceIp = (down.remoteAddress ?? '').replace('::ffff:', '');
    this.authorize({ sourceIp, destinationIp: dst.host, destinationPort: dst.port });
    const up = await this.deliver(dst, sourceIp);
    await splice(down, up);
  }

  private authorize(facts: ConnectionFacts): void {
    const st = this.inputs.state();
    const w = st.workloadByIp(facts.destinationIp) ?? this.inputs.workload;
    const decision = authorize(st.policiesFor(w), facts);
    if (!decision.allowed) {
      throw new MeshError(
        'MESH_ERR_HBONE_DENIED',
        `${decision.reason}${decision.policy ? ` by ${decision.policy}` : ''}`,
      );
    }
  }

  /** Connects to the app from the client's own address (transparent), marked so capture skips it. */
  private deliver(target: HostPort, sourceIp: string): Promise<net.Socket> {
    return this.inputs.sockets.connect(this.inputs.netnsPath, {
      target,
      source: sourceIp,
      mark: ZTUNNEL_MARK,
    });
  }
}

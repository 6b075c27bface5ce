/** Per-request state of the waypoint's HTTP proxy: what the connection and the request carried. */
import type { HostPort, SpiffeId } from '@ambient/shared';
import type { FilterChain, HttpChain, UpstreamCluster, UpstreamEndpoint } from '../config/waypoint-config.js';
import { REPLIES, type ReplyKey, type ResponseFlag } from './waypoint-errors.js';

/** What the HBONE layer knows about a connection handed to the proxy. */
export interface ConnectionContext {
  /** The client's identity from its HBONE certificate. */
  readonly peer: SpiffeId;
  /** The verified HBONE connection's remote address, never one a client wrote in a header. */
  readonly sourceIp: string;
  /** The workload known at `sourceIp` with the peer's identity, for telemetry. */
  readonly knownSource?: UpstreamEndpoint;
  /** The original destination (the CONNECT authority): a service VIP and port. */
  readonly target: HostPort;
  readonly chain: FilterChain & { readonly handler: HttpChain };
  /** Peer metadata from the CONNECT `baggage` header. */
  readonly baggage: ReadonlyMap<string, string>;
}

/** Per-request state carried to the access log and metrics. */
export interface Exchange {
  readonly start: number;
  readonly ctx: ConnectionContext;
  readonly method: string;
  readonly path: string;
  readonly authority: string;
  readonly requestId: string;
  readonly traceparent: string;
  readonly grpc: boolean;
  readonly protocol: string;
  /** Response flags, each once, in the order they were set. */
  readonly flags: ResponseFlag[];
  status: number;
  grpcStatus?: string;
  route?: string;
  cluster?: UpstreamCluster;
  endpoint?: UpstreamEndpoint;
  attempts: number;
  requestBytes: number;
  responseBytes: number;
}

/** Sets the table's response flag of `key` on the exchange, if it has one. */
export function mark(ex: Exchange, key: ReplyKey): void {
  const flag = REPLIES[key].flag;
  if (flag && !ex.flags.includes(flag)) ex.flags.push(flag);
}

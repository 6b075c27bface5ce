/**
 * Istio's standard TCP metrics for the connections a waypoint's TCP chains carry, with the full
 * label set (reporter "waypoint", request_protocol "tcp"), as the Envoy stats filter reports them
 * for a waypoint's TCP proxy.
 */
import { ISTIO_TCP_LABELS, type IstioTcpLabelName, type IstioTcpLabels } from '@ambient/shared';
import { Counter, type Registry } from 'prom-client';

export class TcpMetrics {
  readonly opened: Counter<IstioTcpLabelName>;
  readonly closed: Counter<IstioTcpLabelName>;
  /** Connections refused before they opened: no endpoint (UH) or the endpoint unreachable (UF). */
  readonly failed: Counter<IstioTcpLabelName>;
  /** Bytes from the client toward the endpoint. */
  readonly received: Counter<IstioTcpLabelName>;
  /** Bytes from the endpoint back to the client. */
  readonly sent: Counter<IstioTcpLabelName>;

  constructor(registry: Registry) {
    const make = (name: string, help: string) =>
      new Counter({ name, help, labelNames: [...ISTIO_TCP_LABELS], registers: [registry] });
    this.opened = make('istio_tcp_connections_opened_total', 'TCP connections opened by the waypoint');
    this.closed = make('istio_tcp_connections_closed_total', 'TCP connections closed by the waypoint');
    this.failed = make(
      'istio_tcp_connections_failed_total',
      'TCP connections the waypoint could not open (see response_flags)',
    );
    this.received = make(
      'istio_tcp_received_bytes_total',
      'Bytes received from the client of a TCP connection',
    );
    this.sent = make('istio_tcp_sent_bytes_total', 'Bytes sent to the client of a TCP connection');
  }

  /**
   * Counts a connection opened. Its close is counted once, when the endpoint side closes (even if
   * the tunnel never starts: a client that reset while the waypoint connected); its bytes once,
   * when the tunnel ends.
   */
  open(labels: IstioTcpLabels): TcpConnectionRecord {
    this.opened.inc(labels);
    let closed = false;
    let counted = false;
    return {
      closed: () => {
        if (closed) return;
        closed = true;
        this.closed.inc(labels);
      },
      bytes: (receivedBytes, sentBytes) => {
        if (counted) return;
        counted = true;
        this.received.inc(labels, receivedBytes);
        this.sent.inc(labels, sentBytes);
      },
    };
  }
}

export interface TcpConnectionRecord {
  closed(): void;
  bytes(receivedBytes: number, sentBytes: number): void;
}

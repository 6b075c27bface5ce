import { Counter, Gauge, type Registry } from 'prom-client';

export type HboneSide = 'client' | 'server';

/** Counters for the HBONE transport, registered on the component's own registry. */
export class HboneMetrics {
  readonly connectionsOpened: Counter<'side'>;
  readonly connectionsRefused: Counter<'side' | 'reason'>;
  readonly streams: Counter<'side' | 'status'>;
  readonly streamErrors: Counter<'side' | 'reason'>;
  readonly pings: Counter<'result'>;
  readonly poolConnections: Gauge;
  readonly handshakesPending: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.connectionsOpened = new Counter({
      name: 'hbone_connections_opened_total',
      help: 'HBONE TLS connections established with a verified peer',
      labelNames: ['side'],
      registers,
    });
    this.connectionsRefused = new Counter({
      name: 'hbone_connections_refused_total',
      help: 'HBONE connections refused before any stream: reason is tls_handshake, handshake_timeout, handshake_limit (too many handshakes in progress at the listener), handshake_source_limit (too many from one source address), no_client_cert, untrusted_cert, expired_cert, identity, alpn, no_identity, connect, protocol',
      labelNames: ['side', 'reason'],
      registers,
    });
    this.streams = new Counter({
      name: 'hbone_streams_total',
      help: 'HBONE CONNECT streams by response status',
      labelNames: ['side', 'status'],
      registers,
    });
    this.streamErrors = new Counter({
      name: 'hbone_stream_errors_total',
      help: 'HBONE streams that ended abnormally: reason is method, authority, forbidden_port, reset, upstream, malformed',
      labelNames: ['side', 'reason'],
      registers,
    });
    this.pings = new Counter({
      name: 'hbone_pool_pings_total',
      help: 'Keep-alive pings sent on pooled HBONE connections whose server went silent, by outcome',
      labelNames: ['result'],
      registers,
    });
    this.poolConnections = new Gauge({
      name: 'hbone_pool_connections',
      help: 'HBONE client connections currently pooled',
      registers,
    });
    this.handshakesPending = new Gauge({
      name: 'hbone_server_handshakes_pending',
      help: 'TLS handshakes in progress at HBONE servers (bounded per listener and per source address)',
      registers,
    });
  }
}

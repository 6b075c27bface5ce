import { Counter, type Registry } from 'prom-client';

/** The xDS client's metrics, with the names and labels Istio's ztunnel exposes. */
export class XdsClientMetrics {
  readonly connectionTerminations: Counter<'reason'>;
  readonly messages: Counter<'url'>;
  readonly messageBytes: Counter<'url'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.connectionTerminations = new Counter({
      name: 'istio_xds_connection_terminations_total',
      help: 'xDS streams ended: reason is ConnectionError, Error, Reconnect or Complete',
      labelNames: ['reason'],
      registers,
    });
    this.messages = new Counter({
      name: 'istio_xds_message_total',
      help: 'xDS responses received, by type URL',
      labelNames: ['url'],
      registers,
    });
    this.messageBytes = new Counter({
      name: 'istio_xds_message_bytes_total',
      help: 'Bytes of xDS responses received, by type URL',
      labelNames: ['url'],
      registers,
    });
  }
}

/** ZDS connection health on the node agent's /metrics (names are ours; upstream counts no rejects). */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ZdsRejectReason } from './zds-workload-manager.js';

export class ZdsMetrics {
  readonly rejected: Counter<'reason'>;
  readonly connected: Gauge;
  readonly connectFailures: Counter;

  constructor(registry: Registry) {
    this.rejected = new Counter({
      name: 'ztunnel_zds_rejected_messages_total',
      help: 'ZDS requests refused with an error ack, by reason',
      labelNames: ['reason'],
      registers: [registry],
    });
    this.connected = new Gauge({
      name: 'ztunnel_zds_connected',
      help: '1 while connected to the CNI node agent over ZDS',
      registers: [registry],
    });
    this.connectFailures = new Counter({
      name: 'ztunnel_zds_connect_failures_total',
      help: 'Failed attempts to connect to the CNI node agent',
      registers: [registry],
    });
  }

  reject(reason: ZdsRejectReason | 'start_failed'): void {
    this.rejected.inc({ reason });
  }
}

import {
  ADDRESS_TYPE_URL,
  AUTHORIZATION_TYPE_URL,
  CLUSTER_LOAD_ASSIGNMENT_TYPE_URL,
  CLUSTER_TYPE_URL,
  LISTENER_TYPE_URL,
  ROUTE_CONFIGURATION_TYPE_URL,
} from '@ambient/shared';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * The `type` label of `pilot_xds_pushes` and `pilot_total_xds_rejects` for each type URL we serve,
 * as istiod's GetMetricType writes it, so that dashboards built for istiod read ours. Any other
 * type URL is reported as itself (as istiod does).
 */
export const XDS_METRIC_TYPES: Readonly<Record<string, string>> = {
  [ADDRESS_TYPE_URL]: 'wds',
  [AUTHORIZATION_TYPE_URL]: 'wads',
  [LISTENER_TYPE_URL]: 'lds',
  [ROUTE_CONFIGURATION_TYPE_URL]: 'rds',
  [CLUSTER_TYPE_URL]: 'cds',
  [CLUSTER_LOAD_ASSIGNMENT_TYPE_URL]: 'eds',
};

/** istiod's metric form of a type URL: a short name for the types above, else the URL itself. */
export function xdsMetricType(typeUrl: string): string {
  return XDS_METRIC_TYPES[typeUrl] ?? typeUrl;
}

/** The control plane's metrics, named as istiod names them where istiod has one. */
export class ControlPlaneMetrics {
  readonly connectedProxies: Gauge;
  readonly pushes: Counter<'type'>;
  readonly rejects: Counter<'type'>;
  readonly convergence: Histogram;
  readonly invalidResources: Gauge;
  readonly configNotices: Gauge<'kind'>;
  readonly csrCount: Counter;
  readonly certsIssued: Counter;
  readonly authFailures: Counter<'reason'>;
  readonly csrErrors: Counter<'error'>;
  readonly csrByCaller: Counter<'node' | 'identity' | 'result'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.connectedProxies = new Gauge({
      name: 'pilot_xds',
      help: 'Proxies connected to this control plane over xDS',
      registers,
    });
    this.pushes = new Counter({
      name: 'pilot_xds_pushes',
      help: 'xDS responses sent, by type (wds: workload addresses, wads: authorizations, lds, rds, cds, eds)',
      labelNames: ['type'],
      registers,
    });
    this.rejects = new Counter({
      name: 'pilot_total_xds_rejects',
      help: 'xDS responses NACKed by proxies, by type',
      labelNames: ['type'],
      registers,
    });
    this.convergence = new Histogram({
      name: 'pilot_proxy_convergence_time',
      help: 'Seconds from a config change to a proxy acknowledging the push that carried it',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3, 5, 10],
      registers,
    });
    this.invalidResources = new Gauge({
      name: 'controlplane_invalid_resources',
      help: 'Resources refused as invalid: left out of the mesh config, or held at their last good version',
      registers,
    });
    this.configNotices = new Gauge({
      name: 'controlplane_config_notices',
      help: 'Parts of accepted resources the mesh cannot use (HTTP-only policy fields at ztunnel, a Gateway of another class, a missing backend, ...), by kind of resource; each is in /debug/config with its field path',
      labelNames: ['kind'],
      registers,
    });
    this.csrCount = new Counter({
      name: 'citadel_server_csr_count',
      help: 'Certificate signing requests received',
      registers,
    });
    this.certsIssued = new Counter({
      name: 'citadel_server_success_cert_issuance_count',
      help: 'Certificates issued',
      registers,
    });
    this.authFailures = new Counter({
      name: 'citadel_server_authentication_failure_count',
      help: 'Calls refused for a missing or unknown bearer token, or a disallowed identity',
      labelNames: ['reason'],
      registers,
    });
    this.csrErrors = new Counter({
      name: 'citadel_server_csr_sign_err_count',
      help: 'Certificate signing requests refused: error is invalid_csr or identity',
      labelNames: ['error'],
      registers,
    });
    this.csrByCaller = new Counter({
      name: 'controlplane_ca_csr_count',
      help:
        'Certificate signing requests by caller node (empty for workloads), granted identity ' +
        '(namespace/serviceAccount; empty when refused before a grant) and result: issued, refused, invalid or error',
      labelNames: ['node', 'identity', 'result'],
      registers,
    });
  }
}

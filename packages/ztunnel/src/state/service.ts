/** A service as the proxy sees it, from the local config file or from xDS. */
import type { GatewayAddress } from './workload.js';

export interface Service {
  readonly name: string;
  readonly namespace: string;
  readonly hostname: string;
  readonly vips: ReadonlyArray<{ readonly network: string; readonly address: string }>;
  readonly ports: ReadonlyMap<number, number>;
  readonly subjectAltNames: readonly string[];
  readonly waypoint?: GatewayAddress;
}

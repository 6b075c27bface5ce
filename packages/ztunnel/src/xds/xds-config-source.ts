/**
 * The node agent's config from a control plane: a Delta ADS stream subscribed (wildcard) to
 * Istio's Address and Authorization types, folded into the same LocalConfig snapshot the config
 * file produces. Changes of one response are applied together; while the control plane is away the
 * last snapshot keeps serving, and on return the client resyncs from the versions it holds.
 */

import { DeltaAdsClient, type XdsClientDump, type XdsClientMetrics } from '@ambient/shared';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { LocalConfig } from '../config/local-config.js';
import type { AuthorizationPolicy } from '../state/policy.js';
import type { Service } from '../state/service.js';
import type { Workload } from '../state/workload.js';
import { type AddressValue, addressResourceType, authorizationResourceType } from './workload-xds.js';

export interface XdsConfigSourceInputs {
  readonly target: string;
  /** PEM root that the control plane's serving certificate chains to. */
  readonly rootCertPem: string;
  /** Name the control plane's certificate is checked against. */
  readonly serverName: string;
  readonly token: () => Promise<string>;
  readonly node: { readonly id: string; readonly metadata: Readonly<Record<string, string>> };
  readonly clusterId: string;
  readonly logger: Logger;
  readonly metrics: XdsClientMetrics;
  readonly onConfig: (config: LocalConfig) => void;
}

export class XdsConfigSource {
  private readonly client: DeltaAdsClient;
  private workloads: ReadonlyMap<string, Workload> = new Map();
  private services: ReadonlyMap<string, Service> = new Map();
  private policies: ReadonlyMap<string, AuthorizationPolicy> = new Map();
  private scheduled = false;

  constructor(private readonly inputs: XdsConfigSourceInputs) {
    this.client = new DeltaAdsClient({
      target: inputs.target,
      credentials: grpc.credentials.createSsl(Buffer.from(inputs.rootCertPem)),
      channelOptions: {
        'grpc.ssl_target_name_override': inputs.serverName,
        'grpc.default_authority': inputs.serverName,
      },
      callMetadata: async () => ({
        authorization: `Bearer ${await inputs.token()}`,
        clusterid: inputs.clusterId,
      }),
      node: inputs.node,
      logger: inputs.logger,
      metrics: inputs.metrics,
      subscriptions: [
        {
          type: addressResourceType(),
          onChange: ({ all }: { all: ReadonlyMap<string, AddressValue> }) => {
            const workloads = new Map<string, Workload>();
            const services = new Map<string, Service>();
            for (const [name, v] of all) {
              if ('workload' in v) workloads.set(name, v.workload);
              else services.set(name, v.service);
            }
            this.workloads = workloads;
            this.services = services;
            this.schedule();
          },
        },
        {
          type: authorizationResourceType(),
          onChange: ({ all }: { all: ReadonlyMap<string, AuthorizationPolicy> }) => {
            this.policies = new Map(all);
            this.schedule();
          },
        },
      ],
    });
  }

  /** Connects and resolves with the first complete config. */
  async start(): Promise<LocalConfig> {
    this.client.start();
    await this.client.synced();
    return this.snapshot();
  }

  close(): void {
    this.client.close();
  }

  dump(): XdsClientDump {
    return this.client.dump();
  }

  private snapshot(): LocalConfig {
    return {
      workloads: [...this.workloads.values()],
      services: [...this.services.values()],
      policies: [...this.policies.values()],
    };
  }

  /** Both types of one push arrive back to back: apply them as one snapshot. */
  private schedule(): void {
    if (this.scheduled || !this.client.isSynced()) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.inputs.onConfig(this.snapshot());
    });
  }
}

/**
 * Fault: the control plane sends a waypoint an endpoint whose identity is not a valid SPIFFE ID.
 * Promise: the waypoint refuses the update (a NACK whose detail names the field), keeps the last
 * good endpoints serving, and applies the next good update.
 */
import {
  ControlPlaneMetrics,
  DeltaAdsServer,
  EnvoyEncoder,
  encodeResources,
  TokenAuthenticator,
} from '@ambient/controlplane';
import { CLUSTER_LOAD_ASSIGNMENT_TYPE_URL, DeltaAdsClient, XdsClientMetrics } from '@ambient/shared';
import { clusterLoadAssignmentResourceType, WaypointConfigStore } from '@ambient/waypoint';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { until } from '../xds/loopback-control-plane.js';

const logger = pino({ level: 'silent' });
const TOKEN = 'waypoint-token-0123456789abcdef';
const CLUSTER = 'inbound-vip|9080|http|reviews.demo.svc.cluster.local';

function str(v: string) {
  return { stringValue: v };
}

function assignment(address: string, identity: string) {
  return {
    clusterName: CLUSTER,
    endpoints: [
      {
        lbEndpoints: [
          {
            endpoint: { address: { socketAddress: { address, portValue: 9080 } } },
            metadata: {
              filterMetadata: {
                istio: {
                  fields: {
                    workload: str('reviews-v1'),
                    namespace: str('demo'),
                    service_account: str('reviews'),
                    identity: str(identity),
                    tunnel: str('hbone'),
                  },
                },
              },
            },
          },
        ],
      },
    ],
  };
}

describe('fault: an endpoint with a malformed identity reaches a waypoint', () => {
  const closers: Array<() => void> = [];
  afterEach(() => {
    for (const c of closers.splice(0)) c();
  });

  it('is NACKed with its field path while the last good endpoints keep serving', async () => {
    const started = performance.now();
    const ads = new DeltaAdsServer({
      logger,
      metrics: new ControlPlaneMetrics(new Registry()),
      authenticator: new TokenAuthenticator(
        new Map([
          [TOKEN, { kind: 'ztunnel', node: 'node0', namespace: 'istio-system', serviceAccount: 'ztunnel' }],
        ]),
      ),
    });
    const server = new grpc.Server();
    ads.register(server);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    closers.push(() => server.forceShutdown());
    const enc = new EnvoyEncoder();
    const publish = (address: string, identity: string) =>
      ads.publish(
        new Map([
          [
            CLUSTER_LOAD_ASSIGNMENT_TYPE_URL,
            encodeResources(
              CLUSTER_LOAD_ASSIGNMENT_TYPE_URL,
              new Map([
                [
                  CLUSTER,
                  enc.encode('envoy.config.endpoint.v3.ClusterLoadAssignment', assignment(address, identity)),
                ],
              ]),
            ),
          ],
        ]),
      );
    publish('198.18.16.5', 'spiffe://cluster.local/ns/demo/sa/reviews');

    const store = new WaypointConfigStore();
    const eds = store.subscriptions().find((s) => s.type.typeUrl === CLUSTER_LOAD_ASSIGNMENT_TYPE_URL);
    expect(eds).toBeDefined();
    const client = new DeltaAdsClient({
      target: `127.0.0.1:${port}`,
      credentials: grpc.credentials.createInsecure(),
      callMetadata: () => ({ authorization: `Bearer ${TOKEN}` }),
      // The shared scope of the bare ADS server (no waypoint directory here); the waypoint's own
      // ClusterLoadAssignment decoder and config store are what this test exercises.
      node: {
        id: 'ztunnel~198.18.16.2~ztunnel-node0.istio-system~istio-system.svc.cluster.local',
        metadata: { NODE_NAME: 'node0' },
      },
      subscriptions: [{ type: clusterLoadAssignmentResourceType(), onChange: (c) => eds?.onChange(c) }],
      logger,
      metrics: new XdsClientMetrics(new Registry()),
    });
    closers.push(() => client.close());
    client.start();
    await client.synced();
    const good = store.config.endpoints.get(CLUSTER);
    expect(good?.map((e) => [e.address, e.identity?.toString()])).toEqual([
      ['198.18.16.5', 'spiffe://cluster.local/ns/demo/sa/reviews'],
    ]);

    // A path that is not /ns/<namespace>/sa/<service-account>: accepted before, failing every connect.
    publish('198.18.16.6', 'spiffe://cluster.local/ns/demo/reviews');
    const rejection = await until('client rejection', () => client.dump().rejections[0]);
    console.log(`bad identity NACKed after ${Math.round(performance.now() - started)} ms from start`);
    expect(rejection.message).toBe(
      `${CLUSTER}: endpoints[0].lb_endpoints[0].metadata.filter_metadata.istio.identity: ` +
        '"spiffe://cluster.local/ns/demo/reviews": path must be /ns/<namespace>/sa/<service-account>',
    );
    const conn = await until('server NACK', () => ads.dump().find((d) => d.nacks > 0));
    expect(conn.lastNack?.message).toBe(rejection.message);
    // The last good endpoints keep serving.
    expect(store.config.endpoints.get(CLUSTER)).toBe(good);

    // The next good update is applied.
    publish('198.18.16.7', 'spiffe://cluster.local/ns/demo/sa/reviews');
    const next = await until('good update', () =>
      store.config.endpoints.get(CLUSTER)?.find((e) => e.address === '198.18.16.7'),
    );
    expect(next.identity?.toString()).toBe('spiffe://cluster.local/ns/demo/sa/reviews');
  });
});

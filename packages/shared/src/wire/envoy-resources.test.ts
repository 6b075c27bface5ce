import { describe, expect, it } from 'vitest';
import { envoyWaypointProtos } from '../xds/xds-protos.js';
import { CLUSTER_TYPE, ENVOY_RETRY_ON, HCM_TYPE, ROUTE_CONFIGURATION_TYPE } from './envoy-names.js';
import type {
  EnvoyInput,
  EnvoyMessages,
  WireCluster,
  WireHttpConnectionManager,
  WireRouteConfiguration,
} from './envoy-resources.js';

/** Encodes an encoder-side value with Envoy's protos and decodes it as the waypoint does. */
function roundTrip<N extends keyof EnvoyMessages>(
  name: N,
  input: EnvoyInput<EnvoyMessages[N]>,
): EnvoyMessages[N] {
  const type = envoyWaypointProtos().lookupType(name);
  const bytes = type.encode(type.fromObject(input as Record<string, unknown>)).finish();
  return type.decode(bytes) as unknown as EnvoyMessages[N];
}

describe('the shared Envoy wire types', () => {
  it('reject at compile time what the decoders do not know: unknown fields, enum names, discriminators', () => {
    // Each line below must stay a compile error (tsc -p tsconfig.tests.json checks it).
    // @ts-expect-error a field the shared Cluster type does not list
    const unknownField: EnvoyInput<WireCluster> = { name: 'c', dnsLookupFamily: 'V4_ONLY' };
    // @ts-expect-error an lb_policy name outside the listed ones
    const unknownEnum: EnvoyInput<WireCluster> = { lbPolicy: 'LEAST_LOADED' };
    // @ts-expect-error a oneof discriminator is read when decoding, never written
    const discriminator: EnvoyInput<WireHttpConnectionManager> = { routeSpecifier: 'rds' };
    expect([unknownField, unknownEnum, discriminator]).toHaveLength(3);
  });

  it('encode enum names to the numbers the decoders read, as Envoy defines them', () => {
    const cluster: WireCluster = roundTrip(CLUSTER_TYPE, {
      name: 'c',
      type: 'EDS',
      lbPolicy: 'LEAST_REQUEST',
      edsClusterConfig: { serviceName: 'c', edsConfig: { ads: {}, resourceApiVersion: 'V3' } },
    });
    // cluster.proto: DiscoveryType EDS = 3; LbPolicy LEAST_REQUEST = 1; ApiVersion V3 = 2.
    expect(cluster.type).toBe(3);
    expect(cluster.lbPolicy).toBe(1);
    expect(cluster.edsClusterConfig?.edsConfig?.resourceApiVersion).toBe(2);
    expect(cluster.edsClusterConfig?.edsConfig?.ads).toBeTruthy();
    const hcm: WireHttpConnectionManager = roundTrip(HCM_TYPE, { statPrefix: 's', codecType: 'HTTP2' });
    // http_connection_manager.proto: CodecType HTTP2 = 2.
    expect(hcm.codecType).toBe(2);
  });

  it('carry every retry condition the waypoint implements through a route', () => {
    const rc: WireRouteConfiguration = roundTrip(ROUTE_CONFIGURATION_TYPE, {
      name: 'r',
      virtualHosts: [
        {
          name: 'v',
          domains: ['*'],
          routes: [
            {
              match: { prefix: '/' },
              route: { cluster: 'c', retryPolicy: { retryOn: ENVOY_RETRY_ON.join(',') } },
            },
          ],
        },
      ],
    });
    expect(rc.virtualHosts[0]?.routes[0]?.route?.retryPolicy?.retryOn.split(',')).toEqual([
      ...ENVOY_RETRY_ON,
    ]);
  });
});

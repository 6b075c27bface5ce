import { describe, expect, it } from 'vitest';
import { allFieldsHandled } from '../istio-wire/all-fields-handled.js';
import { envoyWaypointProtos } from '../xds/xds-protos.js';
import { CLUSTER_TYPE, ENVOY_RETRY_ON, HCM_TYPE, ROUTE_CONFIGURATION_TYPE } from './envoy-names.js';
import type {
  EnvoyInput,
  EnvoyMessages,
  WireCluster,
  WireHttpConnectionManager,
  WireRetryPolicy,
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

  it('make a decoder that does not name every field fail to compile', () => {
    const rc: WireRouteConfiguration = roundTrip(ROUTE_CONFIGURATION_TYPE, {
      name: 'r',
      virtualHosts: [
        {
          name: 'v',
          domains: ['*'],
          routes: [{ match: { prefix: '/' }, route: { retryPolicy: { retryOn: '5xx' } } }],
        },
      ],
    });
    const decoded = rc.virtualHosts[0]?.routes[0]?.route?.retryPolicy as WireRetryPolicy;
    // The waypoint's retry policy decoder names each field, as here.
    const {
      retryOn,
      numRetries,
      perTryTimeout,
      retriableStatusCodes,
      retryBackOff,
      retriableHeaders,
      retriableRequestHeaders,
      ...rest
    } = decoded;
    allFieldsHandled(rest);
    expect([retryOn, numRetries, perTryTimeout, retriableStatusCodes, retryBackOff]).toEqual([
      '5xx',
      null,
      null,
      [],
      null,
    ]);
    expect([retriableHeaders, retriableRequestHeaders]).toEqual([[], []]);
    // Unset fields are protobufjs defaults on the prototype: read from the message, never from a
    // copy made by an object rest, which would lose them.
    expect(Object.hasOwn(decoded, 'numRetries')).toBe(false);

    // The same decoder once the shared type gains a field (Envoy's hedge_on_per_try_timeout).
    const grown = { ...decoded, hedgeOnPerTryTimeout: true } as WireRetryPolicy & {
      hedgeOnPerTryTimeout: boolean;
    };
    const {
      retryOn: _retryOn,
      numRetries: _numRetries,
      perTryTimeout: _perTryTimeout,
      retriableStatusCodes: _retriableStatusCodes,
      retryBackOff: _retryBackOff,
      retriableHeaders: _retriableHeaders,
      retriableRequestHeaders: _retriableRequestHeaders,
      ...unnamed
    } = grown;
    // @ts-expect-error hedgeOnPerTryTimeout is left over: the decoder must read it or name it as ignored.
    allFieldsHandled(unnamed);
    expect(unnamed.hedgeOnPerTryTimeout).toBe(true);
  });
});

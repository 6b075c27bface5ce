/**
 * gRPC's own xDS client (@grpc/grpc-js-xds, SotW ADS for LDS, RDS, CDS and EDS) resolving a
 * channel through the state-of-the-world server: it subscribes to the listener by name, follows
 * it to the route, the cluster and its endpoints, ACKs each, and the RPC reaches the test backend
 * the endpoints name; a changed endpoint set is pushed and followed.
 *
 * That client speaks only plaintext or Google-default credentials and sends no bearer token, so
 * here the server is mounted on a plaintext loopback port with an authenticator that admits it
 * as a node agent; the product server keeps TLS and tokens (test/xds/sotw-ads.test.ts).
 */
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ControlPlaneMetrics,
  encodeResources,
  SnapshotStore,
  SotwAdsServer,
  XDS_METRIC_TYPES,
} from '@ambient/controlplane';
import { envoyWaypointProtos } from '@ambient/shared';
import type * as GrpcJs from '@grpc/grpc-js';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The xDS package registers its resolver with the @grpc/grpc-js it depends on: use that one.
const sharedDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../packages/shared');
const xdsDir = dirname(
  createRequire(join(sharedDir, 'package.json')).resolve('@grpc/grpc-js-xds/package.json'),
);
const requireXds = createRequire(join(xdsDir, 'package.json'));
const grpc = requireXds('@grpc/grpc-js') as typeof GrpcJs;
const grpcXds = requireXds('@grpc/grpc-js-xds') as { register(): void };

const LDS = 'type.googleapis.com/envoy.config.listener.v3.Listener';
const RDS = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';
const CDS = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
const EDS = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
const HCM =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const METHOD = '/test.Echo/Say';
const TARGET = 'echo-target';

const protos = envoyWaypointProtos();
function encode(type: string, value: object): Uint8Array {
  const t: protobuf.Type = protos.lookupType(type);
  return t.encode(t.fromObject(value)).finish();
}
const any = (typeUrl: string, type: string, value: object) => ({
  type_url: typeUrl,
  value: encode(type, value),
});

/** The four resources gRPC needs for `xds:///echo-target`, the cluster's endpoint on `port`. */
function resources(port: number) {
  const listener = encode('envoy.config.listener.v3.Listener', {
    name: TARGET,
    apiListener: {
      apiListener: any(
        HCM,
        'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
        {
          rds: { configSource: { ads: {} }, routeConfigName: 'echo-route' },
          httpFilters: [
            {
              name: 'router',
              typedConfig: any(ROUTER, 'envoy.extensions.filters.http.router.v3.Router', {}),
            },
          ],
        },
      ),
    },
  });
  const route = encode('envoy.config.route.v3.RouteConfiguration', {
    name: 'echo-route',
    virtualHosts: [
      {
        name: 'echo',
        domains: ['*'],
        routes: [{ match: { prefix: '' }, route: { cluster: 'echo-cluster' } }],
      },
    ],
  });
  const cluster = encode('envoy.config.cluster.v3.Cluster', {
    name: 'echo-cluster',
    type: 'EDS',
    edsClusterConfig: { edsConfig: { ads: {} } },
    lbPolicy: 'ROUND_ROBIN',
  });
  const cla = encode('envoy.config.endpoint.v3.ClusterLoadAssignment', {
    clusterName: 'echo-cluster',
    endpoints: [
      {
        locality: { region: 'r', zone: 'z' },
        loadBalancingWeight: { value: 1 },
        lbEndpoints: [
          { endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: port } } } },
        ],
      },
    ],
  });
  return new Map([
    [LDS, encodeResources(LDS, new Map([[TARGET, listener]]))],
    [RDS, encodeResources(RDS, new Map([['echo-route', route]]))],
    [CDS, encodeResources(CDS, new Map([['echo-cluster', cluster]]))],
    [EDS, encodeResources(EDS, new Map([['echo-cluster', cla]]))],
  ]);
}

/** A plaintext loopback gRPC server answering `reply` on the test method. */
async function backend(reply: string): Promise<{ server: GrpcJs.Server; port: number }> {
  const server = new grpc.Server();
  server.register<Buffer, Buffer>(
    METHOD,
    (_call: GrpcJs.ServerUnaryCall<Buffer, Buffer>, cb: GrpcJs.sendUnaryData<Buffer>) =>
      cb(null, Buffer.from(reply)),
    (b: Buffer) => b,
    (b: Buffer) => b,
    'unary',
  );
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
  );
  return { server, port };
}

describe('gRPC’s xDS client over the state-of-the-world server', () => {
  const registry = new Registry();
  const metrics = new ControlPlaneMetrics(registry);
  const store = new SnapshotStore();
  let sotw: SotwAdsServer;
  let xdsServer: GrpcJs.Server;
  let xdsPort: number;
  const backends: GrpcJs.Server[] = [];
  let client: GrpcJs.Client;

  beforeAll(async () => {
    sotw = new SotwAdsServer({
      logger: pino({ level: 'silent' }),
      metrics,
      store,
      typeLabels: XDS_METRIC_TYPES,
      // gRPC's xDS client carries no token: admit it as the node agent of node n1.
      authenticator: {
        authenticate: () => ({
          ok: true,
          value: { kind: 'ztunnel', node: 'n1', namespace: 'istio-system', serviceAccount: 'ztunnel' },
        }),
      } as unknown as ConstructorParameters<typeof SotwAdsServer>[0]['authenticator'],
    });
    xdsServer = new grpc.Server();
    sotw.register(xdsServer as never);
    xdsPort = await new Promise<number>((res, rej) =>
      xdsServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? rej(e) : res(p),
      ),
    );
    grpcXds.register();
  });

  afterAll(() => {
    client?.close();
    xdsServer?.forceShutdown();
    for (const b of backends) b.forceShutdown();
  });

  const call = (): Promise<string> =>
    new Promise((res, rej) =>
      client.makeUnaryRequest(
        METHOD,
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from('hi'),
        new grpc.Metadata(),
        { deadline: Date.now() + 10_000 },
        (err, value) => (err ? rej(err) : res((value as Buffer).toString())),
      ),
    );

  it('resolves a channel through LDS, RDS, CDS and EDS, ACKing each, and follows an endpoint change', async () => {
    const first = await backend('one');
    backends.push(first.server);
    store.publish(resources(first.port));
    const bootstrap = {
      xds_servers: [
        {
          server_uri: `127.0.0.1:${xdsPort}`,
          channel_creds: [{ type: 'insecure' }],
          server_features: ['xds_v3'],
        },
      ],
      node: {
        id: 'ztunnel~127.0.0.1~grpc-client.test~test.svc.cluster.local',
        metadata: { NODE_NAME: 'n1' },
        locality: {},
      },
    };
    client = new grpc.Client(`xds:///${TARGET}`, grpc.credentials.createInsecure(), {
      'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': JSON.stringify(bootstrap),
    });
    const started = performance.now();
    expect(await call()).toBe('one');
    const firstRpcMs = performance.now() - started;

    const [conn] = sotw.dump();
    expect(conn).toMatchObject({ protocol: 'sotw', nacks: 0 });
    expect(conn?.types.map((t) => [t.typeUrl, t.wildcard, t.resources])).toEqual(
      expect.arrayContaining([
        [LDS, false, 1],
        [RDS, false, 1],
        [CDS, false, 1],
        [EDS, false, 1],
      ]),
    );
    expect(conn?.acks).toBeGreaterThanOrEqual(4);
    const pushes = (await registry.getSingleMetric('pilot_xds_pushes')?.get())?.values ?? [];
    for (const type of ['lds', 'rds', 'cds', 'eds'])
      expect(pushes.find((v) => v.labels.type === type)?.value, type).toBeGreaterThanOrEqual(1);

    // A new endpoint set is pushed to the subscribed stream, and the channel follows it.
    const second = await backend('two');
    backends.push(second.server);
    store.publish(resources(second.port));
    let reply = '';
    for (let i = 0; i < 200 && reply !== 'two'; i++) {
      reply = await call();
      if (reply !== 'two') await new Promise((r) => setTimeout(r, 20));
    }
    expect(reply).toBe('two');
    expect(sotw.dump()[0]?.nacks).toBe(0);
    console.log(`grpc-js-xds over SotW: first RPC resolved in ${firstRpcMs.toFixed(0)} ms`);
    console.log(`grpc-js-xds over SotW: ${sotw.dump()[0]?.acks} ACKs, 0 NACKs after the endpoint change`);
  });
});

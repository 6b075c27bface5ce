import {
  ControlPlaneMetrics,
  DeltaAdsServer,
  ResourceEncoder,
  type ResourceEntry,
  TokenAuthenticator,
  XDS_METRIC_TYPES,
} from '@ambient/controlplane';
import {
  ADDRESS_CODEC,
  ADDRESS_TYPE_URL,
  DELTA_ADS_METHOD,
  DeltaAdsClient,
  type Input,
  meshProtos,
  type workloadapi,
  XdsClientMetrics,
} from '@ambient/shared';
import { type AddressValue, addressResourceType } from '@ambient/ztunnel';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import protobuf from 'protobufjs';
import { afterEach, describe, expect, it } from 'vitest';
import { until } from './loopback-control-plane.js';

const logger = pino({ level: 'silent' });
const TOKEN = 'node0-token-0123456789abcdef';
const root = meshProtos();

function workload(name: string, address: number[]): Input<workloadapi.Address> {
  return {
    workload: {
      uid: `Kubernetes//Pod/demo/${name}`,
      name,
      namespace: 'demo',
      addresses: [Buffer.from(address)],
      tunnelProtocol: 1,
      serviceAccount: name,
      node: 'node0',
    },
  };
}

/** A Resource with an arbitrary payload and Any type URL, as a misbehaving server would send. */
function rawEntry(name: string, version: string, typeUrl: string, payload: Uint8Array): ResourceEntry {
  const w = protobuf.Writer.create();
  w.uint32(10).string(version);
  w.uint32(18).fork().uint32(10).string(typeUrl).uint32(18).bytes(payload).ldelim();
  w.uint32(26).string(name);
  return { version, encoded: w.finish() };
}

describe('Delta ADS client against the control plane ADS server over real gRPC', () => {
  const closers: Array<() => void> = [];
  afterEach(() => {
    for (const c of closers.splice(0)) c();
  });

  async function serve(): Promise<{ ads: DeltaAdsServer; registry: Registry; port: number }> {
    const registry = new Registry();
    const ads = new DeltaAdsServer({
      logger,
      metrics: new ControlPlaneMetrics(registry),
      authenticator: new TokenAuthenticator(
        new Map([
          [TOKEN, { kind: 'ztunnel', node: 'node0', namespace: 'istio-system', serviceAccount: 'ztunnel' }],
        ]),
      ),
      typeLabels: XDS_METRIC_TYPES,
    });
    const server = new grpc.Server();
    ads.register(server);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    closers.push(() => server.forceShutdown());
    return { ads, registry, port };
  }

  function client(port: number, seen: Array<ReadonlyMap<string, AddressValue>>) {
    const c = new DeltaAdsClient({
      target: `127.0.0.1:${port}`,
      credentials: grpc.credentials.createInsecure(),
      callMetadata: () => ({ authorization: `Bearer ${TOKEN}` }),
      node: {
        id: 'ztunnel~10.0.0.9~ztunnel-node0.istio-system~istio-system.svc.cluster.local',
        metadata: { NODE_NAME: 'node0' },
      },
      subscriptions: [{ type: addressResourceType(), onChange: ({ all }) => seen.push(new Map(all)) }],
      logger,
      metrics: new XdsClientMetrics(new Registry()),
    });
    closers.push(() => c.close());
    c.start();
    return c;
  }

  it('NACKs an invalid resource, keeps its last good version, applies the rest, and both sides record it', async () => {
    const { ads, registry, port } = await serve();
    const enc = new ResourceEncoder(ADDRESS_CODEC);
    const good = enc.encode('Kubernetes//Pod/demo/a', workload('a', [10, 0, 0, 1]));
    ads.publish(new Map([[ADDRESS_TYPE_URL, new Map([['Kubernetes//Pod/demo/a', good]])]]));
    const seen: Array<ReadonlyMap<string, AddressValue>> = [];
    const c = client(port, seen);
    await c.synced();
    // Next push: `a` changes to a 5-byte address (invalid), `b` is new and valid.
    const bad = enc.encode('Kubernetes//Pod/demo/a', workload('a', [10, 0, 0, 1, 7]));
    const b = enc.encode('Kubernetes//Pod/demo/b', workload('b', [10, 0, 0, 2]));
    ads.publish(
      new Map([
        [
          ADDRESS_TYPE_URL,
          new Map([
            ['Kubernetes//Pod/demo/a', bad],
            ['Kubernetes//Pod/demo/b', b],
          ]),
        ],
      ]),
    );
    const after = await until('push', () => seen.find((m) => m.has('Kubernetes//Pod/demo/b')));
    const a = after.get('Kubernetes//Pod/demo/a');
    expect(a && 'workload' in a && a.workload.ips).toEqual(['10.0.0.1']);
    const rejection = await until('client rejection', () => c.dump().rejections[0]);
    expect(rejection.message).toBe(
      'Kubernetes//Pod/demo/a: workload.addresses[0]: 5 bytes is not an IPv4 (4) or IPv6 (16) address',
    );
    const conn = await until('server NACK', () => ads.dump().find((d) => d.nacks > 0));
    expect(conn.lastNack?.message).toBe(rejection.message);
    expect(conn.node).toBe('node0');
    const rejects = await registry.getSingleMetric('pilot_total_xds_rejects')?.get();
    expect(rejects?.values).toEqual([expect.objectContaining({ labels: { type: 'wds' }, value: 1 })]);
  });

  it('ignores unknown fields and decodes by the response type whatever the Any type URL says, as ztunnel does', async () => {
    const { ads, port } = await serve();
    const payload = ADDRESS_CODEC.encode(workload('c', [10, 0, 0, 3]));
    // Field 99 (varint) is unknown to this version of the API.
    const withUnknown = Buffer.concat([payload, Buffer.from([0x98, 0x06, 0x01])]);
    ads.publish(
      new Map([
        [
          ADDRESS_TYPE_URL,
          new Map([
            [
              'Kubernetes//Pod/demo/c',
              rawEntry('Kubernetes//Pod/demo/c', 'v1', ADDRESS_TYPE_URL, withUnknown),
            ],
            [
              'Kubernetes//Pod/demo/d',
              rawEntry(
                'Kubernetes//Pod/demo/d',
                'v1',
                'type.googleapis.com/istio.workload.Workload',
                ADDRESS_CODEC.encode(workload('d', [10, 0, 0, 4])),
              ),
            ],
          ]),
        ],
      ]),
    );
    const seen: Array<ReadonlyMap<string, AddressValue>> = [];
    const c = client(port, seen);
    await c.synced();
    const last = seen.at(-1);
    expect([...(last?.keys() ?? [])].sort()).toEqual(['Kubernetes//Pod/demo/c', 'Kubernetes//Pod/demo/d']);
    expect(c.dump().rejections).toEqual([]);
  });

  it('acknowledges a response for a type it never subscribed to, without applying anything', async () => {
    const Response = root.lookupType('envoy.service.discovery.v3.DeltaDiscoveryResponse');
    const Request = root.lookupType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
    const replies: Array<{ typeUrl: string; responseNonce: string; errorDetail?: unknown }> = [];
    const server = new grpc.Server();
    server.register<Buffer, Buffer>(
      DELTA_ADS_METHOD,
      ((call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        let sent = false;
        call.on('data', (buf: Buffer) => {
          const req = Request.toObject(Request.decode(buf)) as (typeof replies)[number];
          if (req.responseNonce) replies.push(req);
          if (!sent) {
            sent = true;
            call.write(
              Buffer.from(
                Response.encode({
                  typeUrl: 'type.googleapis.com/foo.Bar',
                  nonce: 'n1',
                  resources: [],
                }).finish(),
              ),
            );
          }
        });
      }) as grpc.handleBidiStreamingCall<Buffer, Buffer>,
      (b: Buffer) => b,
      (b: Buffer) => b,
      'bidi',
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    closers.push(() => server.forceShutdown());
    const seen: Array<ReadonlyMap<string, AddressValue>> = [];
    client(port, seen);
    const reply = await until('reply', () => replies[0]);
    expect(reply).toEqual({ typeUrl: 'type.googleapis.com/foo.Bar', responseNonce: 'n1' });
    expect(seen).toEqual([]);
  });
});

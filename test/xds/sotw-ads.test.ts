/**
 * State-of-the-world ADS (StreamAggregatedResources) of the real control plane over real gRPC and
 * TLS on loopback, driven by a client written here from Envoy's discovery.proto and Istio's
 * workload.proto with plain @grpc/grpc-js and protobufjs (none of the project's xDS code).
 *
 * "No response" is proven without timing: requests on one stream are handled in order and
 * answered in order, so when a later request's answer is the next message, the earlier request
 * got none.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ControlPlaneApp } from '@ambient/controlplane';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { controlPlaneDir, startControlPlane, until } from './loopback-control-plane.js';

const logger = pino({ level: 'silent' });
const NODE0_TOKEN = 'node0-token-sotw-0123456789';
const WAYPOINT_TOKEN = 'waypoint-token-sotw-012345';
const METHOD = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
const ADDRESS = 'type.googleapis.com/istio.workload.Address';
const AUTHZ = 'type.googleapis.com/istio.security.Authorization';
const LDS = 'type.googleapis.com/envoy.config.listener.v3.Listener';
const CDS = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
const EDS = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
const ZTUNNEL_NODE = {
  id: 'ztunnel~10.0.0.100~ztunnel-node0.istio-system~istio-system.svc.cluster.local',
  metadata: { fields: { NODE_NAME: { stringValue: 'node0' } } },
};
const WAYPOINT_NODE = { id: 'router~127.0.0.1~waypoint-0.demo~demo.svc.cluster.local' };

/** Envoy's discovery messages and Istio's Address, loaded from the .proto files directly. */
function loadTypes() {
  const here = dirname(fileURLToPath(import.meta.url));
  const shared = resolve(here, '../../packages/shared');
  const xds = dirname(createRequire(join(shared, 'package.json')).resolve('@grpc/grpc-js-xds/package.json'));
  const dirs = [
    join(shared, 'proto'),
    ...['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(xds, 'deps', d)),
    // google/protobuf/descriptor.proto and the other well-known files.
    dirname(createRequire(import.meta.url).resolve('protobufjs/package.json')),
  ];
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    for (const d of dirs) {
      const p = join(d, target);
      if (existsSync(p)) return p;
    }
    return target;
  };
  root.loadSync(['envoy/service/discovery/v3/discovery.proto', 'istio/workload/workload.proto']);
  root.resolveAll();
  return {
    request: root.lookupType('envoy.service.discovery.v3.DiscoveryRequest'),
    response: root.lookupType('envoy.service.discovery.v3.DiscoveryResponse'),
    address: root.lookupType('istio.workload.Address'),
  };
}
const T = loadTypes();

interface Response {
  versionInfo: string;
  typeUrl: string;
  nonce: string;
  /** google.protobuf.Any, whose field names protobufjs keeps as written. */
  resources: Array<{ type_url: string; value: Uint8Array }>;
}

interface Request {
  typeUrl: string;
  resourceNames?: string[];
  versionInfo?: string;
  responseNonce?: string;
  errorDetail?: { code: number; message: string };
  node?: object;
}

/** One SotW stream: requests out, responses queued in arrival order. */
class SotwStream {
  private readonly queue: Response[] = [];
  private readonly waiters: Array<(r: Response) => void> = [];
  readonly call: grpc.ClientDuplexStream<Buffer, Buffer>;
  error?: grpc.ServiceError;

  constructor(client: grpc.Client, token: string) {
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${token}`);
    this.call = client.makeBidiStreamRequest(
      METHOD,
      (b: Buffer) => b,
      (b: Buffer) => b,
      md,
    );
    this.call.on('data', (buf: Buffer) => {
      const r = T.response.toObject(T.response.decode(buf), { defaults: true, arrays: true }) as Response;
      const w = this.waiters.shift();
      if (w) w(r);
      else this.queue.push(r);
    });
    this.call.on('error', (e: grpc.ServiceError) => {
      this.error = e;
    });
  }

  send(req: Request): void {
    this.call.write(Buffer.from(T.request.encode(T.request.fromObject(req)).finish()));
  }

  /** The next response on the stream, whatever its type. */
  next(): Promise<Response> {
    const r = this.queue.shift();
    if (r) return Promise.resolve(r);
    return new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error('no response within 10 s')), 10_000);
      this.waiters.push((x) => {
        clearTimeout(t);
        res(x);
      });
    });
  }

  ack(r: Response, resourceNames: string[] = []): void {
    this.send({ typeUrl: r.typeUrl, versionInfo: r.versionInfo, responseNonce: r.nonce, resourceNames });
  }

  close(): void {
    this.call.end();
  }
}

/** The Address names (workload uid or namespace/hostname) in a response. */
function addressNames(r: Response): string[] {
  return r.resources
    .map((a) => {
      expect(a.type_url).toBe(ADDRESS);
      const addr = T.address.toObject(T.address.decode(a.value)) as {
        workload?: { uid: string };
        service?: { namespace: string; hostname: string };
      };
      return addr.workload ? addr.workload.uid : `${addr.service?.namespace}/${addr.service?.hostname}`;
    })
    .sort();
}

function pod(name: string, ip: string, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'demo', labels: { app: name }, ...extra },
    spec: { nodeName: 'node0', serviceAccountName: name },
    status: { podIP: ip },
  };
}

const MANIFESTS = [
  {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'demo', labels: { 'istio.io/dataplane-mode': 'ambient' } },
  },
  pod('sleep', '10.0.0.1'),
  pod('echo', '10.0.1.1'),
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'echo', namespace: 'demo' },
    spec: {
      clusterIP: '10.96.0.10',
      selector: { app: 'echo' },
      ports: [{ name: 'http', port: 80, targetPort: 8080 }],
    },
  },
  {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name: 'waypoint', namespace: 'demo' },
    spec: { gatewayClassName: 'istio-waypoint' },
  },
  {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'waypoint-0',
      namespace: 'demo',
      labels: { 'gateway.networking.k8s.io/gateway-name': 'waypoint' },
    },
    spec: { nodeName: 'node0', serviceAccountName: 'waypoint' },
    status: { podIP: '127.0.0.1' },
  },
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'reviews', namespace: 'demo', labels: { 'istio.io/use-waypoint': 'waypoint' } },
    spec: {
      clusterIP: '10.96.0.20',
      selector: { app: 'echo' },
      ports: [{ name: 'http', port: 9080, targetPort: 8080 }],
    },
  },
];

const SLEEP = 'Kubernetes//Pod/demo/sleep';
const ECHO = 'Kubernetes//Pod/demo/echo';
const WAYPOINT_POD = 'Kubernetes//Pod/demo/waypoint-0';
const SERVICES = ['demo/echo.demo.svc.cluster.local', 'demo/reviews.demo.svc.cluster.local'];

describe('state-of-the-world ADS over real gRPC and TLS', () => {
  let dir: string;
  let cp: ControlPlaneApp;
  let client: grpc.Client;

  const write = (docs: unknown[]) =>
    writeFile(join(dir, 'manifests', 'all.yaml'), docs.map((d) => stringify(d)).join('---\n'));

  /** The value of a counter of the control plane's registry, 0 when absent. */
  const counter = async (name: string, type: string): Promise<number> => {
    const m = (await cp.registry.getSingleMetric(name)?.get())?.values.find((v) => v.labels.type === type);
    return m?.value ?? 0;
  };

  const gauge = async (name: string): Promise<number> =>
    (await cp.registry.getSingleMetric(name)?.get())?.values[0]?.value ?? 0;

  beforeAll(async () => {
    dir = await controlPlaneDir('sotw-ads-', {
      [NODE0_TOKEN]: { node: 'node0' },
      [WAYPOINT_TOKEN]: { namespace: 'demo', serviceAccount: 'waypoint' },
    });
    await write(MANIFESTS);
    const started = await startControlPlane(dir, logger);
    cp = started.cp;
    client = new grpc.Client(
      `127.0.0.1:${started.port}`,
      grpc.credentials.createSsl(Buffer.from(cp.rootCertPem)),
      {
        'grpc.ssl_target_name_override': 'istiod.istio-system.svc',
        'grpc.default_authority': 'istiod.istio-system.svc',
      },
    );
  });

  afterAll(async () => {
    client?.close();
    await cp?.close();
  });

  it('answers a first request without names with every workload and service, then ACKs are not answered', async () => {
    const pushesBefore = await counter('pilot_xds_pushes', 'wds');
    const connectedBefore = await gauge('pilot_xds');
    const s = new SotwStream(client, NODE0_TOKEN);
    s.send({ node: ZTUNNEL_NODE, typeUrl: ADDRESS });
    const r = await s.next();
    expect(r.typeUrl).toBe(ADDRESS);
    expect(r.versionInfo).not.toBe('');
    expect(r.nonce).not.toBe('');
    expect(addressNames(r)).toEqual([ECHO, SLEEP, WAYPOINT_POD, ...SERVICES].sort());
    const sleep = r.resources
      .map((a) => T.address.toObject(T.address.decode(a.value)) as { workload?: Record<string, unknown> })
      .find((a) => a.workload?.uid === SLEEP)?.workload;
    expect(sleep).toMatchObject({
      name: 'sleep',
      namespace: 'demo',
      serviceAccount: 'sleep',
      workloadName: 'sleep',
    });
    expect(await counter('pilot_xds_pushes', 'wds')).toBe(pushesBefore + 1);
    // The same gauge as Delta streams: one more proxy connected while the stream is open.
    expect(await gauge('pilot_xds')).toBe(connectedBefore + 1);

    s.ack(r);
    // The ACK gets no answer: the next message answers the request after it.
    s.send({ typeUrl: AUTHZ });
    const authz = await s.next();
    expect(authz.typeUrl).toBe(AUTHZ);
    expect(await counter('pilot_xds_pushes', 'wds')).toBe(pushesBefore + 1);
    await until('the ACK counted', () => cp.adsDump().find((c) => c.protocol === 'sotw' && c.acks === 1));
    expect(cp.adsDump().find((c) => c.protocol === 'sotw')).toMatchObject({
      nodeId: ZTUNNEL_NODE.id,
      node: 'node0',
      types: [
        { typeUrl: ADDRESS, wildcard: true, resources: 5 },
        { typeUrl: AUTHZ, wildcard: true, resources: 0 },
      ],
    });
    s.close();
    const closed = async () => (await gauge('pilot_xds')) === connectedBefore;
    for (let i = 0; i < 500 && !(await closed()); i++) await new Promise((r) => setTimeout(r, 10));
    expect(await gauge('pilot_xds')).toBe(connectedBefore);
  });

  it('pushes the full new state with a new version and nonce when the manifests change', async () => {
    const s = new SotwStream(client, NODE0_TOKEN);
    s.send({ node: ZTUNNEL_NODE, typeUrl: ADDRESS });
    const first = await s.next();
    s.ack(first);
    await write([...MANIFESTS, pod('late', '10.0.0.9')]);
    const pushed = await s.next();
    expect(pushed.typeUrl).toBe(ADDRESS);
    expect(pushed.versionInfo).not.toBe(first.versionInfo);
    expect(pushed.nonce).not.toBe(first.nonce);
    // Full state: every resource again, not only the new one.
    expect(addressNames(pushed)).toEqual(
      [ECHO, SLEEP, WAYPOINT_POD, 'Kubernetes//Pod/demo/late', ...SERVICES].sort(),
    );
    s.ack(pushed);
    // A removal is the resource's absence from the next full state.
    await write(MANIFESTS);
    const removed = await s.next();
    expect(addressNames(removed)).toEqual([ECHO, SLEEP, WAYPOINT_POD, ...SERVICES].sort());
    s.close();
  });

  it('counts a NACK, does not send the same state again, and sends the next change', async () => {
    const rejectsBefore = await counter('pilot_total_xds_rejects', 'wds');
    const s = new SotwStream(client, NODE0_TOKEN);
    s.send({ node: ZTUNNEL_NODE, typeUrl: ADDRESS });
    const good = await s.next();
    s.ack(good);
    await write([...MANIFESTS, pod('bad', '10.0.0.8')]);
    const rejected = await s.next();
    // NACK: the last good version, the rejected nonce, and why.
    s.send({
      typeUrl: ADDRESS,
      versionInfo: good.versionInfo,
      responseNonce: rejected.nonce,
      errorDetail: { code: 3, message: 'workload bad: refused' },
    });
    s.send({ typeUrl: AUTHZ });
    expect((await s.next()).typeUrl).toBe(AUTHZ);
    expect(await counter('pilot_total_xds_rejects', 'wds')).toBe(rejectsBefore + 1);
    const conn = cp.adsDump().find((c) => c.protocol === 'sotw' && c.nacks === 1);
    expect(conn?.lastNack).toMatchObject({
      typeUrl: ADDRESS,
      nonce: rejected.nonce,
      message: 'workload bad: refused',
    });
    // Back to the good state: a new response, at the version the client still holds.
    await write(MANIFESTS);
    const back = await s.next();
    expect(back.typeUrl).toBe(ADDRESS);
    expect(back.versionInfo).toBe(good.versionInfo);
    expect(back.nonce).not.toBe(rejected.nonce);
    s.close();
  });

  it('follows resource_names: named subscribe, add, unsubscribe, explicit wildcard; stale nonces are ignored', async () => {
    const s = new SotwStream(client, NODE0_TOKEN);
    s.send({ node: ZTUNNEL_NODE, typeUrl: ADDRESS, resourceNames: [SLEEP] });
    const one = await s.next();
    expect(addressNames(one)).toEqual([SLEEP]);
    s.ack(one, [SLEEP, ECHO]);
    const two = await s.next();
    expect(addressNames(two)).toEqual([ECHO, SLEEP]);
    // A request naming the older nonce is stale: ignored, names and all.
    s.send({ typeUrl: ADDRESS, versionInfo: one.versionInfo, responseNonce: one.nonce, resourceNames: [] });
    s.ack(two, [ECHO]);
    const unsubscribed = await s.next();
    expect(unsubscribed.nonce).not.toBe(two.nonce);
    expect(addressNames(unsubscribed)).toEqual([ECHO]);
    // A name that does not exist yet is sent once it does.
    s.ack(unsubscribed, [ECHO, 'Kubernetes//Pod/demo/later']);
    expect(addressNames(await s.next())).toEqual([ECHO]);
    await write([...MANIFESTS, pod('later', '10.0.0.7')]);
    const appeared = await s.next();
    expect(addressNames(appeared)).toEqual([ECHO, 'Kubernetes//Pod/demo/later']);
    s.ack(appeared, ['*']);
    const all = await s.next();
    expect(addressNames(all)).toHaveLength(6);
    s.close();
    await write(MANIFESTS);
  });

  it('serves a waypoint LDS and CDS as wildcards and EDS by name, from the same resources as Delta', async () => {
    const s = new SotwStream(client, WAYPOINT_TOKEN);
    s.send({ node: WAYPOINT_NODE, typeUrl: CDS });
    const cds = await s.next();
    expect(cds.typeUrl).toBe(CDS);
    expect(cds.resources.length).toBeGreaterThan(0);
    expect(cds.resources.every((r) => r.type_url === CDS)).toBe(true);
    const scope = 'waypoint:demo/waypoint';
    const delta = cp.adsServer?.snapshot(EDS, scope);
    const edsNames = [...(delta?.keys() ?? [])];
    expect(edsNames.length).toBeGreaterThan(0);
    expect(cds.resources).toHaveLength(cp.adsServer?.snapshot(CDS, scope).size ?? -1);
    s.ack(cds);
    // EDS is never a wildcard: no names, no resources.
    s.send({ typeUrl: EDS });
    expect((await s.next()).resources).toHaveLength(0);
    s.send({ typeUrl: EDS, resourceNames: [edsNames[0] as string] });
    const eds = await s.next();
    expect(eds.resources).toHaveLength(1);
    expect(eds.resources[0]?.type_url).toBe(EDS);
    s.send({ typeUrl: LDS });
    const lds = await s.next();
    expect(lds.typeUrl).toBe(LDS);
    expect(lds.resources).toHaveLength(cp.adsServer?.snapshot(LDS, scope).size ?? -1);
    s.close();
  });

  it('refuses a stream without a valid token, and a node agent speaking for another node', async () => {
    const bad = new SotwStream(client, 'not-a-token-0123456789abcdef');
    bad.send({ node: ZTUNNEL_NODE, typeUrl: ADDRESS });
    await until('refusal', () => bad.error);
    expect(bad.error?.code).toBe(grpc.status.UNAUTHENTICATED);
    const other = new SotwStream(client, NODE0_TOKEN);
    other.send({
      node: { id: ZTUNNEL_NODE.id, metadata: { fields: { NODE_NAME: { stringValue: 'node1' } } } },
      typeUrl: ADDRESS,
    });
    await until('refusal', () => other.error);
    expect(other.error?.code).toBe(grpc.status.PERMISSION_DENIED);
  });

  it('refuses an undecodable request and a first request without a node, INVALID_ARGUMENT', async () => {
    const garbage = new SotwStream(client, NODE0_TOKEN);
    garbage.call.write(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]));
    await until('refusal', () => garbage.error);
    expect(garbage.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(garbage.error?.details).toMatch(/^undecodable request/);
    const anonymous = new SotwStream(client, NODE0_TOKEN);
    anonymous.send({ typeUrl: ADDRESS });
    await until('refusal', () => anonymous.error);
    expect(anonymous.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(anonymous.error?.details).toBe('the first request must carry the node');
    // Refused streams are not held (earlier tests' closed streams drain too).
    await until('no open SotW stream', () => cp.adsDump().every((c) => c.protocol !== 'sotw'));
    expect(await gauge('pilot_xds')).toBe(0);
  });
});

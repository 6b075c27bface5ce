import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CLUSTER_LOAD_ASSIGNMENT_TYPE_URL,
  CLUSTER_TYPE_URL,
  type ControlPlaneApp,
  EnvoyEncoder,
  LISTENER_TYPE_URL,
  ROUTE_CONFIGURATION_TYPE_URL,
} from '@ambient/controlplane';
import {
  createCsr,
  DeltaAdsClient,
  fail,
  GrpcCaClient,
  ok,
  SpiffeId,
  type XdsDelta,
  type XdsResourceType,
} from '@ambient/shared';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { controlPlaneDir, startControlPlane } from './loopback-control-plane.js';

const logger = pino({ level: 'silent' });
const NODE0_TOKEN = 'node0-token-0123456789abcdef';
const WAYPOINT_TOKEN = 'waypoint-token-0123456789ab';
const REVIEWS_WP_TOKEN = 'reviews-wp-token-0123456789';
const SLEEP_TOKEN = 'sleep-token-0123456789abcdef';
const HOST = 'echo.demo.svc.cluster.local';
const C80 = `inbound-vip|80|http|${HOST}`;

// biome-ignore lint/suspicious/noExplicitAny: decoded protobuf messages are checked field by field
type D = any;

const enc = new EnvoyEncoder();
const MESSAGES: Record<string, string> = {
  [LISTENER_TYPE_URL]: 'envoy.config.listener.v3.Listener',
  [ROUTE_CONFIGURATION_TYPE_URL]: 'envoy.config.route.v3.RouteConfiguration',
  [CLUSTER_TYPE_URL]: 'envoy.config.cluster.v3.Cluster',
  [CLUSTER_LOAD_ASSIGNMENT_TYPE_URL]: 'envoy.config.endpoint.v3.ClusterLoadAssignment',
};
const ALL_TYPES = Object.keys(MESSAGES);

/** A raw decoder: protobuf-decodes the resource, and optionally rejects it. */
function rawType(typeUrl: string, reject?: (name: string) => string | undefined): XdsResourceType<D> {
  return {
    typeUrl,
    decode(value, name) {
      const why = reject?.(name);
      if (why) return fail({ path: name, message: why });
      try {
        return ok(enc.decode(MESSAGES[typeUrl] as string, value));
      } catch (err) {
        return fail({ path: name, message: (err as Error).message });
      }
    },
  };
}

function pod(name: string, sa: string, labels: Record<string, string>, ip: string) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'demo', labels },
    spec: { nodeName: 'node0', serviceAccountName: sa },
    status: { podIP: ip },
  };
}

const BASE = [
  {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name: 'demo',
      labels: { 'istio.io/dataplane-mode': 'ambient', 'istio.io/use-waypoint': 'waypoint' },
    },
  },
  {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name: 'waypoint', namespace: 'demo' },
    spec: { gatewayClassName: 'istio-waypoint' },
  },
  {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name: 'reviews-wp', namespace: 'demo' },
    spec: { gatewayClassName: 'istio-waypoint' },
  },
  pod('waypoint-0', 'waypoint', { 'gateway.networking.k8s.io/gateway-name': 'waypoint' }, '10.0.0.50'),
  pod('reviews-wp-0', 'reviews-wp', { 'gateway.networking.k8s.io/gateway-name': 'reviews-wp' }, '10.0.0.51'),
  pod('sleep', 'sleep', { app: 'sleep' }, '10.0.0.1'),
  pod('echo-v1', 'echo', { app: 'echo', version: 'v1' }, '10.0.1.1'),
  pod('echo-v2', 'echo', { app: 'echo', version: 'v2' }, '10.0.1.2'),
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
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'reviews', namespace: 'demo', labels: { 'istio.io/use-waypoint': 'reviews-wp' } },
    spec: { clusterIP: '10.96.0.20', selector: { app: 'reviews' }, ports: [{ name: 'http', port: 9080 }] },
  },
];

async function until<T>(what: string, probe: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Received {
  readonly deltas: Map<string, XdsDelta<D>[]>;
  latest(typeUrl: string): ReadonlyMap<string, D>;
}

describe('control plane over real gRPC and TLS: Envoy resources to waypoints', () => {
  let dir: string;
  let cp: ControlPlaneApp;
  let port: number;
  const clients: DeltaAdsClient[] = [];

  const write = (file: string, docs: unknown[]) =>
    writeFile(join(dir, 'manifests', file), docs.map((d) => stringify(d)).join('---\n'));

  function connect(
    token: string,
    podName: string,
    opts: {
      names?: Partial<Record<string, string[]>>;
      reject?: (typeUrl: string, name: string) => string | undefined;
    } = {},
  ): { client: DeltaAdsClient; received: Received } {
    const deltas = new Map<string, XdsDelta<D>[]>(ALL_TYPES.map((t) => [t, []]));
    const client = new DeltaAdsClient({
      target: `127.0.0.1:${port}`,
      credentials: grpc.credentials.createSsl(Buffer.from(cp.rootCertPem)),
      channelOptions: { 'grpc.ssl_target_name_override': 'istiod.istio-system.svc' },
      callMetadata: () => ({ authorization: `Bearer ${token}` }),
      node: {
        id: `router~10.0.0.50~${podName}.demo~demo.svc.cluster.local`,
        metadata: { NAMESPACE: 'demo', NAME: podName, GATEWAY_NAME: 'waypoint' },
      },
      subscriptions: ALL_TYPES.map((typeUrl) => ({
        type: rawType(typeUrl, opts.reject && ((name) => opts.reject?.(typeUrl, name))),
        ...(opts.names?.[typeUrl] && { names: opts.names[typeUrl] }),
        onChange: (delta: XdsDelta<D>) => deltas.get(typeUrl)?.push({ ...delta, all: new Map(delta.all) }),
      })),
      logger,
      random: () => 0.5,
    });
    clients.push(client);
    client.start();
    return {
      client,
      received: {
        deltas,
        latest: (typeUrl) => deltas.get(typeUrl)?.at(-1)?.all ?? new Map(),
      },
    };
  }

  beforeAll(async () => {
    dir = await controlPlaneDir('cp-waypoint-', {
      [NODE0_TOKEN]: { node: 'node0' },
      [WAYPOINT_TOKEN]: { namespace: 'demo', serviceAccount: 'waypoint' },
      [REVIEWS_WP_TOKEN]: { namespace: 'demo', serviceAccount: 'reviews-wp' },
      [SLEEP_TOKEN]: { namespace: 'demo', serviceAccount: 'sleep' },
    });
    await write('base.yaml', BASE);
    ({ cp, port } = await startControlPlane(dir, logger));
  });

  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });

  afterAll(async () => {
    await cp?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('sends a waypoint its listener, routes, clusters and endpoints over a wildcard subscription', async () => {
    const { client, received } = connect(WAYPOINT_TOKEN, 'waypoint-0');
    await client.synced();
    const listeners = received.latest(LISTENER_TYPE_URL);
    expect([...listeners.keys()]).toEqual(['waypoint']);
    const chains = listeners.get('waypoint').filterChains;
    expect(chains.map((c: D) => [c.name, c.filterChainMatch])).toEqual([
      [
        C80,
        {
          prefixRanges: [{ addressPrefix: '10.96.0.10', prefixLen: { value: 32 } }],
          destinationPort: { value: 80 },
        },
      ],
    ]);
    expect(chains[0].filters[0].typedConfig.rds.routeConfigName).toBe(C80);
    const routes = received.latest(ROUTE_CONFIGURATION_TYPE_URL);
    expect([...routes.keys()]).toEqual([C80]);
    expect(routes.get(C80).virtualHosts[0].routes).toEqual([
      {
        name: 'default',
        match: { prefix: '/' },
        route: {
          cluster: C80,
          timeout: {},
          retryPolicy: {
            retryOn: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
            numRetries: { value: 2 },
            retriableStatusCodes: [503],
          },
        },
      },
    ]);
    expect([...received.latest(CLUSTER_TYPE_URL).keys()]).toEqual([C80]);
    expect(received.latest(CLUSTER_TYPE_URL).get(C80).edsClusterConfig.serviceName).toBe(C80);
    const cla = received.latest(CLUSTER_LOAD_ASSIGNMENT_TYPE_URL).get(C80);
    expect(cla.endpoints[0].lbEndpoints.map((e: D) => e.endpoint.address.socketAddress)).toEqual([
      { address: '10.0.1.1', portValue: 8080 },
      { address: '10.0.1.2', portValue: 8080 },
    ]);
    expect(cla.endpoints[0].lbEndpoints[0].metadata.filterMetadata.istio.fields.tunnel).toEqual({
      stringValue: 'hbone',
    });
    expect(client.dump().rejections).toEqual([]);
    // The connection is listed as this gateway's waypoint.
    expect(cp.adsDump().find((c) => c.nodeId.startsWith('router~'))).toMatchObject({
      waypoint: 'demo/waypoint',
    });
  });

  it('sends another gateway only its own services', async () => {
    const { client, received } = connect(REVIEWS_WP_TOKEN, 'reviews-wp-0');
    await client.synced();
    expect(
      received
        .latest(LISTENER_TYPE_URL)
        .get('waypoint')
        .filterChains.map((c: D) => c.name),
    ).toEqual(['inbound-vip|9080|http|reviews.demo.svc.cluster.local']);
    expect([...received.latest(CLUSTER_TYPE_URL).keys()]).toEqual([
      'inbound-vip|9080|http|reviews.demo.svc.cluster.local',
    ]);
  });

  it('pushes only what an added HTTPRoute changes, as a delta', async () => {
    const { client, received } = connect(WAYPOINT_TOKEN, 'waypoint-0');
    await client.synced();
    const listenerPushes = received.deltas.get(LISTENER_TYPE_URL)?.length;
    await write('route.yaml', [
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'DestinationRule',
        metadata: { name: 'echo', namespace: 'demo' },
        spec: { host: 'echo', subsets: [{ name: 'v2', labels: { version: 'v2' } }] },
      },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'echo-v2', namespace: 'demo', labels: { 'istio.io/use-waypoint': 'none' } },
        spec: {
          clusterIP: '10.96.0.12',
          selector: { app: 'echo', version: 'v2' },
          ports: [{ name: 'http', port: 80, targetPort: 8080 }],
        },
      },
      {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'HTTPRoute',
        metadata: { name: 'canary', namespace: 'demo' },
        spec: {
          parentRefs: [{ group: '', kind: 'Service', name: 'echo', port: 80 }],
          rules: [
            {
              matches: [{ headers: [{ name: 'x-canary', value: 'yes' }] }],
              backendRefs: [{ name: 'echo-v2', port: 80 }],
            },
            { backendRefs: [{ name: 'echo', port: 80 }] },
          ],
        },
      },
    ]);
    const routeDelta = await until('route delta', () =>
      received.deltas
        .get(ROUTE_CONFIGURATION_TYPE_URL)
        ?.find((d) => d.updated.get(C80)?.virtualHosts[0].routes.length === 2),
    );
    expect([...routeDelta.updated.keys()]).toEqual([C80]);
    expect(routeDelta.removed).toEqual([]);
    expect(
      routeDelta.updated.get(C80).virtualHosts[0].routes.map((r: D) => [r.name, r.route.cluster]),
    ).toEqual([
      ['demo.canary.0.0', 'inbound-vip|80|http|echo-v2.demo.svc.cluster.local'],
      ['demo.canary.1.0', C80],
    ]);
    const clusters = await until('new clusters', () => {
      const all = received.latest(CLUSTER_TYPE_URL);
      return all.size === 3 && all;
    });
    expect([...clusters.keys()].sort()).toEqual([
      'inbound-vip|80|http|echo-v2.demo.svc.cluster.local',
      C80,
      `inbound-vip|80|http|v2|${HOST}`,
    ]);
    const eds = await until('new endpoints', () => {
      const v2 = received.latest(CLUSTER_LOAD_ASSIGNMENT_TYPE_URL).get(`inbound-vip|80|http|v2|${HOST}`);
      return v2 && v2;
    });
    expect(eds.endpoints[0].lbEndpoints.map((e: D) => e.endpoint.address.socketAddress.address)).toEqual([
      '10.0.1.2',
    ]);
    // The listener did not change, so it was not sent again.
    expect(received.deltas.get(LISTENER_TYPE_URL)?.length).toBe(listenerPushes);

    await rm(join(dir, 'manifests', 'route.yaml'));
    const removal = await until('removal', () =>
      received.deltas.get(CLUSTER_TYPE_URL)?.find((d) => d.removed.length === 2),
    );
    expect([...removal.removed].sort()).toEqual([
      'inbound-vip|80|http|echo-v2.demo.svc.cluster.local',
      `inbound-vip|80|http|v2|${HOST}`,
    ]);
    await until(
      'default route back',
      () =>
        received.latest(ROUTE_CONFIGURATION_TYPE_URL).get(C80)?.virtualHosts[0].routes[0].name === 'default',
    );
  });

  it('serves explicit resource names', async () => {
    await write('second.yaml', [
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'echo-admin', namespace: 'demo' },
        spec: {
          clusterIP: '10.96.0.13',
          selector: { app: 'echo' },
          ports: [{ name: 'http', port: 8081, targetPort: 8081 }],
        },
      },
    ]);
    const admin = 'inbound-vip|8081|http|echo-admin.demo.svc.cluster.local';
    await until('second service', () =>
      cp.adsServer?.snapshot(CLUSTER_TYPE_URL, 'waypoint:demo/waypoint').has(admin),
    );
    const { client, received } = connect(WAYPOINT_TOKEN, 'waypoint-0', {
      names: { [CLUSTER_TYPE_URL]: [admin], [CLUSTER_LOAD_ASSIGNMENT_TYPE_URL]: [admin, 'no-such-cluster'] },
    });
    await client.synced();
    expect([...received.latest(CLUSTER_TYPE_URL).keys()]).toEqual([admin]);
    expect([...received.latest(CLUSTER_LOAD_ASSIGNMENT_TYPE_URL).keys()]).toEqual([admin]);
    expect([...received.latest(ROUTE_CONFIGURATION_TYPE_URL).keys()].sort()).toEqual([admin, C80]);
    await rm(join(dir, 'manifests', 'second.yaml'));
  });

  it('records a NACK from a waypoint as it does a ztunnel NACK, and keeps the stream', async () => {
    const rejectsBefore = await rejects();
    const { client } = connect(WAYPOINT_TOKEN, 'waypoint-0', {
      reject: (typeUrl) =>
        typeUrl === CLUSTER_LOAD_ASSIGNMENT_TYPE_URL ? 'endpoints not wanted' : undefined,
    });
    await client.synced();
    const conn = await until('NACK recorded', () =>
      cp.adsDump().find((c) => c.waypoint === 'demo/waypoint' && c.nacks > 0),
    );
    expect(conn.lastNack).toMatchObject({ typeUrl: CLUSTER_LOAD_ASSIGNMENT_TYPE_URL });
    expect(conn.lastNack?.message).toContain('endpoints not wanted');
    expect(conn.acks).toBeGreaterThanOrEqual(3);
    expect(await rejects()).toBeGreaterThan(rejectsBefore);
    expect(client.isConnected()).toBe(true);

    async function rejects(): Promise<number> {
      const m = await cp.registry.getSingleMetric('pilot_total_xds_rejects')?.get();
      return m?.values.find((v) => v.labels.type === 'eds')?.value ?? 0;
    }
  });

  it("CA: gives a waypoint's service account token its own certificate and no other", async () => {
    const ca = (impersonate: boolean) =>
      new GrpcCaClient({
        target: `127.0.0.1:${port}`,
        credentials: grpc.credentials.createSsl(Buffer.from(cp.rootCertPem)),
        channelOptions: { 'grpc.ssl_target_name_override': 'istiod.istio-system.svc' },
        token: () => WAYPOINT_TOKEN,
        impersonate,
      });
    const own = SpiffeId.of('cluster.local', 'demo', 'waypoint');
    const echo = SpiffeId.of('cluster.local', 'demo', 'echo');
    const plain = ca(false);
    const impersonating = ca(true);
    try {
      const chain = await plain.createCertificate({ csrPem: (await createCsr(own)).csrPem, ttlSeconds: 600 });
      expect(chain).toHaveLength(2);
      const echoCsr = (await createCsr(echo)).csrPem;
      await expect(plain.createCertificate({ csrPem: echoCsr, ttlSeconds: 600 })).rejects.toThrow(
        /PERMISSION_DENIED.*granted spiffe:\/\/cluster.local\/ns\/demo\/sa\/waypoint/,
      );
      await expect(
        impersonating.createCertificate({ csrPem: echoCsr, ttlSeconds: 600, identity: echo }),
      ).rejects.toThrow(/demo\/waypoint may not impersonate other identities/);
    } finally {
      plain.close();
      impersonating.close();
    }
  });

  it.each([
    [
      'a node agent token',
      NODE0_TOKEN,
      'waypoint-0',
      "PERMISSION_DENIED: a node agent token (node node0) may not open a waypoint stream; use the waypoint's service account token",
    ],
    [
      'a pod that is not a waypoint',
      SLEEP_TOKEN,
      'sleep',
      'PERMISSION_DENIED: pod demo/sleep is not a waypoint: it has no gateway.networking.k8s.io/gateway-name label',
    ],
    [
      "another service account's waypoint pod",
      SLEEP_TOKEN,
      'waypoint-0',
      'PERMISSION_DENIED: token is for demo/sleep, but pod demo/waypoint-0 runs as demo/waypoint',
    ],
  ])('refuses a waypoint stream with %s', async (_what, token, podName, error) => {
    const { client } = connect(token, podName);
    await until('refusal', () => client.dump().lastError?.startsWith('PERMISSION_DENIED'));
    expect(client.dump().lastError).toBe(error);
    expect(client.isSynced()).toBe(false);
    const failures = await cp.registry.getSingleMetric('citadel_server_authentication_failure_count')?.get();
    expect(failures?.values.find((v) => v.labels.reason === 'waypoint')?.value).toBeGreaterThan(0);
  });
});

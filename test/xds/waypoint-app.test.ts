import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import {
  type ControlPlaneApp,
  EnvoyEncoder,
  encodeResources,
  ROUTE_CONFIGURATION_TYPE_URL,
  waypointScope,
} from '@ambient/controlplane';
import { CertManager, HboneClient, HboneMetrics, LocalCa, SpiffeId } from '@ambient/shared';
import { parseWaypointSettings, WaypointApp } from '@ambient/waypoint';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { controlPlaneDir, startControlPlane } from './loopback-control-plane.js';

const logger = pino({ level: 'silent' });
const WAYPOINT_TOKEN = 'waypoint-token-0123456789ab';
const VIP = '10.96.0.10';
const CHAIN = 'inbound-vip|80|http|echo.demo.svc.cluster.local';

const MANIFESTS = [
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
    kind: 'Pod',
    metadata: { name: 'echo', namespace: 'demo', labels: { app: 'echo' } },
    spec: { nodeName: 'node0', serviceAccountName: 'echo' },
    status: { podIP: '10.0.1.1' },
  },
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'echo', namespace: 'demo' },
    spec: {
      clusterIP: VIP,
      selector: { app: 'echo' },
      ports: [{ name: 'http', port: 80, targetPort: 8080 }],
    },
  },
  {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: 'echo-moved', namespace: 'demo' },
    spec: {
      parentRefs: [{ group: '', kind: 'Service', name: 'echo', port: 80 }],
      rules: [
        {
          matches: [{ path: { type: 'PathPrefix', value: '/old' } }],
          filters: [
            { type: 'RequestRedirect', requestRedirect: { hostname: 'moved.example', statusCode: 302 } },
          ],
        },
      ],
    },
  },
];

/** One HTTP/1.1 exchange on a fresh HBONE stream to the waypoint; the raw response head. */
async function httpOver(stream: Duplex, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    stream.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.includes('\r\n\r\n')) {
        stream.destroy();
        resolve(text.slice(0, text.indexOf('\r\n\r\n')));
      }
    });
    stream.on('error', reject);
    stream.write(`GET ${path} HTTP/1.1\r\nhost: echo.demo.svc.cluster.local\r\nconnection: close\r\n\r\n`);
  });
}

describe('a real waypoint under the real control plane, over loopback', () => {
  let dir: string;
  let cp: ControlPlaneApp;
  let wp: WaypointApp;
  let hbonePort: number;
  let adminPort: number;
  let client: HboneClient;
  let certs: CertManager;

  beforeAll(async () => {
    dir = await controlPlaneDir('waypoint-app-', {
      [WAYPOINT_TOKEN]: { namespace: 'demo', serviceAccount: 'waypoint' },
    });
    await writeFile(join(dir, 'manifests', 'all.yaml'), MANIFESTS.map((d) => stringify(d)).join('---\n'));
    const started = await startControlPlane(dir, logger);
    cp = started.cp;
    const cpPort = started.port;
    await writeFile(join(dir, 'root-cert.pem'), cp.rootCertPem);
    await writeFile(join(dir, 'waypoint-token'), WAYPOINT_TOKEN);
    const settings = parseWaypointSettings({
      WP_XDS_ADDRESS: `127.0.0.1:${cpPort}`,
      WP_ROOT_CERT: join(dir, 'root-cert.pem'),
      WP_TOKEN_FILE: join(dir, 'waypoint-token'),
      WP_NAMESPACE: 'demo',
      WP_GATEWAY_NAME: 'waypoint',
      WP_POD_NAME: 'waypoint-0',
      WP_INSTANCE_IP: '127.0.0.1',
      WP_LISTEN_ADDRESS: '127.0.0.1',
      WP_HBONE_PORT: '0',
      WP_ADMIN_PORT: '0',
      WP_METRICS_ADDRESS: '127.0.0.1',
      WP_METRICS_PORT: '0',
      WP_READINESS_PORT: '0',
      WP_LOG_LEVEL: 'silent',
    });
    if (!settings.ok) throw new Error(JSON.stringify(settings.problems));
    wp = new WaypointApp({ settings: settings.value, logger });
    const addresses = await wp.start();
    hbonePort = addresses.hbone.port;
    adminPort = addresses.admin.port;
    await wp.ready();
    // A client with the sleep workload's certificate from the same root, as a client ztunnel holds.
    certs = new CertManager({
      ca: await LocalCa.loadOrCreate(join(dir, 'ca'), { trustDomain: 'cluster.local' }),
    });
    client = new HboneClient({ certificates: certs, metrics: new HboneMetrics(new Registry()), logger });
  }, 30_000);

  afterAll(async () => {
    client?.destroy();
    certs?.close();
    await wp?.close();
    await cp?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const call = async (path: string) =>
    httpOver(
      await client.connect({
        source: SpiffeId.of('cluster.local', 'demo', 'sleep'),
        destination: SpiffeId.of('cluster.local', 'demo', 'waypoint'),
        address: { host: '127.0.0.1', port: hbonePort },
        authority: `${VIP}:80`,
      }),
      path,
    );
  const dump = async () =>
    (await (await fetch(`http://127.0.0.1:${adminPort}/config_dump`)).json()) as {
      xds: {
        types: Array<{ typeUrl: string; nacks: number }>;
        rejections: Array<{ typeUrl: string; message: string }>;
      };
    };

  it('takes its config over Delta ADS and serves the HTTPRoute for the VIP it is called for', async () => {
    const head = await call('/old/page');
    expect(head).toMatch(/^HTTP\/1.1 302 /);
    expect(head).toMatch(/^location: http:\/\/moved\.example(:80)?\/old\/page$/m);
  });

  it('NACKs an invalid route configuration with its field path and keeps serving the last good one', async () => {
    const bad = new EnvoyEncoder().encode('envoy.config.route.v3.RouteConfiguration', {
      name: CHAIN,
      virtualHosts: [
        {
          name: 'echo',
          domains: ['*'],
          routes: [{ match: { safeRegex: { regex: '(unclosed' } }, route: { cluster: CHAIN } }],
        },
      ],
    });
    cp.adsServer?.publishScoped(
      [ROUTE_CONFIGURATION_TYPE_URL],
      new Map([
        [
          waypointScope('demo', 'waypoint'),
          new Map([
            [
              ROUTE_CONFIGURATION_TYPE_URL,
              encodeResources(ROUTE_CONFIGURATION_TYPE_URL, new Map([[CHAIN, bad]])),
            ],
          ]),
        ],
      ]),
    );
    let rejection: { typeUrl: string; message: string } | undefined;
    for (let i = 0; i < 200 && !rejection; i++) {
      rejection = (await dump()).xds.rejections.find((r) => r.typeUrl === ROUTE_CONFIGURATION_TYPE_URL);
      if (!rejection) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(rejection?.message).toContain(CHAIN);
    expect(rejection?.message).toMatch(/safe_regex/);
    // The control plane recorded the NACK too.
    expect(cp.adsDump().find((c) => c.waypoint === 'demo/waypoint')?.nacks).toBeGreaterThan(0);
    // The last good route still answers.
    expect(await call('/old/again')).toMatch(/^HTTP\/1.1 302 /);
  });
});

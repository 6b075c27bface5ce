/**
 * Fault: a route regex that is valid RE2 but exponential for a backtracking engine, `/(a+)+b`,
 * and one request crafted against it. The waypoint matches with RE2 (linear time): the hostile
 * request is answered (no route matches it: 404), and a bystander calling at the same time is served.
 * Figures are printed, not asserted (shared machine).
 */
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { ControlPlaneApp } from '@ambient/controlplane';
import { CertManager, HboneClient, HboneMetrics, LocalCa, SpiffeId } from '@ambient/shared';
import { parseWaypointSettings, WaypointApp } from '@ambient/waypoint';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { controlPlaneDir, startControlPlane } from '../xds/loopback-control-plane.js';

const logger = pino({ level: 'silent' });
const WAYPOINT_TOKEN = 'waypoint-token-regex-dos-0123';
const VIP = '10.96.0.10';
const redirect = (hostname: string) => ({
  type: 'RequestRedirect',
  requestRedirect: { hostname, statusCode: 302 },
});

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
    // Both rules answer locally (redirects), so no upstream is needed to see which one matched.
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: 'echo-regex', namespace: 'demo' },
    spec: {
      parentRefs: [{ group: '', kind: 'Service', name: 'echo', port: 80 }],
      rules: [
        {
          matches: [{ path: { type: 'RegularExpression', value: '/(a+)+b' } }],
          filters: [redirect('regex.example')],
        },
        {
          matches: [{ path: { type: 'PathPrefix', value: '/bystander' } }],
          filters: [redirect('bystander.example')],
        },
      ],
    },
  },
];

/** One HTTP/1.1 exchange on a fresh HBONE stream; the raw response head. */
function httpOver(stream: Duplex, path: string): Promise<string> {
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

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

describe('fault: regex denial of service against a waypoint route', () => {
  let dir: string;
  let cp: ControlPlaneApp;
  let wp: WaypointApp;
  let hbonePort: number;
  let client: HboneClient;
  let certs: CertManager;

  beforeAll(async () => {
    dir = await controlPlaneDir('regex-dos-', {
      [WAYPOINT_TOKEN]: { namespace: 'demo', serviceAccount: 'waypoint' },
    });
    await writeFile(join(dir, 'manifests', 'all.yaml'), MANIFESTS.map((d) => stringify(d)).join('---\n'));
    const started = await startControlPlane(dir, logger);
    cp = started.cp;
    await writeFile(join(dir, 'root-cert.pem'), cp.rootCertPem);
    await writeFile(join(dir, 'waypoint-token'), WAYPOINT_TOKEN);
    const settings = parseWaypointSettings({
      WP_XDS_ADDRESS: `127.0.0.1:${started.port}`,
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
    hbonePort = (await wp.start()).hbone.port;
    await wp.ready();
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

  it('answers the hostile request (404, no route) and keeps serving a bystander meanwhile', async () => {
    // The regex route is in force.
    expect(await call('/aab')).toMatch(/^location: http:\/\/regex\.example(:80)?\/aab$/m);

    let hostileDone = false;
    const latencies: number[] = [];
    const bystander = (async () => {
      const deadline = performance.now() + 15_000;
      // Bounded in count and time; at least a few calls even if the hostile one is instant.
      for (let i = 0; i < 500 && performance.now() < deadline && (!hostileDone || i < 20); i++) {
        const t = performance.now();
        const head = await call(`/bystander/${i}`);
        latencies.push(performance.now() - t);
        expect(head).toMatch(/^location: http:\/\/bystander\.example(:80)?\/bystander\/\d+$/m);
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const hostilePath = `/${'a'.repeat(30)}c`;
    const t0 = performance.now();
    const hostile = await call(hostilePath);
    const hostileMs = performance.now() - t0;
    hostileDone = true;
    await bystander;

    // No route matches it: 404, as Envoy answers.
    expect(hostile).toMatch(/^HTTP\/1.1 404 /);
    const sorted = [...latencies].sort((x, y) => x - y);
    console.log(
      `regex-dos: hostile request (/(a+)+b against /a{30}c) answered in ${hostileMs.toFixed(1)} ms`,
    );
    console.log(`regex-dos: bystander requests ${sorted.length}`);
    console.log(`regex-dos: bystander p50 ${percentile(sorted, 50).toFixed(1)} ms`);
    console.log(`regex-dos: bystander p99 ${percentile(sorted, 99).toFixed(1)} ms`);
    expect(sorted.length).toBeGreaterThanOrEqual(20);
  }, 30_000);
});

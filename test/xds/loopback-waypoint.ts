/**
 * A real waypoint under the real control plane on loopback, as the in-process suites run it: the
 * control plane reads `manifests` (a namespace using the waypoint `demo/waypoint`, its pod on
 * 127.0.0.1, and a service `echo` at `vip` plus whatever the suite adds), the waypoint takes its
 * config over Delta ADS, and a client holding the `demo/sleep` certificate from the same root
 * makes HTTP/1.1 calls over HBONE streams to it.
 */
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { ControlPlaneApp } from '@ambient/controlplane';
import { CertManager, HboneClient, HboneMetrics, LocalCa, SpiffeId } from '@ambient/shared';
import { parseWaypointSettings, WaypointApp } from '@ambient/waypoint';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { stringify } from 'yaml';
import { controlPlaneDir, startControlPlane } from './loopback-control-plane.js';

const logger = pino({ level: 'silent' });
const WAYPOINT_TOKEN = 'waypoint-token-0123456789ab';

/** The waypoint, its pod, and the service `echo` (80 -> 8080) it serves at `vip`. */
export function waypointManifests(vip: string): object[] {
  return [
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
        clusterIP: vip,
        selector: { app: 'echo' },
        ports: [{ name: 'http', port: 80, targetPort: 8080 }],
      },
    },
  ];
}

/** One HTTP/1.1 exchange on a fresh HBONE stream to the waypoint; the raw response head. */
export function httpOver(
  stream: Duplex,
  path: string,
  host = 'echo.demo.svc.cluster.local',
): Promise<string> {
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
    stream.write(`GET ${path} HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`);
  });
}

export interface LoopbackWaypoint {
  readonly cp: ControlPlaneApp;
  readonly wp: WaypointApp;
  readonly adminPort: number;
  readonly metricsPort: number;
  /** GET `path` through the waypoint, as demo/sleep calling `vip:80`; the response head. */
  call(path: string): Promise<string>;
  /** An HBONE stream to the waypoint, as demo/sleep calling `authority` (`VIP:port`), with `baggage`. */
  open(authority: string, baggage?: string): Promise<Duplex>;
  close(): Promise<void>;
}

/** Starts the control plane with `manifests`, then the waypoint, and waits for its first config. */
export async function startLoopbackWaypoint(
  dirPrefix: string,
  vip: string,
  manifests: readonly object[],
): Promise<LoopbackWaypoint> {
  const dir = await controlPlaneDir(dirPrefix, {
    [WAYPOINT_TOKEN]: { namespace: 'demo', serviceAccount: 'waypoint' },
  });
  await writeFile(join(dir, 'manifests', 'all.yaml'), manifests.map((d) => stringify(d)).join('---\n'));
  const started = await startControlPlane(dir, logger);
  const cp = started.cp;
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
  const wp = new WaypointApp({ settings: settings.value, logger });
  const addresses = await wp.start();
  await wp.ready();
  // A client with the sleep workload's certificate from the same root, as a client ztunnel holds.
  const certs = new CertManager({
    ca: await LocalCa.loadOrCreate(join(dir, 'ca'), { trustDomain: 'cluster.local' }),
  });
  const client = new HboneClient({ certificates: certs, metrics: new HboneMetrics(new Registry()), logger });
  const open = (authority: string, baggage?: string) =>
    client.connect({
      source: SpiffeId.of('cluster.local', 'demo', 'sleep'),
      destination: SpiffeId.of('cluster.local', 'demo', 'waypoint'),
      address: { host: '127.0.0.1', port: addresses.hbone.port },
      authority,
      ...(baggage !== undefined && { baggage }),
    });
  return {
    cp,
    wp,
    adminPort: addresses.admin.port,
    metricsPort: addresses.metrics.port,
    call: async (path) => httpOver(await open(`${vip}:80`), path),
    open,
    close: async () => {
      client.destroy();
      certs.close();
      await wp.close();
      await cp.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The waypoint's Istio standard metrics, scraped from its real Prometheus endpoint after real
 * traffic: an HTTP request and a TCP chain through a waypoint configured by the real control
 * plane, to real servers on loopback (pods outside the mesh, so the waypoint dials them directly).
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  httpOver,
  type LoopbackWaypoint,
  startLoopbackWaypoint,
  waypointManifests,
} from './loopback-waypoint.js';

const VIP = '10.96.0.10';
const HELLO_VIP = '10.96.0.11';
const DB_VIP = '10.96.0.12';
const SLEEP_VIP = '10.96.0.13';
const GONE_VIP = '10.96.0.14';
const OUT_OF_MESH = { 'istio.io/dataplane-mode': 'none' };

const service = (name: string, vip: string, port: { name: string; port: number; targetPort: number }) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'demo' },
  spec: { clusterIP: vip, selector: { app: name }, ports: [port] },
});

/** A pod of Deployment `deployment` (through its ReplicaSet), as Kubernetes names and owns it. */
const pod = (deployment: string, sa: string, labels: Record<string, string>) => {
  const rs = `${deployment}-6d5c8b7f4`;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `${rs}-x2x4z`,
      generateName: `${rs}-`,
      namespace: 'demo',
      labels: { app: deployment, 'pod-template-hash': '6d5c8b7f4', ...labels },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: rs, controller: true }],
    },
    spec: { nodeName: 'node0', serviceAccountName: sa },
    status: { podIP: '127.0.0.1' },
  };
};

/** Every series of `name` in a Prometheus exposition, as label objects with their value. */
function series(text: string, name: string): Array<{ labels: Record<string, string>; value: number }> {
  const out: Array<{ labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    const m = /^(\w+)\{(.*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] as string).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1] as string] = l[2] as string;
    out.push({ labels, value: Number(m[3]) });
  }
  return out;
}

/** The source: demo/sleep, found at the verified address with the verified identity. */
const SLEEP_LABELS = {
  source_workload: 'sleep',
  source_workload_namespace: 'demo',
  source_principal: 'spiffe://cluster.local/ns/demo/sa/sleep',
  source_app: 'sleep',
  source_version: 'v1',
  source_canonical_service: 'sleep',
  source_canonical_revision: 'v1',
  source_cluster: 'Kubernetes',
};

describe('the waypoint reports Istio standard metrics with the full label set', () => {
  let w: LoopbackWaypoint;
  let helloServer: http.Server;
  let dbServer: net.Server;
  const scrape = async () => (await fetch(`http://127.0.0.1:${w.metricsPort}/metrics`)).text();

  beforeAll(async () => {
    helloServer = http.createServer((_req, res) => res.end('hello\n'));
    dbServer = net.createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
    await new Promise<void>((r) => helloServer.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => dbServer.listen(0, '127.0.0.1', r));
    const helloPort = (helloServer.address() as AddressInfo).port;
    const dbPort = (dbServer.address() as AddressInfo).port;
    w = await startLoopbackWaypoint('waypoint-telemetry-', VIP, [
      ...waypointManifests(VIP),
      // The client: its address is the HBONE connection's (loopback), its identity demo/sleep.
      pod('sleep', 'sleep', { version: 'v1' }),
      service('sleep', SLEEP_VIP, { name: 'http', port: 80, targetPort: 80 }),
      pod('hello', 'hello', {
        ...OUT_OF_MESH,
        version: 'v2',
        'service.istio.io/canonical-name': 'hello-svc',
        'service.istio.io/canonical-revision': 'v2',
      }),
      service('hello', HELLO_VIP, { name: 'http', port: 80, targetPort: helloPort }),
      pod('db', 'db', OUT_OF_MESH),
      service('db', DB_VIP, { name: 'tcp-db', port: 5432, targetPort: dbPort }),
      // A TCP service without pods: nothing to connect to.
      service('gone', GONE_VIP, { name: 'tcp-gone', port: 5432, targetPort: 5432 }),
    ]);
  }, 30_000);

  afterAll(async () => {
    await w?.close();
    helloServer?.close();
    dbServer?.close();
  });

  it('labels an HTTP request with the source and destination workloads, canonical services and clusters', async () => {
    const head = await httpOver(await w.open(`${HELLO_VIP}:80`), '/', 'hello.demo.svc.cluster.local');
    expect(head).toMatch(/^HTTP\/1.1 200 /);
    const found = await pollSeries(scrape, 'istio_requests_total', 'hello.demo.svc.cluster.local');
    expect(found.labels).toEqual({
      reporter: 'waypoint',
      ...SLEEP_LABELS,
      destination_workload: 'hello',
      destination_workload_namespace: 'demo',
      destination_principal: 'spiffe://cluster.local/ns/demo/sa/hello',
      destination_app: 'hello-svc',
      destination_version: 'v2',
      destination_service: 'hello.demo.svc.cluster.local',
      destination_service_name: 'hello',
      destination_service_namespace: 'demo',
      destination_canonical_service: 'hello-svc',
      destination_canonical_revision: 'v2',
      destination_cluster: 'Kubernetes',
      request_protocol: 'http',
      response_code: '200',
      grpc_response_status: '',
      response_flags: '-',
      connection_security_policy: 'mutual_tls',
    });
    expect(found.value).toBe(1);
    const durations = series(await scrape(), 'istio_request_duration_milliseconds_count').filter(
      (s) => s.labels.destination_service === 'hello.demo.svc.cluster.local',
    );
    expect(durations).toHaveLength(1);
    expect(durations[0]?.labels.destination_canonical_service).toBe('hello-svc');
  });

  it('keeps the verified source`s labels when the client`s baggage names another workload', async () => {
    const forged =
      'k8s.namespace.name=demo,k8s.deployment.name=hello,service.name=forged,k8s.cluster.name=evil';
    const head = await httpOver(await w.open(`${HELLO_VIP}:80`, forged), '/', 'hello.demo.svc.cluster.local');
    expect(head).toMatch(/^HTTP\/1.1 200 /);
    const deadline = Date.now() + 10_000;
    let all: ReturnType<typeof series> = [];
    for (;;) {
      all = series(await scrape(), 'istio_requests_total').filter(
        (s) => s.labels.destination_service === 'hello.demo.svc.cluster.local',
      );
      if (all.some((s) => s.value >= 2) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    // The same series as the first request: the baggage changed no label.
    expect(all).toHaveLength(1);
    expect(all[0]?.value).toBe(2);
    expect(all[0]?.labels).toMatchObject(SLEEP_LABELS);
  });

  it('counts a TCP chain`s connection, its bytes each way and its close, with the same labels', async () => {
    const stream = await w.open(`${DB_VIP}:5432`);
    const echoed = await new Promise<string>((resolve, reject) => {
      let text = '';
      stream.on('data', (d: Buffer) => {
        text += d.toString();
      });
      stream.on('end', () => resolve(text));
      stream.on('error', reject);
      stream.end('ping-12345');
    });
    expect(echoed).toBe('ping-12345');
    await closed(stream);
    const expected = {
      reporter: 'waypoint',
      ...SLEEP_LABELS,
      destination_workload: 'db',
      destination_workload_namespace: 'demo',
      destination_principal: 'spiffe://cluster.local/ns/demo/sa/db',
      destination_app: 'db',
      destination_version: 'latest',
      destination_service: 'db.demo.svc.cluster.local',
      destination_service_name: 'db',
      destination_service_namespace: 'demo',
      destination_canonical_service: 'db',
      destination_canonical_revision: 'latest',
      destination_cluster: 'Kubernetes',
      request_protocol: 'tcp',
      response_flags: '-',
      connection_security_policy: 'mutual_tls',
    };
    // Bytes are added when the tunnel ends, after both sides closed.
    await pollSeries(scrape, 'istio_tcp_sent_bytes_total', 'db.demo.svc.cluster.local');
    const text = await scrape();
    const one = (name: string) =>
      series(text, name).filter((s) => s.labels.destination_service === 'db.demo.svc.cluster.local');
    expect(one('istio_tcp_connections_opened_total')).toEqual([{ labels: expected, value: 1 }]);
    expect(one('istio_tcp_connections_closed_total')).toEqual([{ labels: expected, value: 1 }]);
    expect(one('istio_tcp_received_bytes_total')).toEqual([{ labels: expected, value: 10 }]);
    expect(one('istio_tcp_sent_bytes_total')).toEqual([{ labels: expected, value: 10 }]);
    // TCP metrics carry no HTTP labels.
    expect(expected).not.toHaveProperty('response_code');
  });

  it('counts a TCP chain with no endpoint as failed with UH, and never as opened', async () => {
    await expect(w.open(`${GONE_VIP}:5432`)).rejects.toThrow();
    const failed = await pollSeries(
      scrape,
      'istio_tcp_connections_failed_total',
      'gone.demo.svc.cluster.local',
    );
    expect(failed.value).toBe(1);
    expect(failed.labels).toMatchObject({
      reporter: 'waypoint',
      source_workload: 'sleep',
      destination_workload: 'unknown',
      destination_service_name: 'gone',
      request_protocol: 'tcp',
      response_flags: 'UH',
    });
    const opened = series(await scrape(), 'istio_tcp_connections_opened_total').filter(
      (s) => s.labels.destination_service === 'gone.demo.svc.cluster.local',
    );
    expect(opened).toEqual([]);
  });
});

/** Scrapes until `name` has a series for `destinationService`; it must have exactly one. */
async function pollSeries(
  scrape: () => Promise<string>,
  name: string,
  destinationService: string,
): Promise<{ labels: Record<string, string>; value: number }> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const found = series(await scrape(), name).filter(
      (s) => s.labels.destination_service === destinationService,
    );
    if (found.length > 0) {
      expect(found).toHaveLength(1);
      return found[0] as { labels: Record<string, string>; value: number };
    }
    if (Date.now() > deadline) throw new Error(`no ${name} series for ${destinationService}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function closed(stream: Duplex): Promise<void> {
  return stream.destroyed ? Promise.resolve() : new Promise((r) => stream.once('close', () => r()));
}

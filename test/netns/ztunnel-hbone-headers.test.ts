/**
 * The headers of real HBONE CONNECTs between lab pods: what the node agent sends (captured at an
 * HBONE server of our own in a lab pod), what the destination node agent makes of them in its
 * metrics, and what it answers to a service host name authority.
 */

import type net from 'node:net';
import { Lab } from '@ambient/lab';
import {
  CertManager,
  HboneClient,
  HboneMetrics,
  HboneRefusedError,
  type HboneRequest,
  HboneServer,
  LocalCa,
  SpiffeId,
} from '@ambient/shared';
import {
  decodeLocalConfig,
  InpodProxy,
  installCapture,
  type LocalConfig,
  NetnsSockets,
  removeCapture,
  TcpMetrics,
  ZTUNNEL_MARK,
  ZtunnelState,
} from '@ambient/ztunnel';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const isRoot = process.getuid?.() === 0;
const prefix = `h${process.pid % 100_000}`;
const CLUSTER = 'lab-east';

const HTTP_ECHO = `require('http').createServer((q,r)=>r.end('saw '+q.socket.remoteAddress.replace('::ffff:',''))).listen(8080,'0.0.0.0',()=>console.log('ready'))`;

async function counter(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get();
  return (m?.values ?? [])
    .filter((v) =>
      Object.entries(labels).every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val),
    )
    .reduce((n, v) => n + v.value, 0);
}

describe.skipIf(!isRoot)('ztunnel HBONE headers and answers between lab pods (root)', () => {
  let lab: Lab;
  let certs: CertManager;
  let sockets: NetnsSockets;
  let full: ZtunnelState;
  const registry = new Registry();
  const proxies: InpodProxy[] = [];
  const captured: HboneRequest[] = [];
  let captureServer: HboneServer | undefined;
  const listeners: net.Server[] = [];
  const enrolled: string[] = [];

  const curl = async (pod: string, url: string) => {
    const r = await lab.exec(lab.pod('demo', pod), ['curl', '-s', '--max-time', '5', url]);
    return r.code === 0 ? r.stdout : `curl exit ${r.code}`;
  };

  beforeAll(async () => {
    lab = await Lab.create(prefix, {
      nodes: 2,
      pods: [
        { name: 'sleep', namespace: 'demo', node: 0, serviceAccount: 'sleep', labels: { app: 'sleep' } },
        { name: 'echo', namespace: 'demo', node: 1, serviceAccount: 'echo', labels: { app: 'echo' } },
        {
          name: 'capture',
          namespace: 'demo',
          node: 1,
          serviceAccount: 'capture',
          labels: { app: 'capture' },
        },
      ],
      services: [
        {
          name: 'echo',
          namespace: 'demo',
          selector: { app: 'echo' },
          ports: [{ port: 80, targetPort: 8080 }],
        },
        {
          name: 'capture',
          namespace: 'demo',
          selector: { app: 'capture' },
          ports: [{ port: 80, targetPort: 8080 }],
        },
        // Behind a "waypoint" that is our capturing server.
        {
          name: 'behind',
          namespace: 'demo',
          selector: { app: 'capture' },
          ports: [{ port: 80, targetPort: 8080 }],
        },
      ],
    });
    for (const name of ['echo', 'capture']) {
      const app = lab.start(lab.pod('demo', name).netns, [process.execPath, '-e', HTTP_ECHO]);
      await new Promise((resolve) => app.stdout?.once('data', resolve));
    }
    const pod = (name: string, meta: Record<string, string>) => {
      const p = lab.pod('demo', name);
      return {
        uid: `lab//v1/Pod/demo/${name}`,
        name,
        namespace: 'demo',
        serviceAccount: p.serviceAccount,
        workloadIps: [p.ip],
        protocol: 'HBONE',
        node: `node${p.node}`,
        ...meta,
      };
    };
    const svc = (name: string) => ({
      name,
      namespace: 'demo',
      hostname: `${name}.demo.svc.cluster.local`,
      vips: [`/${lab.service('demo', name).vip}`],
      ports: { 80: 8080 },
    });
    const decoded = decodeLocalConfig({
      workloads: [
        // The control plane's names differ from the pod's: the labels must show the former.
        pod('sleep', {
          workloadName: 'sleeper',
          workloadType: 'deployment',
          canonicalName: 'sleep-svc',
          canonicalRevision: 'v1',
        }),
        {
          ...pod('echo', { workloadName: 'echo-deploy', canonicalName: 'echo', canonicalRevision: 'v2' }),
          services: { 'demo/echo.demo.svc.cluster.local': { 80: 8080 } },
        },
        {
          ...pod('capture', {}),
          services: {
            'demo/capture.demo.svc.cluster.local': { 80: 8080 },
            'demo/behind.demo.svc.cluster.local': { 80: 8080 },
          },
        },
      ],
      services: [svc('echo'), svc('capture'), svc('behind')],
    });
    if (!decoded.ok) throw new Error(JSON.stringify(decoded.problems));
    const captureIp = lab.pod('demo', 'capture').ip;
    const base: LocalConfig = {
      ...decoded.value,
      services: decoded.value.services.map((s) =>
        s.name === 'behind' ? { ...s, waypoint: { address: captureIp, port: 15008 } } : s,
      ),
    };
    full = new ZtunnelState(base);
    // The destination node agent does not know the source workload: it labels it from baggage.
    const withoutSleep = new ZtunnelState({
      ...base,
      workloads: base.workloads.filter((w) => w.name !== 'sleep'),
    });
    const ca = await LocalCa.create({ trustDomain: 'cluster.local' });
    const logger = pino({ level: 'silent' });
    certs = new CertManager({ ca, logger });
    const metrics = new HboneMetrics(registry);
    const tcpMetrics = new TcpMetrics(registry);
    sockets = NetnsSockets.load();
    for (const [name, state] of [
      ['sleep', full],
      ['echo', withoutSleep],
    ] as const) {
      const p = lab.pod('demo', name);
      await installCapture(p.netnsPath);
      enrolled.push(p.netnsPath);
      const w = state.workloadByIp(p.ip);
      if (!w) throw new Error(`no workload for ${name}`);
      const proxy = new InpodProxy({
        workload: w,
        netnsPath: p.netnsPath,
        state: () => state,
        sockets,
        certs,
        metrics,
        tcpMetrics,
        logger,
        clusterId: CLUSTER,
      });
      await proxy.start();
      proxies.push(proxy);
    }
    // An HBONE server of our own in the capture pod records every request and delivers to its app.
    const capture = lab.pod('demo', 'capture');
    const server = new HboneServer({
      certificateFor: () => certs.fetch(SpiffeId.of('cluster.local', 'demo', 'capture')),
      onRequest: async (req) => {
        captured.push(req);
        return sockets.connect(capture.netnsPath, { target: { host: capture.ip, port: 8080 } });
      },
      metrics,
      logger,
    });
    captureServer = server;
    listeners.push(await sockets.listen(capture.netnsPath, { port: 15008 }, (s) => server.accept(s)));
  }, 60_000);

  afterAll(async () => {
    for (const p of proxies) await p.close(500);
    for (const l of listeners) l.close();
    captureServer?.destroy();
    for (const ns of enrolled) await removeCapture(ns).catch(() => {});
    certs?.close();
    await lab?.destroy();
  });

  it('a CONNECT to a service carries the source baggage, a fresh traceparent and the service host in forwarded', async () => {
    const sleep = lab.pod('demo', 'sleep');
    // Our capturing server delivers from its own address.
    const capture = lab.pod('demo', 'capture');
    expect(await curl('sleep', 'http://capture.demo.svc.cluster.local/')).toBe(`saw ${capture.ip}`);
    expect(await curl('sleep', 'http://capture.demo.svc.cluster.local/')).toBe(`saw ${capture.ip}`);
    expect(captured).toHaveLength(2);
    const [a, b] = captured as [HboneRequest, HboneRequest];
    expect(a.baggage).toBe(
      `k8s.cluster.name=${CLUSTER},k8s.namespace.name=demo,k8s.deployment.name=sleeper,service.name=sleep-svc,service.version=v1`,
    );
    expect(a.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    expect(b.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    expect(a.traceparent).not.toBe(b.traceparent);
    expect(a.forwardedHost).toBe('capture.demo.svc.cluster.local');
    expect(a.forwardedIp).toBe(sleep.ip);
    expect(a.target).toEqual({ host: lab.pod('demo', 'capture').ip, port: 8080 });
    console.log(
      `CONNECT headers: baggage=${a.baggage} traceparent=${a.traceparent} forwarded host=${a.forwardedHost}`,
    );
  });

  it('a CONNECT to a pod address names no service host; one through a waypoint carries the same headers', async () => {
    const capture = lab.pod('demo', 'capture');
    captured.length = 0;
    expect(await curl('sleep', `http://${capture.ip}:8080/`)).toMatch(/^saw /);
    expect(captured[0]?.forwardedHost).toBeUndefined();
    expect(captured[0]?.baggage).toContain('k8s.deployment.name=sleeper');
    captured.length = 0;
    expect(await curl('sleep', 'http://behind.demo.svc.cluster.local/')).toMatch(/^saw /);
    const [viaWaypoint] = captured;
    // To a waypoint the authority is the original VIP:port.
    expect(viaWaypoint?.target).toEqual({ host: lab.service('demo', 'behind').vip, port: 80 });
    expect(viaWaypoint?.forwardedHost).toBe('behind.demo.svc.cluster.local');
    expect(viaWaypoint?.baggage).toBe(
      `k8s.cluster.name=${CLUSTER},k8s.namespace.name=demo,k8s.deployment.name=sleeper,service.name=sleep-svc,service.version=v1`,
    );
    expect(viaWaypoint?.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
  });

  it('the destination node agent labels a source it does not know from its baggage, with the verified principal', async () => {
    const sleep = lab.pod('demo', 'sleep');
    const echo = lab.pod('demo', 'echo');
    // By pod address: the destination guesses the service from the target port.
    expect(await curl('sleep', `http://${echo.ip}:8080/`)).toBe(`saw ${sleep.ip}`);
    const labels = {
      reporter: 'destination',
      source_workload: 'sleeper',
      source_canonical_service: 'sleep-svc',
      source_canonical_revision: 'v1',
      source_workload_namespace: 'demo',
      source_app: 'sleeper',
      source_version: 'v1',
      source_cluster: CLUSTER,
      source_principal: 'spiffe://cluster.local/ns/demo/sa/sleep',
      destination_workload: 'echo-deploy',
      destination_canonical_service: 'echo',
      destination_canonical_revision: 'v2',
      destination_cluster: CLUSTER,
      destination_service: 'echo.demo.svc.cluster.local',
    };
    await expect.poll(() => counter(registry, 'istio_tcp_connections_closed_total', labels)).toBe(1);
    // The source node agent knows the source; by pod address it names no service.
    expect(
      await counter(registry, 'istio_tcp_connections_opened_total', {
        reporter: 'source',
        source_workload: 'sleeper',
        source_app: 'sleep-svc',
        destination_workload: 'echo-deploy',
        destination_service: 'unknown',
      }),
    ).toBe(1);
  });

  it('answers a service host name authority from its target port with its own baggage, and an unknown one with 503', async () => {
    const sleep = lab.pod('demo', 'sleep');
    const echo = lab.pod('demo', 'echo');
    const client = new HboneClient({
      certificates: certs,
      metrics: new HboneMetrics(new Registry()),
      logger: pino({ level: 'silent' }),
      // From inside the sleep pod, marked so its own capture lets it pass.
      dialSocket: (address) => sockets.connect(sleep.netnsPath, { target: address, mark: ZTUNNEL_MARK }),
    });
    try {
      const request = {
        source: SpiffeId.of('cluster.local', 'demo', 'sleep'),
        destination: SpiffeId.of('cluster.local', 'demo', 'echo'),
        address: { host: echo.ip, port: 15008 },
      };
      const stream = await client.connect({ ...request, authority: 'echo.demo.svc.cluster.local:80' });
      expect(client.answerOf(stream)?.baggage).toBe(
        `k8s.cluster.name=${CLUSTER},k8s.namespace.name=demo,k8s.pod.name=echo-deploy,service.name=echo,service.version=v2`,
      );
      stream.write('GET / HTTP/1.1\r\nhost: echo\r\nconnection: close\r\n\r\n');
      const reply = await new Promise<string>((resolve) => {
        let text = '';
        stream.on('data', (d: Buffer) => {
          text += d.toString();
        });
        stream.on('end', () => resolve(text));
      });
      expect(reply).toMatch(new RegExp(`saw ${sleep.ip.replaceAll('.', '\\.')}$`));
      const refused = await client.connect({ ...request, authority: 'nope.demo.svc.cluster.local:80' }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(refused).toBeInstanceOf(HboneRefusedError);
      expect((refused as HboneRefusedError).status).toBe(503);
    } finally {
      client.destroy();
    }
  });
});

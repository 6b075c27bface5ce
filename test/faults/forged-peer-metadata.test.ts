/**
 * Fault: a pod with its own valid certificate opens HBONE to another pod's node agent and writes
 * what it likes in the headers the node agent reads for telemetry: a `baggage` naming another
 * workload, an oversized or garbled one, a `forwarded: host=` naming a service the pod does not
 * serve, and service host name authorities that name no service or resolve to a capture port.
 * Authorization stays on the verified certificate, a source known by its address keeps its own
 * labels, a bad header costs nothing but its own value, and refusals are answered 503 while the
 * node agent keeps serving.
 */
import { Lab } from '@ambient/lab';
import {
  CertManager,
  HboneClient,
  HboneMetrics,
  HboneRefusedError,
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
const prefix = `g${process.pid % 100_000}`;
const ATTACKER = 'spiffe://cluster.local/ns/demo/sa/attacker';
const FORGED =
  'k8s.cluster.name=Kubernetes,k8s.namespace.name=demo,k8s.deployment.name=sleep,service.name=sleep,service.version=v1';
const HTTP_ECHO = `require('http').createServer((q,r)=>r.end('saw '+q.socket.remoteAddress.replace('::ffff:',''))).listen(8080,'0.0.0.0',()=>console.log('ready'))`;

async function counter(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get();
  return (m?.values ?? [])
    .filter((v) =>
      Object.entries(labels).every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val),
    )
    .reduce((n, v) => n + v.value, 0);
}

describe.skipIf(!isRoot)('fault: forged or broken HBONE peer metadata (root)', () => {
  let lab: Lab;
  let certs: CertManager;
  let client: HboneClient;
  let base: LocalConfig;
  let withoutAttacker: LocalConfig;
  let state: ZtunnelState;
  const registry = new Registry();
  const proxies: InpodProxy[] = [];
  const enrolled: string[] = [];

  /** Opens a CONNECT from the attacker pod; the HTTP reply, or the refusal status. */
  async function tunnel(
    pod: 'echo' | 'quiet',
    headers: { authority?: string; baggage?: string; forwarded?: string } = {},
  ): Promise<{ status: number; body?: string; answerBaggage?: string }> {
    const dst = lab.pod('demo', pod);
    try {
      const stream = await client.connect({
        source: SpiffeId.of('cluster.local', 'demo', 'attacker'),
        destination: SpiffeId.of('cluster.local', 'demo', pod),
        address: { host: dst.ip, port: 15008 },
        authority: headers.authority ?? `${dst.ip}:8080`,
        ...(headers.baggage !== undefined && { baggage: headers.baggage }),
        ...(headers.forwarded !== undefined && { forwarded: headers.forwarded }),
      });
      const answerBaggage = client.answerOf(stream)?.baggage;
      stream.write('GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
      const body = await new Promise<string>((resolve) => {
        let text = '';
        stream.on('data', (d: Buffer) => {
          text += d.toString();
        });
        stream.on('end', () => {
          // Both directions closed: the node agent counts the tunnel as closed.
          stream.end();
          resolve(text.split('\r\n\r\n')[1] ?? '');
        });
      });
      return { status: 200, body, ...(answerBaggage !== undefined && { answerBaggage }) };
    } catch (err) {
      if (err instanceof HboneRefusedError) return { status: err.status };
      throw err;
    }
  }

  beforeAll(async () => {
    lab = await Lab.create(prefix, {
      nodes: 1,
      pods: [
        {
          name: 'attacker',
          namespace: 'demo',
          node: 0,
          serviceAccount: 'attacker',
          labels: { app: 'attacker' },
        },
        { name: 'echo', namespace: 'demo', node: 0, serviceAccount: 'echo', labels: { app: 'echo' } },
        { name: 'quiet', namespace: 'demo', node: 0, serviceAccount: 'quiet', labels: { app: 'quiet' } },
      ],
      services: [
        {
          name: 'echo',
          namespace: 'demo',
          selector: { app: 'echo' },
          ports: [{ port: 80, targetPort: 8080 }],
        },
        {
          name: 'quiet',
          namespace: 'demo',
          selector: { app: 'quiet' },
          ports: [{ port: 80, targetPort: 8080 }],
        },
      ],
    });
    for (const name of ['echo', 'quiet']) {
      const app = lab.start(lab.pod('demo', name).netns, [process.execPath, '-e', HTTP_ECHO]);
      await new Promise((resolve) => app.stdout?.once('data', resolve));
    }
    const pod = (name: string, services: Record<string, Record<number, number>> = {}) => {
      const p = lab.pod('demo', name);
      return {
        uid: `lab//v1/Pod/demo/${name}`,
        name,
        namespace: 'demo',
        serviceAccount: p.serviceAccount,
        workloadIps: [p.ip],
        protocol: 'HBONE',
        node: 'node0',
        workloadName: name,
        services,
      };
    };
    const svc = (name: string, ports: Record<number, number>) => ({
      name,
      namespace: 'demo',
      hostname: `${name}.demo.svc.cluster.local`,
      vips: [`/${lab.service('demo', name).vip}`],
      ports,
    });
    const decoded = decodeLocalConfig({
      workloads: [
        pod('attacker'),
        // Service port 81 of echo leads to its HBONE port.
        pod('echo', { 'demo/echo.demo.svc.cluster.local': { 80: 8080, 81: 15008 } }),
        pod('quiet', { 'demo/quiet.demo.svc.cluster.local': { 80: 8080 } }),
      ],
      services: [svc('echo', { 80: 8080, 81: 15008 }), svc('quiet', { 80: 8080 })],
    });
    if (!decoded.ok) throw new Error(JSON.stringify(decoded.problems));
    base = decoded.value;
    withoutAttacker = { ...base, workloads: base.workloads.filter((w) => w.name !== 'attacker') };
    state = new ZtunnelState(withoutAttacker);
    const ca = await LocalCa.create({ trustDomain: 'cluster.local' });
    const logger = pino({ level: 'silent' });
    certs = new CertManager({ ca, logger });
    const metrics = new HboneMetrics(registry);
    const tcpMetrics = new TcpMetrics(registry);
    const sockets = NetnsSockets.load();
    for (const name of ['echo', 'quiet']) {
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
        // quiet runs as with ZT_ENABLE_RESPONSE_BAGGAGE=false.
        responseBaggage: name !== 'quiet',
      });
      await proxy.start();
      proxies.push(proxy);
    }
    const attacker = lab.pod('demo', 'attacker');
    client = new HboneClient({
      certificates: certs,
      metrics: new HboneMetrics(new Registry()),
      logger,
      dialSocket: (address) => sockets.connect(attacker.netnsPath, { target: address, mark: ZTUNNEL_MARK }),
    });
  }, 60_000);

  afterAll(async () => {
    client?.destroy();
    for (const p of proxies) await p.close(500);
    for (const ns of enrolled) await removeCapture(ns).catch(() => {});
    certs?.close();
    await lab?.destroy();
  });

  it('a baggage naming an allowed workload does not get a denied principal in', async () => {
    state = new ZtunnelState({
      ...withoutAttacker,
      policies: [
        {
          name: 'deny-attacker',
          namespace: 'demo',
          scope: 'namespace',
          action: 'deny',
          rules: [
            { clauses: [{ matches: [{ principals: [{ exact: 'cluster.local/ns/demo/sa/attacker' }] }] }] },
          ],
        },
      ],
    });
    try {
      expect((await tunnel('echo', { baggage: FORGED })).status).toBe(401);
      // Telemetry names the verified principal next to what the baggage claimed.
      expect(
        await counter(registry, 'istio_tcp_connections_failed_total', {
          reporter: 'destination',
          response_flags: 'DENY',
          source_principal: ATTACKER,
        }),
      ).toBe(1);
    } finally {
      state = new ZtunnelState(withoutAttacker);
    }
  });

  it('a source known by its address keeps its own labels whatever its baggage claims', async () => {
    state = new ZtunnelState(base);
    try {
      expect((await tunnel('echo', { baggage: FORGED })).status).toBe(200);
      const labels = { reporter: 'destination', source_principal: ATTACKER, destination_workload: 'echo' };
      await expect
        .poll(() =>
          counter(registry, 'istio_tcp_connections_closed_total', { ...labels, source_workload: 'attacker' }),
        )
        .toBe(1);
      expect(
        await counter(registry, 'istio_tcp_connections_opened_total', {
          ...labels,
          source_workload: 'sleep',
        }),
      ).toBe(0);
    } finally {
      state = new ZtunnelState(withoutAttacker);
    }
  });

  it('an oversized or garbled baggage opens the tunnel and labels nothing from it', async () => {
    const attacker = lab.pod('demo', 'attacker');
    const huge = `k8s.deployment.name=sleep,k8s.namespace.name=${'x'.repeat(9000)}`;
    const garbled = '%%%,=,;;,k8s.deployment.name=%zz,k8s.namespace.name,service.name="a b"';
    for (const baggage of [huge, garbled]) {
      const r = await tunnel('echo', { baggage });
      expect(r.status).toBe(200);
      expect(r.body).toBe(`saw ${attacker.ip}`);
    }
    await expect
      .poll(() =>
        counter(registry, 'istio_tcp_connections_closed_total', {
          reporter: 'destination',
          source_principal: ATTACKER,
          source_workload: 'unknown',
          source_workload_namespace: 'unknown',
          source_canonical_service: 'unknown',
        }),
      )
      .toBe(2);
    console.log(`oversized baggage: ${huge.length} bytes ignored whole, tunnel opened`);
  });

  it("a forwarded host naming a service this pod does not serve is not reported; the port's service is", async () => {
    expect(
      (await tunnel('echo', { forwarded: 'for="198.18.0.9:1";host=quiet.demo.svc.cluster.local' })).status,
    ).toBe(200);
    await expect
      .poll(() =>
        counter(registry, 'istio_tcp_connections_closed_total', {
          reporter: 'destination',
          source_principal: ATTACKER,
          destination_workload: 'echo',
          destination_service: 'echo.demo.svc.cluster.local',
        }),
      )
      .toBeGreaterThanOrEqual(1);
    expect(
      await counter(registry, 'istio_tcp_connections_opened_total', {
        reporter: 'destination',
        destination_workload: 'echo',
        destination_service: 'quiet.demo.svc.cluster.local',
      }),
    ).toBe(0);
  });

  it('a host name authority naming no service, no target port or a capture port is answered 503, and the node agent keeps serving', async () => {
    const before = await counter(registry, 'hbone_streams_total', { side: 'server', status: '503' });
    const refused = [
      'nope.demo.svc.cluster.local:80',
      'echo.demo.svc.cluster.local:82',
      'echo.demo.svc.cluster.local:81',
    ];
    for (const authority of refused) expect((await tunnel('echo', { authority })).status).toBe(503);
    expect(await counter(registry, 'hbone_streams_total', { side: 'server', status: '503' })).toBe(
      before + refused.length,
    );
    const ok = await tunnel('echo', { authority: 'echo.demo.svc.cluster.local:80' });
    expect(ok.status).toBe(200);
    expect(ok.body).toBe(`saw ${lab.pod('demo', 'attacker').ip}`);
    console.log(
      `host name authorities refused with 503: ${refused.length}; next valid request: ${ok.status}`,
    );
  });

  it('with response baggage off, the answer carries none and a peer baggage labels nothing', async () => {
    const echo = await tunnel('echo');
    expect(echo.answerBaggage).toBe(
      'k8s.cluster.name=Kubernetes,k8s.namespace.name=demo,k8s.pod.name=echo,service.name=echo,service.version=latest',
    );
    const quiet = await tunnel('quiet', { baggage: FORGED });
    expect(quiet.status).toBe(200);
    expect(quiet.answerBaggage).toBeUndefined();
    await expect
      .poll(() =>
        counter(registry, 'istio_tcp_connections_closed_total', {
          reporter: 'destination',
          destination_workload: 'quiet',
          source_workload: 'unknown',
          source_principal: ATTACKER,
        }),
      )
      .toBe(1);
  });
});

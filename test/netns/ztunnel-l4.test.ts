import { Lab } from '@ambient/lab';
import { CertManager, HboneMetrics, LocalCa } from '@ambient/shared';
import {
  decodeLocalConfig,
  InpodProxy,
  installCapture,
  type LocalConfig,
  NetnsSockets,
  removeCapture,
  TcpMetrics,
  ZtunnelState,
} from '@ambient/ztunnel';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const isRoot = process.getuid?.() === 0;
const prefix = `z${process.pid % 100_000}`;

const HTTP_ECHO = `require('http').createServer((q,r)=>r.end('echo saw '+q.socket.remoteAddress.replace('::ffff:',''))).listen(8080,'0.0.0.0',()=>console.log('ready'))`;

/** A TCP server that keeps every connection open and echoes. */
const HOLDING_SERVER = `require('net').createServer(s=>s.pipe(s)).listen(9000,'0.0.0.0',()=>console.log('ready'))`;

async function counter(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get();
  return (m?.values ?? [])
    .filter((v) =>
      Object.entries(labels).every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val),
    )
    .reduce((n, v) => n + v.value, 0);
}

describe.skipIf(!isRoot)('ztunnel in-pod L4 data path across two lab nodes (root)', () => {
  let lab: Lab;
  let state: ZtunnelState;
  let certs: CertManager;
  const registry = new Registry();
  const proxies: InpodProxy[] = [];
  let base: LocalConfig;

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
        { name: 'legacy', namespace: 'demo', node: 0, serviceAccount: 'legacy', labels: { app: 'legacy' } },
      ],
      services: [
        {
          name: 'echo',
          namespace: 'demo',
          selector: { app: 'echo' },
          ports: [{ port: 80, targetPort: 8080 }],
        },
      ],
    });
    const app = lab.start(lab.pod('demo', 'echo').netns, [process.execPath, '-e', HTTP_ECHO]);
    await new Promise((resolve) => app.stdout?.once('data', resolve));
    const hold = lab.start(lab.pod('demo', 'echo').netns, [process.execPath, '-e', HOLDING_SERVER]);
    await new Promise((resolve) => hold.stdout?.once('data', resolve));
    const svc = lab.service('demo', 'echo');
    const workload = (name: string, protocol: 'HBONE' | 'TCP') => {
      const p = lab.pod('demo', name);
      return {
        uid: `lab//v1/Pod/demo/${name}`,
        name,
        namespace: 'demo',
        serviceAccount: p.serviceAccount,
        workloadIps: [p.ip],
        protocol,
        node: `node${p.node}`,
        ...(name === 'echo' && { services: { 'demo/echo.demo.svc.cluster.local': { 80: 8080 } } }),
      };
    };
    const decoded = decodeLocalConfig({
      workloads: [workload('sleep', 'HBONE'), workload('echo', 'HBONE'), workload('legacy', 'TCP')],
      services: [
        {
          name: 'echo',
          namespace: 'demo',
          hostname: 'echo.demo.svc.cluster.local',
          vips: [`/${svc.vip}`],
          ports: { 80: 8080 },
        },
      ],
    });
    if (!decoded.ok) throw new Error(JSON.stringify(decoded.problems));
    base = decoded.value;
    state = new ZtunnelState(base);
    const ca = await LocalCa.create({ trustDomain: 'cluster.local' });
    const logger = pino({ level: 'silent' });
    certs = new CertManager({ ca, logger });
    const metrics = new HboneMetrics(registry);
    const tcpMetrics = new TcpMetrics(registry);
    const sockets = NetnsSockets.load();
    for (const name of ['sleep', 'echo']) {
      const pod = lab.pod('demo', name);
      await installCapture(pod.netnsPath);
      const w = state.workloadByIp(pod.ip);
      if (!w) throw new Error(`no workload for ${name}`);
      const proxy = new InpodProxy({
        workload: w,
        netnsPath: pod.netnsPath,
        state: () => state,
        sockets,
        certs,
        metrics,
        tcpMetrics,
        logger,
      });
      await proxy.start();
      proxies.push(proxy);
    }
  });

  afterAll(async () => {
    for (const p of proxies) await p.close(500);
    certs?.close();
    await lab?.destroy();
  });

  it('an enrolled pod reaches an enrolled pod on another node by service name, over HBONE, and the app sees the client pod IP', async () => {
    const sleep = lab.pod('demo', 'sleep');
    expect(await curl('sleep', 'http://echo.demo.svc.cluster.local/')).toBe(`echo saw ${sleep.ip}`);
    expect(
      await counter(registry, 'hbone_streams_total', { side: 'client', status: '200' }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      await counter(registry, 'hbone_streams_total', { side: 'server', status: '200' }),
    ).toBeGreaterThanOrEqual(1);
    const labels = {
      source_workload: 'sleep',
      source_workload_namespace: 'demo',
      source_principal: 'spiffe://cluster.local/ns/demo/sa/sleep',
      destination_workload: 'echo',
      destination_principal: 'spiffe://cluster.local/ns/demo/sa/echo',
      connection_security_policy: 'mutual_tls',
      response_flags: '-',
    };
    for (const reporter of ['source', 'destination']) {
      expect(await counter(registry, 'istio_tcp_connections_opened_total', { ...labels, reporter })).toBe(1);
      await expect
        .poll(() => counter(registry, 'istio_tcp_connections_closed_total', { ...labels, reporter }))
        .toBe(1);
      expect(
        await counter(registry, 'istio_tcp_received_bytes_total', { ...labels, reporter }),
      ).toBeGreaterThan(60);
      expect(await counter(registry, 'istio_tcp_sent_bytes_total', { ...labels, reporter })).toBeGreaterThan(
        60,
      );
    }
    expect(
      await counter(registry, 'istio_tcp_connections_opened_total', {
        reporter: 'source',
        destination_service: 'echo.demo.svc.cluster.local',
        destination_service_namespace: 'demo',
      }),
    ).toBe(1);
    expect(
      certs
        .dump()
        .map((c) => c.identity)
        .sort(),
    ).toEqual(['spiffe://cluster.local/ns/demo/sa/echo', 'spiffe://cluster.local/ns/demo/sa/sleep']);
  });

  it('a pod that is not enrolled reaches the enrolled pod in plaintext while no policy forbids it', async () => {
    const legacy = lab.pod('demo', 'legacy');
    expect(await curl('legacy', 'http://echo.demo.svc.cluster.local/')).toBe(`echo saw ${legacy.ip}`);
  });

  it('a STRICT policy (deny without a principal) refuses the plaintext client but not the mTLS one', async () => {
    state = new ZtunnelState({
      ...base,
      policies: [
        {
          name: 'strict',
          namespace: 'demo',
          scope: 'namespace',
          action: 'deny',
          rules: [{ clauses: [{ matches: [{ notPrincipals: [{ presence: true }] }] }] }],
        },
      ],
    });
    expect(await curl('legacy', 'http://echo.demo.svc.cluster.local/')).toMatch(/^curl exit/);
    expect(await curl('sleep', 'http://echo.demo.svc.cluster.local/')).toBe(
      `echo saw ${lab.pod('demo', 'sleep').ip}`,
    );
  });

  it('a DENY policy for the client principal refuses the HBONE connection with 401', async () => {
    const before = await counter(registry, 'hbone_streams_total', { side: 'server', status: '401' });
    state = new ZtunnelState({
      ...base,
      policies: [
        {
          name: 'deny-sleep',
          namespace: 'demo',
          scope: 'namespace',
          action: 'deny',
          rules: [
            { clauses: [{ matches: [{ principals: [{ exact: 'cluster.local/ns/demo/sa/sleep' }] }] }] },
          ],
        },
      ],
    });
    expect(await curl('sleep', 'http://echo.demo.svc.cluster.local/')).toMatch(/^curl exit/);
    expect(await counter(registry, 'hbone_streams_total', { side: 'server', status: '401' })).toBe(
      before + 1,
    );
    for (const reporter of ['source', 'destination']) {
      expect(
        await counter(registry, 'istio_tcp_connections_failed_total', {
          reporter,
          response_flags: 'DENY',
          source_workload: 'sleep',
        }),
      ).toBe(1);
    }
    state = new ZtunnelState(base);
  });

  it('a policy change that no longer allows an open connection closes it', async () => {
    const echoProxy = proxies[1] as InpodProxy;
    const echo = lab.pod('demo', 'echo');
    const client = lab.start(lab.pod('demo', 'sleep').netns, [
      process.execPath,
      '-e',
      `const s=require('net').connect(9000,'${echo.ip}',()=>{s.write('hi');console.log('open')});s.resume();s.on('close',()=>console.log('closed'));s.on('error',()=>{})`,
    ]);
    let out = '';
    client.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await expect.poll(() => echoProxy.openInbound, { timeout: 10_000 }).toBe(1);
    expect(echoProxy.reauthorize()).toBe(0);
    state = new ZtunnelState({
      ...base,
      policies: [
        {
          name: 'deny-sleep',
          namespace: 'demo',
          scope: 'namespace',
          action: 'deny',
          rules: [{ clauses: [{ matches: [{ principals: [{ suffix: '/sa/sleep' }] }] }] }],
        },
      ],
    });
    expect(echoProxy.reauthorize()).toBe(1);
    await expect.poll(() => out, { timeout: 10_000 }).toContain('closed');
    expect(echoProxy.openInbound).toBe(0);
    state = new ZtunnelState(base);
  });

  it('a service with a CIDR VIP is reached at any address in the prefix; a namespace-only service at an exact VIP is not seen from another namespace', async () => {
    const RANGE = 'echo-range.demo.svc.cluster.local';
    const HIDDEN = 'hidden.other.svc.cluster.local';
    state = new ZtunnelState({
      ...base,
      workloads: base.workloads.map((w) =>
        w.name === 'echo'
          ? { ...w, services: new Map([...w.services, [`demo/${RANGE}`, new Map([[80, 8080]])]]) }
          : w,
      ),
      services: [
        ...base.services,
        {
          name: 'echo-range',
          namespace: 'demo',
          hostname: RANGE,
          vips: [],
          cidrVips: [{ network: '', address: '198.19.200.0', length: 24 }],
          ports: new Map([[80, 8080]]),
          subjectAltNames: [],
        },
        // No endpoints: a client that could see it would fail, not reach echo.
        {
          name: 'hidden',
          namespace: 'other',
          hostname: HIDDEN,
          vips: [{ network: '', address: '198.19.200.88' }],
          ports: new Map([[80, 8080]]),
          subjectAltNames: [],
          visibility: 'Namespace',
        },
      ],
    });
    const sleep = lab.pod('demo', 'sleep');
    for (const address of ['198.19.200.7', '198.19.200.254', '198.19.200.88'])
      expect(await curl('sleep', `http://${address}/`)).toBe(`echo saw ${sleep.ip}`);
    expect(
      await counter(registry, 'istio_tcp_connections_opened_total', {
        reporter: 'source',
        destination_service: RANGE,
      }),
    ).toBe(3);
    state = new ZtunnelState(base);
  });

  it('removing the capture from a pod restores its plain networking, with its app still running', async () => {
    const echo = lab.pod('demo', 'echo');
    await removeCapture(echo.netnsPath);
    const legacy = lab.pod('demo', 'legacy');
    expect(await curl('legacy', `http://${echo.ip}:8080/`)).toBe(`echo saw ${legacy.ip}`);
    await installCapture(echo.netnsPath);
  });
});

/**
 * A running node agent's `/config_dump`, decoded the way istioctl's `ztunnel-config` decodes it
 * (istioctl-ztunnel-dump.ts). The control plane and the node agent run in this process on
 * 127.0.0.1; the one enrolled pod is an empty network namespace, so the suite needs root.
 */
import { execFileSync } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ControlPlaneApp } from '@ambient/controlplane';
import { parseZtunnelConfig, ZtunnelApp } from '@ambient/ztunnel';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  certReadable,
  ISTIOCTL_READS,
  missing,
  primeProblems,
  waypointName,
} from './istioctl-ztunnel-dump.js';
import { controlPlaneDir, startControlPlane } from './loopback-control-plane.js';

const isRoot = process.getuid?.() === 0;
const logger = pino({ level: 'silent' });
const NODE0_TOKEN = 'node0-token-0123456789abcdef';
const NETNS = `zcd${process.pid % 100_000}`;

const pod = (name: string, node: string, ip: string, labels: Record<string, string>) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'demo', labels },
  spec: { nodeName: node, serviceAccountName: name },
  status: { podIP: ip },
});
const service = (name: string, ip: string, port: number, labels: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'demo', labels },
  spec: { clusterIP: ip, selector: { app: name }, ports: [{ port, targetPort: port === 80 ? 8080 : port }] },
});
const USE_WAYPOINT = { 'istio.io/use-waypoint': 'waypoint' };

const MANIFESTS = [
  {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'demo', labels: { 'istio.io/dataplane-mode': 'ambient' } },
  },
  pod('sleep', 'node0', '10.0.0.1', { app: 'sleep' }),
  pod('echo', 'node1', '10.0.1.1', { app: 'echo', ...USE_WAYPOINT }),
  pod('waypoint', 'node1', '10.0.1.2', {
    app: 'waypoint',
    'gateway.networking.k8s.io/gateway-name': 'waypoint',
  }),
  service('echo', '10.96.0.10', 80, USE_WAYPOINT),
  service('waypoint', '10.96.0.20', 15008),
  {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name: 'waypoint', namespace: 'demo', labels: { 'istio.io/waypoint-for': 'all' } },
    spec: { gatewayClassName: 'istio-waypoint' },
  },
  {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'echo-from-sleep', namespace: 'demo' },
    spec: {
      selector: { matchLabels: { app: 'echo' } },
      action: 'ALLOW',
      rules: [
        {
          from: [{ source: { principals: ['cluster.local/ns/demo/sa/sleep'], ipBlocks: ['10.0.0.0/16'] } }],
          to: [{ operation: { ports: ['8080'], notPorts: ['9090'] } }],
        },
      ],
    },
  },
  {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'deny-others', namespace: 'demo' },
    spec: { action: 'DENY', rules: [{ from: [{ source: { notNamespaces: ['demo', 'istio-system'] } }] }] },
  },
  {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'echo-from-sleep-account', namespace: 'demo' },
    spec: {
      selector: { matchLabels: { app: 'echo' } },
      rules: [{ from: [{ source: { serviceAccounts: ['sleep'] } }] }],
    },
  },
];

type Obj = Record<string, unknown>;

describe.skipIf(!isRoot)(
  'ztunnel /config_dump decoded with istioctl types (loopback control plane; root)',
  () => {
    let dir: string;
    let cp: ControlPlaneApp;
    let app: ZtunnelApp;
    let adminPort: number;

    beforeAll(async () => {
      dir = await controlPlaneDir('zt-dump-', { [NODE0_TOKEN]: { node: 'node0' } });
      await writeFile(join(dir, 'manifests', 'demo.yaml'), MANIFESTS.map((d) => stringify(d)).join('---\n'));
      const started = await startControlPlane(dir, logger);
      cp = started.cp;
      execFileSync('ip', ['netns', 'add', NETNS]);
      execFileSync('ip', ['-n', NETNS, 'link', 'set', 'lo', 'up']);
      await writeFile(join(dir, 'root.pem'), cp.rootCertPem);
      await writeFile(join(dir, 'token'), NODE0_TOKEN);
      await writeFile(join(dir, 'pods.json'), JSON.stringify({ 'demo/sleep': NETNS }));
      const config = parseZtunnelConfig({
        ZT_NODE_NAME: 'node0',
        ZT_XDS_ADDRESS: `127.0.0.1:${started.port}`,
        ZT_ROOT_CERT: join(dir, 'root.pem'),
        ZT_TOKEN_FILE: join(dir, 'token'),
        ZT_POD_NETNS_FILE: join(dir, 'pods.json'),
        ZT_ADMIN_PORT: '0',
        ZT_METRICS_ADDRESS: '127.0.0.1',
        ZT_METRICS_PORT: '0',
        ZT_READINESS_PORT: '0',
        ZT_DRAIN_SECONDS: '0',
        ZT_LOG_LEVEL: 'silent',
      });
      if (!config.ok) throw new Error(JSON.stringify(config.problems));
      app = new ZtunnelApp({ config: config.value, logger });
      adminPort = (await app.start()).admin.port;
    }, 30_000);

    afterAll(async () => {
      await app?.close();
      await cp?.close();
      try {
        execFileSync('ip', ['netns', 'del', NETNS]);
      } catch {
        // Never created.
      }
      await rm(dir, { recursive: true, force: true });
    });

    const dump = async (): Promise<Obj> =>
      (await (await fetch(`http://127.0.0.1:${adminPort}/config_dump`)).json()) as Obj;

    it('has every field istioctl reads, spelt and typed as its Go structs expect', async () => {
      // Served, and its certificate issued: every section has something in it.
      let d: Obj = {};
      const deadline = Date.now() + 15_000;
      for (;;) {
        d = await dump();
        const certs = d.certificates as Array<{ state: string }>;
        const states = Object.values(d.workloadState as Record<string, { state: string }>);
        if (states.some((s) => s.state === 'Up') && certs.some((c) => c.state === 'Available')) break;
        if (Date.now() > deadline)
          throw new Error(`no enrolled pod with a certificate: ${JSON.stringify(d)}`);
        await new Promise((r) => setTimeout(r, 50));
      }

      // Upstream's top-level keys, in its order, then ours.
      expect(Object.keys(d)).toEqual([
        'workloads',
        'services',
        'policies',
        'stagedServices',
        'staticConfig',
        'version',
        'config',
        'certificates',
        'workloadState',
        'agentState',
      ]);
      // encoding/json would accept all of it.
      expect(primeProblems(d)).toEqual([]);

      const workloads = d.workloads as Obj[];
      const services = d.services as Array<Obj & { name: string; namespace: string; hostname: string }>;
      const policies = d.policies as Obj[];
      const certificates = d.certificates as Obj[];
      expect(workloads.map((w) => w.name).sort()).toEqual(['echo', 'sleep', 'waypoint']);
      expect(services.map((s) => s.name)).toEqual(['echo', 'waypoint']);
      expect(policies.map((p) => p.name).sort()).toEqual([
        'deny-others',
        'echo-from-sleep',
        'echo-from-sleep-account',
      ]);

      for (const w of workloads) {
        expect(missing(w, ISTIOCTL_READS.ZtunnelWorkload), `workload ${w.name}`).toEqual([]);
        expect(w.status).toBe('Healthy');
        expect(w.protocol).toBe('HBONE');
      }
      const echo = workloads.find((w) => w.name === 'echo') as Obj;
      expect(echo).toMatchObject({
        uid: 'Kubernetes//Pod/demo/echo',
        workloadIps: ['10.0.1.1'],
        node: 'node1',
        clusterId: 'Kubernetes',
        trustDomain: 'cluster.local',
        serviceAccount: 'echo',
        workloadName: 'echo',
        workloadType: 'pod',
        canonicalName: 'echo',
        canonicalRevision: 'latest',
        networkMode: 'Standard',
        services: ['demo/echo.demo.svc.cluster.local'],
      });
      expect(missing(echo.waypoint, ISTIOCTL_READS.GatewayAddress)).toEqual([]);
      // istioctl's WAYPOINT column names the waypoint's service.
      expect(waypointName((echo.waypoint as { destination: string }).destination, services)).toBe('waypoint');

      for (const s of services) {
        expect(missing(s, ISTIOCTL_READS.ZtunnelService), `service ${s.name}`).toEqual([]);
        for (const ep of Object.values(s.endpoints as Obj))
          expect(missing(ep, ISTIOCTL_READS.ZtunnelEndpoint)).toEqual([]);
      }
      const echoSvc = services.find((s) => s.name === 'echo') as Obj;
      expect(echoSvc).toMatchObject({
        hostname: 'echo.demo.svc.cluster.local',
        vips: ['/10.96.0.10'],
        ports: { '80': 8080 },
        endpoints: {
          'Kubernetes//Pod/demo/echo': { workloadUid: 'Kubernetes//Pod/demo/echo', port: { '80': 8080 } },
        },
      });
      expect(waypointName((echoSvc.waypoint as { destination: string }).destination, services)).toBe(
        'waypoint',
      );
      // services.go counts an endpoint healthy by its workload's status.
      const byUid = new Map(workloads.map((w) => [w.uid, w]));
      const healthy = Object.values(echoSvc.endpoints as Obj).filter(
        (ep) => byUid.get((ep as { workloadUid: string }).workloadUid)?.status === 'Healthy',
      );
      expect(healthy).toHaveLength(1);

      for (const p of policies)
        expect(missing(p, ISTIOCTL_READS.ZtunnelPolicy), `policy ${p.name}`).toEqual([]);
      expect(policies.find((p) => p.name === 'echo-from-sleep')).toMatchObject({
        namespace: 'demo',
        scope: 'WorkloadSelector',
        action: 'Allow',
        dryRun: false,
        // A rule's clauses are ANDed (here: to, then from), the matches of a clause ORed.
        rules: [
          [
            [{ destinationPorts: [8080], notDestinationPorts: [9090] }],
            [{ principals: [{ Exact: 'cluster.local/ns/demo/sa/sleep' }], sourceIps: ['10.0.0.0/16'] }],
          ],
        ],
      });
      expect(policies.find((p) => p.name === 'deny-others')).toMatchObject({
        scope: 'Namespace',
        action: 'Deny',
      });
      // source.serviceAccounts reaches the dump as upstream's serviceAccounts, not as principals.
      expect(policies.find((p) => p.name === 'echo-from-sleep-account')?.rules).toEqual([
        [[{ serviceAccounts: [{ namespace: 'demo', serviceAccount: 'sleep' }] }]],
      ]);

      const sleepCerts = certificates.find(
        (c) => c.identity === 'spiffe://cluster.local/ns/demo/sa/sleep',
      ) as Obj;
      expect(sleepCerts).toBeDefined();
      expect(sleepCerts.state).toBe('Available');
      for (const c of certificates) expect(missing(c, ISTIOCTL_READS.CertsDump), `${c.identity}`).toEqual([]);
      const chain = sleepCerts.certChain as Array<
        Obj & { serialNumber: string; validFrom: string; expirationTime: string }
      >;
      const roots = sleepCerts.rootCerts as typeof chain;
      expect(chain.length).toBeGreaterThanOrEqual(1);
      expect(roots).toHaveLength(1);
      for (const cert of [...chain, ...roots]) {
        expect(missing(cert, ISTIOCTL_READS.Cert)).toEqual([]);
        expect(certReadable(cert)).toEqual([]);
        // certNotExpired: now is between validFrom and expirationTime.
        expect(Date.parse(cert.validFrom)).toBeLessThanOrEqual(Date.now());
        expect(Date.parse(cert.expirationTime)).toBeGreaterThan(Date.now());
      }
      expect(Buffer.from(chain[0]?.pem as string, 'base64').toString()).toMatch(
        /^-----BEGIN CERTIFICATE-----/,
      );

      const state = d.workloadState as Record<string, Obj>;
      expect(Object.keys(state)).toEqual(['Kubernetes//Pod/demo/sleep']);
      const sleepState = state['Kubernetes//Pod/demo/sleep'] as Obj;
      expect(missing(sleepState, ISTIOCTL_READS.WorkloadState)).toEqual([]);
      expect(missing(sleepState.info, ISTIOCTL_READS.WorkloadInfo)).toEqual([]);
      expect(sleepState).toEqual({
        state: 'Up',
        info: { name: 'sleep', namespace: 'demo', serviceAccount: 'sleep' },
      });

      // Ours, under their own key: the xDS client's ACK/NACK state and certificate rotation.
      const agent = d.agentState as Obj & {
        xds: { connected: boolean; types: Array<{ acks: number; nacks: number }> };
      };
      expect(agent.nodeName).toBe('node0');
      expect(agent.xds.connected).toBe(true);
      expect(agent.xds.types.every((t) => t.acks > 0 && t.nacks === 0)).toBe(true);
      expect(agent.certificates).toEqual([
        expect.objectContaining({
          identity: 'spiffe://cluster.local/ns/demo/sa/sleep',
          state: 'available',
          failures: 0,
        }),
      ]);
      console.log(
        `config_dump: ${JSON.stringify(d).length} bytes; ${workloads.length} workloads, ${services.length} services, ${policies.length} policies, ${certificates.length} certificates`,
      );
    }, 30_000);
  },
);

describe('the istioctl decoder transcription', () => {
  it("catches a field spelt or typed differently from istioctl's struct tags", () => {
    expect(primeProblems({ workloads: [{ workloadIps: '10.0.0.1' }] })).toEqual([
      'workloads[0].workloadIps: want a JSON array, got "10.0.0.1"',
    ]);
    expect(primeProblems({ services: [{ ports: { http: 'eighty' } }] })).toEqual([
      'services[0].ports.http: want a JSON number fitting int, got "eighty"',
    ]);
    expect(primeProblems({ services: { a: { endpoints: { u: { port: { x: 1 } } } } } })).toEqual([
      'services.a.endpoints.u.port: key "x" is not a uint16',
    ]);
    expect(primeProblems({ certificates: [{ certChain: [{ serialNumber: 12 }] }] })).toEqual([
      'certificates[0].certChain[0].serialNumber: want a JSON string, got 12',
    ]);
    expect(missing({ workloadIPs: [] }, ['workloadIps'])).toEqual(['workloadIps']);
    expect(
      certReadable({ serialNumber: 'AB12', validFrom: '2026-01-01T00:00:00.000Z', expirationTime: 'x' }),
    ).toEqual(['serialNumber AB12 is not base 10', 'expirationTime x is not RFC 3339']);
  });
});

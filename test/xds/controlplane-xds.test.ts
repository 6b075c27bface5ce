import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ControlPlaneApp } from '@ambient/controlplane';
import { createCsr, GrpcCaClient, SpiffeId, XdsClientMetrics } from '@ambient/shared';
import { compilePolicy, type LocalConfig, XdsConfigSource } from '@ambient/ztunnel';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { controlPlaneDir, startControlPlane } from './loopback-control-plane.js';

const logger = pino({ level: 'silent' });
const NODE0_TOKEN = 'node0-token-0123456789abcdef';
const NODE1_TOKEN = 'node1-token-0123456789abcdef';
const SLEEP_TOKEN = 'sleep-token-0123456789abcdef';

function pod(
  name: string,
  node: string,
  ip: string,
  sa: string,
  labels: Record<string, string> = { app: name },
) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'demo', labels },
    spec: { nodeName: node, serviceAccountName: sa },
    status: { podIP: ip },
  };
}

const BASE = [
  {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'demo', labels: { 'istio.io/dataplane-mode': 'ambient' } },
  },
  pod('sleep', 'node0', '10.0.0.1', 'sleep'),
  pod('echo', 'node1', '10.0.1.1', 'echo'),
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'echo', namespace: 'demo' },
    spec: { clusterIP: '10.96.0.10', selector: { app: 'echo' }, ports: [{ port: 80, targetPort: 8080 }] },
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

describe('control plane over real gRPC and TLS: Delta ADS to ztunnel decoders, and the CA', () => {
  let dir: string;
  let cp: ControlPlaneApp;
  let port: number;
  const sources: XdsConfigSource[] = [];

  const write = (file: string, docs: unknown[]) =>
    writeFile(join(dir, 'manifests', file), docs.map((d) => stringify(d)).join('---\n'));

  const connect = (token: string, node: string, onConfig: (c: LocalConfig) => void = () => {}) => {
    const registry = new Registry();
    const src = new XdsConfigSource({
      target: `127.0.0.1:${port}`,
      rootCertPem: cp.rootCertPem,
      serverName: 'istiod.istio-system.svc',
      token: async () => token,
      clusterId: 'Kubernetes',
      node: {
        id: `ztunnel~10.0.0.100~ztunnel-${node}.istio-system~istio-system.svc.cluster.local`,
        metadata: { NODE_NAME: node },
      },
      logger,
      metrics: new XdsClientMetrics(registry),
      onConfig,
    });
    sources.push(src);
    return { src, registry };
  };

  const caClient = (token: string) =>
    new GrpcCaClient({
      target: `127.0.0.1:${port}`,
      credentials: grpc.credentials.createSsl(Buffer.from(cp.rootCertPem)),
      channelOptions: { 'grpc.ssl_target_name_override': 'istiod.istio-system.svc' },
      token: () => token,
      impersonate: true,
    });

  beforeAll(async () => {
    dir = await controlPlaneDir('cp-xds-', {
      [NODE0_TOKEN]: { node: 'node0' },
      [NODE1_TOKEN]: { node: 'node1' },
      [SLEEP_TOKEN]: { namespace: 'demo', serviceAccount: 'sleep' },
    });
    await write('base.yaml', BASE);
    ({ cp, port } = await startControlPlane(dir, logger));
  });

  afterEach(() => {
    for (const s of sources.splice(0)) s.close();
  });

  afterAll(async () => {
    await cp?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('syncs workloads, services and policies, then pushes a namespace label change as a delta', async () => {
    const configs: LocalConfig[] = [];
    const { src } = connect(NODE0_TOKEN, 'node0', (c) => configs.push(c));
    const first = await src.start();
    const echo = first.workloads.find((w) => w.name === 'echo');
    expect(echo).toMatchObject({
      uid: 'Kubernetes//Pod/demo/echo',
      protocol: 'HBONE',
      serviceAccount: 'echo',
      node: 'node1',
      ips: ['10.0.1.1'],
    });
    expect(echo?.services.get('demo/echo.demo.svc.cluster.local')?.get(80)).toBe(8080);
    expect(first.services).toEqual([
      expect.objectContaining({
        hostname: 'echo.demo.svc.cluster.local',
        vips: [{ network: '', address: '10.96.0.10' }],
      }),
    ]);
    const bytesBefore = src.dump().types.find((t) => t.typeUrl.endsWith('Address'))?.acks ?? 0;

    // Un-enroll the namespace: both workloads flip to plain TCP in one push.
    await write('base.yaml', [{ ...BASE[0], metadata: { name: 'demo', labels: {} } }, ...BASE.slice(1)]);
    const after = await until('un-enrolment', () =>
      configs.find((c) => c.workloads.length === 2 && c.workloads.every((w) => w.protocol === 'TCP')),
    );
    expect(after.services).toHaveLength(1);
    const dump = src.dump();
    expect(dump.types.find((t) => t.typeUrl.endsWith('Address'))?.acks).toBeGreaterThan(bytesBefore);
    expect(dump.rejections).toEqual([]);
    await write('base.yaml', BASE);
    await until('re-enrolment', () => configs.at(-1)?.workloads.every((w) => w.protocol === 'HBONE'));
  });

  it('translates STRICT PeerAuthentication and drops HTTP-only ALLOW rules so the policy denies', async () => {
    const configs: LocalConfig[] = [];
    const { src } = connect(NODE0_TOKEN, 'node0', (c) => configs.push(c));
    await src.start();
    await write('policy.yaml', [
      {
        apiVersion: 'security.istio.io/v1',
        kind: 'PeerAuthentication',
        metadata: { name: 'default', namespace: 'demo' },
        spec: { mtls: { mode: 'STRICT' } },
      },
      {
        apiVersion: 'security.istio.io/v1',
        kind: 'AuthorizationPolicy',
        metadata: { name: 'get-only', namespace: 'demo' },
        spec: {
          selector: { matchLabels: { app: 'echo' } },
          rules: [{ to: [{ operation: { methods: ['GET'] } }] }],
        },
      },
    ]);
    const c = await until('policies', () => configs.find((x) => x.policies.length === 2));
    const strict = c.policies.find((p) => p.name === 'istio_converted_static_strict');
    expect(strict).toMatchObject({ namespace: 'istio-system', action: 'deny', scope: 'workload' });
    expect(strict?.rules[0]?.clauses[0]?.matches[0]?.notPrincipals).toEqual([{ presence: true }]);
    const getOnly = c.policies.find((p) => p.name === 'get-only');
    expect(getOnly).toMatchObject({ action: 'allow', scope: 'workload', rules: [] });
    const echo = c.workloads.find((w) => w.name === 'echo');
    expect([...(echo?.authorizationPolicies ?? [])].sort()).toEqual([
      'demo/get-only',
      'istio-system/istio_converted_static_strict',
    ]);
    await rm(join(dir, 'manifests', 'policy.yaml'));
    await until('policy removal', () => configs.at(-1)?.policies.length === 0);
  });

  it('sends source.serviceAccounts to ztunnel, which then admits only that service account', async () => {
    const configs: LocalConfig[] = [];
    const { src } = connect(NODE0_TOKEN, 'node0', (c) => configs.push(c));
    await src.start();
    await write('policy.yaml', [
      {
        apiVersion: 'security.istio.io/v1',
        kind: 'AuthorizationPolicy',
        metadata: { name: 'sleep-only', namespace: 'demo' },
        spec: {
          selector: { matchLabels: { app: 'echo' } },
          rules: [
            { from: [{ source: { serviceAccounts: ['sleep'], notServiceAccounts: ['other/sleep'] } }] },
          ],
        },
      },
    ]);
    const c = await until('policy', () =>
      configs.find((x) => x.policies.some((p) => p.name === 'sleep-only')),
    );
    expect(src.dump().rejections).toEqual([]);
    const policy = compilePolicy(c.policies.find((p) => p.name === 'sleep-only')!);
    const from = (principal: string) =>
      policy.matches({ principal, sourceIp: '10.0.0.1', destinationIp: '10.0.1.1', destinationPort: 8080 });
    expect(from('cluster.local/ns/demo/sa/sleep')).toBe(true);
    expect(from('cluster.local/ns/demo/sa/echo')).toBe(false);
    expect(from('cluster.local/ns/other/sa/sleep')).toBe(false);
    expect(policy.matches({ sourceIp: '10.0.0.1', destinationIp: '10.0.1.1', destinationPort: 8080 })).toBe(
      false,
    );
    await rm(join(dir, 'manifests', 'policy.yaml'));
    await until('policy removal', () => configs.at(-1)?.policies.length === 0);
  });

  it('reports an invalid manifest with its name and field and keeps serving the rest', async () => {
    await write('bad.yaml', [
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'broken', namespace: 'demo' },
        status: { podIP: '10.0.0.300' },
      },
      pod('extra', 'node0', '10.0.0.2', 'sleep'),
    ]);
    const configs: LocalConfig[] = [];
    const { src } = connect(NODE0_TOKEN, 'node0', (c) => configs.push(c));
    const c = await src.start();
    const all = c.workloads.some((w) => w.name === 'extra')
      ? c
      : await until('extra pod', () => configs.find((x) => x.workloads.some((w) => w.name === 'extra')));
    expect(all.workloads.map((w) => w.name).sort()).toContain('extra');
    expect(all.workloads.map((w) => w.name)).not.toContain('broken');
    const invalid = cp.source.invalid();
    expect(invalid).toEqual([
      expect.objectContaining({
        file: 'bad.yaml',
        ref: 'Pod demo/broken',
        problems: [{ path: 'status.podIP', message: '"10.0.0.300" is not an IP address' }],
      }),
    ]);
    await rm(join(dir, 'manifests', 'bad.yaml'));
  });

  it('refuses a stream without a token, and a node agent claiming another node', async () => {
    const none = connect('not-a-valid-token-at-all', 'node0');
    none.src.start();
    await until('refusal', () => none.src.dump().lastError?.includes('UNAUTHENTICATED'));
    const liar = connect(NODE0_TOKEN, 'node1');
    liar.src.start();
    await until('refusal', () => liar.src.dump().lastError?.includes('PERMISSION_DENIED'));
    expect(liar.src.dump().lastError).toContain('bound to node node0, not node1');
  });

  it('resyncs after the control plane restarts, sending only what changed while it was away', async () => {
    const configs: LocalConfig[] = [];
    const { src, registry } = connect(NODE1_TOKEN, 'node1', (c) => configs.push(c));
    await src.start();
    await cp.close();
    await write('later.yaml', [pod('later', 'node1', '10.0.1.2', 'echo')]);
    const rootBefore = cp.rootCertPem;
    ({ cp } = await startControlPlane(dir, logger, port));
    expect(cp.rootCertPem).toBe(rootBefore);
    await until('resync', () => configs.find((c) => c.workloads.some((w) => w.name === 'later')), 20_000);
    const terminations = await registry.getSingleMetric('istio_xds_connection_terminations_total')?.get();
    expect(terminations?.values.reduce((n, v) => n + v.value, 0)).toBeGreaterThan(0);
    await rm(join(dir, 'manifests', 'later.yaml'));
  });

  it('CA: issues a node agent the certificate of a pod on its node, and refuses one on another node', async () => {
    const node0 = caClient(NODE0_TOKEN);
    const sleep = SpiffeId.of('cluster.local', 'demo', 'sleep');
    const { csrPem } = await createCsr(sleep);
    const chain = await node0.createCertificate({ csrPem, ttlSeconds: 3600, identity: sleep });
    expect(chain).toHaveLength(2);
    expect(chain[1]).toBe(cp.rootCertPem);
    const echo = SpiffeId.of('cluster.local', 'demo', 'echo');
    const echoCsr = await createCsr(echo);
    await expect(
      node0.createCertificate({ csrPem: echoCsr.csrPem, ttlSeconds: 3600, identity: echo }),
    ).rejects.toThrow(/no pod with service account demo\/echo runs on node node0/);
    node0.close();
  });

  it('CA: refuses a garbage CSR, a CSR whose SAN differs from the granted identity, and an unknown token', async () => {
    const node0 = caClient(NODE0_TOKEN);
    const sleep = SpiffeId.of('cluster.local', 'demo', 'sleep');
    await expect(
      node0.createCertificate({ csrPem: 'not a csr', ttlSeconds: 60, identity: sleep }),
    ).rejects.toThrow(/INVALID_ARGUMENT/);
    const other = await createCsr(SpiffeId.of('cluster.local', 'demo', 'echo'));
    await expect(
      node0.createCertificate({ csrPem: other.csrPem, ttlSeconds: 60, identity: sleep }),
    ).rejects.toThrow(/PERMISSION_DENIED.*granted spiffe:\/\/cluster.local\/ns\/demo\/sa\/sleep/);
    const stranger = caClient('unknown-token-0123456789');
    const own = await createCsr(sleep);
    await expect(
      stranger.createCertificate({ csrPem: own.csrPem, ttlSeconds: 60, identity: sleep }),
    ).rejects.toThrow(/UNAUTHENTICATED/);
    // A workload token gets its own identity without impersonation.
    const workload = new GrpcCaClient({
      target: `127.0.0.1:${port}`,
      credentials: grpc.credentials.createSsl(Buffer.from(cp.rootCertPem)),
      channelOptions: { 'grpc.ssl_target_name_override': 'istiod.istio-system.svc' },
      token: () => SLEEP_TOKEN,
    });
    expect(await workload.createCertificate({ csrPem: own.csrPem, ttlSeconds: 60 })).toHaveLength(2);
    for (const c of [node0, stranger, workload]) c.close();
  });
});

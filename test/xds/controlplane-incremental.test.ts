/**
 * One-pod changes take the control plane's incremental path (the changed file read again, only
 * the changed pods' workloads recomputed, only their Address resources encoded and compared):
 * what a node agent receives, and what the CA grants, must follow every add, edit and removal,
 * and a service change in between (a full build) must show in the next pod's workload.
 */
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ControlPlaneApp } from '@ambient/controlplane';
import { createCsr, GrpcCaClient, SpiffeId, XdsClientMetrics } from '@ambient/shared';
import { type LocalConfig, XdsConfigSource } from '@ambient/ztunnel';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlPlaneDir, startControlPlane, until } from './loopback-control-plane.js';

const logger = pino({ level: 'silent' });
const NODE0_TOKEN = 'node0-token-incremental-0123456789';

const pod = (name: string, ip: string, sa: string, app = name) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'demo', labels: { app } },
  spec: { nodeName: 'node0', serviceAccountName: sa },
  status: { podIP: ip },
});

const service = (name: string, app: string, ip: string) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'demo' },
  spec: { clusterIP: ip, selector: { app }, ports: [{ port: 80, targetPort: 8080 }] },
});

describe('control plane: one-pod changes through the incremental path', () => {
  let dir: string;
  let cp: ControlPlaneApp;
  let port: number;
  let src: XdsConfigSource;
  let ca: GrpcCaClient;
  const configs: LocalConfig[] = [];

  const write = (file: string, docs: unknown[]) =>
    writeFile(join(dir, 'manifests', file), JSON.stringify(docs));
  const latest = () => configs.at(-1);
  const workload = (name: string) => latest()?.workloads.find((w) => w.name === name);
  const certify = async (sa: string) => {
    const id = SpiffeId.of('cluster.local', 'demo', sa);
    const { csrPem } = await createCsr(id);
    return ca.createCertificate({ csrPem, ttlSeconds: 600, identity: id });
  };

  beforeAll(async () => {
    dir = await controlPlaneDir('cp-incremental-', { [NODE0_TOKEN]: { node: 'node0' } });
    await write('base.json', [
      {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: 'demo', labels: { 'istio.io/dataplane-mode': 'ambient' } },
      },
      pod('sleep', '10.0.0.1', 'sleep'),
      service('echo', 'echo', '10.96.0.10'),
    ]);
    ({ cp, port } = await startControlPlane(dir, logger));
    src = new XdsConfigSource({
      target: `127.0.0.1:${port}`,
      rootCertPem: cp.rootCertPem,
      serverName: 'istiod.istio-system.svc',
      token: async () => NODE0_TOKEN,
      clusterId: 'Kubernetes',
      node: {
        id: 'ztunnel~10.0.0.100~ztunnel-node0.istio-system~istio-system.svc.cluster.local',
        metadata: { NODE_NAME: 'node0' },
      },
      logger,
      metrics: new XdsClientMetrics(new Registry()),
      onConfig: (c) => configs.push(c),
    });
    configs.push(await src.start());
    ca = new GrpcCaClient({
      target: `127.0.0.1:${port}`,
      credentials: grpc.credentials.createSsl(Buffer.from(cp.rootCertPem)),
      channelOptions: { 'grpc.ssl_target_name_override': 'istiod.istio-system.svc' },
      token: () => NODE0_TOKEN,
      impersonate: true,
    });
  });

  afterAll(async () => {
    src?.close();
    ca?.close();
    await cp?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('adds, edits and removes pods, keeping node identities while a pod has them', async () => {
    await expect(certify('echo')).rejects.toThrow(
      /no pod with service account demo\/echo runs on node node0/,
    );
    await write('echo-1.json', [pod('echo-1', '10.0.0.2', 'echo', 'echo')]);
    await until('echo-1', () => workload('echo-1'));
    expect(workload('echo-1')?.ips).toEqual(['10.0.0.2']);
    expect(workload('echo-1')?.services.get('demo/echo.demo.svc.cluster.local')?.get(80)).toBe(8080);
    expect(await certify('echo')).toHaveLength(2);

    await write('echo-1.json', [pod('echo-1', '10.0.0.3', 'echo', 'echo')]);
    await until('the new IP', () => workload('echo-1')?.ips[0] === '10.0.0.3');

    // A second pod of the same account: removing the first keeps the identity on the node.
    await write('echo-2.json', [pod('echo-2', '10.0.0.4', 'echo', 'echo')]);
    await until('echo-2', () => workload('echo-2'));
    await rm(join(dir, 'manifests', 'echo-1.json'));
    await until('echo-1 removed', () => latest() && !workload('echo-1'));
    expect(workload('echo-2')).toBeDefined();
    expect(await certify('echo')).toHaveLength(2);

    // The last pod of the account gone: its address and its identity go with it.
    await rm(join(dir, 'manifests', 'echo-2.json'));
    await until('echo-2 removed', () => latest() && !workload('echo-2'));
    await expect(certify('echo')).rejects.toThrow(
      /no pod with service account demo\/echo runs on node node0/,
    );
    expect(latest()?.workloads.map((w) => w.name)).toEqual(['sleep']);
    expect(src.dump().rejections).toEqual([]);
  });

  it('picks up a service added between pod changes in the next pod workload', async () => {
    await write('svc.json', [service('api', 'api', '10.96.0.11')]);
    await until('api service', () =>
      latest()?.services.some((s) => s.hostname === 'api.demo.svc.cluster.local'),
    );
    await write('api.json', [pod('api-1', '10.0.0.5', 'api', 'api')]);
    await until('api-1', () => workload('api-1'));
    expect([...(workload('api-1')?.services.keys() ?? [])]).toEqual(['demo/api.demo.svc.cluster.local']);
    // The service gone (a full build), then a pod edit (incremental again): no stale service.
    await rm(join(dir, 'manifests', 'svc.json'));
    await until('api service removed', () => workload('api-1')?.services.size === 0);
    await write('api.json', [pod('api-1', '10.0.0.6', 'api', 'api')]);
    await until('api-1 moved', () => workload('api-1')?.ips[0] === '10.0.0.6');
    expect(workload('api-1')?.services.size).toBe(0);
    await rm(join(dir, 'manifests', 'api.json'));
    await until('api-1 removed', () => latest() && !workload('api-1'));
  });
});

import { certificateFacts, createCsr, GrpcCaClient, isMeshError, LocalCa, SpiffeId } from '@ambient/shared';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenAuthenticator } from '../auth/token-authenticator.js';
import { ControlPlaneMetrics } from '../telemetry/controlplane-metrics.js';
import { CaService, issuedTtlSeconds } from './ca-service.js';

const TD = 'cluster.local';
const NODE0 = 'node0-token-0123456789abcdef';
const SLEEP = SpiffeId.of(TD, 'demo', 'sleep');
const GONE = SpiffeId.of(TD, 'demo', 'gone');

describe('issuedTtlSeconds', () => {
  it('grants what was asked up to the configured TTL, and the configured TTL when nothing was asked', () => {
    expect(issuedTtlSeconds(86_400, 20)).toBe(20);
    expect(issuedTtlSeconds(5, 20)).toBe(5);
    expect(issuedTtlSeconds(0, 20)).toBe(20);
    expect(issuedTtlSeconds(-1, 86_400)).toBe(86_400);
  });
});

describe('CA service with a 20 s workload certificate TTL', () => {
  let server: grpc.Server;
  let client: GrpcCaClient;
  const registry = new Registry();
  const metrics = new ControlPlaneMetrics(registry);

  beforeAll(async () => {
    const ca = await LocalCa.create({ trustDomain: TD });
    server = new grpc.Server();
    new CaService({
      ca,
      authenticator: new TokenAuthenticator(
        new Map([
          [NODE0, { kind: 'ztunnel', node: 'node0', namespace: 'istio-system', serviceAccount: 'ztunnel' }],
        ]),
      ),
      identitiesOnNode: (node) => new Set(node === 'node0' ? ['demo/sleep'] : []),
      metrics,
      logger: pino({ level: 'silent' }),
      workloadCertTtlSeconds: 20,
    }).register(server);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    client = new GrpcCaClient({
      target: `127.0.0.1:${port}`,
      credentials: grpc.credentials.createInsecure(),
      token: () => NODE0,
      impersonate: true,
    });
  });

  afterAll(() => {
    client?.close();
    server?.forceShutdown();
  });

  const lifetime = async (ttlSeconds: number) => {
    const before = Date.now();
    const chain = await client.createCertificate({
      csrPem: (await createCsr(SLEEP)).csrPem,
      ttlSeconds,
      identity: SLEEP,
    });
    return (certificateFacts(chain[0] as string).notAfter.getTime() - before) / 1000;
  };

  it('shortens a node agent asking for 24 h to 20 s, and grants less when less is asked', async () => {
    const day = await lifetime(86_400);
    expect(day).toBeGreaterThan(18);
    expect(day).toBeLessThanOrEqual(21);
    const five = await lifetime(5);
    expect(five).toBeGreaterThan(3);
    expect(five).toBeLessThanOrEqual(6);
  });

  it('counts signing requests per caller node, granted identity and result', async () => {
    const text = () => registry.getSingleMetricAsString('controlplane_ca_csr_count');
    const issued = /controlplane_ca_csr_count\{node="node0",identity="demo\/sleep",result="issued"\} (\d+)/;
    const before = Number(issued.exec(await text())?.[1] ?? 0);
    await lifetime(60);
    expect(Number(issued.exec(await text())?.[1])).toBe(before + 1);
    // A pod that is not on node0: refused, counted for node0 without adding an identity label value.
    await expect(
      client.createCertificate({ csrPem: (await createCsr(GONE)).csrPem, ttlSeconds: 60, identity: GONE }),
    ).rejects.toSatisfy((e) => isMeshError(e, 'MESH_ERR_IDENTITY_NOT_ALLOWED'));
    const all = await text();
    expect(all).toMatch(/controlplane_ca_csr_count\{node="node0",identity="",result="refused"\} 1/);
    expect(all).not.toContain('demo/gone');
  });

  it("counts an issued certificate in istiod's citadel_server_success_cert_issuance_count", async () => {
    const value = async () =>
      (await registry.getSingleMetric('citadel_server_success_cert_issuance_count')?.get())?.values[0]
        ?.value ?? 0;
    const before = await value();
    await lifetime(60);
    expect(await value()).toBe(before + 1);
    expect(registry.getSingleMetric('citadel_server_success_cert_issue_count')).toBeUndefined();
  });
});

/**
 * The waypoint deployment controller against a real kube-apiserver (with kube-controller-manager's
 * garbage collector): two control plane replicas with CP_WAYPOINT_CONTROLLER=true, Gateways applied
 * with kubectl, objects and status read back with kubectl, and the leader killed.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path, { join } from 'node:path';
import { promisify } from 'node:util';
import { ControlPlaneApp, parseControlPlaneConfig } from '@ambient/controlplane';
import { KubeApiServer, kubeBinaries } from '@ambient/lab';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const LEASE = { duration: '4s', renew: '2s', retry: '500ms' };
const LEASE_MS = 4000;

let api: KubeApiServer;
let dir: string;
const replicas = new Map<string, { app: ControlPlaneApp; grpcPort: number }>();

const kubectl = async (...args: string[]) =>
  (await run('kubectl', ['--kubeconfig', api.kubeconfig, ...args], { encoding: 'utf8' })).stdout;

async function kubectlApply(obj: object): Promise<void> {
  const p = execFile('kubectl', ['--kubeconfig', api.kubeconfig, 'apply', '-f', '-']);
  let err = '';
  p.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  p.stdin?.end(JSON.stringify(obj));
  const code = await new Promise<number | null>((r) => p.once('exit', r));
  if (code !== 0) throw new Error(`kubectl apply: ${err}`);
}

// biome-ignore lint/suspicious/noExplicitAny: JSON read back from kubectl
async function getJson(...args: string[]): Promise<any | undefined> {
  try {
    return JSON.parse(await kubectl('get', ...args, '-o', 'json'));
  } catch (err) {
    if (String((err as Error).message).includes('NotFound')) return undefined;
    throw err;
  }
}

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function startReplica(name: string): Promise<ControlPlaneApp> {
  const own = join(dir, name);
  await mkdir(join(own, 'manifests'), { recursive: true });
  await writeFile(join(own, 'tokens.json'), '{}');
  const config = parseControlPlaneConfig({
    CP_MANIFEST_DIR: join(own, 'manifests'),
    CP_CA_DIR: join(dir, 'ca'),
    CP_TOKENS_FILE: join(own, 'tokens.json'),
    CP_GRPC_ADDRESS: '127.0.0.1',
    CP_GRPC_PORT: '0',
    CP_MONITOR_ADDRESS: '127.0.0.1',
    CP_MONITOR_PORT: '0',
    CP_WAYPOINT_CONTROLLER: 'true',
    CP_KUBECONFIG: api.kubeconfig,
    CP_POD_NAME: name,
    CP_WAYPOINT_IMAGE: 'lab/waypoint:test',
    CP_LEADER_ELECTION_LEASE_DURATION: LEASE.duration,
    CP_LEADER_ELECTION_RENEW_DEADLINE: LEASE.renew,
    CP_LEADER_ELECTION_RETRY_PERIOD: LEASE.retry,
  });
  if (!config.ok) throw new Error(JSON.stringify(config.problems));
  const app = new ControlPlaneApp({ config: config.value, logger: pino({ level: 'silent' }) });
  const { grpc } = await app.start();
  replicas.set(name, { app, grpcPort: grpc.port });
  return app;
}

const controller = (app: ControlPlaneApp) => {
  const c = app.waypointController;
  if (!c) throw new Error('no waypoint controller');
  return c;
};

const gateway = (name: string, className: string, labels: Record<string, string> = {}) => ({
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'Gateway',
  metadata: { name, namespace: 'demo', labels },
  spec: { gatewayClassName: className, listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] },
});

const condition = (
  obj: { status?: { conditions?: Array<{ type: string; status: string }> } },
  type: string,
) => obj.status?.conditions?.find((c) => c.type === type);

function tcpConnects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

describe('waypoint deployment controller on a real kube-apiserver', () => {
  beforeAll(async () => {
    const t0 = Date.now();
    api = await KubeApiServer.start({ binDir: await kubeBinaries(ROOT), controllers: ['garbagecollector'] });
    await kubectl('apply', '-f', join(import.meta.dirname, '../../charts/base/files/crd-gateway-api.yaml'));
    await kubectl(
      'wait',
      '--for',
      'condition=established',
      '--timeout=30s',
      'crd/gateways.gateway.networking.k8s.io',
      'crd/gatewayclasses.gateway.networking.k8s.io',
    );
    await kubectl('create', 'namespace', 'istio-system');
    await kubectl('create', 'namespace', 'demo');
    dir = await mkdtemp(join(tmpdir(), 'wpctl-'));
    const a = await startReplica('cp-a');
    await until('cp-a to lead', async () => controller(a).isLeader);
    console.log(`kube-apiserver, CRDs and the first replica leading in ${Date.now() - t0} ms`);
  }, 180_000);

  afterAll(async () => {
    for (const { app } of replicas.values()) await app.close().catch(() => undefined);
    await api?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('creates and accepts the istio-waypoint GatewayClass', async () => {
    const gc = await until('GatewayClass accepted', async () => {
      const o = await getJson('gatewayclass', 'istio-waypoint');
      return o && condition(o, 'Accepted')?.status === 'True' && o;
    });
    expect(gc.spec.controllerName).toBe('istio.io/mesh-controller');
  }, 30_000);

  it('turns an applied istio-waypoint Gateway into a ServiceAccount, Deployment and Service it owns, and writes Accepted, Programmed and the address', async () => {
    await kubectlApply(gateway('wp', 'istio-waypoint', { 'istio.io/waypoint-for': 'service' }));
    const gw = await until('Gateway programmed', async () => {
      const o = await getJson('gateway', 'wp', '-n', 'demo');
      return o && condition(o, 'Programmed')?.status === 'True' && o;
    });
    const svc = await getJson('service', 'wp', '-n', 'demo');
    expect(gw.status.addresses).toEqual([{ type: 'IPAddress', value: svc.spec.clusterIP }]);
    expect(svc.spec.clusterIP).toMatch(/^10\.96\./);
    for (const c of gw.status.conditions) expect(c.observedGeneration).toBe(gw.metadata.generation);
    expect(condition(gw, 'Accepted')?.status).toBe('True');
    expect(svc.spec.ports.map((p: { name: string; port: number }) => `${p.name}:${p.port}`)).toEqual([
      'status-port:15021',
      'mesh:15008',
    ]);
    expect(svc.spec.selector).toEqual({ 'gateway.networking.k8s.io/gateway-name': 'wp' });
    const deploy = await getJson('deployment', 'wp', '-n', 'demo', '--show-managed-fields');
    const sa = await getJson('serviceaccount', 'wp', '-n', 'demo');
    for (const o of [sa, deploy, svc]) {
      expect(o.metadata.ownerReferences).toEqual([
        {
          apiVersion: 'gateway.networking.k8s.io/v1',
          kind: 'Gateway',
          name: 'wp',
          uid: gw.metadata.uid,
          controller: true,
        },
      ]);
      expect(o.metadata.labels).toMatchObject({
        'gateway.networking.k8s.io/gateway-name': 'wp',
        'istio.io/waypoint-for': 'service',
        'gateway.istio.io/managed': 'istio.io-mesh-controller',
      });
    }
    const container = deploy.spec.template.spec.containers[0];
    expect(container.image).toBe('lab/waypoint:test');
    expect(container.ports.map((p: { containerPort: number }) => p.containerPort)).toEqual([
      15008, 15020, 15021,
    ]);
    expect(deploy.spec.template.spec.serviceAccountName).toBe('wp');
    const managers = deploy.metadata.managedFields.map(
      (m: { manager: string; operation: string }) => `${m.manager}/${m.operation}`,
    );
    expect(managers).toContain('istio.io/gateway-controller/Apply');
  }, 60_000);

  it('carries a changed istio.io/waypoint-for label of the Gateway to the Deployment and Service', async () => {
    await kubectl('label', 'gateway', 'wp', '-n', 'demo', 'istio.io/waypoint-for=all', '--overwrite');
    for (const kind of ['deployment', 'service', 'serviceaccount'])
      await until(`${kind} relabelled`, async () => {
        const o = await getJson(kind, 'wp', '-n', 'demo');
        return o?.metadata.labels['istio.io/waypoint-for'] === 'all';
      });
  }, 60_000);

  it('ignores a Gateway of another class', async () => {
    await kubectlApply(gateway('ingress', 'istio'));
    // Gateways are reconciled in order: once a later waypoint is done, the other one was seen.
    await kubectlApply(gateway('wp2', 'istio-waypoint'));
    await until('wp2 deployed', async () => getJson('deployment', 'wp2', '-n', 'demo'));
    expect(await getJson('deployment', 'ingress', '-n', 'demo')).toBeUndefined();
    expect(await getJson('service', 'ingress', '-n', 'demo')).toBeUndefined();
    expect((await getJson('gateway', 'ingress', '-n', 'demo')).status).toBeUndefined();
  }, 60_000);

  it('removes what a deleted Gateway owned (owner references and the garbage collector)', async () => {
    await until('wp2 service', async () => getJson('service', 'wp2', '-n', 'demo'));
    await kubectl('delete', 'gateway', 'wp2', '-n', 'demo');
    const t0 = Date.now();
    for (const kind of ['deployment', 'service', 'serviceaccount'])
      await until(
        `${kind} wp2 collected`,
        async () => (await getJson(kind, 'wp2', '-n', 'demo')) === undefined,
        45_000,
      );
    console.log(`objects of a deleted Gateway collected in ${Date.now() - t0} ms`);
  }, 60_000);

  it('with two replicas only the leader writes; the leader killed, the other takes over within the lease and reconciles', async () => {
    const a = replicas.get('cp-a')?.app as ControlPlaneApp;
    const b = await startReplica('cp-b');
    // Both serve xDS and the CA whoever leads.
    for (const { grpcPort } of replicas.values()) expect(await tcpConnects(grpcPort)).toBe(true);
    await new Promise((r) => setTimeout(r, 3 * 500 + 200));
    expect(controller(a).isLeader).toBe(true);
    expect(controller(b).isLeader).toBe(false);
    // A change while a leads: only a writes.
    await kubectl('label', 'gateway', 'wp', '-n', 'demo', 'istio.io/waypoint-for=service', '--overwrite');
    await until('relabelled by a', async () => {
      const o = await getJson('deployment', 'wp', '-n', 'demo');
      return o?.metadata.labels['istio.io/waypoint-for'] === 'service';
    });
    expect(controller(b).writes).toEqual({ apply: 0, status: 0, gatewayClass: 0 });
    expect(controller(a).writes.apply).toBeGreaterThan(0);

    // Killed: no release of the Lease, no more renewals.
    controller(a).destroy();
    const killedAt = Date.now();
    const aWrites = { ...controller(a).writes };
    await until('cp-b to lead', async () => controller(b).isLeader, 30_000);
    const failoverMs = Date.now() - killedAt;
    console.log(`leader failover after a kill: ${failoverMs} ms (lease ${LEASE_MS} ms, retry 500 ms)`);
    expect(failoverMs).toBeLessThan(LEASE_MS * 4);
    const holder = await kubectl(
      'get',
      'lease',
      'istio-gateway-deployment-default',
      '-n',
      'istio-system',
      '-o',
      'jsonpath={.spec.holderIdentity}',
    );
    expect(holder).toBe('cp-b');

    await kubectl('label', 'gateway', 'wp', '-n', 'demo', 'istio.io/waypoint-for=workload', '--overwrite');
    await until('relabelled by b', async () => {
      const o = await getJson('service', 'wp', '-n', 'demo');
      return o?.metadata.labels['istio.io/waypoint-for'] === 'workload';
    });
    expect(controller(b).writes.apply).toBeGreaterThan(0);
    expect(controller(a).writes).toEqual(aWrites);
  }, 90_000);
  it('stops writing when the API server is gone past the renew deadline, and leads and reconciles again once it is back', async () => {
    const b = replicas.get('cp-b')?.app as ControlPlaneApp;
    expect(controller(b).isLeader).toBe(true);
    const t0 = Date.now();
    const stopping = api.stopApiServer();
    await until('cp-b to stop leading', async () => !controller(b).isLeader, 20_000);
    console.log(`leader stopped writing ${Date.now() - t0} ms after the API server began to stop`);
    await stopping;
    console.log(`the API server took ${Date.now() - t0} ms to stop (renew deadline 2000 ms)`);
    const t1 = Date.now();
    await api.startApiServer();
    await until('cp-b to lead again', async () => controller(b).isLeader, 30_000);
    console.log(`leading again ${Date.now() - t1} ms after the API server restart began`);
    await kubectl('label', 'gateway', 'wp', '-n', 'demo', 'istio.io/waypoint-for=all', '--overwrite');
    await until('relabelled after the outage', async () => {
      const o = await getJson('deployment', 'wp', '-n', 'demo');
      return o?.metadata.labels['istio.io/waypoint-for'] === 'all';
    });
  }, 90_000);
});

import { readFile, stat } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createMeshLab,
  curlFrom,
  HTTP_APP,
  httpGet,
  isRoot,
  killProcess,
  labPrefix,
  type MeshLab,
  processImage,
  respawn,
  sleepMs,
  waitFor,
} from './fault-lab.js';

const prefix = labPrefix('o');
/** How long the node agent waits for a control plane that is not there yet. */
const CONTROL_PLANE_LATE_MS = 5_000;

describe.skipIf(!isRoot)('a node agent started before its control plane (root)', () => {
  let m: MeshLab;

  beforeAll(async () => {
    m = await createMeshLab(
      prefix,
      {
        nodes: 2,
        pods: [
          { name: 'sleep', namespace: 'demo', node: 0, serviceAccount: 'sleep', labels: { app: 'sleep' } },
          { name: 'echo', namespace: 'demo', node: 1, serviceAccount: 'echo', labels: { app: 'echo' } },
        ],
        services: [
          {
            name: 'echo',
            namespace: 'demo',
            selector: { app: 'echo' },
            ports: [{ port: 80, targetPort: 8080 }],
          },
        ],
      },
      { enrolledNamespaces: ['demo'], apps: [{ pod: 'echo', namespace: 'demo', script: HTTP_APP('echo') }] },
    );
  }, 60_000);

  afterAll(async () => {
    await m?.destroy();
  });

  it('is not ready (500 with a reason) and says which control plane it waits for, then becomes ready soon after the control plane is up', async () => {
    const { lab, mesh } = m;
    const sleep = lab.pod('demo', 'sleep');
    const node = lab.nodes[1];
    if (!node) throw new Error('no node1');
    expect((await curlFrom(lab, sleep, 'http://echo/')).status).toBe(200);

    // Node1's agent stops (gracefully: its pod is released), then the control plane goes away.
    const image = await processImage(mesh.pids[1] as number);
    await killProcess(mesh.pids[1] as number, 'SIGTERM', 15_000);
    await mesh.stopControlPlane();
    const logFrom = (await stat(image.stdout)).size;
    const startedAt = Date.now();
    respawn(lab, node.netns, image);

    const readiness = () => httpGet(node.netns, `http://${node.ip}:15021/healthz/ready`);
    await waitFor('the readiness endpoint to answer', async () => (await readiness()).status !== 0, {
      timeoutMs: 15_000,
    });
    const notReady = await readiness();
    console.log(`readiness with no control plane: ${notReady.status} ${JSON.stringify(notReady.body)}`);
    expect(notReady.status).toBe(500);
    expect(notReady.body).toMatch(/^not ready, pending: .*config/);
    const newLog = async () => (await readFile(image.stdout, 'utf8')).slice(logFrom);
    await waitFor(
      'a log line naming the control plane',
      async () => (await newLog()).includes(mesh.controlPlaneAddress),
      {
        timeoutMs: 10_000,
      },
    );
    const line = (await newLog()).split('\n').find((l) => l.includes(mesh.controlPlaneAddress)) as string;
    const logged = JSON.parse(line) as { msg: string; err?: string };
    console.log(`node agent log: ${logged.msg}: ${logged.err}`);
    expect(logged.msg).toContain(`control plane at ${mesh.controlPlaneAddress}`);

    // Its pod is not served meanwhile, and never in plaintext: the mesh refuses rather than bypass.
    expect((await curlFrom(lab, sleep, 'http://echo/')).status).not.toBe(200);
    await sleepMs(Math.max(0, CONTROL_PLANE_LATE_MS - (Date.now() - startedAt)));
    expect((await readiness()).status).toBe(500);

    const cpStartAt = Date.now();
    await mesh.startControlPlane();
    const cpReadyAt = Date.now();
    // A liveness bound, not a performance figure: the client's backoff tops out at 15 s.
    const readyAfter = await waitFor('the node agent to become ready', () => mesh.ready(1), {
      timeoutMs: 30_000,
      intervalMs: 50,
    });
    const firstOk = await waitFor(
      'traffic to its pod',
      async () => (await curlFrom(lab, sleep, 'http://echo/', { timeoutS: 2 })).status === 200,
      { timeoutMs: 15_000, intervalMs: 100 },
    );
    console.log(
      `control plane started ${cpStartAt - startedAt} ms after the node agent; ready in ${cpReadyAt - cpStartAt} ms`,
    );
    console.log(`node agent ready ${readyAfter} ms after the control plane was ready`);
    console.log(`first request to its pod ${readyAfter + firstOk} ms after the control plane was ready`);
    expect((await curlFrom(lab, sleep, 'http://echo/')).body).toBe(`echo ${sleep.ip} direct`);
    expect(await mesh.metrics(1)).toMatch(
      /istio_tcp_connections_opened_total\{reporter="destination",source_workload="sleep",[^}]*connection_security_policy="mutual_tls"\} [1-9]/,
    );
  }, 90_000);
});

import { applyManifests, type LabPod } from '@ambient/lab';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Bystander,
  createMeshLab,
  curlFrom,
  formatReport,
  formatStats,
  HTTP_APP,
  isRoot,
  killProcess,
  labPrefix,
  type MeshLab,
  procStats,
  requestLog,
  type Sample,
  sleepMs,
  summarize,
  waitFor,
} from './fault-lab.js';

const prefix = labPrefix('k');
const WAYPOINT = 'reviews-waypoint';

/** Only these two identities may reach the echo app. */
const ECHO_POLICY = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: echo-allow, namespace: demo }
spec:
  selector: { matchLabels: { app: echo } }
  action: ALLOW
  rules:
    - from: [{ source: { principals: [cluster.local/ns/demo/sa/client, cluster.local/ns/demo/sa/late] } }]
`;

describe.skipIf(!isRoot)(
  'kill -9 of a mesh component: recovery time, and fail closed meanwhile (root)',
  () => {
    let m: MeshLab;
    let waypoint: LabPod;
    let waypointPid: number;
    const client = () => m.lab.pod('demo', 'client');

    beforeAll(async () => {
      m = await createMeshLab(
        prefix,
        {
          nodes: 2,
          pods: [
            {
              name: 'client',
              namespace: 'demo',
              node: 0,
              serviceAccount: 'client',
              labels: { app: 'client' },
            },
            { name: 'echo', namespace: 'demo', node: 1, serviceAccount: 'echo', labels: { app: 'echo' } },
            {
              name: 'reviews',
              namespace: 'demo',
              node: 1,
              serviceAccount: 'reviews',
              labels: { app: 'reviews' },
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
              name: 'reviews',
              namespace: 'demo',
              selector: { app: 'reviews' },
              ports: [{ name: 'http', port: 80, targetPort: 8080 }],
            },
          ],
        },
        {
          enrolledNamespaces: ['demo'],
          apps: [
            { pod: 'echo', namespace: 'demo', script: HTTP_APP('echo') },
            { pod: 'reviews', namespace: 'demo', script: HTTP_APP('reviews') },
          ],
        },
      );
      await applyManifests(m.mesh.manifestDir, ECHO_POLICY);
      const deployed = await m.mesh.deployWaypoint(
        { namespace: 'demo', name: WAYPOINT, forServiceAccount: 'reviews', node: 1 },
        '198.19.250.1',
      );
      waypoint = deployed.pod;
      waypointPid = deployed.pid as number;
      await m.mesh.waitWaypointReady(waypoint);
      await waitFor(
        'traffic through the waypoint',
        async () => (await curlFrom(m.lab, client(), 'http://reviews/')).body.endsWith(' waypoint'),
        { timeoutMs: 15_000, intervalMs: 100 },
      );
      await waitFor(
        'the echo policy at node1',
        async () =>
          ((await m.mesh.configDump(1)).policies as Array<{ name: string }>).some(
            (p) => p.name === 'echo-allow',
          ),
        { timeoutMs: 10_000 },
      );
    }, 90_000);

    afterAll(async () => {
      await m?.destroy();
    });

    it('control plane: new connections keep working on the last config while it is dead; a pod added meanwhile gets identity and traffic once it is back', async () => {
      const xds = async (node: number) =>
        ((await m.mesh.configDump(node)).agentState as { xds: { streams: number; connected: boolean } }).xds;
      const streamsBefore = [(await xds(0)).streams, (await xds(1)).streams];
      /** A node agent is back when a stream opened after the kill has received config. */
      const back = async (node: number) => {
        const x = await xds(node);
        return x.connected && x.streams > (streamsBefore[node] as number);
      };
      const bystander = await Bystander.start(m.lab, client(), 'http://echo/', {
        intervalMs: 20,
        maxRequests: 2_000,
        maxMs: 45_000,
      });
      await sleepMs(500);
      const cpPid = m.mesh.controlPlanePid as number;
      console.log(formatStats('control plane before kill -9', await procStats(cpPid)));
      const killedAt = await killProcess(cpPid, 'SIGKILL');

      // A pod scheduled while the control plane is dead: no identity, so the echo policy refuses it.
      const late = await m.mesh.addMeshPod({
        name: 'late',
        namespace: 'demo',
        node: 0,
        serviceAccount: 'late',
        labels: { app: 'late' },
      });
      const refused = await curlFrom(m.lab, late, 'http://echo/');
      expect(refused.status).not.toBe(200);
      await sleepMs(Math.max(0, 3_000 - (Date.now() - killedAt)));
      expect(await m.mesh.ready(0)).toBe(true);
      expect(await m.mesh.ready(1)).toBe(true);

      const restartAt = Date.now();
      await m.mesh.startControlPlane();
      const readyAt = Date.now();
      await waitFor(
        'both node agents back on the xDS stream',
        async () => (await back(0)) && (await back(1)),
        {
          timeoutMs: 30_000,
          intervalMs: 50,
        },
      );
      const reconnectedAt = Date.now();
      let last = refused;
      await waitFor(
        'the late pod to reach echo',
        async () => {
          last = await curlFrom(m.lab, late, 'http://echo/', { timeoutS: 2 });
          return last.status === 200;
        },
        { timeoutMs: 30_000, intervalMs: 100 },
      );
      const firstOkAt = Date.now();
      expect(last.body).toBe(`echo ${late.ip} direct`);
      const samples = await bystander.stop();

      console.log(
        `control plane: kill to restart-ready ${readyAt - killedAt} ms (held dead ${restartAt - killedAt} ms, restart to ready ${readyAt - restartAt} ms)`,
      );
      console.log(
        `control plane: kill to both node agents reconnected ${reconnectedAt - killedAt} ms (${reconnectedAt - readyAt} ms after ready)`,
      );
      console.log(
        `control plane: kill to first request of a pod added while it was dead ${firstOkAt - killedAt} ms (${firstOkAt - readyAt} ms after ready)`,
      );
      const outage = samples.filter((s) => s.t >= killedAt && s.t < readyAt);
      console.log(
        `bystander client -> echo while the control plane was dead: ${formatReport(summarize(outage))}`,
      );
      console.log(`bystander client -> echo overall: ${formatReport(summarize(samples))}`);
      console.log(
        formatStats('control plane after restart', await procStats(m.mesh.controlPlanePid as number)),
      );
      expect(outage.length).toBeGreaterThan(20);
      expect(summarize(samples).failed).toBe(0);
    }, 90_000);

    it('waypoint: while it is dead requests fail closed and never go around it; they work again once it is back', async () => {
      const app = m.apps.get('reviews');
      if (!app) throw new Error('no reviews app');
      const bystander = await Bystander.start(m.lab, client(), 'http://reviews/', {
        intervalMs: 20,
        maxRequests: 2_000,
        maxMs: 45_000,
      });
      await sleepMs(500);
      console.log(formatStats('waypoint before kill -9', await procStats(waypointPid)));
      const killedAt = await killProcess(waypointPid, 'SIGKILL');
      await waitFor('the waypoint to report not ready', async () => !(await m.mesh.waypointReady(waypoint)), {
        timeoutMs: 5_000,
      });
      const during = await curlFrom(m.lab, client(), 'http://reviews/');
      expect(during.status).not.toBe(200);
      await sleepMs(Math.max(0, 2_000 - (Date.now() - killedAt)));

      const restartAt = Date.now();
      waypointPid = m.mesh.restartWaypoint(waypoint, WAYPOINT) as number;
      await m.mesh.waitWaypointReady(waypoint);
      const readyAt = Date.now();
      await waitFor(
        'a request through the restarted waypoint',
        async () =>
          (await curlFrom(m.lab, client(), 'http://reviews/', { timeoutS: 2 })).body.endsWith(' waypoint'),
        { timeoutMs: 30_000, intervalMs: 50 },
      );
      const firstOkAt = Date.now();
      await sleepMs(1_500);
      const samples = await bystander.stop();

      console.log(
        `waypoint: kill to restart-ready ${readyAt - killedAt} ms (held dead ${restartAt - killedAt} ms, restart to ready ${readyAt - restartAt} ms)`,
      );
      console.log(
        `waypoint: kill to first request through it ${firstOkAt - killedAt} ms (${firstOkAt - readyAt} ms after ready)`,
      );
      // Requests begun and ended while the waypoint was dead.
      const dead = samples.filter((s) => s.t >= killedAt && s.t + s.ms <= restartAt);
      const after = samples.filter((s) => s.t >= firstOkAt);
      console.log(
        `bystander client -> reviews while the waypoint was dead: ${formatReport(summarize(dead))}`,
      );
      console.log(`bystander client -> reviews after recovery: ${formatReport(summarize(after))}`);
      console.log(`bystander client -> reviews overall: ${formatReport(summarize(samples))}`);
      console.log(formatStats('waypoint after restart', await procStats(waypointPid)));
      expect(dead.length).toBeGreaterThan(10);
      expect(dead.filter((s: Sample) => s.status === 200)).toEqual([]);
      // Never around the waypoint: every answer, and every request the app saw, came through it.
      expect(samples.filter((s) => s.status === 200 && !s.body.endsWith(' waypoint'))).toEqual([]);
      const seen = requestLog(app);
      expect(seen.filter((r) => r.via !== 'waypoint')).toEqual([]);
      expect(seen.filter((r) => r.t > killedAt + 50 && r.t < restartAt)).toEqual([]);
      expect(after.length).toBeGreaterThan(5);
      expect(summarize(after).failed).toBe(0);
    }, 90_000);
  },
);

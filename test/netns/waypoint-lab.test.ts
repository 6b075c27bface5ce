import { mkdtemp } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyManifests, deleteManifest, Lab, LabMesh, type LabPod } from '@ambient/lab';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const isRoot = process.getuid?.() === 0;
const prefix = `w${process.pid % 100_000}`;
const require = createRequire(import.meta.url);
const APP = fileURLToPath(new URL('./fixtures/l7-app.mjs', import.meta.url));
const GRPC_CLIENT = fileURLToPath(new URL('./fixtures/grpc-client.mjs', import.meta.url));
const GRPC_DIR = dirname(require.resolve('@grpc/grpc-js/package.json'));
const PROTOBUF_DIR = dirname(
  require.resolve('protobufjs/package.json', {
    paths: [fileURLToPath(new URL('../../packages/waypoint/', import.meta.url))],
  }),
);
const WAYPOINT = 'reviews-waypoint';
const WAYPOINT_PRINCIPAL = `spiffe://cluster.local/ns/demo/sa/${WAYPOINT}`;

/** A load loop inside a pod: `n` keep-alive GETs, bounded in time; prints counts by body. */
const LOOP = (url: string, n: number) => `
const http = require('http');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const counts = {};
const deadline = Date.now() + 60000;
(async () => {
  for (let i = 0; i < ${n} && Date.now() < deadline; i++) {
    const body = await new Promise((resolve) => {
      http.get(${JSON.stringify(url)}, { agent, timeout: 5000 }, (r) => {
        let b = ''; r.on('data', (c) => (b += c)); r.on('end', () => resolve(r.statusCode + ' ' + b.trim()));
      }).on('error', (e) => resolve('error ' + e.code)).on('timeout', function () { this.destroy(); });
    });
    counts[body] = (counts[body] || 0) + 1;
  }
  console.log(JSON.stringify(counts));
  agent.destroy();
})();`;

describe.skipIf(!isRoot)(
  'waypoint in the lab: L7 routing, retries, faults, authorization, gRPC (root)',
  () => {
    let lab: Lab;
    let mesh: LabMesh;
    let waypoint: LabPod;
    let waypointPid: number | undefined;

    const sleep = () => lab.pod('demo', 'sleep');
    const curl = async (pod: LabPod, url: string, extra: string[] = []) => {
      const r = await lab.exec(pod, [
        'curl',
        '-s',
        '--max-time',
        '5',
        '-o',
        '-',
        '-w',
        '\n%{http_code}',
        ...extra,
        url,
      ]);
      const text = r.stdout;
      const cut = text.lastIndexOf('\n');
      return { code: r.code, status: Number(text.slice(cut + 1)), body: text.slice(0, cut) };
    };
    const apply = (yaml: string) => applyManifests(mesh.manifestDir, yaml);
    /** Polls until `check` holds: config reaches the waypoint within a second or two. */
    const until = async (check: () => Promise<boolean>, what: string, ms = 10_000) => {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline) {
        if (await check()) return;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error(`timed out waiting for ${what}`);
    };
    /** The reviews service's route table at the waypoint, as JSON. */
    const reviewsRoutes = async () =>
      JSON.stringify(
        ((await mesh.waypointConfigDump(waypoint)).routes as Array<{ name: string }>).find(
          (r) => r.name === 'inbound-vip|80|http|reviews.demo.svc.cluster.local',
        ) ?? {},
      );

    beforeAll(async () => {
      const dir = await mkdtemp(join(tmpdir(), 'waypoint-lab-'));
      lab = await Lab.create(prefix, {
        nodes: 2,
        pods: [
          { name: 'sleep', namespace: 'demo', node: 0, serviceAccount: 'sleep', labels: { app: 'sleep' } },
          { name: 'other', namespace: 'demo', node: 0, serviceAccount: 'other', labels: { app: 'other' } },
          {
            name: 'reviews-v1',
            namespace: 'demo',
            node: 1,
            serviceAccount: 'reviews',
            labels: { app: 'reviews', version: 'v1' },
          },
          {
            name: 'reviews-v2',
            namespace: 'demo',
            node: 0,
            serviceAccount: 'reviews',
            labels: { app: 'reviews', version: 'v2' },
          },
        ],
        services: [
          {
            name: 'reviews',
            namespace: 'demo',
            selector: { app: 'reviews' },
            ports: [
              { name: 'http-web', port: 80, targetPort: 8080 },
              { name: 'grpc-echo', port: 9090, targetPort: 9090 },
            ],
          },
          {
            name: 'reviews-v1',
            namespace: 'demo',
            selector: { app: 'reviews', version: 'v1' },
            ports: [{ name: 'http-web', port: 80, targetPort: 8080 }],
          },
          {
            name: 'reviews-v2',
            namespace: 'demo',
            selector: { app: 'reviews', version: 'v2' },
            ports: [{ name: 'http-web', port: 80, targetPort: 8080 }],
          },
        ],
      });
      for (const p of lab.pods.filter((x) => x.labels?.app === 'reviews'))
        lab.start(p.netns, [process.execPath, APP, p.name, GRPC_DIR, PROTOBUF_DIR]);
      mesh = new LabMesh(lab, { dir, enrolledNamespaces: ['demo'] });
      await mesh.start();
      const deployed = await mesh.deployWaypoint(
        { namespace: 'demo', name: WAYPOINT, forServiceAccount: 'reviews', node: 1 },
        '198.19.250.1',
      );
      waypoint = deployed.pod;
      waypointPid = deployed.pid;
      await mesh.waitWaypointReady(waypoint);
      // The node agents learn of the waypoint, and the waypoint of the reviews service.
      await until(
        async () => (await curl(sleep(), 'http://reviews/headers')).body.includes('x-request-id'),
        'traffic through the waypoint',
      );
    }, 120_000);

    afterAll(async () => {
      await lab?.destroy();
    });

    it("sends the service account's traffic client ztunnel -> waypoint -> destination ztunnel, with mesh headers", async () => {
      const r = await curl(sleep(), 'http://reviews/headers', [
        '-H',
        'traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      ]);
      expect(r.status).toBe(200);
      const seen = JSON.parse(r.body) as { remote: string; headers: Record<string, string> };
      // The destination node agent delivers from the verified peer, the waypoint, as upstream
      // ztunnel does (preserving the client's address is an opt-in, tested in test/faults).
      expect(seen.remote).toBe(waypoint.ip);
      expect(seen.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      // The trace is kept, with the waypoint's own span.
      expect(seen.headers.traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
      expect(seen.headers.traceparent).not.toContain('b7ad6b7169203331');
      // The waypoint names the client from the verified connection.
      expect(seen.headers['x-forwarded-for']).toBe(sleep().ip);
      // The destination node agents saw the waypoint's identity as the source.
      const dest = (await mesh.metrics(0)) + (await mesh.metrics(1));
      expect(dest).toMatch(
        new RegExp(
          `istio_tcp_connections_opened_total\\{reporter="destination"[^}]*source_principal="${WAYPOINT_PRINCIPAL}"`,
        ),
      );
      // The waypoint saw the client's identity.
      const wm = await mesh.waypointMetrics(waypoint);
      expect(wm).toMatch(
        /istio_requests_total\{reporter="waypoint"[^}]*source_principal="spiffe:\/\/cluster.local\/ns\/demo\/sa\/sleep"[^}]*destination_service="reviews.demo.svc.cluster.local"[^}]*response_code="200"/,
      );
    });

    it('reopens upstream connections that the endpoint closed while idle (no request is lost)', async () => {
      expect((await curl(sleep(), 'http://reviews/')).status).toBe(200);
      // The app closes idle keep-alive connections after 1 s (Node adds up to a second or so).
      await new Promise((resolve) => setTimeout(resolve, 3000));
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await curl(sleep(), 'http://reviews/')).status);
      expect(statuses).toEqual([200, 200, 200, 200]);
    });

    it('retries a failed first attempt, times out a slow upstream, and injects an abort (VirtualService)', async () => {
      await apply(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: demo }
spec:
  hosts: [reviews]
  http:
    - match: [{ uri: { prefix: /fail-once } }]
      retries: { attempts: 2, retryOn: 5xx }
      route: [{ destination: { host: reviews } }]
    - match: [{ uri: { prefix: /delay } }]
      timeout: 0.5s
      route: [{ destination: { host: reviews } }]
    - match: [{ uri: { prefix: /abort } }]
      fault: { abort: { httpStatus: 418, percentage: { value: 100 } } }
      route: [{ destination: { host: reviews } }]
    - route: [{ destination: { host: reviews } }]
`);
      await until(
        async () => (await curl(sleep(), 'http://reviews/abort')).status === 418,
        'the VirtualService',
      );
      const retried = await curl(sleep(), 'http://reviews/fail-once/first');
      expect(retried.status).toBe(200);
      expect(retried.body).toMatch(/reviews-v\d ok/);
      const slow = await curl(sleep(), 'http://reviews/delay/3000');
      expect(slow.status).toBe(504);
      expect(slow.body).toBe('upstream request timeout');
      const aborted = await curl(sleep(), 'http://reviews/abort');
      expect(aborted.body).toBe('fault filter abort');
      const wm = await mesh.waypointMetrics(waypoint);
      expect(wm).toMatch(/istio_requests_total\{[^}]*response_code="504"[^}]*response_flags="UT"/);
      expect(wm).toMatch(/istio_requests_total\{[^}]*response_code="418"[^}]*response_flags="FI"/);
      expect(wm).toMatch(
        /waypoint_upstream_retries_total\{cluster="[^"]*reviews.demo.svc.cluster.local"\} [1-9]/,
      );
      await deleteManifest(mesh.manifestDir, { kind: 'VirtualService', namespace: 'demo', name: 'reviews' });
      await until(
        async () => (await curl(sleep(), 'http://reviews/abort')).status === 200,
        'the VirtualService removal',
      );
    });

    it('splits 90/10 by an HTTPRoute over 1,000 requests', async () => {
      await apply(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: reviews-split, namespace: demo }
spec:
  parentRefs: [{ group: '', kind: Service, name: reviews, port: 80 }]
  rules:
    - backendRefs:
        - { name: reviews-v1, port: 80, weight: 90 }
        - { name: reviews-v2, port: 80, weight: 10 }
`);
      await until(
        async () => (await reviewsRoutes()).includes('reviews-v1.demo.svc.cluster.local'),
        'the HTTPRoute',
      );
      const r = await lab.exec(sleep(), [process.execPath, '-e', LOOP('http://reviews/', 1000)], 90_000);
      const counts = JSON.parse(r.stdout) as Record<string, number>;
      const v1 = counts['200 reviews-v1'] ?? 0;
      const v2 = counts['200 reviews-v2'] ?? 0;
      expect(v1 + v2).toBe(1000);
      // 90% of 1,000 has a standard deviation of about 9.5: 850..950 is over 5 of them.
      expect(v1).toBeGreaterThanOrEqual(850);
      expect(v1).toBeLessThanOrEqual(950);
      await deleteManifest(mesh.manifestDir, { kind: 'HTTPRoute', namespace: 'demo', name: 'reviews-split' });
      await until(
        async () => !(await reviewsRoutes()).includes('reviews-v1.demo.svc.cluster.local'),
        'the HTTPRoute removal',
      );
    }, 120_000);

    it('denies one principal with 403 and allows another (AuthorizationPolicy on the waypoint)', async () => {
      await apply(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: only-sleep, namespace: demo }
spec:
  targetRefs: [{ kind: Gateway, group: gateway.networking.k8s.io, name: ${WAYPOINT} }]
  action: ALLOW
  rules:
    - from: [{ source: { principals: [cluster.local/ns/demo/sa/sleep] } }]
      to: [{ operation: { methods: [GET] } }]
`);
      const other = lab.pod('demo', 'other');
      await until(async () => (await curl(other, 'http://reviews/')).status === 403, 'the policy');
      const denied = await curl(other, 'http://reviews/');
      expect(denied.body).toBe('RBAC: access denied');
      expect((await curl(sleep(), 'http://reviews/')).status).toBe(200);
      // A method outside the rule is denied to the allowed principal too.
      expect((await curl(sleep(), 'http://reviews/', ['-X', 'DELETE'])).status).toBe(403);
      await deleteManifest(mesh.manifestDir, {
        kind: 'AuthorizationPolicy',
        namespace: 'demo',
        name: 'only-sleep',
      });
      await until(async () => (await curl(other, 'http://reviews/')).status === 200, 'the policy removal');
    });

    it('ejects a failing endpoint and moves traffic to the healthy one (outlier detection)', async () => {
      await apply(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: demo }
spec:
  host: reviews.demo.svc.cluster.local
  trafficPolicy:
    outlierDetection: { consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 50 }
`);
      await until(
        async () =>
          JSON.stringify((await mesh.waypointConfigDump(waypoint)).clusters).includes('consecutive5xx'),
        'the DestinationRule',
      );
      const r = await lab.exec(
        sleep(),
        [process.execPath, '-e', LOOP('http://reviews/fail-on/reviews-v2', 20)],
        60_000,
      );
      const counts = JSON.parse(r.stdout) as Record<string, number>;
      // At most one request (the one that ejects it) reaches reviews-v2; the rest go to v1.
      expect(counts['500 reviews-v2'] ?? 0).toBeLessThanOrEqual(1);
      expect(counts['200 reviews-v1']).toBeGreaterThanOrEqual(19);
      expect(await mesh.waypointMetrics(waypoint)).toMatch(/waypoint_outlier_ejections_total\{[^}]*\} [1-9]/);
      await deleteManifest(mesh.manifestDir, { kind: 'DestinationRule', namespace: 'demo', name: 'reviews' });
    }, 90_000);

    it('passes gRPC unary and server-streaming calls, with status in trailers', async () => {
      const run = async (text: string) => {
        const r = await lab.exec(
          sleep(),
          [
            process.execPath,
            GRPC_CLIENT,
            `${lab.service('demo', 'reviews').vip}:9090`,
            text,
            '3',
            GRPC_DIR,
            PROTOBUF_DIR,
          ],
          30_000,
        );
        return JSON.parse(r.stdout) as { say: Record<string, unknown>; count: string[]; countStatus: number };
      };
      const ok = await run('hi');
      expect(ok.say.text).toBe('echo hi');
      expect(ok.count).toEqual(['0', '1', '2']);
      expect(ok.countStatus).toBe(0);
      const failed = await run('fail');
      expect(failed.say).toEqual({ code: 9, details: 'asked to fail' });
      const wm = await mesh.waypointMetrics(waypoint);
      expect(wm).toMatch(/istio_requests_total\{[^}]*request_protocol="grpc"[^}]*grpc_response_status="9"/);
      expect(wm).toMatch(/istio_requests_total\{[^}]*request_protocol="grpc"[^}]*grpc_response_status="0"/);
    });

    it('fails closed while the waypoint is down, as Istio does: no bypass', async () => {
      if (waypointPid) process.kill(waypointPid, 'SIGKILL');
      await until(async () => !(await mesh.waypointReady(waypoint)), 'the waypoint to stop');
      const r = await curl(sleep(), 'http://reviews/');
      expect(r.status).not.toBe(200);
    });
  },
);

/**
 * Fault: a pod with its own valid certificate opens HBONE to a waypoint and names another pod as
 * the client (`forwarded: for="<victim IP>"`). The waypoint takes the client address only from the
 * connection it verified, and the destination node agent authorizes on its verified peer's socket
 * address, so an L4 policy that admits only the victim's IP does not admit the attacker, and
 * telemetry names the attacker. The node agents run with the client-address opt-in on
 * (ZT_PRESERVE_CLIENT_IP_THROUGH_WAYPOINT): the app sees the real client, never the claimed one.
 */
import { mkdtemp } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { applyManifests, Lab, LabMesh, type LabPod } from '@ambient/lab';
import { CertManager, HboneClient, HboneMetrics, LocalCa, SpiffeId } from '@ambient/shared';
import { NetnsSockets, ZTUNNEL_MARK } from '@ambient/ztunnel';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const isRoot = process.getuid?.() === 0;
const prefix = `f${process.pid % 100_000}`;
const require = createRequire(import.meta.url);
const APP = fileURLToPath(new URL('../netns/fixtures/l7-app.mjs', import.meta.url));
const GRPC_DIR = dirname(require.resolve('@grpc/grpc-js/package.json'));
const PROTOBUF_DIR = dirname(
  require.resolve('protobufjs/package.json', {
    paths: [fileURLToPath(new URL('../../packages/waypoint/', import.meta.url))],
  }),
);
const WAYPOINT = 'echo-waypoint';
/** The waypoint's own service address. */
const WAYPOINT_VIP = '198.19.250.2';
const ATTACKER = 'spiffe://cluster.local/ns/demo/sa/attacker';

interface Seen {
  status: number;
  body: string;
}

/** A chunked HTTP/1.1 body's data. */
function dechunk(body: string): string {
  let out = '';
  let rest = body;
  for (;;) {
    const eol = rest.indexOf('\r\n');
    const size = Number.parseInt(rest.slice(0, eol), 16);
    if (!(size > 0)) return out;
    out += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 2 + size + 2);
  }
}

/** One HTTP/1.1 GET over a stream; the status and body once the server closes. */
function getOver(stream: Duplex, path: string): Promise<Seen> {
  return new Promise((resolve) => {
    let text = '';
    const done = () => {
      const cut = text.indexOf('\r\n\r\n');
      const head = text.slice(0, cut);
      let body = text.slice(cut + 4);
      if (/^transfer-encoding: chunked/im.test(head)) body = dechunk(body);
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), body });
    };
    const timer = setTimeout(() => stream.destroy(), 5_000);
    stream.on('data', (d: Buffer) => {
      text += d.toString();
    });
    stream.on('close', () => {
      clearTimeout(timer);
      done();
    });
    stream.on('end', () => stream.destroy());
    stream.on('error', () => {});
    stream.write(`GET ${path} HTTP/1.1\r\nhost: echo.demo.svc.cluster.local\r\nconnection: close\r\n\r\n`);
  });
}

describe.skipIf(!isRoot)('fault: a spoofed Forwarded address through a waypoint (root)', () => {
  let lab: Lab;
  let mesh: LabMesh;
  let waypoint: LabPod;
  let certs: CertManager;
  let attackerClient: HboneClient;
  const sleep = () => lab.pod('demo', 'sleep');
  const attacker = () => lab.pod('demo', 'attacker');

  const curlHeaders = async () => {
    const r = await lab.exec(sleep(), ['curl', '-s', '--max-time', '5', 'http://echo/headers']);
    return r.stdout;
  };
  /** The attacker's own HBONE tunnel to the waypoint, claiming to forward for the victim. */
  const attack = async (): Promise<Seen> => {
    try {
      const stream = await attackerClient.connect({
        source: SpiffeId.of('cluster.local', 'demo', 'attacker'),
        destination: SpiffeId.of('cluster.local', 'demo', WAYPOINT),
        address: { host: waypoint.ip, port: 15008 },
        // The original destination, as a client ztunnel names it: the echo service's VIP.
        authority: `${lab.service('demo', 'echo').vip}:80`,
        forwarded: `for="${sleep().ip}"`,
      });
      return await getOver(stream, '/headers');
    } catch (err) {
      return { status: 0, body: (err as Error).message };
    }
  };
  const until = async (check: () => Promise<boolean>, what: string, ms = 15_000) => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (await check()) return;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`timed out waiting for ${what}`);
  };

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'spoofed-forwarded-'));
    lab = await Lab.create(prefix, {
      nodes: 1,
      pods: [
        { name: 'sleep', namespace: 'demo', node: 0, serviceAccount: 'sleep', labels: { app: 'sleep' } },
        {
          name: 'attacker',
          namespace: 'demo',
          node: 0,
          serviceAccount: 'attacker',
          labels: { app: 'attacker' },
        },
        { name: 'echo', namespace: 'demo', node: 0, serviceAccount: 'echo', labels: { app: 'echo' } },
      ],
      services: [
        {
          name: 'echo',
          namespace: 'demo',
          selector: { app: 'echo' },
          ports: [{ name: 'http-web', port: 80, targetPort: 8080 }],
        },
      ],
    });
    lab.start(lab.pod('demo', 'echo').netns, [process.execPath, APP, 'echo', GRPC_DIR, PROTOBUF_DIR]);
    mesh = new LabMesh(lab, { dir, enrolledNamespaces: ['demo'], preserveClientIpThroughWaypoint: true });
    await mesh.start();
    waypoint = (
      await mesh.deployWaypoint(
        { namespace: 'demo', name: WAYPOINT, forServiceAccount: 'echo', node: 0 },
        WAYPOINT_VIP,
      )
    ).pod;
    await mesh.waitWaypointReady(waypoint);
    await until(async () => (await curlHeaders()).includes('x-request-id'), 'traffic through the waypoint');
    // The attacker holds a valid certificate of its own, issued by the mesh's CA. It dials from
    // inside its pod, past its pod's capture (a pod with NET_ADMIN can set the mark).
    certs = new CertManager({
      ca: await LocalCa.loadOrCreate(join(dir, 'ca'), { trustDomain: 'cluster.local' }),
    });
    const sockets = NetnsSockets.load();
    attackerClient = new HboneClient({
      certificates: certs,
      metrics: new HboneMetrics(new Registry()),
      logger: pino({ level: 'silent' }),
      dialSocket: (address) => sockets.connect(attacker().netnsPath, { target: address, mark: ZTUNNEL_MARK }),
    });
  }, 120_000);

  afterAll(async () => {
    attackerClient?.destroy();
    certs?.close();
    await lab?.destroy();
  });

  it('with the opt-in on, the app sees the real client through the waypoint', async () => {
    const seen = JSON.parse(await curlHeaders()) as { remote: string; headers: Record<string, string> };
    expect(seen.remote).toBe(sleep().ip);
    expect(seen.headers['x-forwarded-for']).toBe(sleep().ip);
  });

  it("ignores the attacker's Forwarded address: the app, x-forwarded-for and the waypoint's telemetry see the attacker", async () => {
    const r = await attack();
    expect(r.status).toBe(200);
    const seen = JSON.parse(r.body) as { remote: string; headers: Record<string, string> };
    expect(seen.remote).toBe(attacker().ip);
    expect(seen.headers['x-forwarded-for']).toBe(attacker().ip);
    const wm = await mesh.waypointMetrics(waypoint);
    expect(wm).toMatch(
      new RegExp(`istio_requests_total\\{[^}]*source_principal="${ATTACKER}"[^}]*response_code="200"`),
    );
    // Never the victim's workload with the attacker's principal.
    expect(wm).not.toMatch(new RegExp(`source_workload="sleep"[^}]*source_principal="${ATTACKER}"`));
  });

  it("an L4 policy admitting only the victim's IP does not admit the attacker claiming it", async () => {
    await applyManifests(
      mesh.manifestDir,
      `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: only-sleep-ip, namespace: demo }
spec:
  selector: { matchLabels: { app: echo } }
  action: ALLOW
  rules:
    - from: [{ source: { ipBlocks: ["${sleep().ip}/32"] } }]
`,
    );
    // Once the policy is in force the attacker gets no answer from the app (the destination node
    // agent refuses the waypoint's tunnel: its verified address is not the victim's).
    let last: Seen = { status: 0, body: '' };
    await until(async () => {
      last = await attack();
      return last.status !== 200;
    }, 'the policy to refuse the spoofing attacker');
    expect(last.status).toBe(503);
    expect(last.body).not.toContain('"remote"');
    const dest = await mesh.metrics(0);
    expect(dest).toMatch(
      /istio_tcp_connections_failed_total\{reporter="destination"[^}]*response_flags="DENY"/,
    );
    // The destination reports the verified peer (the waypoint), never a workload named in a header.
    expect(dest).not.toMatch(
      /reporter="destination",source_workload="sleep"[^}]*source_principal="[^"]*echo-waypoint"/,
    );
    const wm = await mesh.waypointMetrics(waypoint);
    expect(wm).toMatch(
      new RegExp(`istio_requests_total\\{[^}]*source_principal="${ATTACKER}"[^}]*response_code="503"`),
    );
    expect(wm).not.toMatch(new RegExp(`source_workload="sleep"[^}]*source_principal="${ATTACKER}"`));
  });
});

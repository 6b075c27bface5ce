import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LabPod } from '@ambient/lab';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrolledUids, leafCerts } from '../ztunnel-dump.js';
import {
  createMeshLab,
  formatStats,
  isRoot,
  killProcess,
  labPrefix,
  type MeshLab,
  procStats,
  startApp,
  waitFor,
} from './fault-lab.js';

const prefix = labPrefix('l');
const TOTAL = 200 * 2 ** 20;
const PORT = 9000;

/**
 * Receives one connection, hashes what arrives, prints its progress every 100 ms and, at the
 * end of the stream, the byte count, the sha256 and how many connections it accepted.
 */
const RECEIVER = `
const net = require('net');
const crypto = require('crypto');
let connections = 0;
const srv = net.createServer((s) => {
  connections += 1;
  const hash = crypto.createHash('sha256');
  let bytes = 0;
  const t0 = Date.now();
  const tick = setInterval(() => console.log(JSON.stringify({ progress: bytes })), 100);
  s.on('data', (c) => { hash.update(c); bytes += c.length; });
  s.on('end', () => {
    clearInterval(tick);
    console.log(JSON.stringify({ done: true, bytes, sha256: hash.digest('hex'), ms: Date.now() - t0, remote: s.remoteAddress, connections }));
    s.end();
    srv.close();
  });
  s.on('error', (e) => { clearInterval(tick); console.log(JSON.stringify({ error: e.code || e.message, bytes, connections })); });
});
srv.listen(${PORT}, '0.0.0.0', () => console.log('ready'));`;

/**
 * Sends TOTAL deterministic bytes (an AES-128-CTR keystream under a fixed key), hashing them as
 * it goes, at no more than `rate` bytes/s until the release file exists, then at full speed.
 */
const SENDER = `
const net = require('net');
const crypto = require('crypto');
const fs = require('fs');
const [host, port, total, rate, release] = process.argv.slice(1);
const cipher = crypto.createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, 0));
const zeros = Buffer.alloc(256 * 1024);
const hash = crypto.createHash('sha256');
const t0 = Date.now();
let sent = 0;
let releasedAt;
console.log('ready');
const sock = net.connect(Number(port), host, async () => {
  while (sent < Number(total)) {
    const chunk = cipher.update(zeros.subarray(0, Math.min(zeros.length, Number(total) - sent)));
    hash.update(chunk);
    sent += chunk.length;
    if (!sock.write(chunk)) await new Promise((r) => sock.once('drain', r));
    if (releasedAt === undefined) {
      if (fs.existsSync(release)) releasedAt = { t: Date.now(), sent };
      else {
        const due = t0 + (sent / Number(rate)) * 1000;
        if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
      }
    }
  }
  sock.end(() => console.log(JSON.stringify({ done: true, sent, sha256: hash.digest('hex'), ms: Date.now() - t0, releasedAt })));
});
sock.on('error', (e) => { console.log(JSON.stringify({ error: e.code || e.message, sent })); process.exitCode = 1; });`;

interface ReceiverLine {
  progress?: number;
  done?: boolean;
  bytes?: number;
  sha256?: string;
  ms?: number;
  remote?: string;
  connections?: number;
  error?: string;
}

describe.skipIf(!isRoot)('a 200 MB stream through the mesh survives faults and loses nothing (root)', () => {
  let m: MeshLab;
  const sender = () => m.lab.pod('demo', 'sender');
  const receiver = () => m.lab.pod('demo', 'receiver');
  const enrolled = async (node: number) => enrolledUids(await m.mesh.configDump(node));

  beforeAll(async () => {
    m = await createMeshLab(
      prefix,
      {
        nodes: 2,
        pods: [
          { name: 'sender', namespace: 'demo', node: 0, serviceAccount: 'sender', labels: { app: 'sender' } },
          {
            name: 'receiver',
            namespace: 'demo',
            node: 1,
            serviceAccount: 'receiver',
            labels: { app: 'receiver' },
          },
        ],
        services: [],
      },
      // Short-lived workload certificates (CP_WORKLOAD_CERT_TTL): rotations happen mid-stream too.
      { enrolledNamespaces: ['demo'], mesh: { workloadCertTtl: '20s' } },
    );
  }, 60_000);

  afterAll(async () => {
    await m?.destroy();
  });

  /** Starts a receiver and a throttled sender; `latest()` is the receiver's last line. */
  const startStream = async (rate: number, total: number) => {
    const release = join(await mkdtemp(join(tmpdir(), 'stream-')), 'release');
    const rx = await startApp(m.lab, receiver(), RECEIVER);
    const received = () =>
      rx.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as ReceiverLine);
    const latest = () => received().at(-1) ?? {};
    const bytes = () => {
      const l = latest();
      return l.progress ?? l.bytes ?? 0;
    };
    const tx = await startApp(m.lab, sender(), SENDER, [
      receiver().ip,
      String(PORT),
      String(total),
      String(rate),
      release,
    ]);
    const startedAt = Date.now();
    const sent = () =>
      tx.lines
        .filter((l) => l.startsWith('{'))
        .map(
          (l) =>
            JSON.parse(l) as {
              done?: boolean;
              sent: number;
              sha256?: string;
              error?: string;
              releasedAt?: { t: number; sent: number };
            },
        )
        .at(-1);
    return { release, received, latest, bytes, sent, startedAt, rx, tx };
  };

  it('200 MB pod to pod across nodes: sha256 equal on both ends through a control plane kill -9 and restart and pod churn', async () => {
    const stream = await startStream(5 * 2 ** 20, TOTAL);
    await waitFor('16 MB through the mesh', () => stream.bytes() >= 16 * 2 ** 20, { timeoutMs: 20_000 });

    // kill -9 of the control plane in the middle of the transfer.
    const cpPid = m.mesh.controlPlanePid as number;
    console.log(formatStats('control plane before kill -9', await procStats(cpPid)));
    const atKill = stream.bytes();
    const killedAt = await killProcess(cpPid, 'SIGKILL');
    console.log(`control plane killed at ${(atKill / 2 ** 20).toFixed(1)} MB of ${TOTAL / 2 ** 20} MB`);

    // Churn while it is dead: pods are added to the manifests; nothing reaches the node agents yet.
    const churn: LabPod[] = [];
    for (let i = 0; i < 2; i++) {
      churn.push(
        await m.mesh.addMeshPod({
          name: `churn-a${i}`,
          namespace: 'demo',
          node: i % 2,
          serviceAccount: 'churn',
          labels: { app: 'churn' },
        }),
      );
    }
    // Dead for 2 s at least, with bytes still flowing end to end.
    const duringOutage = stream.bytes();
    await waitFor(
      'bytes flowing while the control plane is dead',
      () => stream.bytes() > duringOutage + 2 ** 20 && Date.now() - killedAt >= 2_000,
      { timeoutMs: 10_000 },
    );
    const restartAt = Date.now();
    await m.mesh.startControlPlane();
    const readyAt = Date.now();
    console.log(
      `control plane down ${restartAt - killedAt} ms; restart to ready ${readyAt - restartAt} ms; ${((stream.bytes() - atKill) / 2 ** 20).toFixed(1)} MB streamed meanwhile`,
    );

    // More churn with the control plane back: two pods added, two removed; each node agent
    // applies every change while the stream runs.
    for (let i = 0; i < 2; i++) {
      churn.push(
        await m.mesh.addMeshPod({
          name: `churn-b${i}`,
          namespace: 'demo',
          node: i % 2,
          serviceAccount: `churn${i}`,
          labels: { app: 'churn' },
        }),
      );
    }
    const [gone0, gone1] = churn as [LabPod, LabPod];
    await m.mesh.removeMeshPod(gone0);
    await m.mesh.removeMeshPod(gone1);
    const churnApplied = await waitFor(
      'the churn to reach both node agents',
      async () =>
        JSON.stringify(await enrolled(0)) ===
          JSON.stringify(['Kubernetes//Pod/demo/churn-b0', 'Kubernetes//Pod/demo/sender']) &&
        JSON.stringify(await enrolled(1)) ===
          JSON.stringify(['Kubernetes//Pod/demo/churn-b1', 'Kubernetes//Pod/demo/receiver']),
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    console.log(
      `pod churn (4 added, 2 removed) applied on both node agents ${churnApplied} ms after the restart`,
    );
    const beforeRelease = stream.bytes();
    // The faults all happened mid-stream.
    expect(beforeRelease).toBeLessThan(TOTAL);
    expect(stream.latest().done).toBeUndefined();
    expect(stream.latest().error).toBeUndefined();

    await writeFile(stream.release, '');
    await waitFor(
      'the end of the stream',
      () => stream.latest().done === true || stream.latest().error !== undefined,
      {
        timeoutMs: 90_000,
        intervalMs: 100,
      },
    );
    await waitFor(
      'the sender to finish',
      () => stream.sent()?.done === true || stream.sent()?.error !== undefined,
      {
        timeoutMs: 10_000,
      },
    );
    const end = stream.latest();
    const tx = stream.sent();
    const seconds = (end.ms as number) / 1000;
    const released = tx?.releasedAt;
    console.log(
      `stream: ${end.bytes} bytes in ${seconds.toFixed(2)} s, ${((end.bytes as number) / 2 ** 20 / seconds).toFixed(1)} MB/s overall (paced at 5 MB/s until the faults were over)`,
    );
    if (released) {
      const fullMs = Date.now() - released.t;
      console.log(
        `stream at full speed: ${((TOTAL - released.sent) / 2 ** 20).toFixed(1)} MB in at most ${(fullMs / 1000).toFixed(2)} s, at least ${((TOTAL - released.sent) / 2 ** 20 / (fullMs / 1000)).toFixed(1)} MB/s`,
      );
    }
    console.log(`sha256 sent     ${tx?.sha256}`);
    console.log(`sha256 received ${end.sha256}`);
    expect(existsSync(stream.release)).toBe(true);
    expect(tx?.error).toBeUndefined();
    expect(end.error).toBeUndefined();
    expect(end.bytes).toBe(TOTAL);
    expect(tx?.sent).toBe(TOTAL);
    expect(end.sha256).toBe(tx?.sha256);
    // One connection, kept from start to end; the app saw the sender's own address.
    expect(end.connections).toBe(1);
    expect(end.remote?.replace('::ffff:', '')).toBe(sender().ip);
    // It went over HBONE, mutual TLS between the two workload identities, via both node agents.
    const dest = await m.mesh.metrics(1);
    expect(dest).toMatch(
      /istio_tcp_connections_opened_total\{reporter="destination",source_workload="sender",[^}]*destination_workload="receiver",[^}]*connection_security_policy="mutual_tls"\} 1/,
    );
    const src = await m.mesh.metrics(0);
    expect(src).toMatch(
      /istio_tcp_connections_opened_total\{reporter="source",source_workload="sender",[^}]*destination_workload="receiver",[^}]*connection_security_policy="mutual_tls"\} 1/,
    );
    for (const [node, pid] of m.mesh.pids.entries())
      console.log(formatStats(`node agent node${node} after the stream`, await procStats(pid)));
  }, 150_000);

  // Certificate rotation mid-stream: the lab's workload certificates live 20 s (above).
  it('a stream keeps flowing, and its bytes intact, while both workload certificates rotate (CP_WORKLOAD_CERT_TTL)', async () => {
    const serial = async (node: number, sa: string) =>
      leafCerts(await m.mesh.configDump(node)).find(
        (c) => c.identity === `spiffe://cluster.local/ns/demo/sa/${sa}`,
      )?.leaf?.serialNumber;
    const total = 64 * 2 ** 20;
    const stream = await startStream(2 * 2 ** 20, total);
    await waitFor('4 MB through the mesh', () => stream.bytes() >= 4 * 2 ** 20, { timeoutMs: 20_000 });
    const before = [await serial(0, 'sender'), await serial(1, 'receiver')];
    expect(before[0]).toBeDefined();
    expect(before[1]).toBeDefined();
    // With a 20 s lifetime each certificate is renewed at half of it: within 10 s of issue.
    const rotated = await waitFor(
      'both workload certificates to rotate',
      async () => (await serial(0, 'sender')) !== before[0] && (await serial(1, 'receiver')) !== before[1],
      { timeoutMs: 25_000, intervalMs: 200 },
    );
    console.log(`both certificates rotated ${rotated} ms into the stream`);
    expect(stream.latest().done).toBeUndefined();
    await writeFile(stream.release, '');
    await waitFor(
      'the end of the stream',
      () => stream.latest().done === true || stream.latest().error !== undefined,
      {
        timeoutMs: 60_000,
        intervalMs: 100,
      },
    );
    await waitFor('the sender to finish', () => stream.sent()?.done === true, { timeoutMs: 10_000 });
    expect(stream.latest().bytes).toBe(total);
    expect(stream.latest().sha256).toBe(stream.sent()?.sha256);
    expect(stream.latest().connections).toBe(1);
  }, 120_000);
});

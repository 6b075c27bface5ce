import type { ChildProcess } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyManifests, Lab, LabMesh, type LabPod } from '@ambient/lab';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const isRoot = process.getuid?.() === 0;
const prefix = `v${process.pid % 100_000}`;

/** An app that counts what each connection uploads and prints how the connection ended. */
const RECORDING_APP = `
require('net').createServer({ allowHalfOpen: true }, (s) => {
  const peer = s.remoteAddress.replace('::ffff:', '');
  let bytes = 0, done = false;
  const ended = (how) => { if (!done) { done = true; console.log('ENDED ' + peer + ' ' + how + ' ' + bytes); } };
  s.on('data', (d) => { if (bytes === 0) console.log('STARTED ' + peer); bytes += d.length; });
  s.on('end', () => ended('end'));
  s.on('error', (e) => ended(e.code || e.message));
  s.on('close', () => ended('close'));
}).listen(9000, '0.0.0.0', () => console.log('ready'));
`;

/** A client that uploads 100 bytes every 50 ms (at most 15 s) and prints how its connection ended. */
const SLOW_UPLOAD = (ip: string) => `
const s = require('net').connect(9000, '${ip}');
let i = 0, done = false;
const t = setInterval(() => { if (++i > 300) return ended('timeout'); s.write('x'.repeat(100)); }, 50);
const ended = (how) => { if (!done) { done = true; clearInterval(t); console.log('CLIENT ' + how); process.exit(0); } };
s.on('data', () => {});
s.on('end', () => ended('end'));
s.on('error', (e) => ended(e.code || e.message));
s.on('close', () => ended('close'));
`;

/** Lines a child prints, and a way to wait for one matching a pattern. */
function lines(child: ChildProcess) {
  const seen: string[] = [];
  const waiters: Array<() => void> = [];
  let buf = '';
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    seen.push(...parts);
    for (const w of waiters.splice(0)) w();
  });
  const wait = (re: RegExp, timeoutMs = 15_000): Promise<string> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no line matching ${re} in ${timeoutMs} ms: ${seen.join(' | ')}`)),
        timeoutMs,
      );
      const check = () => {
        const hit = seen.find((l) => re.test(l));
        if (hit) {
          clearTimeout(timer);
          resolve(hit);
        } else waiters.push(check);
      };
      check();
    });
  return { seen, wait };
}

/**
 * A policy change revokes an open connection in the middle of an upload: both the app and the
 * client must see the connection broken (a reset), never an orderly end that would make a
 * truncated upload look complete.
 */
describe.skipIf(!isRoot)('connections revoked by a policy change end with a reset (root)', () => {
  let lab: Lab;
  let mesh: LabMesh;
  let app: ReturnType<typeof lines>;

  beforeAll(async () => {
    lab = await Lab.create(prefix, {
      nodes: 2,
      pods: [
        { name: 'sleep', namespace: 'demo', node: 0, serviceAccount: 'sleep', labels: { app: 'sleep' } },
        { name: 'store', namespace: 'demo', node: 1, serviceAccount: 'store', labels: { app: 'store' } },
        { name: 'legacy', namespace: 'outside', node: 0, labels: { app: 'legacy' } },
      ],
      services: [],
    });
    const child = lab.start(lab.pod('demo', 'store').netns, [process.execPath, '-e', RECORDING_APP]);
    app = lines(child);
    await app.wait(/^ready$/);
    mesh = new LabMesh(lab, {
      dir: await mkdtemp(join(tmpdir(), 'fault-revoke-')),
      enrolledNamespaces: ['demo'],
    });
    await mesh.start();
  }, 60_000);

  afterAll(async () => {
    await lab?.destroy();
  });

  /** Starts a slow upload from `from` to the store app, waits until the app receives it. */
  const upload = async (from: LabPod) => {
    const client = lines(
      lab.start(from.netns, [process.execPath, '-e', SLOW_UPLOAD(lab.pod('demo', 'store').ip)]),
    );
    await app.wait(new RegExp(`^STARTED ${from.ip.replace(/\./g, '\\.')}$`));
    return client;
  };

  it('a DENY applied during an HBONE upload resets the app side and, through RST_STREAM, the client side', async () => {
    const sleep = lab.pod('demo', 'sleep');
    const client = await upload(sleep);
    const revokedAt = Date.now();
    await applyManifests(
      mesh.manifestDir,
      JSON.stringify({
        apiVersion: 'security.istio.io/v1',
        kind: 'AuthorizationPolicy',
        metadata: { name: 'deny-sleep', namespace: 'demo' },
        spec: {
          selector: { matchLabels: { app: 'store' } },
          action: 'DENY',
          rules: [{ from: [{ source: { principals: ['cluster.local/ns/demo/sa/sleep'] } }] }],
        },
      }),
    );
    const appEnd = await app.wait(new RegExp(`^ENDED ${sleep.ip.replace(/\./g, '\\.')} `));
    const clientEnd = await client.wait(/^CLIENT /);
    const [, , how, bytes] = appEnd.split(' ');
    console.log(
      `HBONE revoke: app saw ${how} after ${bytes} bytes, ${Date.now() - revokedAt} ms after the policy was written`,
    );
    console.log(`HBONE revoke: client saw ${clientEnd.slice('CLIENT '.length)}`);
    expect(how).toBe('ECONNRESET');
    expect(clientEnd).toMatch(/^CLIENT (ECONNRESET|EPIPE)$/);
  });

  it('STRICT mTLS applied during a plaintext upload from outside the mesh resets both sides', async () => {
    const legacy = lab.pod('outside', 'legacy');
    const client = await upload(legacy);
    await applyManifests(
      mesh.manifestDir,
      JSON.stringify({
        apiVersion: 'security.istio.io/v1',
        kind: 'PeerAuthentication',
        metadata: { name: 'strict', namespace: 'demo' },
        spec: { mtls: { mode: 'STRICT' } },
      }),
    );
    const appEnd = await app.wait(new RegExp(`^ENDED ${legacy.ip.replace(/\./g, '\\.')} `));
    const clientEnd = await client.wait(/^CLIENT /);
    const [, , how, bytes] = appEnd.split(' ');
    console.log(
      `plaintext revoke: app saw ${how} after ${bytes} bytes; client saw ${clientEnd.slice('CLIENT '.length)}`,
    );
    expect(how).toBe('ECONNRESET');
    expect(clientEnd).toMatch(/^CLIENT (ECONNRESET|EPIPE)$/);
  });
});

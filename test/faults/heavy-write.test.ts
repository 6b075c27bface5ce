/**
 * Fault: a heavy write to the control plane's config (~20 MiB of valid manifests, then an
 * AuthorizationPolicy with 380,000 principals and one just over the per-policy value limit).
 * Promise: the control plane keeps answering while it works through the write (its work runs in
 * time slices), the oversized policies are refused and reported with their field paths while the
 * rest keeps serving, and mesh traffic of bystanders never fails. Latencies and memory are printed,
 * not asserted.
 */
import { execFile } from 'node:child_process';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Lab, LabMesh } from '@ambient/lab';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMeshLab, type MeshLab, sleepEchoSpec } from './fault-lab.js';

const isRoot = process.getuid?.() === 0;
const prefix = `h${process.pid % 100_000}`;
const HTTP_ECHO = `require('http').createServer((q,r)=>r.end('echo')).listen(8080,'0.0.0.0',()=>console.log('ready'))`;
const FILES = 47;
const PER_FILE = 200;
const HUGE_PRINCIPALS = 380_000;
/** Just over the control plane's default limit of values in one policy (10,000). */
const OVER_LIMIT_PRINCIPALS = 10_001;

/**
 * A loop timing each request until a stop file appears (at most `maxMs` and `maxCount` requests),
 * then printing `STATS {count, failures, p50, p99, max}` in milliseconds. `mode` is `tcp` (a new
 * connection, one HTTP/1.1 request, read to the end) or `http` (a GET expecting `expect`).
 */
const LOOP = `
const net = require('node:net'), http = require('node:http'), fs = require('node:fs');
const [mode, host, port, path, expect, stopFile] = process.argv.slice(1);
const maxMs = 55000, maxCount = 3000, started = Date.now();
const lat = []; let failures = 0; const errors = {};
const once = () => new Promise((resolve) => {
  const t0 = performance.now();
  const done = (ok, why) => { clearTimeout(timer); if (ok) lat.push(performance.now() - t0); else { failures++; errors[why] = (errors[why] || 0) + 1; } resolve(); };
  const timer = setTimeout(() => { s && s.destroy(); done(false, 'timeout'); }, 15000);
  let s;
  if (mode === 'tcp') {
    let body = '';
    s = net.connect(Number(port), host, () => s.write('GET / HTTP/1.1\\r\\nHost: echo\\r\\nConnection: close\\r\\n\\r\\n'));
    s.on('data', (d) => { body += d; });
    s.on('end', () => done(body.endsWith(expect), 'body'));
    s.on('error', (e) => done(false, e.code || 'error'));
  } else {
    s = http.get({ host, port: Number(port), path, agent: false }, (res) => {
      let body = ''; res.on('data', (d) => { body += d; }); res.on('end', () => done(res.statusCode === 200 && body === expect, 'status ' + res.statusCode));
    }).on('error', (e) => done(false, e.code || 'error'));
  }
});
(async () => {
  console.log('started');
  while (!fs.existsSync(stopFile) && Date.now() - started < maxMs && lat.length + failures < maxCount) {
    await once();
    await new Promise((r) => setTimeout(r, 20));
  }
  lat.sort((a, b) => a - b);
  const q = (p) => lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : NaN;
  console.log('STATS ' + JSON.stringify({ count: lat.length, failures, errors, p50: q(0.5), p99: q(0.99), max: lat.at(-1) ?? NaN }));
})();
`;

interface LoopStats {
  count: number;
  failures: number;
  errors: Record<string, number>;
  p50: number;
  p99: number;
  max: number;
}

interface DebugConfig {
  workloads: number;
  services: number;
  lastBuildMs: number;
  invalid: Array<{ file: string; ref: string; problems: Array<{ path: string; message: string }> }>;
}

/** Manifests for `count` objects: Pods, Services selecting them and ServiceAccounts, each carrying
 * a last-applied annotation as `kubectl apply` leaves one (~2 KiB). */
function bulkYaml(file: number): string {
  const docs: string[] = [];
  const note = 'x'.repeat(2000);
  for (let j = 0; j < PER_FILE; j++) {
    const i = file * PER_FILE + j;
    const meta = (kind: string, name: string, extra = '') =>
      `apiVersion: v1\nkind: ${kind}\nmetadata:\n  name: ${name}\n  namespace: bulk\n  labels: {app: b${Math.floor(i / 3)}}\n  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: '${note}'\n${extra}`;
    if (i % 8 < 3) {
      const n = Math.floor(i / 8) * 3 + (i % 8);
      docs.push(
        meta(
          'Pod',
          `p${i}`,
          `spec: {nodeName: elsewhere, serviceAccountName: sa${i % 100}}\nstatus: {phase: Running, podIP: 198.18.${64 + Math.floor(n / 250)}.${(n % 250) + 1}}\n`,
        ),
      );
    } else if (i % 8 === 3) {
      const k = Math.floor(i / 8) + 1;
      docs.push(
        meta(
          'Service',
          `s${i}`,
          `spec:\n  clusterIP: 198.19.${128 + (k >> 8)}.${k & 255}\n  selector: {app: b${Math.floor(i / 3)}}\n  ports: [{port: 80, targetPort: 8080}]\n`,
        ),
      );
    } else {
      docs.push(meta('ServiceAccount', `sa${i}`));
    }
  }
  return docs.join('---\n');
}

function policyYaml(name: string, principals: number): string {
  const list = Array.from({ length: principals }, (_, i) => `cluster.local/ns/bulk/sa/s${i}`).join(', ');
  return `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ${name}
  namespace: demo
spec:
  selector:
    matchLabels: {app: echo}
  action: DENY
  rules:
    - from:
        - source:
            principals: [${list}]
`;
}

/** A node agent's policy names, from its config dump (too large here for the lab's own helper). */
function policiesOn(netns: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    execFile(
      'ip',
      ['netns', 'exec', netns, 'curl', '-s', '--max-time', '10', 'http://127.0.0.1:15000/config_dump'],
      { maxBuffer: 512 * 2 ** 20 },
      (err, stdout) => {
        if (err) reject(err);
        else resolve((JSON.parse(stdout).policies as Array<{ name: string }>).map((p) => p.name));
      },
    );
  });
}

async function rssMb(pid: number | undefined): Promise<number> {
  if (pid === undefined) return Number.NaN;
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? Number.NaN) / 1024;
}

describe.skipIf(!isRoot)('fault: a heavy write to the control plane (root)', () => {
  let m: MeshLab;
  let lab: Lab;
  let mesh: LabMesh;
  let dir: string;

  beforeAll(async () => {
    m = await createMeshLab(prefix, sleepEchoSpec(), {
      enrolledNamespaces: ['demo'],
      apps: [{ pod: 'echo', namespace: 'demo', script: HTTP_ECHO }],
    });
    ({ lab, mesh } = m);
    dir = m.dir;
  }, 60_000);

  afterAll(async () => {
    await m?.destroy();
  });

  it('keeps answering probes and bystander connections through a 20 MiB write, and refuses the oversized policies', async () => {
    const stopFile = join(dir, 'stop-loops');
    const vip = lab.services[0]?.vip as string;
    const controlPlane = lab.nodes[0]?.ip as string;
    const loop = (netns: string, args: string[]) => {
      const child = lab.start(netns, [process.execPath, '-e', LOOP, ...args, stopFile]);
      let out = '';
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
      });
      const started = new Promise<void>((resolve) => child.stdout?.once('data', () => resolve()));
      const stats = new Promise<LoopStats>((resolve, reject) => {
        child.once('exit', () => {
          const line = /^STATS (.*)$/m.exec(out)?.[1];
          if (line) resolve(JSON.parse(line) as LoopStats);
          else reject(new Error(`loop printed no figures: ${out}`));
        });
      });
      // Read at the end; a test failing before then must not leave the rejection unhandled.
      stats.catch(() => {});
      return { started, stats };
    };
    // The bystander runs in an enrolled pod: its connections go through both node agents.
    const bystander = loop(lab.pod('demo', 'sleep').netns, ['tcp', vip, '80', '/', 'echo']);
    const prober = loop(lab.nodes[1]?.netns as string, ['http', controlPlane, '15014', '/ready', 'ready\n']);
    await Promise.all([bystander.started, prober.started]);
    await new Promise((resolve) => setTimeout(resolve, 500));

    // Scraping resets the control plane's event loop delay monitor: the next scrape covers the write.
    await mesh.controlPlaneGet('/metrics');
    const writeStarted = Date.now();
    let bytes = 0;
    for (let f = 0; f < FILES; f++) {
      const text = bulkYaml(f);
      bytes += Buffer.byteLength(text);
      await writeFile(join(mesh.manifestDir, `.bulk-${f}.yaml`), text);
      await rename(join(mesh.manifestDir, `.bulk-${f}.yaml`), join(mesh.manifestDir, `bulk-${f}.yaml`));
    }
    const huge = policyYaml('deny-huge', HUGE_PRINCIPALS);
    const overLimit = policyYaml('deny-many', OVER_LIMIT_PRINCIPALS);
    for (const [file, text] of [
      ['policy-huge.yaml', huge],
      ['policy-many.yaml', overLimit],
    ] as const) {
      await writeFile(join(mesh.manifestDir, `.${file}`), text);
      await rename(join(mesh.manifestDir, `.${file}`), join(mesh.manifestDir, file));
    }
    console.log(
      `wrote ${(bytes / 2 ** 20).toFixed(1)} MiB of manifests (${FILES * PER_FILE} objects in ${FILES} files), then policies of ${(Buffer.byteLength(huge) / 2 ** 20).toFixed(1)} MiB (${HUGE_PRINCIPALS} principals) and ${(Buffer.byteLength(overLimit) / 2 ** 10).toFixed(0)} KiB (${OVER_LIMIT_PRINCIPALS} principals)`,
    );

    const pods = Math.ceil((FILES * PER_FILE * 3) / 8);
    const debug = async () => JSON.parse(await mesh.controlPlaneGet('/debug/config')) as DebugConfig;
    await expect
      .poll(async () => (await debug()).workloads, { timeout: 60_000, interval: 250 })
      .toBeGreaterThanOrEqual(pods + 2);
    console.log(`control plane took in the write in ${Date.now() - writeStarted} ms`);
    await expect
      .poll(async () => (await debug()).invalid.map((i) => i.file).sort(), { timeout: 20_000, interval: 250 })
      .toEqual(['policy-huge.yaml', 'policy-many.yaml']);
    const config = await debug();
    const byFile = (f: string) => config.invalid.find((i) => i.file === f);
    expect(byFile('policy-huge.yaml')).toMatchObject({
      ref: 'policy-huge.yaml',
      problems: [
        {
          path: '',
          message: expect.stringMatching(
            /^document 1 is \d+\.\d MiB, over the limit of 1\.5 MiB for one object/,
          ),
        },
      ],
    });
    expect(byFile('policy-many.yaml')).toMatchObject({
      ref: 'AuthorizationPolicy demo/deny-many',
      problems: [
        {
          path: 'spec.rules[0].from[0].source.principals',
          message: expect.stringMatching(/^takes the policy over 10000 values/),
        },
      ],
    });
    for (const i of config.invalid) console.log(`refused ${i.file}: ${JSON.stringify(i.problems)}`);
    const metrics = await mesh.controlPlaneGet('/metrics');
    const lagMax = Number(/^nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(metrics)?.[1]);
    console.log(`control plane event loop delay during the write: max ${(lagMax * 1000).toFixed(0)} ms`);
    expect(metrics).toMatch(/^controlplane_invalid_resources 2$/m);
    // Nothing of the refused policies reached the node agents.
    for (const node of lab.nodes) {
      const names = await policiesOn(node.netns);
      expect(names).not.toContain('deny-huge');
      expect(names).not.toContain('deny-many');
    }
    console.log(`last build took ${config.lastBuildMs} ms (time slices included)`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await writeFile(stopFile, '');
    const [traffic, ready] = await Promise.all([bystander.stats, prober.stats]);
    const ms = (n: number) => `${n.toFixed(1)} ms`;
    console.log(
      `bystander L4 connect+request during the write: ${traffic.count} requests, p50 ${ms(traffic.p50)}, p99 ${ms(traffic.p99)}, max ${ms(traffic.max)}, failures ${traffic.failures}`,
    );
    console.log(
      `control plane /ready during the write: ${ready.count} probes, p50 ${ms(ready.p50)}, p99 ${ms(ready.p99)}, max ${ms(ready.max)}, failures ${ready.failures}`,
    );
    const rss = await Promise.all(mesh.pids.map((pid) => rssMb(pid)));
    console.log(
      `node agent RSS after the write: ${rss.map((r, i) => `node${i} ${r.toFixed(0)} MB`).join(', ')}`,
    );
    console.log(`control plane RSS after the write: ${(await rssMb(mesh.controlPlanePid)).toFixed(0)} MB`);
    expect(traffic.failures, JSON.stringify(traffic.errors)).toBe(0);
    expect(traffic.count).toBeGreaterThan(0);
    expect(ready.failures, JSON.stringify(ready.errors)).toBe(0);
    // Mesh traffic still works once the write is in: the bystander's own path, checked again.
    const r = await lab.exec(lab.pod('demo', 'sleep'), ['curl', '-s', '--max-time', '5', `http://${vip}/`]);
    expect(r.stdout).toBe('echo');
  }, 120_000);
});

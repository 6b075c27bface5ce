/**
 * The transport floor of the xDS initial sync on this machine: a bare Node HTTP/2 server over TLS
 * (no gRPC, no xDS) pushing the same number of bytes as the control plane's first Address response
 * to each of 50 HTTP/2 clients in two processes, which only count what they receive. Prints, per
 * round, the time until every client has every byte and the CPU seconds of the server and of each
 * client process, for three ways of writing: one shared buffer written to every stream; a fresh
 * copy per stream (what a gRPC server's framing does with each message); and such copies made
 * only while fewer than 4 are being written out.
 * BENCH_FLOOR_BYTES (default 2,640,000, the size of that response), BENCH_CLIENTS (50), BENCH_CLIENT_PROCESSES (2),
 * BENCH_ROUNDS (3). Run: node bench/xds/dist/transport-floor.js
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, now, printTable, spread, usage } from './measure.js';

const BYTES = Number(process.env.BENCH_FLOOR_BYTES ?? 2_640_000);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 50);
const PROCESSES = Number(process.env.BENCH_CLIENT_PROCESSES ?? 2);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const MODES = ['shared buffer', 'copy per stream', 'copy per stream, 4 in flight'] as const;

/** Client process: <port> <count>; on "go" opens `count` sessions, reports each completed stream. */
function clientProcess(port: number, count: number): void {
  process.stdin.on('data', (d: Buffer) => {
    if (!d.toString().includes('go')) return;
    for (let i = 0; i < count; i++) {
      const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
      const req = session.request({ ':path': '/' });
      let got = 0;
      req.on('data', (chunk: Buffer) => {
        got += chunk.length;
      });
      req.on('end', () => {
        process.stdout.write(`${JSON.stringify({ bytes: got, at: now() })}\n`);
        session.close();
      });
    }
  });
}

async function serverMain(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'xds-floor-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-days',
        '1',
        '-subj',
        '/CN=floor',
      ],
      { stdio: 'ignore' },
    );
    const payload = Buffer.alloc(BYTES, 0x5a);
    let copyPerStream = false;
    /** Copies made but not yet written out are limited to this many (0: no limit). */
    let inFlight = 0;
    let writing = 0;
    const queued: Array<() => void> = [];
    const release = () => {
      writing -= 1;
      queued.shift()?.();
    };
    const server = http2.createSecureServer({
      key: readFileSync(join(dir, 'key.pem')),
      cert: readFileSync(join(dir, 'cert.pem')),
    });
    server.on('stream', (stream) => {
      stream.respond({ ':status': 200 });
      if (!copyPerStream) {
        stream.end(payload);
        return;
      }
      const write = () => {
        writing += 1;
        const own = Buffer.allocUnsafe(payload.length + 5);
        payload.copy(own, 5);
        let released = false;
        const done = () => {
          if (released) return;
          released = true;
          release();
        };
        stream.end(own.subarray(5), done);
        stream.once('close', done);
      };
      if (inFlight === 0 || writing < inFlight) write();
      else queued.push(write);
    });
    const port = await freePort();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    const rows: string[][] = [];
    const results: Record<string, { ms: number[]; server: number[]; clients: number[][] }> = {};
    for (let round = 1; round <= ROUNDS; round++) {
      for (const mode of MODES) {
        copyPerStream = mode !== 'shared buffer';
        inFlight = mode === 'copy per stream, 4 in flight' ? 4 : 0;
        const per = Math.ceil(CLIENTS / PROCESSES);
        const children = Array.from({ length: PROCESSES }, (_, p) =>
          spawn(
            process.execPath,
            [
              fileURLToPath(import.meta.url),
              'client',
              String(port),
              String(Math.min(per, CLIENTS - p * per)),
            ],
            {
              stdio: ['pipe', 'pipe', 'inherit'],
            },
          ),
        );
        let done = 0;
        let last = 0;
        const finished = new Promise<void>((resolve) => {
          for (const c of children) {
            let buf = '';
            c.stdout.on('data', (d: Buffer) => {
              buf += d.toString();
              for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
                const r = JSON.parse(buf.slice(0, nl)) as { bytes: number; at: number };
                buf = buf.slice(nl + 1);
                if (r.bytes !== BYTES) throw new Error(`a client got ${r.bytes} bytes, not ${BYTES}`);
                last = Math.max(last, r.at);
                if (++done === CLIENTS) resolve();
              }
            });
          }
        });
        await new Promise((resolve) => setTimeout(resolve, 500)); // children load
        const pids = children.map((c) => c.pid as number);
        const c0 = await Promise.all(pids.map(async (p) => (await usage(p)).cpu));
        const s0 = process.cpuUsage();
        const t0 = now();
        for (const c of children) c.stdin.write('go\n');
        const timeout = setTimeout(() => {
          throw new Error('floor round timed out');
        }, 120_000);
        await finished;
        clearTimeout(timeout);
        const s = process.cpuUsage(s0);
        const c1 = await Promise.all(pids.map(async (p) => (await usage(p)).cpu));
        const r = results[mode] ?? { ms: [], server: [], clients: [] };
        results[mode] = r;
        r.ms.push(last - t0);
        r.server.push((s.user + s.system) / 1e6);
        r.clients.push(c1.map((v, i) => v - (c0[i] ?? 0)));
        for (const c of children) c.kill('SIGTERM');
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
    }
    const cell = (values: number[], d: number) => {
      const sp = spread(values);
      return `${sp.min.toFixed(d)} / ${sp.median.toFixed(d)} / ${sp.max.toFixed(d)}`;
    };
    const all = MODES.map((m) => results[m] ?? { ms: [], server: [], clients: [] });
    rows.push(['all clients hold every byte (ms)', ...all.map((r) => cell(r.ms, 0))]);
    rows.push(['server CPU (s)', ...all.map((r) => cell(r.server, 2))]);
    for (let p = 0; p < PROCESSES; p++)
      rows.push([
        `client process ${p + 1} CPU (s)`,
        ...all.map((r) =>
          cell(
            r.clients.map((c) => c[p] ?? 0),
            2,
          ),
        ),
      ]);
    console.log(
      `transport floor: ${BYTES} bytes to each of ${CLIENTS} TLS HTTP/2 clients in ${PROCESSES} processes, ` +
        `${ROUNDS} rounds; load average ${loadavg()
          .map((v) => v.toFixed(2))
          .join(' ')}`,
    );
    printTable(['metric (min / median / max over rounds)', ...MODES], rows);
    server.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'client') clientProcess(Number(process.argv[3]), Number(process.argv[4]));
else
  serverMain().catch((err: unknown) => {
    console.error(`transport-floor: ${(err as Error).stack ?? err}`);
    process.exitCode = 1;
  });

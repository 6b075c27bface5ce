/**
 * Where a process's JavaScript-visible CPU went: reads a V8 .cpuprofile (from cpu-profile-hook.ts)
 * and prints self time by area (TLS, HTTP/2 framing, HTTP/1 parsing, streams, routing, telemetry,
 * GC, ...) and the costliest functions. Time spent in native code that no JS frame called
 * (libuv reading a socket, TLS decryption before the JS callback) shows as "(program)".
 *   node bench/waypoint/dist/cpu-profile-summary.js <file.cpuprofile> [top]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Areas, first match wins: by script URL, else by the native function's name. */
const AREAS: Array<[string, (url: string, fn: string) => boolean]> = [
  ['idle', (_u, f) => f === '(idle)'],
  ['GC', (_u, f) => f === '(garbage collector)'],
  ['native, no JS caller (socket reads, TLS decrypt)', (_u, f) => f === '(program)'],
  ['TLS (node:tls, _tls_wrap)', (u) => /node:(_tls|tls|internal\/tls)/.test(u)],
  ['HTTP/2 framing + HPACK (shared/h2)', (u) => u.includes('/shared/dist/h2/')],
  ['HBONE server/client (shared/hbone, net)', (u) => /\/shared\/dist\/(hbone|net)\//.test(u)],
  ['HTTP/1 server+client (node:_http_*)', (u) => /node:(_http|http|internal\/http)/.test(u)],
  ['waypoint in-memory pair (duplex-pair)', (u) => u.includes('duplex-pair')],
  [
    'waypoint telemetry + access log',
    (u) => /\/waypoint\/dist\/(telemetry)\/|access-log|prom-client/.test(u),
  ],
  ['logging (pino)', (u) => u.includes('pino')],
  [
    'waypoint direct HTTP/1.1 path (proxy/http1: parser, connection, client)',
    (u) => u.includes('/waypoint/dist/proxy/http1/'),
  ],
  ['module loading at start (node:internal/modules)', (u) => u.startsWith('node:internal/modules')],
  [
    'waypoint request handling (proxy, route, authz, lb, retry)',
    (u) => /\/waypoint\/dist\/(proxy|route|authz|lb|retry|fault|match)\//.test(u),
  ],
  [
    'streams + events (node:internal/streams, events)',
    (u) => /node:(internal\/streams|stream|events)/.test(u),
  ],
  ['net + stream_base (node:net, stream_base_commons)', (u) => /node:(net|internal\/stream_base)/.test(u)],
  [
    'timers, promises, microtasks',
    (u, f) => /node:internal\/(timers|process\/task)/.test(u) || /Promise|Microtask/.test(f),
  ],
  ['buffers', (u) => /node:(buffer|internal\/buffer)/.test(u)],
  ['other node internals', (u) => u.startsWith('node:')],
  ['native (syscall wrappers, crypto, V8 builtins)', (u) => u === ''],
  ['other', () => true],
];

function main(file: string, top: number): void {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (const [i, id] of p.samples.entries()) self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  const areas = new Map<string, number>();
  const fns = new Map<string, number>();
  let busy = 0;
  for (const [id, us] of self) {
    const { functionName: fn, url, lineNumber } = (byId.get(id) as ProfileNode).callFrame;
    const area = (AREAS.find(([, test]) => test(url, fn)) as [string, unknown])[0];
    areas.set(area, (areas.get(area) ?? 0) + us);
    if (area !== 'idle') busy += us;
    const name = `${fn || '(anonymous)'} ${url.replace(/^.*\/(packages|node_modules)\//, '')}:${lineNumber + 1}`;
    fns.set(name, (fns.get(name) ?? 0) + us);
  }
  const pct = (us: number) => `${((100 * us) / busy).toFixed(1).padStart(5)}%`;
  console.log(`busy (not idle) ${(busy / 1e6).toFixed(2)} s; self time by area:`);
  for (const [area, us] of [...areas].sort((a, b) => b[1] - a[1]))
    if (area !== 'idle') console.log(`  ${pct(us)}  ${area}`);
  console.log(`costliest ${top} functions (self time):`);
  for (const [name, us] of [...fns]
    .filter(([name]) => !name.startsWith('(idle)'))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top))
    console.log(`  ${pct(us)}  ${name}`);
}

const [file, top] = process.argv.slice(2);
if (!file) {
  console.error('usage: cpu-profile-summary <file.cpuprofile> [top]');
  process.exit(2);
}
main(file, Number(top ?? 30));

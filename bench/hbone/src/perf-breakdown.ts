/**
 * Where a process's CPU time goes, from sampling profiles (`perf record`, all threads of each
 * process) taken while a load runs: the share of samples in each of a few categories, which
 * multiplied by the process's CPU seconds per GB gives seconds per GB per category. The categories
 * separate what any TLS relay pays (the kernel's TCP/IP work and copies, OpenSSL's record
 * encryption) from what a Node.js process adds on top (V8's garbage collector, its C++ runtime and
 * JIT-compiled JavaScript, libc's allocator and copies).
 */
import { spawn } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

export const CATEGORIES = [
  'kernel: netfilter',
  'kernel: copies',
  'kernel: other',
  'crypto (OpenSSL)',
  'V8 GC',
  'JS (JIT/builtins)',
  'Node/V8 C++',
  'libc',
  'other',
] as const;
export type Category = (typeof CATEGORIES)[number];

const CRYPTO =
  /aes|gcm|ghash|sha\d|sha_|chacha|poly1305|^EVP_|^ossl_|^SSL_|^ssl\d|^ssl_|^tls1|^tls13|^tls_|^BIO_|^CRYPTO_|^OPENSSL_|^ERR_|^RAND_|^BN_|^ecp_nistz|^EC_|node::crypto::/;
const GC =
  /v8::internal::(Heap|Scavenge|MarkCompact|MinorMarkCompact|Sweeper|ConcurrentMarking|IncrementalMarking|Marking|Evacuat|MemoryAllocator|GCTracer|PagedSpace|NewSpace|SemiSpace|PagedNewSpace|LargeObjectSpace|ArrayBufferSweeper|MemoryReducer|ScavengerCollector|RememberedSet|SlotSet|LocalHeap|CppHeap|PointersUpdating|Young|Full|.*Visitor)|cppgc::/;
const NETFILTER =
  /^(nf_|nft_|ipt_|ip6t_|iptable|xt_|__nf_|nf_conntrack|ipv4_conntrack|tcp_packet$|hash_conntrack|__nf_conntrack)/;
const KERNEL_COPY =
  /copy_user|_copy_to_|_copy_from_|copy_page|memcpy|memmove|rep_movs|skb_copy_datagram|csum_partial_copy/;

/** The category of one sampled symbol. */
export function categorize(dso: string, kernel: boolean, sym: string): Category {
  if (kernel || dso.startsWith('[kernel')) {
    if (NETFILTER.test(sym)) return 'kernel: netfilter';
    if (KERNEL_COPY.test(sym)) return 'kernel: copies';
    return 'kernel: other';
  }
  if (/libcrypto|libssl/.test(dso) || CRYPTO.test(sym)) return 'crypto (OpenSSL)';
  if (GC.test(sym)) return 'V8 GC';
  if (dso === '[unknown]' || dso.startsWith('[JIT]') || dso.startsWith('perf-') || /^Builtins?[_:]/.test(sym))
    return 'JS (JIT/builtins)';
  if (/^libc\.|^libc-|^libstdc\+\+|^libm\.|^libpthread/.test(dso)) return 'libc';
  if (dso === 'node' || /^(v8|node|uv_|cppgc)/.test(sym)) return 'Node/V8 C++';
  return 'other';
}

/** One sampled symbol: its share (0..1) of the process's samples and its category. */
export interface SymbolShare {
  share: number;
  dso: string;
  sym: string;
  category: Category;
}

/** The symbols of `perf report --sort dso,sym --stdio -q` text, largest share first. */
export function symbolsFromReport(text: string): SymbolShare[] {
  const out: SymbolShare[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*([\d.]+)%\s+(\S+)\s+\[([.k])\]\s+(.*)$/.exec(line);
    if (!m) continue;
    const dso = m[2] as string;
    const sym = (m[4] as string).trim();
    out.push({ share: Number(m[1]) / 100, dso, sym, category: categorize(dso, m[3] === 'k', sym) });
  }
  return out.sort((a, b) => b.share - a.share);
}

/** Shares (0..1) of samples per category, normalized over the symbols given. */
export function sharesOf(symbols: readonly SymbolShare[]): Map<Category, number> {
  const out = new Map<Category, number>();
  let total = 0;
  for (const s of symbols) {
    out.set(s.category, (out.get(s.category) ?? 0) + s.share);
    total += s.share;
  }
  if (total > 0) for (const [k, v] of out) out.set(k, v / total);
  return out;
}

/**
 * Samples each process (by label) while `load` runs; resolves with the load's result and each
 * process's category shares and symbols. `perf` must be installed and allowed to attach (root);
 * the software clock event works where hardware counters are not exposed (virtual machines).
 */
export async function profileDuring<T>(
  pids: ReadonlyMap<string, number>,
  dir: string,
  load: () => Promise<T>,
  hz = 999,
  /** Keep each profile, with call graphs, in this directory as <label>.data (for `perf report -g`). */
  keepDir?: string,
): Promise<{ result: T; shares: Map<string, Map<Category, number>>; symbols: Map<string, SymbolShare[]> }> {
  // A keep directory that does not exist yet is made: perf's own failure to create its file is silent.
  if (keepDir) await mkdir(keepDir, { recursive: true });
  const runs = [...pids].map(([label, pid], i) => {
    const file = keepDir
      ? join(keepDir, `${label.replace(/[^\w.-]+/g, '-')}.data`)
      : join(dir, `perf-${i}.data`);
    const graph = keepDir ? ['--call-graph', 'fp'] : [];
    const p = spawn(
      'perf',
      ['record', '-e', 'cpu-clock', ...graph, '-F', String(hz), '-p', String(pid), '-o', file, '--quiet'],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let err = '';
    p.stderr.on('data', (d: Buffer) => {
      err += d;
    });
    // Without perf installed the spawn fails ('error', no 'exit'): the report then names why.
    const done = new Promise<number | null>((resolve) => {
      p.once('exit', resolve);
      p.once('error', (e) => {
        err += `${e.message} (is linux-perf installed? scripts/setup.sh --bench)`;
        resolve(null);
      });
    });
    return { label, file, p, done, err: () => err };
  });
  await new Promise((resolve) => setTimeout(resolve, 300)); // perf attaches
  let result: T;
  try {
    result = await load();
  } finally {
    for (const r of runs) r.p.kill('SIGINT');
    await Promise.all(runs.map((r) => r.done));
  }
  const shares = new Map<string, Map<Category, number>>();
  const symbols = new Map<string, SymbolShare[]>();
  for (const r of runs) {
    const report = await new Promise<string>((resolve) => {
      const p = spawn(
        'perf',
        [
          'report',
          '-i',
          r.file,
          '--stdio',
          '-q',
          '--no-children',
          '-g',
          'none',
          '--sort',
          'dso,sym',
          '--percent-limit',
          '0',
        ],
        {
          stdio: ['ignore', 'pipe', 'ignore'],
        },
      );
      let text = '';
      p.stdout.on('data', (d: Buffer) => {
        text += d;
      });
      p.once('exit', () => resolve(text));
      p.once('error', () => resolve(''));
    });
    const syms = symbolsFromReport(report);
    if (syms.length === 0) throw new Error(`perf recorded nothing for ${r.label}: ${r.err().trim()}`);
    shares.set(r.label, sharesOf(syms));
    symbols.set(r.label, syms);
    if (!keepDir) await rm(r.file, { force: true });
  }
  return { result, shares, symbols };
}

/** One process's row: its CPU seconds per unit of work (per GB, per 1,000 requests) and its shares. */
export interface BreakdownRow {
  label: string;
  cpu: number;
  shares: Map<Category, number>;
}

/** Lines of a table: per process, CPU seconds per unit in each category, then the total. */
export function formatBreakdown(rows: readonly BreakdownRow[], digits = 2): string[] {
  const least = 0.5 * 10 ** -digits;
  const used = CATEGORIES.filter((c) => rows.some((r) => (r.shares.get(c) ?? 0) * r.cpu >= least));
  const width = (c: string) => Math.max(12, c.length + 2);
  const lines = [
    `${'process'.padEnd(26)}${used.map((c) => c.padStart(width(c))).join('')}${'total'.padStart(9)}`,
  ];
  for (const r of rows) {
    const cells = used.map((c) => ((r.shares.get(c) ?? 0) * r.cpu).toFixed(digits).padStart(width(c)));
    lines.push(`${r.label.padEnd(26)}${cells.join('')}${r.cpu.toFixed(digits).padStart(9)}`);
  }
  return lines;
}

/**
 * Lines naming a process's `n` most sampled symbols, each as CPU seconds per unit of work (its
 * share of the samples times the process's `cpu`), after a heading that names the unit.
 */
export function formatTopSymbols(
  label: string,
  symbols: readonly SymbolShare[],
  cpu: number,
  n: number,
  unit: string,
  digits = 3,
): string[] {
  const lines = [`\n${label}: ${n} most sampled symbols, CPU seconds per ${unit} (share of samples)`];
  for (const x of symbols.slice(0, n)) {
    lines.push(
      `  ${(x.share * cpu).toFixed(digits)} (${(x.share * 100).toFixed(1)}%)  ${x.category.padEnd(18)} ${x.dso} ${x.sym}`,
    );
  }
  return lines;
}

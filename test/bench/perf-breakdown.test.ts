import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  categorize,
  formatBreakdown,
  profileDuring,
  sharesOf,
  symbolsFromReport,
} from '../../bench/hbone/src/perf-breakdown.js';

describe('perf breakdown categories', () => {
  it('sorts the symbols a TLS relay is sampled in', () => {
    expect(categorize('node', false, '_aesni_ctr32_ghash_6x')).toBe('crypto (OpenSSL)');
    expect(categorize('libcrypto.so.3', false, '0x0000000000241d84')).toBe('crypto (OpenSSL)');
    expect(categorize('node', false, 'v8::internal::ConcurrentMarking::RunMajor')).toBe('V8 GC');
    expect(categorize('node', false, 'v8::internal::ScavengerCollector::CollectGarbage')).toBe('V8 GC');
    expect(categorize('node', false, 'Builtins_KeyedLoadIC_Megamorphic')).toBe('JS (JIT/builtins)');
    expect(categorize('[unknown]', false, '0x00007f12')).toBe('JS (JIT/builtins)');
    expect(categorize('node', false, 'node::StreamBase::CallJSOnreadMethod')).toBe('Node/V8 C++');
    expect(categorize('libc.so.6', false, '__memmove_avx512_unaligned_erms')).toBe('libc');
    expect(categorize('[kernel.kallsyms]', true, 'nft_do_chain')).toBe('kernel: netfilter');
    expect(categorize('[kernel.kallsyms]', true, '__nf_conntrack_find_get')).toBe('kernel: netfilter');
    expect(categorize('[kernel.kallsyms]', true, '_copy_to_iter')).toBe('kernel: copies');
    expect(categorize('[kernel.kallsyms]', true, 'tcp_sendmsg_locked')).toBe('kernel: other');
    expect(categorize('stunnel4', false, '0x000000000000d4ea')).toBe('other');
  });

  it('reads perf report lines into shares that sum to one', () => {
    const report = [
      '    40.00%  node               [.] _aesni_ctr32_ghash_6x',
      '    30.00%  [kernel.kallsyms]  [k] _copy_to_iter',
      '    20.00%  node               [.] v8::internal::Sweeper::RawSweep',
      '     5.00%  libc.so.6          [.] malloc',
      'not a sample line',
    ].join('\n');
    const symbols = symbolsFromReport(report);
    expect(symbols.map((s) => s.category)).toEqual(['crypto (OpenSSL)', 'kernel: copies', 'V8 GC', 'libc']);
    const shares = sharesOf(symbols);
    expect(shares.get('crypto (OpenSSL)')).toBeCloseTo(40 / 95);
    expect([...shares.values()].reduce((a, b) => a + b, 0)).toBeCloseTo(1);
    const lines = formatBreakdown([{ label: 'relay', cpu: 1.9, shares }]);
    expect(lines[0]).toContain('crypto (OpenSSL)');
    expect(lines[0]).not.toContain('JS (JIT/builtins)'); // no samples there: no column
    expect(lines[1]).toMatch(/^relay\s+/);
    expect(lines[1]?.trim().split(/\s+/).pop()).toBe('1.90');
  });
});

/**
 * A process that hashes: SHA-256 over one 64 KiB block, again and again (no allocation per
 * round), until `ms` have passed or `rounds` are done.
 */
function hasher(ms: number, rounds: number): { pid: number; exited: Promise<number | null> } {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const h = require('node:crypto').createHash('sha256'); const block = Buffer.alloc(1 << 16, 7);
       const end = Date.now() + ${ms};
       for (let i = 0; i < ${rounds} && Date.now() < end; i++) h.update(block);`,
    ],
    { stdio: 'ignore' },
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { pid: child.pid as number, exited };
}

describe('perf breakdown of a real process (perf record)', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'perf-breakdown-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('finds OpenSSL in a process that only hashes', async () => {
    const { pid, exited } = hasher(2500, 50_000);
    const { result, shares, symbols } = await profileDuring(new Map([['hasher', pid]]), dir, () => exited);
    expect(result).toBe(0);
    const s = shares.get('hasher');
    expect(s).toBeDefined();
    const crypto = s?.get('crypto (OpenSSL)') ?? 0;
    expect(crypto).toBeGreaterThan(0.5);
    expect(symbols.get('hasher')?.[0]?.category).toBe('crypto (OpenSSL)');
  });

  it('keeps each profile in a keep directory it makes when that does not exist yet', async () => {
    const { pid, exited } = hasher(1000, 20_000);
    const keep = join(dir, 'kept', 'profiles');
    const { shares } = await profileDuring(new Map([['kept hasher', pid]]), dir, () => exited, 999, keep);
    expect(shares.get('kept hasher')?.get('crypto (OpenSSL)') ?? 0).toBeGreaterThan(0.5);
    expect((await stat(join(keep, 'kept-hasher.data'))).size).toBeGreaterThan(0);
  });
});

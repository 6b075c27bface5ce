/**
 * What both xDS benchmark variants measure with: the shared clock, percentiles and spreads, a
 * process's CPU time and memory from /proc, a free loopback port, and the table they print.
 */
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';

/** Milliseconds on the clock every bench process shares (client reports carry it). */
export const now = (): number => performance.timeOrigin + performance.now();

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function pct(values: readonly number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? Number.NaN;
}

export interface Spread {
  readonly min: number;
  readonly median: number;
  readonly max: number;
}

export function spread(values: readonly number[]): Spread {
  return { min: Math.min(...values), median: pct(values, 50), max: Math.max(...values) };
}

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

export interface Usage {
  /** CPU seconds, user + system. */
  readonly cpu: number;
  readonly rssMb: number;
  /** Peak RSS so far (VmHWM). */
  readonly peakMb: number;
}

/** CPU seconds (user + system), RSS and peak RSS in MB of a process, from /proc. */
export async function usage(pid: number): Promise<Usage> {
  const stat = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
  const ticks = Number(stat[11]) + Number(stat[12]);
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1]);
  return { cpu: ticks / 100, rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
}

/** CPU seconds of several processes together. */
export async function cpuOf(pids: readonly number[]): Promise<number> {
  let total = 0;
  for (const pid of pids) total += (await usage(pid)).cpu;
  return total;
}

/**
 * Prints rows under a header: the first column padded to the widest label, the others aligned
 * right (numbers side by side) or left.
 */
export function printTable(
  header: readonly string[],
  rows: ReadonlyArray<readonly string[]>,
  align: 'left' | 'right' = 'right',
): void {
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((r) => r[c]?.length ?? 0)));
  const line = (r: readonly string[]) =>
    widths
      .map((w, c) => {
        const v = r[c] ?? '';
        return c === 0 || align === 'left' ? v.padEnd(w) : v.padStart(w);
      })
      .join('  ')
      .trimEnd();
  for (const r of all) console.log(line(r));
}

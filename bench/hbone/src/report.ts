import { readFile } from 'node:fs/promises';

/** min / median / max of a list of per-round figures. */
export interface Spread {
  min: number;
  median: number;
  max: number;
}

export function spread(values: readonly number[]): Spread {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return { min: Number.NaN, median: Number.NaN, max: Number.NaN };
  return { min: sorted[0] as number, median: median(sorted), max: sorted[sorted.length - 1] as number };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** "min/median/max" with `digits` decimals. */
export function formatSpread(s: Spread, digits: number): string {
  return [s.min, s.median, s.max].map((v) => (Number.isFinite(v) ? v.toFixed(digits) : '-')).join('/');
}

let ticksPerSecond = 100;

/** Clock ticks per second of /proc/<pid>/stat (CLK_TCK), read once. */
export function setClockTicks(hz: number): void {
  if (Number.isFinite(hz) && hz > 0) ticksPerSecond = hz;
}

/**
 * CPU seconds (user + system, all threads) a live process has used so far, from /proc/<pid>/stat;
 * NaN when the process is gone or there is no /proc.
 */
export async function cpuSeconds(pid: number | undefined): Promise<number> {
  if (pid === undefined) return Number.NaN;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // The command name may hold spaces and parentheses: fields are counted after its last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / ticksPerSecond;
}

/** The 1, 5 and 15 minute load averages, as /proc/loadavg prints them. */
export async function loadAverage(): Promise<string> {
  const text = await readFile('/proc/loadavg', 'utf8').catch(() => '');
  return text.split(' ').slice(0, 3).join(' ') || 'unknown';
}

/**
 * The pod the directory benchmark changes, and how its IP carries the change number k (from 1):
 * 198.18.(200 + k / 250).(k % 250 + 1), so several rounds of changes never reuse an address.
 */
export const TARGET = 'Kubernetes//Pod/bench/target';

export function targetIp(k: number): string {
  return `198.18.${200 + Math.floor(k / 250)}.${(k % 250) + 1}`;
}

/** The change number an IP of the target carries; undefined for any other address. */
export function changeOfIp(ip: string | undefined): number | undefined {
  const m = /^198\.18\.(\d+)\.(\d+)$/.exec(ip ?? '');
  if (!m) return undefined;
  const hi = Number(m[1]) - 200;
  const lo = Number(m[2]) - 1;
  if (hi < 0 || hi > 55 || lo < 0 || lo >= 250) return undefined;
  return hi * 250 + lo;
}

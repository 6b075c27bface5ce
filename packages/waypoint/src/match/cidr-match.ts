/**
 * Whether an IP address lies in a CIDR range. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, as a
 * dual-stack socket reports IPv4 peers) count as their IPv4 address against IPv4 ranges.
 */
import { isIPv4, isIPv6 } from 'node:net';

function v4Bytes(ip: string): number[] {
  return ip.split('.').map(Number);
}

function v6Bytes(ip: string): number[] | undefined {
  let s = ip;
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.')) {
    tail = v4Bytes(s.slice(lastColon + 1));
    s = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const [head = '', rest] = s.split('::');
  const parse = (part: string) => (part ? part.split(':').map((h) => Number.parseInt(h, 16)) : []);
  const hi = parse(head);
  const lo = rest === undefined ? [] : parse(rest);
  const groups = rest === undefined ? hi : [...hi, ...new Array(8 - hi.length - lo.length).fill(0), ...lo];
  if (groups.length !== 8) return undefined;
  const bytes = groups.flatMap((g) => [(g >> 8) & 0xff, g & 0xff]);
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

/** Address bytes: 4 for IPv4, 16 for IPv6; undefined if not an IP. */
export function ipBytes(ip: string): number[] | undefined {
  if (isIPv4(ip)) return v4Bytes(ip);
  if (!isIPv6(ip)) return undefined;
  return v6Bytes(ip.split('%')[0] ?? ip);
}

function isMapped(bytes: readonly number[]): boolean {
  return (
    bytes.length === 16 &&
    bytes.slice(0, 10).every((b) => b === 0) &&
    bytes[10] === 0xff &&
    bytes[11] === 0xff
  );
}

/** As Envoy, a range only holds addresses of its own family (IPv4-mapped IPv6 counting as IPv4). */
export function matchCidr(
  ip: string,
  range: { readonly address: string; readonly prefixLen: number },
): boolean {
  let a = ipBytes(ip);
  const r = ipBytes(range.address);
  if (!a || !r) return false;
  if (r.length === 4 && isMapped(a)) a = a.slice(12);
  if (a.length !== r.length) return false;
  let bits = range.prefixLen;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((a[i] ?? 0) & mask) !== ((r[i] ?? 0) & mask)) return false;
  }
  return true;
}

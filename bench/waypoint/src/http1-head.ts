/** Where an HTTP/1.1 head ends. */
export const HEAD_END = Buffer.from('\r\n\r\n');

/**
 * Content-Length of a head (its bytes as latin1), or -1 if it frames its body any other way
 * (beyond the minimal proxies that use this).
 */
export function contentLength(head: string, isResponse: boolean): number {
  const lower = head.toLowerCase();
  if (lower.includes('\r\ntransfer-encoding:')) return -1;
  const at = lower.indexOf('\r\ncontent-length:');
  if (at < 0) return isResponse ? -1 : 0;
  const n = Number.parseInt(lower.slice(at + 17, lower.indexOf('\r\n', at + 17)).trim(), 10);
  return Number.isFinite(n) && n >= 0 ? n : -1;
}

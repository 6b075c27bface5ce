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

/**
 * A reader of one response framed by Content-Length, fed the upstream's chunks: each chunk goes
 * to `out` as it is (the head's chunks once the head is whole), `done` runs once the body is all
 * there, `bad` when the response is framed any other way.
 */
export function responseReader(
  out: (chunk: Buffer) => void,
  done: () => void,
  bad: () => void,
): (chunk: Buffer) => void {
  let head: Buffer | undefined = Buffer.alloc(0);
  let remaining = -1;
  return (chunk) => {
    if (head !== undefined) {
      head = Buffer.concat([head, chunk]);
      const e = head.indexOf(HEAD_END);
      if (e < 0) return;
      const n = contentLength(head.toString('latin1', 0, e + 4), true);
      if (n < 0) {
        bad();
        return;
      }
      remaining = e + 4 + n;
      chunk = head;
      head = undefined;
    }
    remaining -= chunk.length;
    out(chunk);
    if (remaining <= 0) done();
  };
}

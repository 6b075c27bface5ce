/** W3C trace context for requests through the waypoint. */
import { randomFillSync } from 'node:crypto';
import { validTraceparent } from '@ambient/shared';

/**
 * Random hex for trace and span ids, cut from a pool refilled 4 KiB at a time: one
 * randomFillSync per request was a visible share of the waypoint's CPU.
 */
const RANDOM_POOL = Buffer.alloc(4096);
let randomOffset = RANDOM_POOL.length;
function randomHex(bytes: number): string {
  if (randomOffset + bytes > RANDOM_POOL.length) {
    randomFillSync(RANDOM_POOL);
    randomOffset = 0;
  }
  randomOffset += bytes;
  return RANDOM_POOL.toString('hex', randomOffset - bytes, randomOffset);
}

/** The traceparent sent upstream: the client's trace (if valid) with a new span of this hop. */
export function newTraceparent(incoming: unknown): string {
  const valid = validTraceparent(incoming);
  const span = randomHex(8);
  if (valid) {
    const [version, trace, , sampled] = valid.split('-');
    return `${version}-${trace}-${span}-${sampled}`;
  }
  return `00-${randomHex(16)}-${span}-01`;
}

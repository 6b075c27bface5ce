/**
 * The consistent-hash key of a request from its route's hash policies, as Envoy combines them: each
 * policy that yields a value contributes (a header's value, the client IP); none yielding means no
 * key, and the ring then picks at random.
 */
import type { HashPolicy } from '../config/waypoint-config.js';

export interface HashInput {
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  readonly sourceIp: string;
}

export function hashKey(policies: readonly HashPolicy[], input: HashInput): string | undefined {
  const parts: string[] = [];
  for (const p of policies) {
    if ('header' in p) {
      const v = input.headers[p.header];
      if (v === undefined) continue;
      // Envoy hashes every value of a repeated header, sorted, so their order does not matter.
      parts.push(typeof v === 'string' ? `h:${v}` : `h:${[...v].sort().join('\n')}`);
    } else if (input.sourceIp) {
      parts.push(`ip:${input.sourceIp}`);
    }
  }
  return parts.length ? parts.join('\u0000') : undefined;
}

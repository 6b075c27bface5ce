/**
 * Which received header lists are malformed (RFC 9113 §8.1–§8.5). A malformed request or response
 * costs its stream (RST_STREAM PROTOCOL_ERROR, §8.1.1), never the connection, and is never handed
 * to the application: an HBONE server must not open a tunnel for a request a strict peer would
 * have refused, or two parties could disagree on where it goes.
 *
 * Each check returns the first problem found, as text for logs, or undefined when the list is
 * well formed. Names are checked as they arrived, before any lower-casing.
 */
import type { HeaderList } from './hpack.js';

/** Hop-by-hop fields that have no meaning in HTTP/2 (§8.2.2). `te` is checked on its own. */
const CONNECTION_SPECIFIC = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
]);
const REQUEST_PSEUDO = new Set([':method', ':scheme', ':authority', ':path']);
/** RFC 9110 token characters, lower case only (§8.2.1 forbids upper case in HTTP/2 names). */
const LOWER_TOKEN = /^[a-z0-9!#$%&'*+\-.^_`|~]+$/;
const HAS_UPPER = /[A-Z]/;
/** NUL, LF and CR may not appear in a value at all (§8.2.1). */
const FORBIDDEN_IN_VALUE = /[\0\n\r]/;
/** Nor may a value start or end with SP or HTAB (§8.2.1 allows treating this as malformed). */
const EDGE_WHITESPACE = /^[ \t]|[ \t]$/;
const STATUS = /^[1-9][0-9]{2}$/;

/** A regular field's name and value (§8.2.1, §8.2.2). */
function fieldProblem(name: string, value: string): string | undefined {
  if (!LOWER_TOKEN.test(name)) {
    if (name.length === 0) return 'empty field name';
    if (HAS_UPPER.test(name)) return `field name ${JSON.stringify(name)} has upper-case characters`;
    return `field name ${JSON.stringify(name)} has characters a field name may not carry`;
  }
  if (FORBIDDEN_IN_VALUE.test(value)) return `field ${name} has a NUL, CR or LF in its value`;
  if (EDGE_WHITESPACE.test(value)) return `field ${name} has leading or trailing whitespace in its value`;
  if (CONNECTION_SPECIFIC.has(name)) return `connection-specific field ${name}`;
  return undefined;
}

/** A pseudo-header's value: the same character rules as any other value. */
function pseudoValueProblem(name: string, value: string): string | undefined {
  if (FORBIDDEN_IN_VALUE.test(value)) return `${name} has a NUL, CR or LF`;
  if (EDGE_WHITESPACE.test(value)) return `${name} has leading or trailing whitespace`;
  return undefined;
}

/**
 * A request's header list (server role, §8.3.1, §8.5). A plain CONNECT carries exactly
 * :method and :authority; we never send SETTINGS_ENABLE_CONNECT_PROTOCOL, so `:protocol`
 * (RFC 8441) is as unknown as any other pseudo-header.
 */
export function requestProblem(list: HeaderList): string | undefined {
  const pseudo = new Map<string, string>();
  let regular = false;
  let host: string | undefined;
  for (const [name, value] of list) {
    if (name.startsWith(':')) {
      if (regular) return `pseudo-header ${name} after a regular field`;
      if (!REQUEST_PSEUDO.has(name)) {
        return name === ':status'
          ? 'response pseudo-header :status in a request'
          : `unknown pseudo-header ${name}`;
      }
      if (pseudo.has(name)) return `pseudo-header ${name} repeated`;
      const bad = pseudoValueProblem(name, value);
      if (bad) return bad;
      pseudo.set(name, value);
      continue;
    }
    regular = true;
    const bad = fieldProblem(name, value);
    if (bad) return bad;
    // Exactly "trailers", as the hyperium h2 crate requires (src/frame/headers.rs).
    if (name === 'te' && value !== 'trailers') return 'te other than "trailers"';
    if (name === 'host') host = value;
  }
  const method = pseudo.get(':method');
  if (method === undefined || method === '') return 'missing :method';
  const authority = pseudo.get(':authority');
  if (method === 'CONNECT') {
    if (pseudo.has(':scheme')) return 'CONNECT with :scheme';
    if (pseudo.has(':path')) return 'CONNECT with :path';
    if (authority === undefined || authority === '') return 'CONNECT without :authority';
  } else {
    const scheme = pseudo.get(':scheme');
    if (scheme === undefined || scheme === '') return 'missing :scheme';
    const path = pseudo.get(':path');
    if (path === undefined || path === '') return 'missing or empty :path';
  }
  // Two names for the target would let two parties route one request differently (§8.3.1).
  if (authority !== undefined && host !== undefined && authority.toLowerCase() !== host.toLowerCase()) {
    return 'host differs from :authority';
  }
  return undefined;
}

/**
 * A response's header list (client role, §8.3.2): exactly one :status of three digits, first.
 * 101 does not exist in HTTP/2 (§8.6).
 */
export function responseProblem(list: HeaderList): string | undefined {
  let status: string | undefined;
  let regular = false;
  for (const [name, value] of list) {
    if (name.startsWith(':')) {
      if (regular) return `pseudo-header ${name} after a regular field`;
      if (name !== ':status') {
        return REQUEST_PSEUDO.has(name)
          ? `request pseudo-header ${name} in a response`
          : `unknown pseudo-header ${name}`;
      }
      if (status !== undefined) return 'pseudo-header :status repeated';
      status = value;
      continue;
    }
    regular = true;
    const bad = fieldProblem(name, value);
    if (bad) return bad;
    if (name === 'te') return 'te in a response';
  }
  if (status === undefined) return 'missing :status';
  if (!STATUS.test(status)) return `:status ${JSON.stringify(status)} is not a three-digit code`;
  if (status === '101') return ':status 101 does not exist in HTTP/2';
  return undefined;
}

/** Trailers (§8.1): no pseudo-headers at all, and the rules of any other field. */
export function trailersProblem(list: HeaderList): string | undefined {
  for (const [name, value] of list) {
    if (name.startsWith(':')) return `pseudo-header ${name} in trailers`;
    const bad = fieldProblem(name, value);
    if (bad) return bad;
    if (name === 'te') return 'te in trailers';
  }
  return undefined;
}

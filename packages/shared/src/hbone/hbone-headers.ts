import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { fail, ok, type Result } from '../result.js';

/** Ports an HBONE CONNECT may never target: the capture ports, which would loop traffic back. */
export const FORBIDDEN_TARGET_PORTS: ReadonlySet<number> = new Set([15001, 15006, 15008]);

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Parses an IP `:authority` (`10.0.0.1:80`, `[fd00::1]:80`); names are refused. */
export function parseAuthority(value: unknown): Result<HostPort> {
  const r = parseHboneAddress(value);
  if (!r.ok) return r;
  if (r.value.hostname)
    return fail({ path: ':authority', message: `${JSON.stringify(r.value.host)} is not an IPv4 address` });
  return ok({ host: r.value.host, port: r.value.port });
}

/** An HBONE target: an address, or a service host name (`hostname` set) with a service port. */
export interface HboneAddress extends HostPort {
  readonly hostname?: true;
}

const DNS_NAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/**
 * Parses an HBONE `:authority`: `IP:port`, `[IPv6]:port`, or a service `hostname:port` as upstream
 * ztunnel's `HboneAddress::SvcHostname` (istio/ztunnel `src/proxy.rs`). A name is lower-cased; it
 * must be a DNS name, and something that looks like an IPv4 address but is not one is refused.
 */
export function parseHboneAddress(value: unknown): Result<HboneAddress> {
  const bad = (message: string) => fail<HboneAddress>({ path: ':authority', message });
  if (typeof value !== 'string' || value === '') return bad('missing');
  let host: string;
  let portText: string;
  let hostname = false;
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    if (close < 0 || value[close + 1] !== ':') return bad(`${JSON.stringify(value)} is not [ipv6]:port`);
    host = value.slice(1, close);
    portText = value.slice(close + 2);
    if (isIP(host) !== 6) return bad(`${JSON.stringify(host)} is not an IPv6 address`);
  } else {
    const colon = value.lastIndexOf(':');
    if (colon < 0) return bad(`${JSON.stringify(value)} has no port`);
    host = value.slice(0, colon);
    portText = value.slice(colon + 1);
    if (isIP(host) !== 4) {
      // All digits and dots (999.1.2.3) is a broken address, not a name.
      if (/^[\d.]+$/.test(host) || !DNS_NAME.test(host.toLowerCase()))
        return bad(`${JSON.stringify(host)} is not an IPv4 address or a host name`);
      host = host.toLowerCase();
      hostname = true;
    }
  }
  if (!/^\d{1,5}$/.test(portText)) return bad(`port ${JSON.stringify(portText)} is not a number`);
  const port = Number(portText);
  if (port < 1 || port > 65535) return bad(`port ${port} is out of range`);
  return ok(hostname ? { host, port, hostname: true } : { host, port });
}

export function formatAuthority(hp: HostPort): string {
  return isIP(hp.host) === 6 ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

/** The first `for=` address of a Forwarded header (RFC 7239), as `ip` or `ip:port`, if present. */
export function parseForwardedFor(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /(?:^|[;,\s])for=("([^"]*)"|[^;,\s]+)/i.exec(value);
  if (!m) return undefined;
  return m[2] ?? m[1];
}

/** The IP of a `for=` value: strips brackets and port. */
export function forwardedIp(forValue: string): string | undefined {
  if (forValue.startsWith('[')) {
    const ip = forValue.slice(1, forValue.indexOf(']'));
    return isIP(ip) ? ip : undefined;
  }
  if (isIP(forValue)) return forValue;
  const ip = forValue.slice(0, forValue.lastIndexOf(':'));
  return isIP(ip) === 4 ? ip : undefined;
}

/**
 * `for="<client ip:port>"`, and `;host=<service hostname>` when the client addressed a known
 * service (`build_forwarded` in istio/ztunnel `src/proxy/outbound.rs`).
 */
export function formatForwarded(src: HostPort, serviceHostname?: string): string {
  const forPart = `for="${formatAuthority(src)}"`;
  return serviceHostname ? `${forPart};host=${serviceHostname}` : forPart;
}

/**
 * The `host=` of a Forwarded header, unquoted, as upstream's `parse_forwarded_host`
 * (istio/ztunnel `src/proxy.rs`): the first `host=` of the `;`-separated pairs; undefined when
 * absent, empty, or the header is not ASCII.
 */
export function parseForwardedHost(value: unknown): string | undefined {
  if (typeof value !== 'string' || /[^\x20-\x7e\t]/.test(value)) return undefined;
  for (const part of value.split(';')) {
    const p = part.trim();
    if (!p.startsWith('host=')) continue;
    let h = p.slice('host='.length);
    if (h.startsWith('"')) h = h.slice(1);
    if (h.endsWith('"')) h = h.slice(0, -1);
    return h === '' ? undefined : h;
  }
  return undefined;
}

/**
 * A fresh W3C traceparent as upstream ztunnel makes one per connection (`TraceParent::new` in
 * istio/ztunnel `src/proxy.rs`): version 00, random trace and parent ids, flags 00 (not sampled).
 */
export function newTraceparent(): string {
  for (;;) {
    const b = randomBytes(24);
    const trace = b.subarray(0, 16).toString('hex');
    const span = b.subarray(16).toString('hex');
    // All-zero ids are invalid (W3C Trace Context §3.2.2.3); astronomically rare, but never sent.
    if (!/^0+$/.test(trace) && !/^0+$/.test(span)) return `00-${trace}-${span}-00`;
  }
}

const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** A W3C traceparent if `value` is one (and not the all-zero IDs), else undefined. */
export function validTraceparent(value: unknown): string | undefined {
  if (typeof value !== 'string' || !TRACEPARENT.test(value)) return undefined;
  const [, trace, span] = value.split('-');
  return /^0+$/.test(trace ?? '') || /^0+$/.test(span ?? '') ? undefined : value;
}

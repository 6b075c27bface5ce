import { isIP } from 'node:net';
import { fail, ok, type Result } from '../result.js';

/** Ports an HBONE CONNECT may never target: the capture ports, which would loop traffic back. */
export const FORBIDDEN_TARGET_PORTS: ReadonlySet<number> = new Set([15001, 15006, 15008]);

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Parses an IP `:authority` (`10.0.0.1:80`, `[fd00::1]:80`); names are refused, as by Istio's ztunnel. */
export function parseAuthority(value: unknown): Result<HostPort> {
  const bad = (message: string) => fail<HostPort>({ path: ':authority', message });
  if (typeof value !== 'string' || value === '') return bad('missing');
  let host: string;
  let portText: string;
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
    if (isIP(host) !== 4) return bad(`${JSON.stringify(host)} is not an IPv4 address`);
  }
  if (!/^\d{1,5}$/.test(portText)) return bad(`port ${JSON.stringify(portText)} is not a number`);
  const port = Number(portText);
  if (port < 1 || port > 65535) return bad(`port ${port} is out of range`);
  return ok({ host, port });
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

export function formatForwarded(src: HostPort): string {
  return `for="${formatAuthority(src)}"`;
}

const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** A W3C traceparent if `value` is one (and not the all-zero IDs), else undefined. */
export function validTraceparent(value: unknown): string | undefined {
  if (typeof value !== 'string' || !TRACEPARENT.test(value)) return undefined;
  const [, trace, span] = value.split('-');
  return /^0+$/.test(trace ?? '') || /^0+$/.test(span ?? '') ? undefined : value;
}

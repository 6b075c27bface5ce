/**
 * What the traffic decoders (HTTPRoute, VirtualService, DestinationRule) check the same way:
 * header names and the redirect codes both route APIs allow.
 */
import type { ManifestFields } from './manifest-fields.js';

export interface HeaderValue {
  readonly name: string;
  readonly value: string;
}

export const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;
export const REDIRECT_CODES = [301, 302, 303, 307, 308];

export function headerName(f: ManifestFields, v: unknown, path: string): string {
  const name = f.str(v, path);
  if (name && !HEADER_NAME.test(name)) f.add(path, `${JSON.stringify(name)} is not a valid header name`);
  return name;
}

/**
 * The request target as the steps must see it. An HTTP/1.1 request may carry its target in
 * absolute-form (`GET http://host/path HTTP/1.1`); an upstream server then ignores Host and uses
 * the target's authority (RFC 9112 section 3.2.2). Policy, routing and the upstream request must
 * see the same authority and path, so the absolute-form is turned into origin-form with the
 * target's authority, as Envoy's HTTP/1.1 codec does (source/common/http/http1/codec_impl.cc,
 * `handlePath`). Any other form that is not a path (`GET admin`, `GET *`) is refused.
 */
import type { RequestRecord } from './downstream.js';

// scheme "://" authority (no userinfo) [path-abempty] ["?" query]; no fragment in a request target.
const ABSOLUTE = /^https?:\/\/([^/?#@\s]+)([/?][^#]*)?$/i;

/**
 * The record in origin-form: the same object when it already is (a path, or `*` for OPTIONS),
 * a copy with the target's authority (as `host` too) and path for absolute-form, or undefined
 * for a target that is neither (400).
 */
export function originForm(req: RequestRecord): RequestRecord | undefined {
  const target = req.path;
  if (target.startsWith('/') || (target === '*' && req.method === 'OPTIONS')) return req;
  const m = ABSOLUTE.exec(target);
  if (!m) return undefined;
  const authority = m[1] as string;
  const rest = m[2] ?? '';
  const path = rest.startsWith('/') ? rest : `/${rest}`;
  return { ...req, path, authority, headers: { ...req.headers, host: authority } };
}

/**
 * The request target as the steps must see it. An HTTP/1.1 request may carry its target in
 * absolute-form (`GET http://host/path HTTP/1.1`); an upstream server then ignores Host and uses
 * the target's authority (RFC 9112 section 3.2.2). Policy, routing and the upstream request must
 * see the same authority and path, so the absolute-form is turned into origin-form with the
 * target's authority, as Envoy's HTTP/1.1 codec does (source/common/http/http1/codec_impl.cc,
 * `handlePath`). Any other form that is not a path (`GET admin`, `GET *`) is refused. Dot
 * segments are removed from the path before any step sees it, and the upstream gets that path.
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
  if (target === '*' && req.method === 'OPTIONS') return req;
  if (target.startsWith('/')) {
    const path = withoutDotSegments(target);
    return path === target ? req : { ...req, path };
  }
  const m = ABSOLUTE.exec(target);
  if (!m) return undefined;
  const authority = m[1] as string;
  const rest = m[2] ?? '';
  const path = withoutDotSegments(rest.startsWith('/') ? rest : `/${rest}`);
  return { ...req, path, authority, headers: { ...req.headers, host: authority } };
}

const DOT = /^(?:\.|%2e)$/i;
const DOT_DOT = /^(?:\.|%2e){2}$/i;

/**
 * The path with `.` and `..` segments (also written `%2e`) removed (RFC 3986 section 5.2.4),
 * the query untouched: an upstream resolves `/public/../admin` to `/admin`, so policy and routing
 * must see that, as Envoy's `normalize_path` (Istio's default path normalization, BASE) gives.
 */
export function withoutDotSegments(target: string): string {
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  if (!path.includes('.') && !/%2e/i.test(path)) return target;
  const out: string[] = [];
  const segments = path.split('/').slice(1);
  segments.forEach((seg, i) => {
    const last = i === segments.length - 1;
    if (DOT.test(seg)) {
      if (last) out.push('');
    } else if (DOT_DOT.test(seg)) {
      out.pop();
      if (last) out.push('');
    } else out.push(seg);
  });
  return `/${out.join('/')}${q < 0 ? '' : target.slice(q)}`;
}

/** What route selection reads of a request. */
export interface RequestView {
  readonly method: string;
  /** The request target as sent: path and query (`/a/b?x=1`). */
  readonly path: string;
  readonly authority: string;
  /** Lower-case names; values of a repeated header joined with `,` as Envoy does. */
  readonly headers: Readonly<Record<string, string>>;
}

/** The path without its query or fragment, as Envoy's PathUtil::removeQueryAndFragment. */
export function pathOnly(path: string): string {
  const end = path.search(/[?#]/);
  return end < 0 ? path : path.slice(0, end);
}

/** Header lookup with `:method`, `:path` and `:authority` served from the request line. */
export function requestHeader(req: RequestView, name: string): string | undefined {
  switch (name) {
    case ':method':
      return req.method;
    case ':path':
      return req.path;
    case ':authority':
      return req.authority;
    default:
      return req.headers[name];
  }
}

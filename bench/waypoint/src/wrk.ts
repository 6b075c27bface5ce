export interface WrkResult {
  readonly rps: number;
  readonly requests: number;
  /** Connect, read, write and timeout errors together. */
  readonly socketErrors: number;
  readonly non2xx: number;
}

/** Reads wrk's text report: `Requests/sec:`, `N requests in`, socket errors, non-2xx answers. */
export function parseWrk(text: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text);
  const requests = /(\d+) requests in /.exec(text);
  if (!rps || !requests) throw new Error(`unreadable wrk report: ${text.trim().slice(0, 300)}`);
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const socketErrors = errors ? errors.slice(1).reduce((n, x) => n + Number(x), 0) : 0;
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0);
  return { rps: Number(rps[1]), requests: Number(requests[1]), socketErrors, non2xx };
}

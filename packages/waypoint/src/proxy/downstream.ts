/**
 * What the per-request steps (policy, routing, the upstream attempts, the answer) need from a
 * downstream request and its response, whichever server parsed it: Node's HTTP/1.1 or HTTP/2
 * server, or the waypoint's direct HTTP/1.1 path (http1/http1-connection.ts). Both paths call
 * the same steps on these, so a decision is made in one place.
 */

/** A request as the steps read it. */
export interface RequestRecord {
  readonly method: string;
  /** The request target as sent (path and query). */
  readonly path: string;
  /** `:authority`, else Host, else the tunnel's target. */
  readonly authority: string;
  /** "HTTP/1.0", "HTTP/1.1" or "HTTP/2". */
  readonly protocol: string;
  /** Lower-case names; repeated fields joined (set-cookie a list), as Node's `req.headers`. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Header fields the request carried, pseudo-headers not counted. */
  readonly headerCount: number;
}

/**
 * The response the steps write: Node's ServerResponse and Http2ServerResponse satisfy it, and so
 * does the direct path's writer. 'close' before 'finish' means the client went away.
 */
export interface DownstreamResponse {
  readonly headersSent: boolean;
  readonly writableFinished: boolean;
  readonly destroyed: boolean;
  writeHead(status: number, headers: Record<string, string | string[]>): unknown;
  /** False when the client is not keeping up: wait for 'drain'. */
  write(chunk: Buffer): boolean;
  end(chunk?: Buffer): unknown;
  addTrailers(trailers: Record<string, string | string[]>): void;
  destroy(): unknown;
  once(event: 'close' | 'finish' | 'drain', listener: () => void): unknown;
}

/**
 * Whether the client went away before its response finished ('close' before 'finish'), and what
 * to call when it does: one 'close' listener per response, however many steps watch it.
 */
export class DownstreamWatch {
  gone = false;
  private cut = false;
  private readonly calls: Array<() => void> = [];

  constructor(private readonly res: DownstreamResponse) {
    res.once('close', () => this.closed());
  }

  /** Calls `fn` once if the client goes away before its response is finished. */
  onGone(fn: () => void): void {
    this.calls.push(fn);
  }

  /**
   * The waypoint cut the response off itself (the upstream broke mid-response): the close that
   * follows is not the client going away.
   */
  cutOff(): void {
    this.cut = true;
  }

  private closed(): void {
    if (this.res.writableFinished || this.cut) return;
    this.gone = true;
    for (const fn of this.calls) fn();
  }
}

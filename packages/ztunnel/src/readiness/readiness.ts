/**
 * Readiness (15021 `/healthz/ready`), gated by named blockers as upstream ztunnel's
 * src/readiness.rs: the node agent is ready when no blocker is left, and a refusal names them.
 * The answers are those of upstream's src/readiness/server.rs (see `readinessReply`).
 */
import type { HttpHandler } from '@ambient/shared';

/** The readiness blocker of a pod that should be enrolled and is not served yet. */
export function podBlocker(w: { namespace: string; name: string }): string {
  return `pod ${w.namespace}/${w.name}`;
}

/** An answer of the readiness endpoint; `body` is sent as text/plain unless empty. */
export interface ReadinessReply {
  status: number;
  body: string;
}

/**
 * What `/healthz/ready` answers, as upstream's src/readiness/server.rs: GET gives 200 `ready\n`
 * when nothing blocks, else 500 `not ready, pending: <blockers, sorted>\n`; another method on that
 * path gives an empty 405, and any other path an empty 404 (whatever the method). The query is ignored.
 */
export function readinessReply(method: string, url: string, pending: readonly string[]): ReadinessReply {
  if (pathOf(url) !== '/healthz/ready') return { status: 404, body: '' };
  if (method !== 'GET') return { status: 405, body: '' };
  if (pending.length === 0) return { status: 200, body: 'ready\n' };
  return { status: 500, body: `not ready, pending: ${[...pending].sort().join(', ')}\n` };
}

/** The path of a request target, without its query. */
export function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

export class Readiness {
  /** Named reasons not to be ready yet; ready when empty. */
  private readonly blockers: Set<string>;

  constructor(initial: readonly string[]) {
    this.blockers = new Set(initial);
  }

  block(name: string): void {
    this.blockers.add(name);
  }

  unblock(name: string): void {
    this.blockers.delete(name);
  }

  /** The blockers left, in the order they were added. */
  pending(): string[] {
    return [...this.blockers];
  }

  get ready(): boolean {
    return this.blockers.size === 0;
  }

  /** The 15021 endpoint (answers as `readinessReply`). */
  readonly handler: HttpHandler = (req, res) => {
    const reply = readinessReply(req.method ?? '', req.url ?? '', this.pending());
    res.statusCode = reply.status;
    if (reply.body !== '') res.setHeader('content-type', 'text/plain');
    res.end(reply.body);
  };
}

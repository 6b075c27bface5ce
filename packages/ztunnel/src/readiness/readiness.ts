/**
 * Readiness (15021 `/healthz/ready`), gated by named blockers as upstream ztunnel's
 * src/readiness.rs: the node agent is ready when no blocker is left, and a refusal names them.
 * The answers are those of upstream's src/readiness/server.rs (`readinessReply` in @ambient/shared).
 */
import { type HttpHandler, readinessReply, sendReadinessReply } from '@ambient/shared';

/** The readiness blocker of a pod that should be enrolled and is not served yet. */
export function podBlocker(w: { namespace: string; name: string }): string {
  return `pod ${w.namespace}/${w.name}`;
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
    sendReadinessReply(res, readinessReply(req.method ?? '', req.url ?? '', this.pending()));
  };
}

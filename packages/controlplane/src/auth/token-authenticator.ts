/**
 * Bearer tokens to callers, from a token file (JSON: { "<token>": { "node": "node0" } } for a
 * node's ztunnel, or { "<token>": { "namespace": "ns", "serviceAccount": "sa" } } for a workload).
 * In a cluster this is Kubernetes TokenReview; the file is the local stand-in, with the same
 * outcome: each caller is a service account, and a node agent's token is bound to its node.
 */
import { timingSafeEqual } from 'node:crypto';
import { unwatchFile, watchFile } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fail, ok, type Problem, type Result } from '@ambient/shared';

/** The pod a service-account token is bound to (TokenReview's pod-name and pod-uid extras). */
export interface BoundPod {
  readonly name: string;
  readonly uid: string;
}

export type Caller =
  | {
      readonly kind: 'ztunnel';
      readonly node: string;
      readonly namespace: string;
      readonly serviceAccount: string;
      readonly pod?: BoundPod;
    }
  | {
      readonly kind: 'workload';
      readonly namespace: string;
      readonly serviceAccount: string;
      /** Set when the token is bound to a pod: the caller is that pod and no other. */
      readonly pod?: BoundPod;
    };

/** Metric label (citadel_server_authentication_failure_count{reason}) of a refused token. */
export type AuthFailureReason =
  | 'token'
  | 'audience'
  | 'expired'
  | 'unbound'
  | 'not_service_account'
  | 'pod'
  | 'review_error'
  | 'review_busy';

/** A caller, or why there is none (`reason` absent: `token`). */
export type Authentication = Result<Caller> & { readonly reason?: AuthFailureReason };

/**
 * What the xDS servers and the CA ask who a bearer token stands for: the token file here, the
 * Kubernetes TokenReview API in a cluster (kube-token-authenticator.ts).
 */
export interface Authenticator {
  authenticate(header: string | undefined): Authentication | Promise<Authentication>;
  close(): void;
}

export function parseTokenFile(text: string): Result<ReadonlyMap<string, Caller>> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return fail({ path: '', message: `JSON: ${(err as Error).message}` });
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc))
    return fail({ path: '', message: 'must be a map' });
  const problems: Problem[] = [];
  const out = new Map<string, Caller>();
  for (const [token, v] of Object.entries(doc as Record<string, Record<string, unknown>>)) {
    const path = `${token.slice(0, 6)}...`;
    if (token.length < 16) problems.push({ path, message: 'token must be at least 16 characters' });
    if (v && typeof v.node === 'string' && v.node) {
      out.set(token, {
        kind: 'ztunnel',
        node: v.node,
        namespace: typeof v.namespace === 'string' ? v.namespace : 'istio-system',
        serviceAccount: typeof v.serviceAccount === 'string' ? v.serviceAccount : 'ztunnel',
      });
    } else if (
      v &&
      typeof v.namespace === 'string' &&
      v.namespace &&
      typeof v.serviceAccount === 'string' &&
      v.serviceAccount
    ) {
      // A workload token: what a Kubernetes service-account token proves. It may take that
      // identity's certificate and open a waypoint stream for a pod running as that account.
      out.set(token, { kind: 'workload', namespace: v.namespace, serviceAccount: v.serviceAccount });
    } else {
      problems.push({ path, message: 'must have node, or namespace and serviceAccount' });
    }
  }
  return problems.length ? fail(problems) : ok(out);
}

export class TokenAuthenticator implements Authenticator {
  private watched?: string;

  constructor(private tokens: ReadonlyMap<string, Caller>) {}

  static async fromFile(path: string): Promise<TokenAuthenticator> {
    return new TokenAuthenticator(await TokenAuthenticator.load(path));
  }

  private static async load(path: string): Promise<ReadonlyMap<string, Caller>> {
    const parsed = parseTokenFile(await readFile(path, 'utf8'));
    if (!parsed.ok) {
      throw new Error(`${path}: ${parsed.problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
    }
    return parsed.value;
  }

  /**
   * Follows the token file as it changes (a new waypoint gets its token while the control plane
   * runs, as TokenReview would see a new service-account token). A file that does not parse is
   * reported and the previous tokens stay in force.
   */
  watch(path: string, onError: (err: Error) => void, intervalMs = 250): void {
    this.watched = path;
    watchFile(path, { interval: intervalMs, persistent: false }, () => {
      TokenAuthenticator.load(path).then(
        (tokens) => {
          this.tokens = tokens;
        },
        (err: unknown) => onError(err as Error),
      );
    });
  }

  close(): void {
    if (this.watched) unwatchFile(this.watched);
    this.watched = undefined;
  }

  /** The caller for an `authorization` header value, or why there is none. */
  authenticate(header: string | undefined): Result<Caller> {
    if (!header) return fail({ path: 'authorization', message: 'no bearer token' });
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match?.[1]) return fail({ path: 'authorization', message: 'not a bearer token' });
    const given = Buffer.from(match[1]);
    for (const [token, caller] of this.tokens) {
      const t = Buffer.from(token);
      if (t.length === given.length && timingSafeEqual(t, given)) return ok(caller);
    }
    return fail({ path: 'authorization', message: 'unknown token' });
  }
}

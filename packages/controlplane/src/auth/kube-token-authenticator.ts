/**
 * Bearer tokens verified with the Kubernetes TokenReview API, as istiod's KubeJWTAuthenticator
 * (istio/istio security/pkg/server/ca/authenticate/kubeauth/kube_jwt.go,
 * security/pkg/k8s/tokenreview/k8sauthn.go): the review asks for the configured audiences
 * (istio-ca by default), the user must be in `system:serviceaccounts` and named
 * `system:serviceaccount:<ns>:<sa>`, and the token's bound pod comes from the
 * `authentication.kubernetes.io/pod-name` and `pod-uid` extras.
 *
 * The node agent's service account (istio-system/ztunnel by default) is a node agent: its node is
 * the bound pod's `spec.nodeName`, looked up in the pods the control plane knows, and the pod must
 * still be the one the token names (same UID, same service account), as istiod's
 * ClusterNodeAuthorizer checks (security/pkg/server/ca/node_auth.go). Unlike istiod, a token not
 * bound to a pod is refused for every caller: projected tokens always are.
 *
 * Positive reviews are cached (bounded in entries and time, never past the token's `exp`) and
 * concurrent reviews of one token share a request, so a reconnecting fleet does not multiply
 * TokenReview calls; at most `maxReviewsInFlight` reviews run at once. The node lookup is not cached: it reads the current pods every time.
 */
import { createHash } from 'node:crypto';
import type * as k8s from '@kubernetes/client-node';
import type {
  Authentication,
  Authenticator,
  AuthFailureReason,
  BoundPod,
  Caller,
} from './token-authenticator.js';

export const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';
export const POD_UID_EXTRA = 'authentication.kubernetes.io/pod-uid';
/** istiod's default token audience (security.TokenAudiences). */
export const DEFAULT_TOKEN_AUDIENCES: readonly string[] = ['istio-ca'];

/** The parts of a TokenReview status that are read. */
export interface TokenReviewStatus {
  readonly authenticated?: boolean;
  readonly error?: string;
  readonly audiences?: readonly string[];
  readonly user?: {
    readonly username?: string;
    readonly groups?: readonly string[];
    readonly extra?: Readonly<Record<string, readonly string[]>>;
  };
}

/** POSTs a TokenReview and returns its status; rejects when the API cannot be asked. */
export type TokenReviewer = (token: string, audiences: readonly string[]) => Promise<TokenReviewStatus>;

/** What the node authorization needs of a pod (a PodObject is one). */
export interface KnownPod {
  readonly metadata: { readonly uid?: string };
  readonly nodeName: string;
  readonly serviceAccountName: string;
}

/** A pod by namespace and name, from the pods the control plane knows. */
export type PodLookup = (namespace: string, name: string) => KnownPod | undefined;

/** A reviewed token: the service account and the pod it is bound to. */
export interface ReviewedToken {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly pod: BoundPod;
}

type Refusal = { readonly ok: false; readonly reason: AuthFailureReason; readonly message: string };

function refusal(reason: AuthFailureReason, message: string): Refusal {
  return { ok: false, reason, message };
}

function first(extra: TokenReviewStatus['user'], key: string): string {
  return extra?.extra?.[key]?.[0] ?? '';
}

/** The reviewed identity of a TokenReview status, or why the token is refused. */
export function readTokenReview(
  status: TokenReviewStatus,
  audiences: readonly string[],
): { readonly ok: true; readonly value: ReviewedToken } | Refusal {
  if (status.authenticated !== true) {
    const error = status.error ?? '';
    // The API server says why; its wording for a token of another audience is "token audiences
    // [...] is invalid for the target audiences [...]".
    const reason: AuthFailureReason = /audience/i.test(error)
      ? 'audience'
      : /expired/i.test(error)
        ? 'expired'
        : 'token';
    return refusal(reason, `token not authenticated by TokenReview${error ? `: ${error}` : ''}`);
  }
  // An authenticator that ignores spec.audiences answers with none: refuse rather than assume.
  if (audiences.length > 0 && !(status.audiences ?? []).some((a) => audiences.includes(a)))
    return refusal(
      'audience',
      `token audiences [${(status.audiences ?? []).join(', ')}] are not [${audiences.join(', ')}]`,
    );
  const user = status.user;
  if (!user?.groups?.includes('system:serviceaccounts'))
    return refusal('not_service_account', `${user?.username ?? 'the caller'} is not a service account`);
  const parts = (user.username ?? '').split(':');
  if (parts.length !== 4 || parts[0] !== 'system' || parts[1] !== 'serviceaccount' || !parts[2] || !parts[3])
    return refusal('not_service_account', `username ${user.username} is not system:serviceaccount:<ns>:<sa>`);
  const podName = first(user, POD_NAME_EXTRA);
  const podUid = first(user, POD_UID_EXTRA);
  if (!podName || !podUid)
    return refusal(
      'unbound',
      `token of ${parts[2]}/${parts[3]} is not bound to a pod (use a projected service-account token)`,
    );
  return {
    ok: true,
    value: { namespace: parts[2], serviceAccount: parts[3], pod: { name: podName, uid: podUid } },
  };
}

/**
 * The caller a reviewed token stands for. The node agent's account gets the node of its bound
 * pod, which must be known, still have the token's UID, run as that account and be scheduled.
 */
export function callerOf(
  reviewed: ReviewedToken,
  nodeAgent: { readonly namespace: string; readonly serviceAccount: string },
  pods: PodLookup,
): { readonly ok: true; readonly value: Caller } | Refusal {
  const { namespace, serviceAccount, pod } = reviewed;
  if (namespace !== nodeAgent.namespace || serviceAccount !== nodeAgent.serviceAccount)
    return { ok: true, value: { kind: 'workload', namespace, serviceAccount, pod } };
  const ref = `${namespace}/${pod.name}`;
  const known = pods(namespace, pod.name);
  if (!known) return refusal('pod', `node agent pod ${ref} is not known`);
  // A pod re-created under the same name is another pod: the client retries with a new token.
  if (known.metadata.uid !== pod.uid)
    return refusal(
      'pod',
      `node agent pod ${ref} has UID ${known.metadata.uid ?? '(none)'}, the token ${pod.uid}`,
    );
  if (known.serviceAccountName !== serviceAccount)
    return refusal('pod', `node agent pod ${ref} runs as ${known.serviceAccountName}, not ${serviceAccount}`);
  if (!known.nodeName) return refusal('pod', `node agent pod ${ref} is not scheduled to a node`);
  return { ok: true, value: { kind: 'ztunnel', node: known.nodeName, namespace, serviceAccount, pod } };
}

/** The `exp` claim of a JWT, in ms, or undefined. Read only after TokenReview verified the token. */
export function tokenExpiryMs(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (!payload) return undefined;
  try {
    const exp = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown }).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

export interface KubeTokenAuthenticatorOptions {
  readonly review: TokenReviewer;
  readonly pods: PodLookup;
  /** Default istio-ca. */
  readonly audiences?: readonly string[];
  /** The node agent's service account. Default istio-system/ztunnel. */
  readonly nodeAgent?: { readonly namespace: string; readonly serviceAccount: string };
  /** How long a positive review is reused. Default 60 s; 0 disables the cache. */
  readonly cacheTtlMs?: number;
  /** Most cached tokens; the oldest goes first. Default 10,000. */
  readonly cacheMaxEntries?: number;
  /**
   * Most TokenReviews in flight; a token needing one more is refused (`review_busy`) rather than
   * queued, so a flood of distinct tokens cannot pile requests on the API server. Default 100.
   */
  readonly maxReviewsInFlight?: number;
  readonly now?: () => number;
}

interface CacheEntry {
  readonly reviewed: ReviewedToken;
  readonly until: number;
}

export class KubeTokenAuthenticator implements Authenticator {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inflight = new Map<string, Promise<{ ok: true; value: ReviewedToken } | Refusal>>();
  private readonly audiences: readonly string[];
  private readonly nodeAgent: { readonly namespace: string; readonly serviceAccount: string };
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  /** TokenReview requests sent, for tests and /debug. */
  reviews = 0;

  constructor(private readonly options: KubeTokenAuthenticatorOptions) {
    this.audiences = options.audiences ?? DEFAULT_TOKEN_AUDIENCES;
    this.nodeAgent = options.nodeAgent ?? { namespace: 'istio-system', serviceAccount: 'ztunnel' };
    this.ttlMs = options.cacheTtlMs ?? 60_000;
    this.maxEntries = options.cacheMaxEntries ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  close(): void {
    this.cache.clear();
  }

  async authenticate(header: string | undefined): Promise<Authentication> {
    if (!header) return { ok: false, problems: [{ path: 'authorization', message: 'no bearer token' }] };
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match?.[1])
      return { ok: false, problems: [{ path: 'authorization', message: 'not a bearer token' }] };
    const reviewed = await this.reviewed(match[1]);
    const caller = reviewed.ok ? callerOf(reviewed.value, this.nodeAgent, this.options.pods) : reviewed;
    if (caller.ok) return caller;
    return {
      ok: false,
      reason: caller.reason,
      problems: [{ path: 'authorization', message: caller.message }],
    };
  }

  private async reviewed(token: string): Promise<{ ok: true; value: ReviewedToken } | Refusal> {
    // Keyed by a digest: the cache never holds a usable token.
    const key = createHash('sha256').update(token).digest('base64url');
    const now = this.now();
    const hit = this.cache.get(key);
    if (hit && hit.until > now) return { ok: true, value: hit.reviewed };
    if (hit) this.cache.delete(key);
    const pending = this.inflight.get(key);
    if (pending) return pending;
    const most = this.options.maxReviewsInFlight ?? 100;
    if (this.inflight.size >= most)
      return refusal('review_busy', `${most} TokenReviews are in flight; retry`);
    const review = this.review(token, key).finally(() => this.inflight.delete(key));
    this.inflight.set(key, review);
    return review;
  }

  private async review(token: string, key: string): Promise<{ ok: true; value: ReviewedToken } | Refusal> {
    this.reviews += 1;
    let status: TokenReviewStatus;
    try {
      status = await this.options.review(token, this.audiences);
    } catch (err) {
      return refusal('review_error', `TokenReview failed: ${(err as Error).message}`);
    }
    const read = readTokenReview(status, this.audiences);
    if (!read.ok || this.ttlMs <= 0) return read;
    const now = this.now();
    const until = Math.min(now + this.ttlMs, tokenExpiryMs(token) ?? now + this.ttlMs);
    if (until > now) {
      while (this.cache.size >= this.maxEntries) {
        const oldest = this.cache.keys().next().value;
        if (oldest === undefined) break;
        this.cache.delete(oldest);
      }
      this.cache.set(key, { reviewed: read.value, until });
    }
    return read;
  }
}

/** A TokenReviewer on the API server of a kubeconfig (in-cluster or a file). */
export function apiTokenReviewer(api: k8s.AuthenticationV1Api): TokenReviewer {
  return async (token, audiences) => {
    const res = await api.createTokenReview({
      body: {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenReview',
        spec: { token, audiences: [...audiences] },
      },
    });
    return (res.status ?? {}) as TokenReviewStatus;
  };
}

/**
 * How callers are authenticated, from the control plane's settings: `file` (CP_TOKENS_FILE, the
 * lab's stand-in) or `tokenreview` (the Kubernetes TokenReview API, as istiod).
 */
import type { EnvSettings } from '@ambient/shared';
import { DEFAULT_TOKEN_AUDIENCES } from './kube-token-authenticator.js';

export interface AuthSettings {
  /** CP_AUTHENTICATION: `file` (default) or `tokenreview`. */
  readonly mode: 'file' | 'tokenreview';
  /** CP_TOKEN_AUDIENCES: audiences a token must carry (comma-separated). Default istio-ca. */
  readonly audiences: readonly string[];
  /** CP_ZTUNNEL_SERVICE_ACCOUNT `<namespace>/<name>`: the node agent's account. */
  readonly nodeAgent: { readonly namespace: string; readonly serviceAccount: string };
  /** CP_TOKEN_CACHE_TTL: how long a positive TokenReview is reused (never past the token's exp). */
  readonly cacheTtlMs: number;
}

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export function parseAuthSettings(e: EnvSettings): AuthSettings {
  const mode = e.required('CP_AUTHENTICATION', 'file');
  if (mode !== 'file' && mode !== 'tokenreview')
    e.add('CP_AUTHENTICATION', `${JSON.stringify(mode)} must be file or tokenreview`);
  const audiences = e
    .required('CP_TOKEN_AUDIENCES', DEFAULT_TOKEN_AUDIENCES.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (audiences.length === 0) e.add('CP_TOKEN_AUDIENCES', 'must name at least one audience');
  const sa = e.required('CP_ZTUNNEL_SERVICE_ACCOUNT', 'istio-system/ztunnel');
  const [namespace = '', serviceAccount = '', ...rest] = sa.split('/');
  if (rest.length > 0 || !NAME.test(namespace) || !NAME.test(serviceAccount))
    e.add('CP_ZTUNNEL_SERVICE_ACCOUNT', `${JSON.stringify(sa)} must be <namespace>/<service account>`);
  const cacheTtlMs = e.durationMs('CP_TOKEN_CACHE_TTL', 60_000);
  if (cacheTtlMs < 0 || cacheTtlMs > 3600_000)
    e.add('CP_TOKEN_CACHE_TTL', 'must be from 0s (no cache) to 1h');
  return {
    mode: mode === 'tokenreview' ? 'tokenreview' : 'file',
    audiences,
    nodeAgent: { namespace, serviceAccount },
    cacheTtlMs,
  };
}

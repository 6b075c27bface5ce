/**
 * State-of-the-world subscriptions, per stream and type URL, as Envoy's xDS protocol defines them
 * (api/xds_protocol.rst): the first request with no names is a wildcard for the types whose
 * server decides what the client needs (listeners, clusters, and Istio's workload types), `*`
 * asks for the wildcard explicitly, and every request carries the full list of names wanted.
 * A request is answered when it is the first of its type on the stream or changes what is
 * subscribed; an ACK or NACK of the latest response is not answered, and one naming an older
 * nonce is stale and ignored. Pure decisions, no I/O.
 */
import {
  ADDRESS_TYPE_URL,
  AUTHORIZATION_TYPE_URL,
  CLUSTER_TYPE_URL,
  LISTENER_TYPE_URL,
} from '@ambient/shared';

/** Types whose empty first request is a wildcard: the server decides what the client needs. */
export const SOTW_WILDCARD_TYPES: ReadonlySet<string> = new Set([
  LISTENER_TYPE_URL,
  CLUSTER_TYPE_URL,
  ADDRESS_TYPE_URL,
  AUTHORIZATION_TYPE_URL,
]);

export interface SotwWatch {
  readonly wildcard: boolean;
  /** Wildcard by an empty first request: empty lists keep it so. */
  readonly legacyWildcard: boolean;
  readonly names: ReadonlySet<string>;
}

export interface SotwRequestView {
  readonly typeUrl: string;
  readonly resourceNames: readonly string[];
  readonly responseNonce: string;
  readonly hasError: boolean;
}

export type SotwDecision =
  /** A nonce older than the latest response: ignore the request. */
  | { readonly kind: 'stale' }
  /** ACK or NACK of the latest response with nothing new asked: record it, answer nothing. */
  | { readonly kind: 'ack' | 'nack'; readonly watch: SotwWatch }
  /** Answer with the full state of what `watch` subscribes to (after recording any ACK/NACK). */
  | { readonly kind: 'respond'; readonly watch: SotwWatch; readonly ack?: 'ack' | 'nack' };

function sameNames(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const n of a) if (!b.has(n)) return false;
  return true;
}

/** The subscription a request asks for, given the one in force (undefined on the first request). */
export function nextWatch(prev: SotwWatch | undefined, req: SotwRequestView): SotwWatch {
  const explicit = req.resourceNames.includes('*');
  const names = new Set(req.resourceNames.filter((n) => n !== '*'));
  if (!SOTW_WILDCARD_TYPES.has(req.typeUrl)) return { wildcard: false, legacyWildcard: false, names };
  if (!prev) {
    const legacy = req.resourceNames.length === 0;
    return { wildcard: legacy || explicit, legacyWildcard: legacy, names };
  }
  if (prev.legacyWildcard && req.resourceNames.length === 0) return prev;
  // Names without `*` leave wildcard mode, as the current protocol allows.
  return { wildcard: explicit, legacyWildcard: false, names };
}

/**
 * What to do with a request, given the stream's subscription for its type and the nonce of the
 * latest response sent for it.
 */
export function decideSotw(
  prev: SotwWatch | undefined,
  latestNonce: string | undefined,
  req: SotwRequestView,
): SotwDecision {
  if (req.responseNonce === '') {
    // The first request for the type (or the client starting over): answer it in full.
    return { kind: 'respond', watch: nextWatch(prev, req) };
  }
  // A nonce this stream was never sent for the type is as stale as an old one.
  if (!prev || req.responseNonce !== latestNonce) return { kind: 'stale' };
  const ack = req.hasError ? 'nack' : 'ack';
  const watch = nextWatch(prev, req);
  if (watch.wildcard !== prev.wildcard || !sameNames(watch.names, prev.names))
    return { kind: 'respond', watch, ack };
  return { kind: ack, watch: prev };
}

/** Whether a resource is in what the subscription asks for. */
export function watches(watch: SotwWatch, name: string): boolean {
  return watch.wildcard || watch.names.has(name);
}

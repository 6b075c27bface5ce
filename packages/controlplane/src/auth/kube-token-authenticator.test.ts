import { describe, expect, it } from 'vitest';
import {
  callerOf,
  type KnownPod,
  KubeTokenAuthenticator,
  POD_NAME_EXTRA,
  POD_UID_EXTRA,
  readTokenReview,
  type TokenReviewStatus,
  tokenExpiryMs,
} from './kube-token-authenticator.js';

const AUD = ['istio-ca'];
const NODE_AGENT = { namespace: 'istio-system', serviceAccount: 'ztunnel' };

function status(username: string, pod?: { name: string; uid: string }): TokenReviewStatus {
  return {
    authenticated: true,
    audiences: AUD,
    user: {
      username,
      groups: ['system:serviceaccounts', `system:serviceaccounts:${username.split(':')[2]}`],
      ...(pod && { extra: { [POD_NAME_EXTRA]: [pod.name], [POD_UID_EXTRA]: [pod.uid] } }),
    },
  };
}

/** A JWT-shaped token with an exp claim (TokenReview is faked here; nothing checks the signature). */
function jwt(expSeconds: number, salt = ''): string {
  const b = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b({ alg: 'RS256' })}.${b({ exp: expSeconds, salt })}.sig`;
}

describe('readTokenReview', () => {
  it('reads the service account and bound pod of an authenticated review', () => {
    expect(
      readTokenReview(status('system:serviceaccount:demo:sleep', { name: 'sleep-1', uid: 'u1' }), AUD),
    ).toEqual({
      ok: true,
      value: { namespace: 'demo', serviceAccount: 'sleep', pod: { name: 'sleep-1', uid: 'u1' } },
    });
  });

  it('refuses with a reason: wrong audience, expired, unknown, not a service account, unbound', () => {
    const reason = (s: TokenReviewStatus) => {
      const r = readTokenReview(s, AUD);
      return r.ok ? 'ok' : r.reason;
    };
    expect(
      reason({
        authenticated: false,
        error:
          '[invalid bearer token, token audiences ["other"] is invalid for the target audiences ["istio-ca"]]',
      }),
    ).toBe('audience');
    expect(reason({ authenticated: false, error: '[invalid bearer token, Token has expired.]' })).toBe(
      'expired',
    );
    expect(reason({ authenticated: false, error: 'square/go-jose: error in cryptographic primitive' })).toBe(
      'token',
    );
    expect(reason({})).toBe('token');
    // Authenticated, but for audiences we did not ask for (an authenticator that ignores them).
    expect(
      reason({ ...status('system:serviceaccount:demo:sleep', { name: 'p', uid: 'u' }), audiences: [] }),
    ).toBe('audience');
    expect(
      reason({
        authenticated: true,
        audiences: AUD,
        user: { username: 'alice', groups: ['system:authenticated'] },
      }),
    ).toBe('not_service_account');
    expect(
      reason({
        authenticated: true,
        audiences: AUD,
        user: { username: 'system:serviceaccount:demo', groups: ['system:serviceaccounts'] },
      }),
    ).toBe('not_service_account');
    expect(reason(status('system:serviceaccount:demo:sleep'))).toBe('unbound');
  });
});

describe('callerOf', () => {
  const pods = new Map<string, KnownPod>([
    [
      'istio-system/ztunnel-a',
      { metadata: { uid: 'za' }, nodeName: 'node-a', serviceAccountName: 'ztunnel' },
    ],
    [
      'istio-system/ztunnel-pending',
      { metadata: { uid: 'zp' }, nodeName: '', serviceAccountName: 'ztunnel' },
    ],
    ['istio-system/other', { metadata: { uid: 'zo' }, nodeName: 'node-a', serviceAccountName: 'default' }],
  ]);
  const lookup = (ns: string, name: string) => pods.get(`${ns}/${name}`);
  const node = (name: string, uid: string) =>
    callerOf({ ...NODE_AGENT, pod: { name, uid } }, NODE_AGENT, lookup);

  it('makes the node agent account a node agent on its bound pod’s node', () => {
    expect(node('ztunnel-a', 'za')).toEqual({
      ok: true,
      value: { kind: 'ztunnel', node: 'node-a', ...NODE_AGENT, pod: { name: 'ztunnel-a', uid: 'za' } },
    });
  });

  it('refuses a node agent whose pod is unknown, re-created, of another account or unscheduled', () => {
    for (const [name, uid, text] of [
      ['ztunnel-gone', 'zg', 'is not known'],
      ['ztunnel-a', 'old-uid', 'has UID za'],
      ['other', 'zo', 'runs as default'],
      ['ztunnel-pending', 'zp', 'not scheduled'],
    ] as const) {
      const r = node(name, uid);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.reason).toBe('pod');
        expect(r.message).toContain(text);
      }
    }
  });

  it('makes any other account a workload caller bound to its pod', () => {
    expect(
      callerOf(
        { namespace: 'demo', serviceAccount: 'sleep', pod: { name: 's', uid: 'u' } },
        NODE_AGENT,
        lookup,
      ),
    ).toEqual({
      ok: true,
      value: { kind: 'workload', namespace: 'demo', serviceAccount: 'sleep', pod: { name: 's', uid: 'u' } },
    });
  });
});

describe('KubeTokenAuthenticator', () => {
  it('reviews a token once for a burst of concurrent calls, and reuses it until the TTL', async () => {
    let now = 1_000_000;
    let reviews = 0;
    const auth = new KubeTokenAuthenticator({
      review: async (_t, audiences) => {
        reviews += 1;
        expect(audiences).toEqual(AUD);
        await new Promise((r) => setTimeout(r, 5));
        return status('system:serviceaccount:demo:sleep', { name: 's', uid: 'u' });
      },
      pods: () => undefined,
      cacheTtlMs: 10_000,
      now: () => now,
    });
    const token = jwt(now / 1000 + 3600);
    const results = await Promise.all(Array.from({ length: 50 }, () => auth.authenticate(`Bearer ${token}`)));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(reviews).toBe(1);
    now += 9_000;
    expect((await auth.authenticate(`Bearer ${token}`)).ok).toBe(true);
    expect(reviews).toBe(1);
    now += 2_000;
    expect((await auth.authenticate(`Bearer ${token}`)).ok).toBe(true);
    expect(reviews).toBe(2);
  });

  it('never caches past the token’s exp, and never caches a refusal', async () => {
    let now = 1_000_000;
    let answer: TokenReviewStatus = status('system:serviceaccount:demo:sleep', { name: 's', uid: 'u' });
    const auth = new KubeTokenAuthenticator({
      review: async () => answer,
      pods: () => undefined,
      cacheTtlMs: 60_000,
      now: () => now,
    });
    const token = jwt(now / 1000 + 5);
    expect((await auth.authenticate(`Bearer ${token}`)).ok).toBe(true);
    answer = { authenticated: false, error: 'Token has expired.' };
    now += 4_000;
    expect((await auth.authenticate(`Bearer ${token}`)).ok).toBe(true);
    expect(auth.reviews).toBe(1);
    now += 2_000;
    expect(await auth.authenticate(`Bearer ${token}`)).toMatchObject({ ok: false, reason: 'expired' });
    expect(await auth.authenticate(`Bearer ${token}`)).toMatchObject({ ok: false, reason: 'expired' });
    expect(auth.reviews).toBe(3);
  });

  it('keeps at most cacheMaxEntries tokens, dropping the oldest', async () => {
    const auth = new KubeTokenAuthenticator({
      review: async () => status('system:serviceaccount:demo:sleep', { name: 's', uid: 'u' }),
      pods: () => undefined,
      cacheMaxEntries: 2,
      now: () => 1_000_000,
    });
    const tokens = ['a', 'b', 'c'].map((s) => jwt(2000, s));
    for (const t of tokens) await auth.authenticate(`Bearer ${t}`);
    expect(auth.reviews).toBe(3);
    await auth.authenticate(`Bearer ${tokens[2]}`);
    await auth.authenticate(`Bearer ${tokens[1]}`);
    expect(auth.reviews).toBe(3);
    await auth.authenticate(`Bearer ${tokens[0]}`);
    expect(auth.reviews).toBe(4);
  });

  it('refuses, with review_error, when the API server cannot be asked; and a missing or odd header', async () => {
    const auth = new KubeTokenAuthenticator({
      review: async () => {
        throw new Error('connect ECONNREFUSED');
      },
      pods: () => undefined,
    });
    expect(await auth.authenticate('Bearer x.y.z')).toMatchObject({
      ok: false,
      reason: 'review_error',
      problems: [{ message: 'TokenReview failed: connect ECONNREFUSED' }],
    });
    expect(await auth.authenticate(undefined)).toMatchObject({ ok: false });
    expect(await auth.authenticate('Basic abc')).toMatchObject({ ok: false });
  });

  it('refuses, with review_busy, a token needing a review beyond maxReviewsInFlight, and reviews again once one ends', async () => {
    const release: Array<() => void> = [];
    const auth = new KubeTokenAuthenticator({
      review: () =>
        new Promise((resolve) =>
          release.push(() => resolve(status('system:serviceaccount:demo:sleep', { name: 's', uid: 'u' }))),
        ),
      pods: () => undefined,
      maxReviewsInFlight: 2,
      now: () => 1_000_000,
    });
    const [a, b, c] = ['a', 'b', 'c'].map((s) => `Bearer ${jwt(2000, s)}`) as [string, string, string];
    const first = [auth.authenticate(a), auth.authenticate(b), auth.authenticate(a)];
    expect(await auth.authenticate(c)).toMatchObject({
      ok: false,
      reason: 'review_busy',
      problems: [{ message: '2 TokenReviews are in flight; retry' }],
    });
    expect(auth.reviews).toBe(2);
    for (const r of release.splice(0)) r();
    expect((await Promise.all(first)).map((r) => r.ok)).toEqual([true, true, true]);
    const again = auth.authenticate(c);
    for (const r of release.splice(0)) r();
    expect((await again).ok).toBe(true);
    expect(auth.reviews).toBe(3);
  });

  it('reads exp from a JWT and nothing from a non-JWT', () => {
    expect(tokenExpiryMs(jwt(1234))).toBe(1_234_000);
    expect(tokenExpiryMs('opaque')).toBeUndefined();
    expect(tokenExpiryMs('a.!!!.c')).toBeUndefined();
  });
});

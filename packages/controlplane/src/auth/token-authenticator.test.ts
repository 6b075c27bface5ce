import { describe, expect, it } from 'vitest';
import { parseTokenFile, TokenAuthenticator } from './token-authenticator.js';

const NODE = 'node0-token-0123456789abcdef';
const WAYPOINT = 'waypoint-token-0123456789ab';

describe('token file', () => {
  it('reads node tokens and workload (service account) tokens', () => {
    const r = parseTokenFile(
      JSON.stringify({
        [NODE]: { node: 'node0' },
        [WAYPOINT]: { namespace: 'demo', serviceAccount: 'waypoint' },
      }),
    );
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    expect(r.value.get(NODE)).toEqual({
      kind: 'ztunnel',
      node: 'node0',
      namespace: 'istio-system',
      serviceAccount: 'ztunnel',
    });
    expect(r.value.get(WAYPOINT)).toEqual({
      kind: 'workload',
      namespace: 'demo',
      serviceAccount: 'waypoint',
    });
  });

  it('refuses short tokens and entries without a node or a namespace and service account', () => {
    const r = parseTokenFile(
      JSON.stringify({
        short: { node: 'node0' },
        'no-service-account-0123456789': { namespace: 'demo' },
        'empty-service-account-0123456': { namespace: 'demo', serviceAccount: '' },
      }),
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems).toEqual([
      { path: 'short...', message: 'token must be at least 16 characters' },
      { path: 'no-ser...', message: 'must have node, or namespace and serviceAccount' },
      { path: 'empty-...', message: 'must have node, or namespace and serviceAccount' },
    ]);
  });

  it('authenticates a bearer token to its caller, and refuses anything else', () => {
    const auth = new TokenAuthenticator(
      new Map([[WAYPOINT, { kind: 'workload', namespace: 'demo', serviceAccount: 'waypoint' } as const]]),
    );
    expect(auth.authenticate(`Bearer ${WAYPOINT}`)).toEqual({
      ok: true,
      value: { kind: 'workload', namespace: 'demo', serviceAccount: 'waypoint' },
    });
    expect(auth.authenticate(undefined)).toMatchObject({
      ok: false,
      problems: [{ message: 'no bearer token' }],
    });
    expect(auth.authenticate(WAYPOINT)).toMatchObject({
      ok: false,
      problems: [{ message: 'not a bearer token' }],
    });
    expect(auth.authenticate(`Bearer ${WAYPOINT}x`)).toMatchObject({
      ok: false,
      problems: [{ message: 'unknown token' }],
    });
  });
});

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

describe('token file followed while running', () => {
  it('takes tokens added to the file, and keeps the previous ones when the file breaks', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tokens-'));
    const file = join(dir, 'tokens.json');
    const first = 'node-token-0123456789abcdef';
    const added = 'waypoint-token-0123456789abcdef';
    await writeFile(file, JSON.stringify({ [first]: { node: 'node0' } }));
    const auth = await TokenAuthenticator.fromFile(file);
    const errors: Error[] = [];
    auth.watch(file, (e) => errors.push(e), 20);
    try {
      expect(auth.authenticate(`Bearer ${added}`).ok).toBe(false);
      await writeFile(
        file,
        JSON.stringify({ [first]: { node: 'node0' }, [added]: { namespace: 'demo', serviceAccount: 'wp' } }),
      );
      await until(() => auth.authenticate(`Bearer ${added}`).ok);
      expect(auth.authenticate(`Bearer ${added}`)).toEqual({
        ok: true,
        value: { kind: 'workload', namespace: 'demo', serviceAccount: 'wp' },
      });
      await writeFile(file, '{ not json');
      await until(() => errors.length > 0);
      expect(errors[0]?.message).toMatch(/JSON/);
      expect(auth.authenticate(`Bearer ${added}`).ok).toBe(true);
    } finally {
      auth.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 250 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 20));
}

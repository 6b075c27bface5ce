import { describe, expect, it } from 'vitest';
import { parseControlPlaneConfig } from '../app/controlplane-config.js';

const BASE = { CP_MANIFEST_DIR: '/m', CP_CA_DIR: '/ca' };

describe('authentication settings', () => {
  it('defaults to the tokens file, which is then required', () => {
    const r = parseControlPlaneConfig({ ...BASE, CP_TOKENS_FILE: '/t.json' });
    expect(r.ok && r.value.auth).toEqual({
      mode: 'file',
      audiences: ['istio-ca'],
      nodeAgent: { namespace: 'istio-system', serviceAccount: 'ztunnel' },
      cacheTtlMs: 60_000,
    });
    const missing = parseControlPlaneConfig(BASE);
    expect(!missing.ok && missing.problems.map((p) => p.path)).toEqual(['CP_TOKENS_FILE']);
  });

  it('reads TokenReview settings, with no tokens file needed and the kubeconfig path', () => {
    const r = parseControlPlaneConfig({
      ...BASE,
      CP_AUTHENTICATION: 'tokenreview',
      CP_TOKEN_AUDIENCES: 'istio-ca, other',
      CP_ZTUNNEL_SERVICE_ACCOUNT: 'kube-system/node-agent',
      CP_TOKEN_CACHE_TTL: '0s',
      CP_KUBECONFIG: '/k/config',
    });
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    expect(r.value.auth).toEqual({
      mode: 'tokenreview',
      audiences: ['istio-ca', 'other'],
      nodeAgent: { namespace: 'kube-system', serviceAccount: 'node-agent' },
      cacheTtlMs: 0,
    });
    expect(r.value.kubeconfig).toBe('/k/config');
    expect(r.value.tokensFile).toBe('');
  });

  it('refuses an unknown mode, no audience, a malformed account and a cache TTL over 1 h, naming each setting', () => {
    const r = parseControlPlaneConfig({
      ...BASE,
      CP_AUTHENTICATION: 'jwt',
      CP_TOKENS_FILE: '/t.json',
      CP_TOKEN_AUDIENCES: ' , ',
      CP_ZTUNNEL_SERVICE_ACCOUNT: 'ztunnel',
      CP_TOKEN_CACHE_TTL: '2h',
    });
    expect(!r.ok && r.problems.map((p) => p.path).sort()).toEqual([
      'CP_AUTHENTICATION',
      'CP_TOKEN_AUDIENCES',
      'CP_TOKEN_CACHE_TTL',
      'CP_ZTUNNEL_SERVICE_ACCOUNT',
    ]);
  });
});

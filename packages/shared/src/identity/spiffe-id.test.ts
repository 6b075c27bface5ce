import { describe, expect, it } from 'vitest';
import { isMeshError } from '../errors.js';
import { SpiffeId } from './spiffe-id.js';

describe('SpiffeId', () => {
  it('parses and formats spiffe://td/ns/N/sa/S', () => {
    const r = SpiffeId.parse('spiffe://cluster.local/ns/demo/sa/reviews');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.trustDomain).toBe('cluster.local');
    expect(r.value.namespace).toBe('demo');
    expect(r.value.serviceAccount).toBe('reviews');
    expect(r.value.toString()).toBe('spiffe://cluster.local/ns/demo/sa/reviews');
    expect(SpiffeId.of('cluster.local', 'demo', 'reviews').equals(r.value)).toBe(true);
    expect(JSON.stringify({ id: r.value })).toBe('{"id":"spiffe://cluster.local/ns/demo/sa/reviews"}');
  });

  it.each([
    ['https://cluster.local/ns/a/sa/b', 'scheme must be spiffe://'],
    ['spiffe://cluster.local', 'missing path'],
    ['spiffe:///ns/a/sa/b', 'empty trust domain'],
    ['spiffe://Cluster.Local/ns/a/sa/b', 'trust domain'],
    ['spiffe://cluster.local/ns/a', 'path must be /ns/<namespace>/sa/<service-account>'],
    ['spiffe://cluster.local/sa/b/ns/a', 'path must be'],
    ['spiffe://cluster.local/ns/a/sa/b/extra', 'path must be'],
    ['spiffe://cluster.local/ns//sa/b', 'empty namespace'],
    ['spiffe://cluster.local/ns/a/sa/', 'empty service account'],
    ['spiffe://cluster.local/ns/a b/sa/c', 'namespace "a b"'],
    ['spiffe://cluster.local/ns/a/sa/c?x', 'service account "c?x"'],
  ])('rejects %s with a specific reason', (input, reason) => {
    const r = SpiffeId.parse(input);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems[0]?.message).toContain(reason);
    expect(r.problems[0]?.message).toContain(JSON.stringify(input));
  });

  it('throws a MESH_ERR_INVALID_SPIFFE_ID from from()', () => {
    try {
      SpiffeId.from('spiffe://x');
      expect.unreachable();
    } catch (err) {
      expect(isMeshError(err, 'MESH_ERR_INVALID_SPIFFE_ID')).toBe(true);
    }
  });
});

import { DEFAULT_HANDSHAKE_LIMITS, DEFAULT_HBONE_CLIENT_TIMINGS } from '@ambient/shared';
import { describe, expect, it } from 'vitest';
import { parseZtunnelConfig } from './ztunnel-config.js';

const BASE = { ZT_NODE_NAME: 'node0', ZT_CONFIG_FILE: '/x.yaml', ZT_CA_DIR: '/ca' };

describe('parseZtunnelConfig', () => {
  it('keeps the client address through a waypoint off unless asked for', () => {
    const off = parseZtunnelConfig(BASE);
    expect(off.ok && off.value.preserveClientIpThroughWaypoint).toBe(false);
    const on = parseZtunnelConfig({ ...BASE, ZT_PRESERVE_CLIENT_IP_THROUGH_WAYPOINT: 'true' });
    expect(on.ok && on.value.preserveClientIpThroughWaypoint).toBe(true);
  });

  it('reads and answers baggage unless told not to, and labels by cluster Kubernetes unless told', () => {
    const d = parseZtunnelConfig(BASE);
    expect(d.ok && d.value.enableResponseBaggage).toBe(true);
    expect(d.ok && d.value.clusterId).toBe('Kubernetes');
    const set = parseZtunnelConfig({ ...BASE, ZT_ENABLE_RESPONSE_BAGGAGE: 'false', ZT_CLUSTER_ID: 'east' });
    expect(set.ok && set.value.enableResponseBaggage).toBe(false);
    expect(set.ok && set.value.clusterId).toBe('east');
  });

  it('keeps the loop diagnostics off unless ZT_LOOP_STATS is true, and refuses anything but true or false', () => {
    const d = parseZtunnelConfig(BASE);
    expect(d.ok && d.value.loopStats).toBe(false);
    const on = parseZtunnelConfig({ ...BASE, ZT_LOOP_STATS: 'true' });
    expect(on.ok && on.value.loopStats).toBe(true);
    const bad = parseZtunnelConfig({ ...BASE, ZT_LOOP_STATS: '1' });
    expect(!bad.ok && bad.problems).toEqual([{ path: 'ZT_LOOP_STATS', message: 'must be true or false' }]);
  });

  it("takes pods from the file unless told zds, with upstream ztunnel's socket path by default", () => {
    const d = parseZtunnelConfig(BASE);
    expect(d.ok && [d.value.podSource, d.value.zdsSocket]).toEqual(['file', '/var/run/ztunnel/ztunnel.sock']);
    const z = parseZtunnelConfig({ ...BASE, ZT_POD_SOURCE: 'zds', ZT_ZDS_SOCKET: '/tmp/z.sock' });
    expect(z.ok && [z.value.podSource, z.value.zdsSocket]).toEqual(['zds', '/tmp/z.sock']);
    const bad = parseZtunnelConfig({ ...BASE, ZT_POD_SOURCE: 'cni' });
    expect(!bad.ok && bad.problems).toEqual([{ path: 'ZT_POD_SOURCE', message: 'must be file or zds' }]);
  });

  it('refuses a setting that is not true or false, naming it', () => {
    const r = parseZtunnelConfig({ ...BASE, ZT_PRESERVE_CLIENT_IP_THROUGH_WAYPOINT: 'yes' });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.problems).toEqual([
      { path: 'ZT_PRESERVE_CLIENT_IP_THROUGH_WAYPOINT', message: 'must be true or false' },
    ]);
  });
});

describe('ztunnel settings: HBONE handshake limits', () => {
  it('defaults to the shared limits and reads each setting', () => {
    const d = parseZtunnelConfig(BASE);
    expect(d.ok && d.value.hboneHandshake).toEqual(DEFAULT_HANDSHAKE_LIMITS);
    const set = parseZtunnelConfig({
      ...BASE,
      ZT_HBONE_HANDSHAKE_TIMEOUT_MS: '2000',
      ZT_HBONE_MAX_HANDSHAKES: '64',
      ZT_HBONE_MAX_HANDSHAKES_PER_SOURCE: '8',
    });
    expect(set.ok && set.value.hboneHandshake).toEqual({
      timeoutMs: 2000,
      maxPending: 64,
      maxPendingPerSource: 8,
    });
  });

  it('names every bad setting', () => {
    const r = parseZtunnelConfig({
      ...BASE,
      ZT_HBONE_HANDSHAKE_TIMEOUT_MS: '10',
      ZT_HBONE_MAX_HANDSHAKES: '0',
      ZT_HBONE_MAX_HANDSHAKES_PER_SOURCE: 'many',
    });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems.map((p) => p.path)).toEqual([
      'ZT_HBONE_HANDSHAKE_TIMEOUT_MS',
      'ZT_HBONE_MAX_HANDSHAKES',
      'ZT_HBONE_MAX_HANDSHAKES_PER_SOURCE',
    ]);
  });
});

describe('ztunnel settings: outbound HBONE connect deadline and liveness', () => {
  it('defaults to 10 s to connect, a PING after 10 s of silence and 20 s for its answer', () => {
    const d = parseZtunnelConfig(BASE);
    expect(d.ok && d.value.hboneClient).toEqual(DEFAULT_HBONE_CLIENT_TIMINGS);
    expect(DEFAULT_HBONE_CLIENT_TIMINGS).toEqual({
      connectTimeoutMs: 10_000,
      pingIntervalMs: 10_000,
      pingTimeoutMs: 20_000,
    });
  });

  it('reads each setting and names every bad one', () => {
    const set = parseZtunnelConfig({
      ...BASE,
      ZT_HBONE_CONNECT_TIMEOUT_MS: '3000',
      ZT_HBONE_PING_INTERVAL_MS: '1000',
      ZT_HBONE_PING_TIMEOUT_MS: '2000',
    });
    expect(set.ok && set.value.hboneClient).toEqual({
      connectTimeoutMs: 3000,
      pingIntervalMs: 1000,
      pingTimeoutMs: 2000,
    });
    const bad = parseZtunnelConfig({
      ...BASE,
      ZT_HBONE_CONNECT_TIMEOUT_MS: '0',
      ZT_HBONE_PING_INTERVAL_MS: 'often',
      ZT_HBONE_PING_TIMEOUT_MS: '99',
    });
    expect(!bad.ok && bad.problems.map((p) => p.path)).toEqual([
      'ZT_HBONE_CONNECT_TIMEOUT_MS',
      'ZT_HBONE_PING_INTERVAL_MS',
      'ZT_HBONE_PING_TIMEOUT_MS',
    ]);
  });
});

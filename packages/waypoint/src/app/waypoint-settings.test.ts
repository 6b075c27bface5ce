import { describe, expect, it } from 'vitest';
import { parseWaypointSettings } from './waypoint-settings.js';

const BASE = {
  WP_XDS_ADDRESS: '127.0.0.1:15012',
  WP_ROOT_CERT: '/root.pem',
  WP_TOKEN_FILE: '/token',
  WP_NAMESPACE: 'demo',
  WP_GATEWAY_NAME: 'waypoint',
  WP_INSTANCE_IP: '10.0.0.5',
};

describe('parseWaypointSettings', () => {
  it("limits request header fields to Envoy's default of 100 unless set", () => {
    const r = parseWaypointSettings(BASE);
    expect(r.ok && r.value.maxHeadersCount).toBe(100);
    const set = parseWaypointSettings({ ...BASE, WP_MAX_HEADERS_COUNT: '250' });
    expect(set.ok && set.value.maxHeadersCount).toBe(250);
  });

  it('refuses a header count limit that is not a positive integer, naming the setting', () => {
    for (const bad of ['0', '-1', 'many', '1.5']) {
      const r = parseWaypointSettings({ ...BASE, WP_MAX_HEADERS_COUNT: bad });
      expect(!r.ok && r.problems).toEqual([
        { path: 'WP_MAX_HEADERS_COUNT', message: 'must be an integer from 1 to 4096' },
      ]);
    }
  });

  it('serves HTTP/1.1 on the direct path unless WP_HTTP1_DIRECT is false, and names a bad value', () => {
    const on = parseWaypointSettings(BASE);
    expect(on.ok && on.value.http1Direct).toBe(true);
    const off = parseWaypointSettings({ ...BASE, WP_HTTP1_DIRECT: 'false' });
    expect(off.ok && off.value.http1Direct).toBe(false);
    const bad = parseWaypointSettings({ ...BASE, WP_HTTP1_DIRECT: 'off' });
    expect(!bad.ok && bad.problems).toEqual([{ path: 'WP_HTTP1_DIRECT', message: 'must be true or false' }]);
  });

  it('writes the access log unless WP_ACCESS_LOG is false, and refuses a value that is not true or false', () => {
    const on = parseWaypointSettings(BASE);
    expect(on.ok && on.value.accessLog).toBe(true);
    const off = parseWaypointSettings({ ...BASE, WP_ACCESS_LOG: 'false' });
    expect(off.ok && off.value.accessLog).toBe(false);
    const bad = parseWaypointSettings({ ...BASE, WP_ACCESS_LOG: 'no' });
    expect(!bad.ok && bad.problems).toEqual([{ path: 'WP_ACCESS_LOG', message: 'must be true or false' }]);
  });

  it('pings a silent HBONE connection after 10 s and gives up 20 s later unless set, and names a bad value', () => {
    const d = parseWaypointSettings(BASE);
    expect(d.ok && [d.value.hbonePingIntervalMs, d.value.hbonePingTimeoutMs]).toEqual([10_000, 20_000]);
    const set = parseWaypointSettings({
      ...BASE,
      WP_HBONE_PING_INTERVAL_MS: '500',
      WP_HBONE_PING_TIMEOUT_MS: '1500',
    });
    expect(set.ok && [set.value.hbonePingIntervalMs, set.value.hbonePingTimeoutMs]).toEqual([500, 1500]);
    const bad = parseWaypointSettings({
      ...BASE,
      WP_HBONE_PING_INTERVAL_MS: '50',
      WP_HBONE_PING_TIMEOUT_MS: 'soon',
    });
    expect(!bad.ok && bad.problems.map((p) => p.path)).toEqual([
      'WP_HBONE_PING_INTERVAL_MS',
      'WP_HBONE_PING_TIMEOUT_MS',
    ]);
  });
});

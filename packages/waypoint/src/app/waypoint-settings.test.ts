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
});

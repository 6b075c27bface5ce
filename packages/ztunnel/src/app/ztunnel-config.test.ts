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

  it('refuses a setting that is not true or false, naming it', () => {
    const r = parseZtunnelConfig({ ...BASE, ZT_PRESERVE_CLIENT_IP_THROUGH_WAYPOINT: 'yes' });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.problems).toEqual([
      { path: 'ZT_PRESERVE_CLIENT_IP_THROUGH_WAYPOINT', message: 'must be true or false' },
    ]);
  });
});

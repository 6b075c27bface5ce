// The three components read their environment under one rule: a setting set to the empty
// string is read exactly as if it were unset (see EnvSettings in packages/shared).
import { parseControlPlaneConfig } from '@ambient/controlplane';
import type { Result } from '@ambient/shared';
import { parseWaypointSettings } from '@ambient/waypoint';
import { parseZtunnelConfig } from '@ambient/ztunnel';
import { describe, expect, it } from 'vitest';

type Env = Record<string, string | undefined>;

const COMPONENTS: ReadonlyArray<{
  name: string;
  parse: (env: Env) => Result<object>;
  base: Env;
  settings: readonly string[];
}> = [
  {
    name: 'ztunnel',
    parse: parseZtunnelConfig,
    base: { ZT_NODE_NAME: 'node0', ZT_CONFIG_FILE: '/x.yaml', ZT_CA_DIR: '/ca' },
    settings: [
      'ZT_NODE_NAME',
      'ZT_CONFIG_FILE',
      'ZT_CA_DIR',
      'ZT_XDS_ADDRESS',
      'ZT_CA_ADDRESS',
      'ZT_ROOT_CERT',
      'ZT_CONTROL_PLANE_NAME',
      'ZT_TOKEN_FILE',
      'ZT_CLUSTER_ID',
      'ZT_POD_NAME',
      'ZT_POD_NAMESPACE',
      'ZT_INSTANCE_IP',
      'ZT_POD_NETNS_FILE',
      'ZT_POD_SOURCE',
      'ZT_ZDS_SOCKET',
      'ZT_TRUST_DOMAIN',
      'ZT_ADMIN_ADDRESS',
      'ZT_ADMIN_PORT',
      'ZT_METRICS_ADDRESS',
      'ZT_METRICS_PORT',
      'ZT_READINESS_PORT',
      'ZT_DRAIN_SECONDS',
      'ZT_LOG_LEVEL',
      'ZT_PRESERVE_CLIENT_IP_THROUGH_WAYPOINT',
      'ZT_HBONE_HANDSHAKE_TIMEOUT_MS',
      'ZT_HBONE_MAX_HANDSHAKES',
      'ZT_HBONE_MAX_HANDSHAKES_PER_SOURCE',
    ],
  },
  {
    name: 'waypoint',
    parse: parseWaypointSettings,
    base: {
      WP_XDS_ADDRESS: '127.0.0.1:15012',
      WP_ROOT_CERT: '/root.pem',
      WP_TOKEN_FILE: '/token',
      WP_NAMESPACE: 'demo',
      WP_GATEWAY_NAME: 'waypoint',
      WP_INSTANCE_IP: '10.0.0.5',
    },
    settings: [
      'WP_XDS_ADDRESS',
      'WP_CA_ADDRESS',
      'WP_ROOT_CERT',
      'WP_CONTROL_PLANE_NAME',
      'WP_TOKEN_FILE',
      'WP_CLUSTER_ID',
      'WP_TRUST_DOMAIN',
      'WP_NAMESPACE',
      'WP_SERVICE_ACCOUNT',
      'WP_POD_NAME',
      'WP_GATEWAY_NAME',
      'WP_INSTANCE_IP',
      'WP_LISTEN_ADDRESS',
      'WP_HBONE_PORT',
      'WP_ADMIN_ADDRESS',
      'WP_ADMIN_PORT',
      'WP_METRICS_ADDRESS',
      'WP_METRICS_PORT',
      'WP_READINESS_PORT',
      'WP_DRAIN_SECONDS',
      'WP_ACCESS_LOG',
      'WP_LOG_LEVEL',
      'WP_MAX_HEADERS_COUNT',
    ],
  },
  {
    name: 'controlplane',
    parse: parseControlPlaneConfig,
    // CP_CA_DIR first: it is required whatever the source (an empty CP_MANIFEST_DIR means the Kubernetes source).
    base: { CP_CA_DIR: '/ca', CP_MANIFEST_DIR: '/m', CP_TOKENS_FILE: '/t.json' },
    settings: [
      'CP_MANIFEST_DIR',
      'CP_CA_DIR',
      'CP_TOKENS_FILE',
      'CP_GRPC_ADDRESS',
      'CP_GRPC_PORT',
      'CP_MONITOR_ADDRESS',
      'CP_MONITOR_PORT',
      'CP_TRUST_DOMAIN',
      'CP_CLUSTER_ID',
      'CP_ROOT_NAMESPACE',
      'CP_DOMAIN_SUFFIX',
      'CP_SERVER_NAMES',
      'CP_DEBOUNCE_MS',
      'CP_DEBOUNCE_MAX_MS',
      'CP_WORKLOAD_CERT_TTL',
      'CP_LOG_LEVEL',
      'CP_MAX_MANIFEST_FILE_BYTES',
      'CP_MAX_OBJECT_BYTES',
      'CP_MAX_POLICY_VALUES',
      'CP_AMBIENT_ENABLE_DRY_RUN_AUTHORIZATION_POLICY',
    ],
  },
];

describe('one rule for empty settings in every component', () => {
  for (const { name, parse, base, settings } of COMPONENTS) {
    it(`${name}: every setting set to "" reads exactly as if it were unset`, () => {
      for (const key of settings) {
        const unset = { ...base };
        delete unset[key];
        expect(parse({ ...base, [key]: '' }), key).toEqual(parse(unset));
      }
    });

    it(`${name}: an empty trust domain takes the default, cluster.local`, () => {
      const prefix = settings[0]?.slice(0, 3);
      const r = parse({ ...base, [`${prefix}TRUST_DOMAIN`]: '' });
      expect(r.ok && (r.value as { trustDomain: string }).trustDomain).toBe('cluster.local');
    });

    it(`${name}: an empty required setting is refused as required, by name`, () => {
      const required = Object.keys(base)[0] as string;
      const r = parse({ ...base, [required]: '' });
      expect(!r.ok && r.problems.filter((p) => p.path === required).map((p) => p.message)).toEqual([
        'is required',
      ]);
    });
  }
});

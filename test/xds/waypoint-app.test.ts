import {
  type ControlPlaneApp,
  EnvoyEncoder,
  encodeResources,
  ROUTE_CONFIGURATION_TYPE_URL,
  waypointScope,
} from '@ambient/controlplane';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LoopbackWaypoint, startLoopbackWaypoint, waypointManifests } from './loopback-waypoint.js';

const VIP = '10.96.0.10';
const CHAIN = 'inbound-vip|80|http|echo.demo.svc.cluster.local';

const ROUTE = {
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'HTTPRoute',
  metadata: { name: 'echo-moved', namespace: 'demo' },
  spec: {
    parentRefs: [{ group: '', kind: 'Service', name: 'echo', port: 80 }],
    rules: [
      {
        matches: [{ path: { type: 'PathPrefix', value: '/old' } }],
        filters: [
          { type: 'RequestRedirect', requestRedirect: { hostname: 'moved.example', statusCode: 302 } },
        ],
      },
    ],
  },
};

describe('a real waypoint under the real control plane, over loopback', () => {
  let w: LoopbackWaypoint;
  let cp: ControlPlaneApp;

  beforeAll(async () => {
    w = await startLoopbackWaypoint('waypoint-app-', VIP, [...waypointManifests(VIP), ROUTE]);
    cp = w.cp;
  }, 30_000);

  afterAll(async () => {
    await w?.close();
  });

  const call = (path: string) => w.call(path);
  const dump = async () =>
    (await (await fetch(`http://127.0.0.1:${w.adminPort}/config_dump`)).json()) as {
      xds: {
        types: Array<{ typeUrl: string; nacks: number }>;
        rejections: Array<{ typeUrl: string; message: string }>;
      };
    };

  it('takes its config over Delta ADS and serves the HTTPRoute for the VIP it is called for', async () => {
    const head = await call('/old/page');
    expect(head).toMatch(/^HTTP\/1.1 302 /);
    expect(head).toMatch(/^location: http:\/\/moved\.example(:80)?\/old\/page$/m);
  });

  it('NACKs an invalid route configuration with its field path and keeps serving the last good one', async () => {
    const bad = new EnvoyEncoder().encode('envoy.config.route.v3.RouteConfiguration', {
      name: CHAIN,
      virtualHosts: [
        {
          name: 'echo',
          domains: ['*'],
          routes: [{ match: { safeRegex: { regex: '(unclosed' } }, route: { cluster: CHAIN } }],
        },
      ],
    });
    cp.adsServer?.publishScoped(
      [ROUTE_CONFIGURATION_TYPE_URL],
      new Map([
        [
          waypointScope('demo', 'waypoint'),
          new Map([
            [
              ROUTE_CONFIGURATION_TYPE_URL,
              encodeResources(ROUTE_CONFIGURATION_TYPE_URL, new Map([[CHAIN, bad]])),
            ],
          ]),
        ],
      ]),
    );
    let rejection: { typeUrl: string; message: string } | undefined;
    for (let i = 0; i < 200 && !rejection; i++) {
      rejection = (await dump()).xds.rejections.find((r) => r.typeUrl === ROUTE_CONFIGURATION_TYPE_URL);
      if (!rejection) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(rejection?.message).toContain(CHAIN);
    expect(rejection?.message).toMatch(/safe_regex/);
    // The control plane recorded the NACK too.
    expect(cp.adsDump().find((c) => c.waypoint === 'demo/waypoint')?.nacks).toBeGreaterThan(0);
    // The last good route still answers.
    expect(await call('/old/again')).toMatch(/^HTTP\/1.1 302 /);
  });
});

/**
 * Fault: a route regex that is valid RE2 but exponential for a backtracking engine, `/(a+)+b`,
 * and one request crafted against it. The waypoint matches with RE2 (linear time): the hostile
 * request is answered (no route matches it: 404), and a bystander calling at the same time is served.
 * Figures are printed, not asserted (shared machine).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LoopbackWaypoint, startLoopbackWaypoint, waypointManifests } from '../xds/loopback-waypoint.js';

const VIP = '10.96.0.10';
const redirect = (hostname: string) => ({
  type: 'RequestRedirect',
  requestRedirect: { hostname, statusCode: 302 },
});

const ROUTE = {
  // Both rules answer locally (redirects), so no upstream is needed to see which one matched.
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'HTTPRoute',
  metadata: { name: 'echo-regex', namespace: 'demo' },
  spec: {
    parentRefs: [{ group: '', kind: 'Service', name: 'echo', port: 80 }],
    rules: [
      {
        matches: [{ path: { type: 'RegularExpression', value: '/(a+)+b' } }],
        filters: [redirect('regex.example')],
      },
      {
        matches: [{ path: { type: 'PathPrefix', value: '/bystander' } }],
        filters: [redirect('bystander.example')],
      },
    ],
  },
};

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

describe('fault: regex denial of service against a waypoint route', () => {
  let w: LoopbackWaypoint;

  beforeAll(async () => {
    w = await startLoopbackWaypoint('regex-dos-', VIP, [...waypointManifests(VIP), ROUTE]);
  }, 30_000);

  afterAll(async () => {
    await w?.close();
  });

  const call = (path: string) => w.call(path);

  it('answers the hostile request (404, no route) and keeps serving a bystander meanwhile', async () => {
    // The regex route is in force.
    expect(await call('/aab')).toMatch(/^location: http:\/\/regex\.example(:80)?\/aab$/m);

    let hostileDone = false;
    const latencies: number[] = [];
    const bystander = (async () => {
      const deadline = performance.now() + 15_000;
      // Bounded in count and time; at least a few calls even if the hostile one is instant.
      for (let i = 0; i < 500 && performance.now() < deadline && (!hostileDone || i < 20); i++) {
        const t = performance.now();
        const head = await call(`/bystander/${i}`);
        latencies.push(performance.now() - t);
        expect(head).toMatch(/^location: http:\/\/bystander\.example(:80)?\/bystander\/\d+$/m);
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const hostilePath = `/${'a'.repeat(30)}c`;
    const t0 = performance.now();
    const hostile = await call(hostilePath);
    const hostileMs = performance.now() - t0;
    hostileDone = true;
    await bystander;

    // No route matches it: 404, as Envoy answers.
    expect(hostile).toMatch(/^HTTP\/1.1 404 /);
    const sorted = [...latencies].sort((x, y) => x - y);
    console.log(
      `regex-dos: hostile request (/(a+)+b against /a{30}c) answered in ${hostileMs.toFixed(1)} ms`,
    );
    console.log(`regex-dos: bystander requests ${sorted.length}`);
    console.log(`regex-dos: bystander p50 ${percentile(sorted, 50).toFixed(1)} ms`);
    console.log(`regex-dos: bystander p99 ${percentile(sorted, 99).toFixed(1)} ms`);
    expect(sorted.length).toBeGreaterThanOrEqual(20);
  }, 30_000);
});

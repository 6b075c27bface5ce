/**
 * The in-process benchmark of the waypoint's request steps measures what it says only if every
 * path answers every request: a path that broke (a 503 from the waypoint, a relay that stalls)
 * would otherwise print a CPU figure for work it did not do.
 */
import { describe, expect, it } from 'vitest';
import {
  allocatedPerRequest,
  barePath,
  EchoUpstream,
  load,
  waypointPath,
} from '../../bench/waypoint/src/direct-path-cpu.js';

describe('in-process request-steps benchmark', () => {
  it('the echo upstream answers each request head it is written, split or together', async () => {
    const up = new EchoUpstream();
    const got: Buffer[] = [];
    up.on('data', (d: Buffer) => got.push(d));
    up.write('GET / HTTP/1.1\r\nhost: a\r\n');
    up.write('\r\nGET /b HTTP/1.1\r\nhost: a\r\n\r\nGET /c HTTP/1.1\r\nhost: a\r\n\r\n');
    await new Promise((resolve) => setImmediate(resolve));
    expect(up.requests).toBe(3);
    expect(got).toHaveLength(3);
    expect(got[0]?.toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK\r\n.*content-length: 1024\r\n/s);
  });

  it('the sampled heap bytes per request count what a round allocates: more for the waypoint than the bare relay', async () => {
    const bare = barePath();
    const direct = waypointPath(true);
    try {
      const b = await allocatedPerRequest(bare, 8, 2_000);
      const d = await allocatedPerRequest(direct, 8, 2_000);
      // Each request at least makes its head strings and buffers' objects on the heap.
      expect(b).toBeGreaterThan(100);
      // The waypoint parses both heads into maps and builds two new heads: several times the relay's.
      expect(d).toBeGreaterThan(2 * b);
    } finally {
      bare.close();
      direct.close();
    }
  });

  for (const [name, make] of [
    ['waypoint direct', () => waypointPath(true)],
    ['waypoint node', () => waypointPath(false)],
    ['bare relay', barePath],
  ] as const) {
    it(`${name}: every one of the requests gets its 200 OK through the path`, async () => {
      const path = make();
      try {
        // 8 connections, 400 requests: each connection's keep-alive reuse is exercised too.
        await expect(load(path, 8, 400)).resolves.toBe(0);
      } finally {
        path.close();
      }
    });
  }
});

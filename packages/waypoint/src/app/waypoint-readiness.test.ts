import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { listenHttp } from '@ambient/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { waypointReadinessHandler, waypointReadinessReply } from './waypoint-readiness.js';

const servers: http.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

async function request(
  pending: () => readonly string[],
  path: string,
  method = 'GET',
): Promise<{ status: number; body: string; contentType: string | null }> {
  const server = await listenHttp('127.0.0.1', 0, waypointReadinessHandler(pending));
  servers.push(server);
  const { port } = server.address() as AddressInfo;
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method });
  return { status: res.status, body: await res.text(), contentType: res.headers.get('content-type') };
}

describe('waypointReadinessReply', () => {
  it('200 ready when nothing blocks, 503 naming the blockers sorted otherwise', () => {
    expect(waypointReadinessReply('GET', '/healthz/ready', [])).toEqual({ status: 200, body: 'ready\n' });
    expect(waypointReadinessReply('GET', '/healthz/ready', ['config', 'certificate'])).toEqual({
      status: 503,
      body: 'not ready, pending: certificate, config\n',
    });
  });

  it('another method on /healthz/ready is an empty 405, ready or not', () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'HEAD']) {
      expect(waypointReadinessReply(method, '/healthz/ready', [])).toEqual({ status: 405, body: '' });
      expect(waypointReadinessReply(method, '/healthz/ready', ['config'])).toEqual({ status: 405, body: '' });
    }
  });

  it('any other path is an empty 404, whatever the method and readiness', () => {
    for (const url of ['/', '/healthz', '/healthz/ready/', '/metrics', '/config_dump']) {
      expect(waypointReadinessReply('GET', url, [])).toEqual({ status: 404, body: '' });
      expect(waypointReadinessReply('POST', url, ['config'])).toEqual({ status: 404, body: '' });
    }
  });
});

describe('waypointReadinessHandler', () => {
  it('answers 503 naming every blocker until the last one is lifted, then 200 ready', async () => {
    const blockers = new Set(['certificate', 'config']);
    const pending = () => [...blockers];
    expect(await request(pending, '/healthz/ready')).toEqual({
      status: 503,
      body: 'not ready, pending: certificate, config\n',
      contentType: 'text/plain',
    });
    blockers.delete('certificate');
    expect(await request(pending, '/healthz/ready')).toEqual({
      status: 503,
      body: 'not ready, pending: config\n',
      contentType: 'text/plain',
    });
    blockers.delete('config');
    // The body callers wait for (the lab's waypointReady compares it with 'ready\n').
    expect(await request(pending, '/healthz/ready?probe=1')).toEqual({
      status: 200,
      body: 'ready\n',
      contentType: 'text/plain',
    });
  });

  it('answers an empty 405 to another method and an empty 404 to another path', async () => {
    expect(await request(() => [], '/healthz/ready', 'POST')).toEqual({
      status: 405,
      body: '',
      contentType: null,
    });
    expect(await request(() => ['config'], '/other')).toEqual({ status: 404, body: '', contentType: null });
  });
});

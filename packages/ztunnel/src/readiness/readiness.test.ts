import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { listenHttp } from '@ambient/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { podBlocker, Readiness } from './readiness.js';

const servers: http.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

async function get(readiness: Readiness, path: string): Promise<{ status: number; body: string }> {
  const server = await listenHttp('127.0.0.1', 0, readiness.handler);
  servers.push(server);
  const { port } = server.address() as AddressInfo;
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

describe('Readiness', () => {
  it('answers 503 naming every blocker until the last one is lifted, then 200', async () => {
    const r = new Readiness(['config', 'enrollment']);
    r.block(podBlocker({ namespace: 'demo', name: 'sleep' }));
    expect(await get(r, '/healthz/ready')).toEqual({
      status: 503,
      body: 'not ready: config, enrollment, pod demo/sleep\n',
    });
    r.unblock('config');
    r.unblock('enrollment');
    expect(r.ready).toBe(false);
    expect(r.pending()).toEqual(['pod demo/sleep']);
    r.unblock('pod demo/sleep');
    expect(r.ready).toBe(true);
    expect(await get(r, '/healthz/ready')).toEqual({ status: 200, body: 'ready\n' });
  });

  it('a drain blocks readiness again', async () => {
    const r = new Readiness([]);
    r.block('draining');
    expect(await get(r, '/healthz/ready')).toEqual({ status: 503, body: 'not ready: draining\n' });
  });

  it('serves readiness only on /healthz/ready', async () => {
    expect((await get(new Readiness([]), '/other')).status).toBe(503);
  });
});

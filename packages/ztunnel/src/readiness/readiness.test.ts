import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { listenHttp } from '@ambient/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { podBlocker, Readiness } from './readiness.js';

const servers: http.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

interface Answer {
  status: number;
  body: string;
  contentType: string | null;
}

async function request(readiness: Readiness, path: string, method = 'GET'): Promise<Answer> {
  const server = await listenHttp('127.0.0.1', 0, readiness.handler);
  servers.push(server);
  const { port } = server.address() as AddressInfo;
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method });
  return { status: res.status, body: await res.text(), contentType: res.headers.get('content-type') };
}

async function get(readiness: Readiness, path: string): Promise<{ status: number; body: string }> {
  const { status, body } = await request(readiness, path);
  return { status, body };
}

describe('Readiness', () => {
  it('answers 500 naming every blocker until the last one is lifted, then 200', async () => {
    const r = new Readiness(['enrollment', 'config']);
    r.block(podBlocker({ namespace: 'demo', name: 'sleep' }));
    expect(await request(r, '/healthz/ready')).toEqual({
      status: 500,
      body: 'not ready, pending: config, enrollment, pod demo/sleep\n',
      contentType: 'text/plain',
    });
    r.unblock('config');
    r.unblock('enrollment');
    expect(r.ready).toBe(false);
    expect(r.pending()).toEqual(['pod demo/sleep']);
    r.unblock('pod demo/sleep');
    expect(r.ready).toBe(true);
    expect(await request(r, '/healthz/ready')).toEqual({
      status: 200,
      body: 'ready\n',
      contentType: 'text/plain',
    });
  });

  it('a drain blocks readiness again', async () => {
    const r = new Readiness([]);
    r.block('draining');
    expect(await get(r, '/healthz/ready')).toEqual({ status: 500, body: 'not ready, pending: draining\n' });
  });

  it('a method other than GET gets an empty 405', async () => {
    expect(await request(new Readiness([]), '/healthz/ready', 'POST')).toEqual({
      status: 405,
      body: '',
      contentType: null,
    });
    expect((await request(new Readiness(['config']), '/healthz/ready', 'DELETE')).status).toBe(405);
  });

  it('serves readiness only on /healthz/ready: other paths get an empty 404', async () => {
    expect(await request(new Readiness([]), '/other')).toEqual({ status: 404, body: '', contentType: null });
    expect((await request(new Readiness(['config']), '/')).status).toBe(404);
    expect((await request(new Readiness([]), '/healthz/ready?verbose=1')).status).toBe(200);
  });
});

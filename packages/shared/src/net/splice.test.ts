import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { splice } from './splice.js';

/** How a socket's peer ended it: an orderly FIN ('end') or a reset. */
function ending(s: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    s.on('data', () => {});
    s.once('end', () => resolve('end'));
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

function listen(onConnection: (s: net.Socket) => void): Promise<net.Server> {
  const server = net.createServer({ allowHalfOpen: true }, onConnection);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const port = (s: net.Server) => (s.address() as net.AddressInfo).port;

describe('splice', () => {
  const servers: net.Server[] = [];
  afterEach(() => {
    for (const s of servers.splice(0)) s.close();
  });

  /** client -> proxy (splice) -> app; returns the three live sockets. */
  async function tunnel() {
    let appSide!: (s: net.Socket) => void;
    const appSocket = new Promise<net.Socket>((r) => {
      appSide = r;
    });
    const app = await listen((s) => appSide(s));
    const spliced: Array<Promise<unknown>> = [];
    const proxy = await listen((down) => {
      const up = net.connect({ port: port(app), host: '127.0.0.1', allowHalfOpen: true });
      up.once('connect', () => spliced.push(splice(down, up)));
    });
    servers.push(app, proxy);
    const client = net.connect({ port: port(proxy), host: '127.0.0.1', allowHalfOpen: true });
    const server = await appSocket;
    return { client, server, spliced };
  }

  it('a reset on one side reaches the other side as a reset, not an orderly end', async () => {
    const { client, server } = await tunnel();
    const clientEnding = ending(client);
    const serverGot = new Promise((r) => server.once('data', r));
    client.write('partial upload');
    await serverGot;
    server.resetAndDestroy();
    expect(await clientEnding).toBe('ECONNRESET');
  });

  it('an orderly close in both directions stays orderly', async () => {
    const { client, server } = await tunnel();
    const clientEnding = ending(client);
    const serverEnding = ending(server);
    client.end('all of it');
    expect(await serverEnding).toBe('end');
    server.end();
    expect(await clientEnding).toBe('end');
  });
});

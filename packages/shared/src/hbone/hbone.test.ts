import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { MeshError } from '../errors.js';
import { SpiffeId } from '../identity/spiffe-id.js';
import {
  CLIENT_ID,
  dialUpstream,
  echoServer,
  eventually,
  type MeshPair,
  meshPair,
  metricValue,
  readAll,
  SERVER_ID,
  TRUST_DOMAIN,
} from '../testing/mesh-fixture.js';
import { HboneRefusedError } from './hbone-client.js';

let pair: MeshPair | undefined;
const closers: Array<() => unknown> = [];
afterEach(async () => {
  await pair?.close();
  pair = undefined;
  for (const c of closers.splice(0)) await c();
});

async function roundTrip(stream: Duplex, payload: string): Promise<string> {
  stream.write(payload);
  return new Promise((resolve) => stream.once('data', (d: Buffer) => resolve(d.toString())));
}

describe('HBONE tunnel', () => {
  it('carries bytes both ways and passes verified identities and headers to the server', async () => {
    const echo = await echoServer();
    closers.push(() => echo.server.close());
    pair = await meshPair();
    const stream = await pair.client.connect({
      source: CLIENT_ID,
      destination: SERVER_ID,
      address: { host: '127.0.0.1', port: pair.serverPort },
      authority: `127.0.0.1:${echo.port}`,
      forwarded: 'for="198.18.0.7:40000"',
      baggage: 'k8s.namespace.name=demo',
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    });
    expect(await roundTrip(stream, 'ping')).toBe('ping');
    expect(pair.client.peerOf(stream)).toBe(SERVER_ID.toString());
    stream.end();
    const [req] = pair.requests;
    expect(req?.peer.toString()).toBe(CLIENT_ID.toString());
    expect(req?.local.toString()).toBe(SERVER_ID.toString());
    expect(req?.target).toEqual({ host: '127.0.0.1', port: echo.port });
    expect(req?.forwardedIp).toBe('198.18.0.7');
    expect(req?.baggage).toBe('k8s.namespace.name=demo');
    expect(req?.traceparent).toBe('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    expect(await metricValue(pair.registry, 'hbone_streams_total', { side: 'client', status: '200' })).toBe(
      1,
    );
    expect(await metricValue(pair.registry, 'hbone_connections_opened_total', { side: 'server' })).toBe(1);
  });

  it('hands a service host name authority to an owner that accepts them, with forwarded host, and answers with its headers', async () => {
    const echo = await echoServer();
    closers.push(() => echo.server.close());
    pair = await meshPair({
      server: {
        hostnameAuthority: true,
        onRequest: async (req) => {
          pair?.requests.push(req);
          // The owner resolves the service port (80) to its target port.
          return dialUpstream(echo.port);
        },
        answerHeaders: (req) => ({ baggage: `k8s.namespace.name=demo,service.name=${req.target.host}` }),
      },
    });
    const stream = await pair.client.connect({
      source: CLIENT_ID,
      destination: SERVER_ID,
      address: { host: '127.0.0.1', port: pair.serverPort },
      authority: 'Echo.Demo.svc.cluster.local:80',
      forwarded: 'for="198.18.0.7:40000";host=echo.demo.svc.cluster.local',
    });
    expect(await roundTrip(stream, 'ping')).toBe('ping');
    expect(pair.client.answerOf(stream)?.baggage).toBe(
      'k8s.namespace.name=demo,service.name=echo.demo.svc.cluster.local',
    );
    stream.end();
    const [req] = pair.requests;
    expect(req?.target).toEqual({ host: 'echo.demo.svc.cluster.local', port: 80, hostname: true });
    expect(req?.forwardedHost).toBe('echo.demo.svc.cluster.local');
    expect(req?.forwardedIp).toBe('198.18.0.7');
  });

  it('answers 400 to a host name authority unless the owner accepts them, whose port the owner checks', async () => {
    let asked = 0;
    pair = await meshPair({ server: { answerHeaders: () => ({ baggage: 'x=1' }) } });
    const address = { host: '127.0.0.1', port: pair.serverPort };
    await expect(
      pair.client.connect({ source: CLIENT_ID, destination: SERVER_ID, address, authority: 'echo.demo:80' }),
    ).rejects.toMatchObject({ status: 400 });
    expect(pair.requests).toHaveLength(0);
    await pair.close();
    pair = await meshPair({
      server: {
        hostnameAuthority: true,
        onRequest: async () => {
          asked += 1;
          throw new MeshError('MESH_ERR_HBONE_UPSTREAM', 'no such service');
        },
      },
    });
    await expect(
      pair.client.connect({
        source: CLIENT_ID,
        destination: SERVER_ID,
        address: { host: '127.0.0.1', port: pair.serverPort },
        authority: 'echo.demo:15008',
      }),
    ).rejects.toMatchObject({ status: 503 });
    // A name's port is a service port: the owner, not the server, decides on it.
    expect(asked).toBe(1);
  });

  it('passes half-close through: the upstream sees end, and its reply still arrives', async () => {
    pair = await meshPair();
    const upstreamSaw: string[] = [];
    const net = await import('node:net');
    const app = net.createServer({ allowHalfOpen: true }, (s) => {
      const chunks: Buffer[] = [];
      s.on('data', (c) => chunks.push(c));
      s.on('end', () => {
        upstreamSaw.push(Buffer.concat(chunks).toString());
        s.end(`got ${Buffer.concat(chunks).length} bytes`);
      });
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    closers.push(() => app.close());
    const port = (app.address() as { port: number }).port;
    const stream = await pair.client.connect({
      source: CLIENT_ID,
      destination: SERVER_ID,
      address: { host: '127.0.0.1', port: pair.serverPort },
      authority: `127.0.0.1:${port}`,
    });
    stream.end('x'.repeat(100_000));
    expect((await readAll(stream)).toString()).toBe('got 100000 bytes');
    expect(upstreamSaw).toEqual(['x'.repeat(100_000)]);
  });

  it('an upstream destroyed by the server resets the tunnel, and the client stream closes', async () => {
    const upstreams: import('node:net').Socket[] = [];
    pair = await meshPair({
      server: {
        onRequest: async (req) => {
          const { dialUpstream } = await import('../testing/mesh-fixture.js');
          const up = await dialUpstream(req.target.port);
          upstreams.push(up);
          return up;
        },
      },
    });
    const echo = await echoServer();
    closers.push(() => echo.server.close());
    const stream = await pair.client.connect({
      source: CLIENT_ID,
      destination: SERVER_ID,
      address: { host: '127.0.0.1', port: pair.serverPort },
      authority: `127.0.0.1:${echo.port}`,
    });
    stream.on('error', () => {});
    expect(await roundTrip(stream, 'before')).toBe('before');
    const closed = new Promise<number | undefined>((resolve) =>
      stream.once('close', () => resolve(stream.rstCode)),
    );
    upstreams[0]?.destroy();
    expect(await closed).toBe(0xa); // CONNECT_ERROR
  });

  it('a stream reset by the client reaches the upstream app as a TCP reset, not an orderly end', async () => {
    pair = await meshPair();
    const net = await import('node:net');
    let ended!: (how: string) => void;
    const upstreamEnded = new Promise<string>((resolve) => {
      ended = resolve;
    });
    let received!: () => void;
    const upstreamReceived = new Promise<void>((resolve) => {
      received = resolve;
    });
    const app = net.createServer({ allowHalfOpen: true }, (s) => {
      s.on('data', () => received());
      s.once('end', () => ended('end'));
      s.once('error', (err: NodeJS.ErrnoException) => ended(err.code ?? err.message));
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    closers.push(() => app.close());
    const port = (app.address() as { port: number }).port;
    const stream = await pair.client.connect({
      source: CLIENT_ID,
      destination: SERVER_ID,
      address: { host: '127.0.0.1', port: pair.serverPort },
      authority: `127.0.0.1:${port}`,
    });
    stream.on('error', () => {});
    stream.write('first half of an upload');
    await upstreamReceived;
    (stream as Duplex & { close(code: number): void }).close(0x8); // CANCEL
    expect(await upstreamEnded).toBe('ECONNRESET');
  });

  it('refuses a header with CR/LF as a bad request and keeps the pooled connection', async () => {
    const echo = await echoServer();
    closers.push(() => echo.server.close());
    pair = await meshPair();
    const req = {
      source: CLIENT_ID,
      destination: SERVER_ID,
      address: { host: '127.0.0.1', port: pair.serverPort },
      authority: `127.0.0.1:${echo.port}`,
    };
    const first = await pair.client.connect(req);
    await expect(pair.client.connect({ ...req, baggage: 'a=b\r\nx-injected: 1' })).rejects.toSatisfy(
      (e) => e instanceof MeshError && e.code === 'MESH_ERR_HBONE_BAD_REQUEST',
    );
    expect(pair.client.size).toBe(1);
    expect(pair.client.dump()[0]?.streams).toBe(1);
    expect(await roundTrip(first, 'unharmed')).toBe('unharmed');
    first.end();
  });

  it('answers 401 when the owner denies and 503 when the upstream cannot be reached', async () => {
    let deny = true;
    pair = await meshPair({
      server: {
        onRequest: async (req) => {
          if (deny) throw new MeshError('MESH_ERR_HBONE_DENIED', `${req.peer} may not connect`);
          const { dialUpstream } = await import('../testing/mesh-fixture.js');
          return dialUpstream(req.target.port);
        },
      },
    });
    const base = {
      source: CLIENT_ID,
      destination: SERVER_ID,
      address: { host: '127.0.0.1', port: pair.serverPort },
      authority: '127.0.0.1:9',
    };
    await expect(pair.client.connect(base)).rejects.toSatisfy(
      (e) => e instanceof HboneRefusedError && e.status === 401,
    );
    deny = false;
    // Port 9 on loopback has no listener: the upstream connect is refused.
    await expect(pair.client.connect(base)).rejects.toSatisfy(
      (e) => e instanceof HboneRefusedError && e.status === 503,
    );
    expect(await metricValue(pair.registry, 'hbone_streams_total', { side: 'server', status: '401' })).toBe(
      1,
    );
    expect(await metricValue(pair.registry, 'hbone_streams_total', { side: 'server', status: '503' })).toBe(
      1,
    );
  });
});

describe('HBONE client pool', () => {
  it('shares a connection only within one (source, destination, address) key', async () => {
    const echo = await echoServer();
    closers.push(() => echo.server.close());
    pair = await meshPair();
    const other = SpiffeId.of(TRUST_DOMAIN, 'demo', 'other-client');
    const address = { host: '127.0.0.1', port: pair.serverPort };
    const open = (source: SpiffeId) =>
      pair!.client.connect({ source, destination: SERVER_ID, address, authority: `127.0.0.1:${echo.port}` });
    const s1 = await open(CLIENT_ID);
    const s2 = await open(CLIENT_ID);
    expect(pair.client.size).toBe(1);
    const s3 = await open(other);
    expect(pair.client.size).toBe(2);
    const peers = pair.requests.map((r) => r.peer.toString());
    expect(peers).toEqual([CLIENT_ID.toString(), CLIENT_ID.toString(), other.toString()]);
    const keys = pair.client.dump().map((d) => d.key);
    expect(keys).toEqual([
      `${CLIENT_ID}|${SERVER_ID}|127.0.0.1:${pair.serverPort}`,
      `${other}|${SERVER_ID}|127.0.0.1:${pair.serverPort}`,
    ]);
    for (const s of [s1, s2, s3]) s.end();
  });

  it('opens its TCP connections through the injected socket factory', async () => {
    const echo = await echoServer();
    closers.push(() => echo.server.close());
    const dialed: string[] = [];
    const net = await import('node:net');
    pair = await meshPair({
      client: {
        dialSocket: async (address) => {
          dialed.push(`${address.host}:${address.port}`);
          return net.connect({ host: address.host, port: address.port });
        },
      },
    });
    const s = await pair.client.connect({
      source: CLIENT_ID,
      destination: SERVER_ID,
      address: { host: '127.0.0.1', port: pair.serverPort },
      authority: `127.0.0.1:${echo.port}`,
    });
    expect(await roundTrip(s, 'via factory')).toBe('via factory');
    expect(dialed).toEqual([`127.0.0.1:${pair.serverPort}`]);
    s.end();
  });

  it('never reuses a connection for a different expected destination identity at the same address', async () => {
    pair = await meshPair();
    const address = { host: '127.0.0.1', port: pair.serverPort };
    const echo = await echoServer();
    closers.push(() => echo.server.close());
    const good = await pair.client.connect({
      source: CLIENT_ID,
      destination: SERVER_ID,
      address,
      authority: `127.0.0.1:${echo.port}`,
    });
    // Same address, but the caller expects another identity: a new connection, whose check fails.
    const impostor = SpiffeId.of(TRUST_DOMAIN, 'demo', 'someone-else');
    await expect(
      pair.client.connect({
        source: CLIENT_ID,
        destination: impostor,
        address,
        authority: `127.0.0.1:${echo.port}`,
      }),
    ).rejects.toSatisfy((e) => e instanceof MeshError && e.code === 'MESH_ERR_PEER_IDENTITY');
    expect(
      await metricValue(pair.registry, 'hbone_connections_refused_total', {
        side: 'client',
        reason: 'identity',
      }),
    ).toBe(1);
    expect(await roundTrip(good, 'still fine')).toBe('still fine');
    good.end();
  });

  it('multiplexes up to 100 streams per connection and opens another when full', async () => {
    const echo = await echoServer();
    closers.push(() => echo.server.close());
    pair = await meshPair();
    const req = {
      source: CLIENT_ID,
      destination: SERVER_ID,
      address: { host: '127.0.0.1', port: pair.serverPort },
      authority: `127.0.0.1:${echo.port}`,
    };
    const streams: Duplex[] = [];
    for (let i = 0; i < 100; i++) streams.push(await pair.client.connect(req));
    expect(pair.client.size).toBe(1);
    expect(pair.client.dump()[0]?.streams).toBe(100);
    streams.push(await pair.client.connect(req));
    expect(pair.client.size).toBe(2);
    expect(pair.client.dump().map((d) => d.streams)).toEqual([100, 1]);
    expect(await roundTrip(streams[100]!, 'hundred-and-first')).toBe('hundred-and-first');
    for (const s of streams) s.end();
    await eventually(() => pair!.client.dump().every((d) => d.streams === 0));
  });

  it('pings idle connections and releases them after the idle timeout', async () => {
    const echo = await echoServer();
    closers.push(() => echo.server.close());
    pair = await meshPair({ client: { pingIntervalMs: 40, idleTimeoutMs: 400 } });
    const s = await pair.client.connect({
      source: CLIENT_ID,
      destination: SERVER_ID,
      address: { host: '127.0.0.1', port: pair.serverPort },
      authority: `127.0.0.1:${echo.port}`,
    });
    s.end();
    await readAll(s);
    await eventually(
      async () => (await metricValue(pair!.registry, 'hbone_pool_pings_total', { result: 'ok' })) >= 2,
    );
    expect(pair.client.size).toBe(1);
    await eventually(() => pair!.client.size === 0);
    expect(await metricValue(pair.registry, 'hbone_pool_connections')).toBe(0);
  });

  it('uses a rotated certificate for new connections without touching open ones', async () => {
    const echo = await echoServer();
    closers.push(() => echo.server.close());
    const serials: string[] = [];
    // Rotation comes due at half the ~4 s lifetime left when the certificate arrived.
    pair = await meshPair({ ttlSeconds: 4 });
    const p = pair;
    const openAndRecord = async (source: SpiffeId) => {
      const s = await p.client.connect({
        source,
        destination: SERVER_ID,
        address: { host: '127.0.0.1', port: p.serverPort },
        authority: `127.0.0.1:${echo.port}`,
      });
      const entry = p.client.dump().find((d) => d.key.startsWith(`${source}|`));
      serials.push(entry!.peerSerial!);
      expect(entry?.peer).toBe(SERVER_ID.toString());
      return s;
    };
    const before = await openAndRecord(CLIENT_ID);
    const first = p.certs.current(SERVER_ID)!;
    await eventually(() => p.certs.current(SERVER_ID) !== first, 50);
    // A different source identity forces a new TLS connection to the same server.
    const after = await openAndRecord(SpiffeId.of(TRUST_DOMAIN, 'demo', 'late-client'));
    expect(serials[0]).toBe(first.serialNumber);
    expect(serials[1]).toBe(p.certs.current(SERVER_ID)!.serialNumber);
    expect(serials[1]).not.toBe(serials[0]);
    expect(await roundTrip(before, 'old connection')).toBe('old connection');
    expect(await roundTrip(after, 'new connection')).toBe('new connection');
    before.end();
    after.end();
  });
});

describe('HBONE server lifecycle', () => {
  it('close() keeps open tunnels until the deadline, refuses new connections, then destroys the rest', async () => {
    const echo = await echoServer();
    closers.push(() => echo.server.close());
    pair = await meshPair();
    const address = { host: '127.0.0.1', port: pair.serverPort };
    const open = await pair.client.connect({
      source: CLIENT_ID,
      destination: SERVER_ID,
      address,
      authority: `127.0.0.1:${echo.port}`,
    });
    open.on('error', () => {});
    const closed = pair.server.close(400);
    expect(await roundTrip(open, 'during drain')).toBe('during drain');
    const late = SpiffeId.of(TRUST_DOMAIN, 'demo', 'late');
    await expect(
      pair.client.connect({
        source: late,
        destination: SERVER_ID,
        address,
        authority: `127.0.0.1:${echo.port}`,
      }),
    ).rejects.toSatisfy((e) => e instanceof MeshError && e.code === 'MESH_ERR_HBONE_UPSTREAM');
    await closed;
    await eventually(() => open.destroyed);
    expect(echo.sockets.size).toBe(0);
  });
});

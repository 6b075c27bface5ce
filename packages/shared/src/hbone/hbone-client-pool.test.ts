/**
 * How the HBONE client pool places streams on a server that limits or refuses them: it waits for
 * the server's SETTINGS before using a connection, keeps within its MAX_CONCURRENT_STREAMS, and
 * tries a refused stream (RFC 9113 §8.7) once more on a new connection. The server is our own
 * HTTP/2 engine behind real mutual TLS, scripted per stream.
 */
import http2 from 'node:http2';
import type net from 'node:net';
import tls from 'node:tls';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { MeshError } from '../errors.js';
import { H2Connection } from '../h2/h2-connection.js';
import { H2_ERROR } from '../h2/h2-frames.js';
import type { H2Stream } from '../h2/h2-stream.js';
import { CertManager } from '../identity/cert-manager.js';
import { LocalCa } from '../identity/local-ca.js';
import { HboneMetrics } from '../telemetry/hbone-metrics.js';
import { CLIENT_ID, eventually, SERVER_ID, TRUST_DOMAIN } from '../testing/mesh-fixture.js';
import { secureContextOptions } from '../tls/mesh-tls.js';
import { HboneClient, type HboneConnectRequest } from './hbone-client.js';

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

interface ScriptedServer {
  port: number;
  /** Streams seen, as connection index (0-based, in accept order) per stream. */
  streams: number[];
  /** Most streams open at once on any one connection. */
  maxOpen: () => number;
  connections: () => number;
}

/**
 * A TLS HTTP/2 server presenting SERVER_ID that advertises `maxStreams` and answers each stream
 * with `answer(n)` (n counts streams from 0): a status, or 'refuse' for RST_STREAM REFUSED_STREAM.
 * Answered streams stay open until the client ends them.
 */
async function scriptedServer(
  certs: CertManager,
  maxStreams: number,
  answer: (n: number) => number | 'refuse',
): Promise<ScriptedServer> {
  const cert = await certs.fetch(SERVER_ID);
  const streams: number[] = [];
  const open: number[] = [];
  let maxOpen = 0;
  let connections = 0;
  const server = tls.createServer(
    { ...secureContextOptions(cert), ALPNProtocols: ['h2'], requestCert: true },
    (socket) => {
      const index = connections++;
      open[index] = 0;
      const conn = new H2Connection(socket, {
        role: 'server',
        streamWindow: 65_535,
        connectionWindow: 1024 * 1024,
        maxConcurrentStreams: maxStreams,
      });
      closers.push(() => conn.destroy());
      conn.on('stream', (s: H2Stream) => {
        s.on('error', () => {});
        const a = answer(streams.length);
        streams.push(index);
        if (a === 'refuse') {
          s.close(H2_ERROR.REFUSED_STREAM);
          return;
        }
        open[index] = (open[index] ?? 0) + 1;
        maxOpen = Math.max(maxOpen, open[index] as number);
        s.once('close', () => {
          open[index] = (open[index] ?? 1) - 1;
        });
        s.respond({ ':status': a });
        s.resume();
        s.on('end', () => s.end());
      });
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => server.close());
  return {
    port: (server.address() as net.AddressInfo).port,
    streams,
    maxOpen: () => maxOpen,
    connections: () => connections,
  };
}

async function setup(maxStreams: number, answer: (n: number) => number | 'refuse') {
  const ca = await LocalCa.create({ trustDomain: TRUST_DOMAIN });
  const logger = pino({ level: 'silent' });
  const certs = new CertManager({ ca, logger });
  closers.push(() => certs.close());
  const server = await scriptedServer(certs, maxStreams, answer);
  const client = new HboneClient({ certificates: certs, metrics: new HboneMetrics(new Registry()), logger });
  closers.push(() => client.destroy());
  const request: HboneConnectRequest = {
    source: CLIENT_ID,
    destination: SERVER_ID,
    address: { host: '127.0.0.1', port: server.port },
    authority: '10.0.0.1:80',
  };
  return { server, client, request };
}

describe('HboneClient pool and the server stream limit', () => {
  it("keeps within the server's MAX_CONCURRENT_STREAMS from the first stream: 5 concurrent streams on a server allowing 2 take 3 connections, none refused", async () => {
    const { server, client, request } = await setup(2, () => 200);
    const streams = await Promise.all([1, 2, 3, 4, 5].map(() => client.connect(request)));
    expect(server.streams).toHaveLength(5);
    expect(server.maxOpen()).toBeLessThanOrEqual(2);
    expect(server.connections()).toBe(3);
    expect(client.size).toBe(3);
    for (const s of streams) s.end();
  });
});

describe('HboneClient retries a refused stream once (RFC 9113 §8.7)', () => {
  it('a stream refused with REFUSED_STREAM is placed again on a new connection and succeeds', async () => {
    const { server, client, request } = await setup(100, (n) => (n === 0 ? 'refuse' : 200));
    const s = await client.connect(request);
    // The refused try went to the first connection, the retry to a second one.
    expect(server.streams).toEqual([0, 1]);
    expect(client.size).toBe(2);
    s.end();
  });

  it('a stream refused twice fails, after exactly one retry', async () => {
    const { server, client, request } = await setup(100, () => 'refuse');
    const err = await client.connect(request).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(MeshError);
    expect((err as MeshError).code).toBe('MESH_ERR_HBONE_RESET');
    expect(server.streams).toEqual([0, 1]);
  });

  it('a refusal by status (503) is not retried: the server did process it', async () => {
    const { server, client, request } = await setup(100, () => 503);
    await expect(client.connect(request)).rejects.toMatchObject({ status: 503 });
    expect(server.streams).toEqual([0]);
  });
});

describe('HboneClient connect deadline', () => {
  it('a server that accepts TCP but never completes TLS fails connect() at its deadline', async () => {
    const net = await import('node:net');
    const silent = net.createServer((s) => s.on('error', () => {}));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    closers.push(() => silent.close());
    const sockets: net.Socket[] = [];
    silent.on('connection', (s) => sockets.push(s));
    closers.push(() => {
      for (const s of sockets) s.destroy();
    });
    const { client, request } = await setup(100, () => 200);
    const started = Date.now();
    const err = await client
      .connect({
        ...request,
        address: { host: '127.0.0.1', port: (silent.address() as net.AddressInfo).port },
        connectTimeoutMs: 300,
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    const tookMs = Date.now() - started;
    console.log(`connect deadline 300 ms: connect() failed after ${tookMs} ms`);
    expect((err as MeshError).code).toBe('MESH_ERR_HBONE_UPSTREAM');
    expect((err as Error).message).toMatch(/not ready/);
    await eventually(() => client.size === 0);
  });
});

describe("HboneClient pool against Node's http2 server", () => {
  /** A Node http2 server presenting SERVER_ID with `maxConcurrentStreams`; `refuse(n)` resets stream n unprocessed. */
  async function nodeServer(
    certs: CertManager,
    maxConcurrentStreams: number,
    refuse: (n: number) => boolean,
  ) {
    const cert = await certs.fetch(SERVER_ID);
    const server = http2.createSecureServer({
      ...secureContextOptions(cert),
      ALPNProtocols: ['h2'],
      requestCert: true,
      settings: { maxConcurrentStreams },
    });
    const streams: number[] = [];
    const sessions: http2.ServerHttp2Session[] = [];
    server.on('session', (session) => sessions.push(session));
    server.on('stream', (stream) => {
      const n = streams.length;
      streams.push(sessions.indexOf(stream.session as http2.ServerHttp2Session));
      stream.on('error', () => {});
      if (refuse(n)) {
        stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        return;
      }
      stream.respond({ ':status': 200 });
      stream.resume();
      stream.on('end', () => stream.end());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(() => {
      for (const s of sessions) s.destroy();
      server.close();
    });
    return { port: (server.address() as net.AddressInfo).port, streams, sessions };
  }

  async function clientFor(port: number, certs: CertManager) {
    const client = new HboneClient({
      certificates: certs,
      metrics: new HboneMetrics(new Registry()),
      logger: pino({ level: 'silent' }),
    });
    closers.push(() => client.destroy());
    const request: HboneConnectRequest = {
      source: CLIENT_ID,
      destination: SERVER_ID,
      address: { host: '127.0.0.1', port },
      authority: '10.0.0.1:80',
    };
    return { client, request };
  }

  async function certManager() {
    const certs = new CertManager({
      ca: await LocalCa.create({ trustDomain: TRUST_DOMAIN }),
      logger: pino({ level: 'silent' }),
    });
    closers.push(() => certs.close());
    return certs;
  }

  it('keeps within a MAX_CONCURRENT_STREAMS of 2: 5 concurrent streams take 3 connections', async () => {
    const certs = await certManager();
    const server = await nodeServer(certs, 2, () => false);
    const { client, request } = await clientFor(server.port, certs);
    const streams = await Promise.all([1, 2, 3, 4, 5].map(() => client.connect(request)));
    // Node's server resets streams over its limit before its 'stream' event; none was.
    expect(server.streams).toHaveLength(5);
    expect(server.sessions).toHaveLength(3);
    for (const s of streams) s.end();
  });

  it('retries a stream Node refused with REFUSED_STREAM on a new connection', async () => {
    const certs = await certManager();
    const server = await nodeServer(certs, 100, (n) => n === 0);
    const { client, request } = await clientFor(server.port, certs);
    const s = await client.connect(request);
    expect(server.streams).toEqual([0, 1]);
    s.end();
  });
});

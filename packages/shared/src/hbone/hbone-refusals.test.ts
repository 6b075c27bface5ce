import http2, { constants as h2c } from 'node:http2';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { MeshError } from '../errors.js';
import type { WorkloadCertificate } from '../identity/cert-manager.js';
import { LocalCa } from '../identity/local-ca.js';
import { SpiffeId } from '../identity/spiffe-id.js';
import { certificateFacts, generateKeyPair, privateKeyPem } from '../identity/x509.js';
import {
  CLIENT_ID,
  echoServer,
  eventually,
  type MeshPair,
  meshPair,
  metricValue,
  SERVER_ID,
  TRUST_DOMAIN,
} from '../testing/mesh-fixture.js';
import { secureContextFor, secureContextOptions } from '../tls/mesh-tls.js';

let pair: MeshPair;
let echoPort: number;
const closers: Array<() => unknown> = [];

afterEach(async () => {
  await pair?.close();
  for (const c of closers.splice(0)) await c();
});

async function setup(options: Parameters<typeof meshPair>[0] = {}): Promise<void> {
  const echo = await echoServer();
  closers.push(() => echo.server.close());
  echoPort = echo.port;
  pair = await meshPair(options);
}

/** A good tunnel still works: the server kept serving after whatever came before. */
async function expectServerStillServes(): Promise<void> {
  const s = await pair.client.connect({
    source: CLIENT_ID,
    destination: SERVER_ID,
    address: { host: '127.0.0.1', port: pair.serverPort },
    authority: `127.0.0.1:${echoPort}`,
  });
  s.write('still serving');
  const reply = await new Promise<string>((r) => s.once('data', (d: Buffer) => r(d.toString())));
  expect(reply).toBe('still serving');
  s.end();
}

const refused = (reason: string) =>
  metricValue(pair.registry, 'hbone_connections_refused_total', { side: 'server', reason });

/** Sends raw bytes and resolves with whatever came back when the server closed the connection. */
function rawExchange(port: number, bytes: string): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    s.on('data', (c) => chunks.push(c));
    s.on('error', () => {});
    s.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

/** A TLS client with explicit material; resolves when the server has closed the connection. */
function tlsAttempt(
  port: number,
  options: tls.ConnectionOptions,
): Promise<{ handshake: boolean; data: number }> {
  return new Promise((resolve) => {
    let handshake = false;
    let data = 0;
    const s = tls.connect({
      host: '127.0.0.1',
      port,
      ALPNProtocols: ['h2'],
      checkServerIdentity: () => undefined,
      ...options,
    });
    s.on('secureConnect', () => {
      handshake = true;
      // An HTTP/2 preface: a server that accepted would answer with SETTINGS.
      s.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00');
    });
    s.on('data', (d) => {
      data += d.length;
    });
    s.on('error', () => {});
    s.on('close', () => resolve({ handshake, data }));
  });
}

/** Key and a certificate issued directly by `ca` for `identity` with an explicit validity window. */
async function issued(
  ca: LocalCa,
  identity: SpiffeId,
  notBefore: Date,
  notAfter: Date,
): Promise<WorkloadCertificate> {
  const keys = await generateKeyPair();
  const chainPem = await ca.issue(identity, keys.publicKey, notBefore, notAfter);
  const facts = certificateFacts(chainPem[0] as string);
  return {
    identity,
    keyPem: await privateKeyPem(keys.privateKey),
    chainPem,
    rootsPem: [ca.rootPem],
    notBefore: facts.notBefore,
    notAfter: facts.notAfter,
    serialNumber: facts.serialNumber,
  };
}

const HOUR = 3600_000;
const expiredWindow = (): [Date, Date] => [new Date(Date.now() - 3 * HOUR), new Date(Date.now() - HOUR)];
const validWindow = (): [Date, Date] => [new Date(Date.now() - HOUR), new Date(Date.now() + HOUR)];

/** An authenticated HTTP/2 session to the server, for requests no HBONE client would send. */
async function rawSession(): Promise<http2.ClientHttp2Session> {
  const cert = await pair.certs.fetch(CLIENT_ID);
  const session = http2.connect(`https://127.0.0.1:${pair.serverPort}`, {
    createConnection: () =>
      tls.connect({
        host: '127.0.0.1',
        port: pair.serverPort,
        secureContext: secureContextFor(cert),
        ALPNProtocols: ['h2'],
        checkServerIdentity: () => undefined,
      }),
  });
  closers.push(() => session.destroy());
  return session;
}

function statusOf(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers, { endStream: headers[':method'] !== 'CONNECT' });
    req.on('response', (h) => resolve(Number(h[':status'])));
    req.on('error', reject);
    req.resume();
  });
}

describe('HBONE server refuses bad peers, counts them, and keeps serving', () => {
  it('refuses plain bytes on the HBONE port', async () => {
    await setup();
    const reply = await rawExchange(pair.serverPort, 'hello, plain bytes\n');
    expect(reply.includes(Buffer.from('hello'))).toBe(false);
    await eventually(async () => (await refused('tls_handshake')) === 1);
    await expectServerStillServes();
  });

  it('refuses HTTP/1.1 on the HBONE port', async () => {
    await setup();
    const reply = await rawExchange(
      pair.serverPort,
      'CONNECT 10.0.0.1:80 HTTP/1.1\r\nHost: 10.0.0.1:80\r\n\r\n',
    );
    expect(reply.toString()).not.toContain('HTTP/1.1 200');
    await eventually(async () => (await refused('tls_handshake')) === 1);
    await expectServerStillServes();
  });

  it('refuses TLS without a client certificate', async () => {
    await setup();
    const attempt = await tlsAttempt(pair.serverPort, {
      ca: pair.ca.rootPem,
      minVersion: 'TLSv1.3',
    });
    expect(attempt.data).toBe(0);
    await eventually(async () => (await refused('no_client_cert')) === 1);
    await expectServerStillServes();
  });

  it('refuses a client certificate from another root', async () => {
    await setup();
    const otherCa = await LocalCa.create({ trustDomain: TRUST_DOMAIN });
    const foreign = await issued(otherCa, CLIENT_ID, ...validWindow());
    const attempt = await tlsAttempt(pair.serverPort, {
      ...secureContextOptions(foreign),
      ca: pair.ca.rootPem,
    });
    expect(attempt.data).toBe(0);
    await eventually(async () => (await refused('untrusted_cert')) === 1);
    await expectServerStillServes();
  });

  it('refuses an expired client certificate', async () => {
    await setup();
    const expired = await issued(pair.ca, CLIENT_ID, ...expiredWindow());
    const attempt = await tlsAttempt(pair.serverPort, secureContextOptions(expired));
    expect(attempt.data).toBe(0);
    await eventually(async () => (await refused('expired_cert')) === 1);
    await expectServerStillServes();
  });

  it('refuses a client whose SPIFFE identity is outside the trust domain', async () => {
    await setup();
    const foreignTd = await issued(pair.ca, SpiffeId.of('evil.example', 'demo', 'client'), ...validWindow());
    const attempt = await tlsAttempt(pair.serverPort, secureContextOptions(foreignTd));
    expect(attempt.data).toBe(0);
    await eventually(async () => (await refused('identity')) === 1);
    await expectServerStillServes();
  });

  it('client refuses a server presenting the wrong SPIFFE identity or an expired certificate', async () => {
    const ca = await LocalCa.create({ trustDomain: TRUST_DOMAIN });
    const wrong = await issued(ca, SpiffeId.of(TRUST_DOMAIN, 'demo', 'impostor'), ...validWindow());
    const expired = await issued(ca, SERVER_ID, ...expiredWindow());
    let presented = wrong;
    await setup({ server: { certificateFor: async () => presented } });
    // The fixture's CA differs from `ca`; trust both for this test by using the server's CA for the client too.
    await pair.close();
    const { HboneServer } = await import('./hbone-server.js');
    const { HboneClient } = await import('./hbone-client.js');
    const { CertManager } = await import('../identity/cert-manager.js');
    const { HboneMetrics } = await import('../telemetry/hbone-metrics.js');
    const { Registry } = await import('prom-client');
    const { pino } = await import('pino');
    const logger = pino({ level: 'silent' });
    const registry = new Registry();
    const metrics = new HboneMetrics(registry);
    const certs = new CertManager({ ca, logger });
    const server = new HboneServer({
      certificateFor: async () => presented,
      onRequest: async () => {
        throw new Error('never reached');
      },
      metrics,
      logger,
    });
    const { port } = await server.listen(0, '127.0.0.1');
    const client = new HboneClient({ certificates: certs, metrics, logger });
    closers.push(
      () => client.destroy(),
      () => server.destroy(),
      () => certs.close(),
    );
    const attempt = () =>
      client.connect({
        source: CLIENT_ID,
        destination: SERVER_ID,
        address: { host: '127.0.0.1', port },
        authority: '127.0.0.1:80',
      });
    await expect(attempt()).rejects.toSatisfy(
      (e) => e instanceof MeshError && e.code === 'MESH_ERR_PEER_IDENTITY',
    );
    presented = expired;
    await expect(attempt()).rejects.toSatisfy(
      (e) => e instanceof MeshError && e.code === 'MESH_ERR_TLS_HANDSHAKE',
    );
    expect(
      await metricValue(registry, 'hbone_connections_refused_total', { side: 'client', reason: 'identity' }),
    ).toBe(1);
    expect(
      await metricValue(registry, 'hbone_connections_refused_total', {
        side: 'client',
        reason: 'expired_cert',
      }),
    ).toBe(1);
    expect(client.size).toBe(0);
  });

  it('closes a verified peer that breaks HTTP/2, with GOAWAY, and counts it', async () => {
    await setup();
    const cert = await pair.certs.fetch(CLIENT_ID);
    const reply = await new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      const s = tls.connect({
        host: '127.0.0.1',
        port: pair.serverPort,
        secureContext: secureContextFor(cert),
        ALPNProtocols: ['h2'],
        checkServerIdentity: () => undefined,
      });
      s.on('secureConnect', () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      s.on('data', (d) => chunks.push(d));
      s.on('error', () => {});
      s.on('close', () => resolve(Buffer.concat(chunks)));
    });
    // SETTINGS first, then GOAWAY(PROTOCOL_ERROR) for the bad preface.
    const goaway = reply.lastIndexOf(Buffer.from([0x07, 0, 0, 0, 0, 0]));
    expect(goaway).toBeGreaterThan(0);
    expect(reply.readUInt32BE(goaway + 10)).toBe(1);
    await eventually(async () => (await refused('protocol')) === 1);
    expect(pair.requests).toHaveLength(0);
    await expectServerStillServes();
  });

  it('answers 400 to a non-CONNECT method', async () => {
    await setup();
    const session = await rawSession();
    expect(await statusOf(session, { ':method': 'GET', ':path': '/' })).toBe(400);
    expect(await statusOf(session, { ':method': 'POST', ':path': '/x' })).toBe(400);
    expect(
      await metricValue(pair.registry, 'hbone_stream_errors_total', { side: 'server', reason: 'method' }),
    ).toBe(2);
    await expectServerStillServes();
  });

  it('answers 400 to a malformed authority and 503 to a target on a capture port', async () => {
    await setup();
    const session = await rawSession();
    for (const authority of ['reviews.demo.svc:80', '127.0.0.1', '127.0.0.1:99999']) {
      expect(await statusOf(session, { ':method': 'CONNECT', ':authority': authority })).toBe(400);
    }
    // A call to the proxy's own ports: upstream answers SERVICE_UNAVAILABLE (Error::SelfCall).
    for (const port of [15001, 15006, 15008]) {
      expect(await statusOf(session, { ':method': 'CONNECT', ':authority': `127.0.0.1:${port}` })).toBe(503);
    }
    expect(
      await metricValue(pair.registry, 'hbone_stream_errors_total', { side: 'server', reason: 'authority' }),
    ).toBe(3);
    expect(
      await metricValue(pair.registry, 'hbone_stream_errors_total', {
        side: 'server',
        reason: 'forbidden_port',
      }),
    ).toBe(3);
    expect(pair.requests).toHaveLength(0);
    await expectServerStillServes();
  });

  it('closes the upstream when a stream is reset mid-transfer', async () => {
    await setup();
    const upstreamClosed: boolean[] = [];
    const app = net.createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => {});
      s.on('data', () => {});
      // Our side was shut (FIN or RST): either event means the tunnel let go of the upstream.
      s.once('end', () => upstreamClosed.push(true));
      s.once('error', () => upstreamClosed.push(true));
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    closers.push(() => app.close());
    const stream = await pair.client.connect({
      source: CLIENT_ID,
      destination: SERVER_ID,
      address: { host: '127.0.0.1', port: pair.serverPort },
      authority: `127.0.0.1:${(app.address() as net.AddressInfo).port}`,
    });
    stream.on('error', () => {});
    stream.write(Buffer.alloc(256 * 1024));
    (stream as unknown as { close(code: number): void }).close(h2c.NGHTTP2_CANCEL);
    await eventually(() => upstreamClosed.length >= 1);
    await eventually(
      async () =>
        (await metricValue(pair.registry, 'hbone_stream_errors_total', {
          side: 'server',
          reason: 'reset',
        })) === 1,
    );
    await expectServerStillServes();
  });

  it('does not buffer without bound for a peer that stops reading', async () => {
    await setup();
    // The upstream app writes as fast as the tunnel lets it; the HBONE client never reads.
    let produced = 0;
    let stalled: () => void = () => {};
    const stalledP = new Promise<void>((r) => (stalled = r));
    const LIMIT = 256 * 1024 * 1024;
    const chunk = Buffer.alloc(1024 * 1024);
    const app = net.createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => {});
      let idle: NodeJS.Timeout | undefined;
      const pump = () => {
        while (produced < LIMIT) {
          produced += chunk.length;
          if (!s.write(chunk)) {
            clearTimeout(idle);
            idle = setTimeout(stalled, 500);
            s.once('drain', pump);
            return;
          }
        }
        stalled();
      };
      pump();
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    closers.push(() => app.close());
    const stream: Duplex = await pair.client.connect({
      source: CLIENT_ID,
      destination: SERVER_ID,
      address: { host: '127.0.0.1', port: pair.serverPort },
      authority: `127.0.0.1:${(app.address() as net.AddressInfo).port}`,
    });
    stream.pause();
    stream.on('error', () => {});
    await stalledP;
    // Windows (4 MiB stream, 16 MiB connection), socket buffers and stream high-water marks: tens of MiB, not 256.
    expect(produced).toBeLessThan(64 * 1024 * 1024);
    expect(produced).toBeGreaterThan(4 * 1024 * 1024);
    stream.destroy();
    await expectServerStillServes();
  });
});

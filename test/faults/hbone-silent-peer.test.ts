/**
 * An HBONE server that goes silent under open streams: the TCP path to it is frozen (a proxy stops
 * moving bytes either way, sockets stay open, no FIN, no RST), as when a node vanishes or a
 * middlebox drops state. The pooled client must notice within its keepalive bounds, fail the
 * streams on that connection, and put no new stream on it in the meantime.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import {
  CertManager,
  dialTcp,
  HboneClient,
  HboneMetrics,
  HboneServer,
  LocalCa,
  SpiffeId,
} from '@ambient/shared';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';

const TRUST_DOMAIN = 'cluster.local';
const CLIENT_ID = SpiffeId.of(TRUST_DOMAIN, 'faults', 'client');
const SERVER_ID = SpiffeId.of(TRUST_DOMAIN, 'faults', 'server');
const PING_INTERVAL_MS = 300;
const PING_TIMEOUT_MS = 600;

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

/** A TCP proxy whose existing connections can be frozen; connections made later flow normally. */
async function freezableProxy(targetPort: number) {
  const pairs: Array<[net.Socket, net.Socket]> = [];
  const server = net.createServer((down) => {
    const up = net.connect(targetPort, '127.0.0.1');
    down.on('error', () => {});
    up.on('error', () => {});
    down.pipe(up);
    up.pipe(down);
    pairs.push([down, up]);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => {
    for (const [a, b] of pairs) {
      a.destroy();
      b.destroy();
    }
    server.close();
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => pairs.length,
    /** Stops every current connection dead, both ways, without closing anything. */
    freeze() {
      for (const [down, up] of pairs) {
        down.unpipe(up);
        up.unpipe(down);
        down.pause();
        up.pause();
      }
    },
  };
}

async function echoServer(): Promise<number> {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => server.close());
  return (server.address() as net.AddressInfo).port;
}

function roundTrip(stream: Duplex, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    stream.once('data', (d: Buffer) => resolve(d.toString()));
    stream.once('error', reject);
    stream.write(text);
  });
}

async function until(check: () => boolean, what: string, limitMs = 20_000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('HBONE client and a server that goes silent', () => {
  it('detects the dead connection under open streams, fails them, and sends new streams to a new connection', async () => {
    const ca = await LocalCa.create({ trustDomain: TRUST_DOMAIN });
    const logger = pino({ level: 'silent' });
    const certs = new CertManager({ ca, logger });
    closers.push(() => certs.close());
    const registry = new Registry();
    const metrics = new HboneMetrics(registry);
    const server = new HboneServer({
      certificateFor: () => certs.fetch(SERVER_ID),
      onRequest: async (req) => dialTcp({ host: '127.0.0.1', port: req.target.port }),
      metrics,
      logger,
    });
    const { port: serverPort } = await server.listen(0, '127.0.0.1');
    closers.push(() => server.destroy());
    const proxy = await freezableProxy(serverPort);
    const client = new HboneClient({
      certificates: certs,
      metrics,
      logger,
      pingIntervalMs: PING_INTERVAL_MS,
      pingTimeoutMs: PING_TIMEOUT_MS,
    });
    closers.push(() => client.destroy());
    const echoPort = await echoServer();
    const request = {
      source: CLIENT_ID,
      destination: SERVER_ID,
      address: { host: '127.0.0.1', port: proxy.port },
      authority: `127.0.0.1:${echoPort}`,
    };

    const first = await client.connect(request);
    const second = await client.connect(request);
    expect(await roundTrip(first, 'before')).toBe('before');
    expect(client.size).toBe(1);
    const failures: Array<{ code?: string; message: string }> = [];
    for (const s of [first, second]) s.on('error', (e: NodeJS.ErrnoException) => failures.push(e));

    proxy.freeze();
    const frozenAt = Date.now();
    // Once the server has been silent for the keepalive interval, a PING is out and the
    // connection takes no new stream: this one goes to a new connection and works.
    await until(() => client.dump().some((d) => d.unresponsive === true), 'the liveness PING');
    const suspectAfterMs = Date.now() - frozenAt;
    const third = await client.connect(request);
    expect(proxy.connections()).toBe(2);
    expect(client.size).toBe(2);
    expect(await roundTrip(third, 'meanwhile')).toBe('meanwhile');

    await until(() => failures.length === 2, 'the streams on the frozen connection to fail');
    const detectedAfterMs = Date.now() - frozenAt;
    console.log(
      `silent server: PING sent after ${suspectAfterMs} ms, connection given up after ${detectedAfterMs} ms (interval ${PING_INTERVAL_MS} ms, timeout ${PING_TIMEOUT_MS} ms)`,
    );
    expect(failures.map((f) => f.code)).toEqual(['ERR_H2_PEER_UNRESPONSIVE', 'ERR_H2_PEER_UNRESPONSIVE']);
    // Generous bound on a shared machine: interval + timeout is 0.9 s.
    expect(detectedAfterMs).toBeLessThan(15_000);
    await until(() => client.size === 1, 'the dead connection to leave the pool');
    const failed = await registry.getSingleMetric('hbone_pool_pings_total')?.get();
    expect(failed?.values.find((v) => v.labels.result === 'failed')?.value).toBe(1);

    // The pool goes on with the live connection.
    const fourth = await client.connect(request);
    expect(proxy.connections()).toBe(2);
    expect(await roundTrip(fourth, 'after')).toBe('after');
    expect(await roundTrip(third, 'still')).toBe('still');
  });
});

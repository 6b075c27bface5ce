/**
 * The client's stream limit before and after the server's first SETTINGS (RFC 9113 §6.5.2): 100
 * assumed until the server speaks, then exactly what it said. The server is a raw socket so that
 * its SETTINGS can be held back.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../testing/mesh-fixture.js';
import { ASSUMED_PEER_MAX_CONCURRENT_STREAMS, H2Connection } from './h2-connection.js';
import { FRAME, frameHeader, H2_ERROR, SETTING } from './h2-frames.js';

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

const WINDOWS = { streamWindow: 1024 * 1024, connectionWindow: 4 * 1024 * 1024, maxConcurrentStreams: 100 };
const CONNECT = { ':method': 'CONNECT', ':authority': '10.0.0.1:80' };

function settings(pairs: Array<[number, number]>): Buffer {
  const payload = Buffer.alloc(pairs.length * 6);
  pairs.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, i * 6);
    payload.writeUInt32BE(value, i * 6 + 2);
  });
  return Buffer.concat([frameHeader(payload.length, FRAME.SETTINGS, 0, 0), payload]);
}

/** A client connection to a raw peer that has sent nothing yet. */
async function clientToRawPeer(): Promise<{ conn: H2Connection; peer: net.Socket }> {
  let peer!: net.Socket;
  const server = net.createServer((s) => {
    peer = s;
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise((r) => server.close(r)));
  const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  const conn = new H2Connection(socket, { role: 'client', ...WINDOWS });
  closers.push(() => conn.destroy());
  await eventually(() => peer !== undefined);
  closers.push(() => peer.destroy());
  return { conn, peer };
}

function refusedLocally(conn: H2Connection): boolean {
  try {
    conn.request(CONNECT).on('error', () => {});
    return false;
  } catch (err) {
    expect((err as { code: number }).code).toBe(H2_ERROR.REFUSED_STREAM);
    return true;
  }
}

describe('H2Connection as a client: concurrent stream limit (RFC 9113 §6.5.2)', () => {
  it('opens at most 100 streams before the server SETTINGS, then follows the server value', async () => {
    expect(ASSUMED_PEER_MAX_CONCURRENT_STREAMS).toBe(100);
    const { conn, peer } = await clientToRawPeer();
    for (let i = 0; i < 100; i++) conn.request(CONNECT).on('error', () => {});
    expect(conn.settingsReceived).toBe(false);
    expect(refusedLocally(conn)).toBe(true);
    peer.write(settings([[SETTING.MAX_CONCURRENT_STREAMS, 102]]));
    await eventually(() => conn.settingsReceived);
    expect(conn.remoteSettings.maxConcurrentStreams).toBe(102);
    expect(refusedLocally(conn)).toBe(false);
    expect(refusedLocally(conn)).toBe(false);
    expect(refusedLocally(conn)).toBe(true);
    expect(conn.streamCount).toBe(102);
  });

  it('a first SETTINGS without MAX_CONCURRENT_STREAMS lifts the assumed limit; a lower later value holds', async () => {
    const { conn, peer } = await clientToRawPeer();
    peer.write(settings([[SETTING.INITIAL_WINDOW_SIZE, 65_535]]));
    await eventually(() => conn.settingsReceived);
    expect(conn.remoteSettings.maxConcurrentStreams).toBe(Number.POSITIVE_INFINITY);
    for (let i = 0; i < 150; i++) expect(refusedLocally(conn)).toBe(false);
    peer.write(settings([[SETTING.MAX_CONCURRENT_STREAMS, 10]]));
    await eventually(() => conn.remoteSettings.maxConcurrentStreams === 10);
    expect(refusedLocally(conn)).toBe(true);
  });
});

/**
 * DATA frame sizes against the peer's SETTINGS_MAX_FRAME_SIZE (RFC 9113 §4.2, §6.5.2): frames
 * fill 16 KiB TLS records exactly, four records at a time when the peer allows frames that large,
 * and never exceed what the peer allows.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../testing/mesh-fixture.js';
import { H2Connection } from './h2-connection.js';
import { DATA_FRAME_PAYLOAD, FLAG, FRAME, frameHeader, SETTING } from './h2-frames.js';
import type { H2Stream } from './h2-stream.js';
import { hpackEncode } from './hpack.js';

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

const BODY = 300_000;

/**
 * A raw client announcing `maxFrameSize` (none: the 16 KiB default) and large windows asks for a
 * response of BODY bytes; returns the payload length of every DATA frame it received.
 */
async function dataFrameSizes(maxFrameSize: number | undefined): Promise<number[]> {
  const server = net.createServer((socket) => {
    const conn = new H2Connection(socket, {
      role: 'server',
      streamWindow: 1024 * 1024,
      connectionWindow: 1024 * 1024,
      maxConcurrentStreams: 10,
    });
    conn.on('stream', (s: H2Stream) => {
      s.on('error', () => {});
      s.respond({ ':status': 200 });
      // One write larger than any frame: the connection cuts it into frames.
      s.end(Buffer.alloc(BODY, 0x61));
    });
    closers.push(() => conn.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => server.close());
  const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  closers.push(() => socket.destroy());
  await new Promise((r) => socket.once('connect', r));
  const received: Buffer[] = [];
  socket.on('data', (d: Buffer) => received.push(d));
  const settings: Array<[number, number]> = [[SETTING.INITIAL_WINDOW_SIZE, 4 * 1024 * 1024]];
  if (maxFrameSize !== undefined) settings.push([SETTING.MAX_FRAME_SIZE, maxFrameSize]);
  const payload = Buffer.alloc(settings.length * 6);
  settings.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, i * 6);
    payload.writeUInt32BE(value, i * 6 + 2);
  });
  const windowUpdate = Buffer.alloc(4);
  windowUpdate.writeUInt32BE(4 * 1024 * 1024);
  const request = hpackEncode([
    [':method', 'GET'],
    [':scheme', 'https'],
    [':path', '/'],
    [':authority', 'x'],
  ]);
  socket.write(
    Buffer.concat([
      Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'),
      frameHeader(payload.length, FRAME.SETTINGS, 0, 0),
      payload,
      frameHeader(4, FRAME.WINDOW_UPDATE, 0, 0),
      windowUpdate,
      frameHeader(request.length, FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1),
      request,
    ]),
  );
  const sizes = () => {
    const all = Buffer.concat(received);
    const out: Array<{ length: number; end: boolean }> = [];
    for (let off = 0; off + 9 <= all.length; ) {
      const length = all.readUIntBE(off, 3);
      if (off + 9 + length > all.length) break;
      if (all[off + 3] === FRAME.DATA)
        out.push({ length, end: ((all[off + 4] as number) & FLAG.END_STREAM) !== 0 });
      off += 9 + length;
    }
    return out;
  };
  await eventually(() => sizes().some((f) => f.end));
  return sizes().map((f) => f.length);
}

describe('H2Connection DATA frame sizes', () => {
  it('sends frames that fill one 16 KiB record, whatever larger frame size the peer allows', async () => {
    expect(DATA_FRAME_PAYLOAD + 9).toBe(16_384);
    for (const max of [undefined, 20_000, 65_536, 1024 * 1024]) {
      const sizes = await dataFrameSizes(max);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(BODY);
      expect(sizes[0]).toBe(DATA_FRAME_PAYLOAD);
      expect(Math.max(...sizes)).toBe(DATA_FRAME_PAYLOAD);
    }
  });
});

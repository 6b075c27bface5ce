/**
 * The HBONE server behind real mutual TLS never opens a tunnel for a malformed CONNECT (RFC 9113
 * §8.5: a plain CONNECT carries exactly :method and :authority): the stream is reset with
 * PROTOCOL_ERROR before the request callback runs, and the connection goes on carrying tunnels.
 */
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { CLIENT_PREFACE, FLAG, FRAME, frameHeader, H2_ERROR } from '../h2/h2-frames.js';
import { type HeaderList, HpackDecoder, hpackEncode } from '../h2/hpack.js';
import {
  CLIENT_ID,
  echoServer,
  eventually,
  type MeshPair,
  meshPair,
  metricValue,
} from '../testing/mesh-fixture.js';
import { secureContextOptions } from '../tls/mesh-tls.js';

let pair: MeshPair | undefined;
const closers: Array<() => unknown> = [];
afterEach(async () => {
  await pair?.close();
  for (const c of closers.splice(0)) await c();
});

interface Frame {
  type: number;
  flags: number;
  id: number;
  payload: Buffer;
}

function frames(all: Buffer): Frame[] {
  const out: Frame[] = [];
  let off = 0;
  while (off + 9 <= all.length) {
    const length = all.readUIntBE(off, 3);
    if (off + 9 + length > all.length) break;
    out.push({
      type: all[off + 3] as number,
      flags: all[off + 4] as number,
      id: all.readUInt32BE(off + 5) & 0x7fffffff,
      payload: all.subarray(off + 9, off + 9 + length),
    });
    off += 9 + length;
  }
  return out;
}

function headersFrame(id: number, list: HeaderList): Buffer {
  const block = hpackEncode(list);
  return Buffer.concat([frameHeader(block.length, FRAME.HEADERS, FLAG.END_HEADERS, id), block]);
}

describe('HBONE server and malformed CONNECT requests', () => {
  it('resets each with PROTOCOL_ERROR, never calls the request callback for it, and serves the good tunnel on the same connection', async () => {
    const echo = await echoServer();
    closers.push(() => echo.server.close());
    pair = await meshPair();
    const target = `127.0.0.1:${echo.port}`;
    const bad: HeaderList[] = [
      // Each names the echo server, so a tunnel opened by mistake would be visible.
      [
        [':method', 'CONNECT'],
        [':authority', target],
        [':path', '/'],
      ],
      [
        [':method', 'CONNECT'],
        [':authority', target],
        [':scheme', 'https'],
      ],
      [
        [':method', 'CONNECT'],
        [':authority', target],
        ['connection', 'keep-alive'],
      ],
      [
        [':method', 'CONNECT'],
        [':authority', target],
        ['Forwarded', 'for="10.9.9.9"'],
      ],
      [
        [':method', 'CONNECT'],
        [':authority', target],
        ['forwarded', 'for="10.9.9.9"\r\nx: y'],
      ],
      [
        [':method', 'CONNECT'],
        [':authority', target],
        [':protocol', 'websocket'],
      ],
    ];
    const good: HeaderList = [
      [':method', 'CONNECT'],
      [':authority', target],
    ];
    const goodId = 1 + 2 * bad.length;
    const socket = tls.connect({
      ...secureContextOptions(await pair.certs.fetch(CLIENT_ID)),
      host: '127.0.0.1',
      port: pair.serverPort,
      ALPNProtocols: ['h2'],
      checkServerIdentity: () => undefined,
    });
    closers.push(() => socket.destroy());
    socket.on('error', () => {});
    const reply: Buffer[] = [];
    socket.on('data', (d: Buffer) => reply.push(d));
    await new Promise((r) => socket.once('secureConnect', r));
    socket.write(
      Buffer.concat([
        CLIENT_PREFACE,
        frameHeader(0, FRAME.SETTINGS, 0, 0),
        ...bad.map((list, i) => headersFrame(1 + 2 * i, list)),
        headersFrame(goodId, good),
      ]),
    );
    const got = () => frames(Buffer.concat(reply));
    await eventually(() => got().some((f) => f.type === FRAME.HEADERS && f.id === goodId));
    const decoder = new HpackDecoder();
    const response = got().find((f) => f.type === FRAME.HEADERS && f.id === goodId) as Frame;
    expect(Object.fromEntries(decoder.decode(response.payload))[':status']).toBe('200');
    // The good tunnel works on the same connection.
    const data = Buffer.from('through the tunnel');
    socket.write(Buffer.concat([frameHeader(data.length, FRAME.DATA, 0, goodId), data]));
    await eventually(() => got().some((f) => f.type === FRAME.DATA && f.id === goodId));
    expect(
      Buffer.concat(
        got()
          .filter((f) => f.type === FRAME.DATA && f.id === goodId)
          .map((f) => f.payload),
      ).toString(),
    ).toBe('through the tunnel');

    const resets = got()
      .filter((f) => f.type === FRAME.RST_STREAM)
      .map((f) => ({ id: f.id, code: f.payload.readUInt32BE(0) }));
    expect(resets).toEqual(bad.map((_, i) => ({ id: 1 + 2 * i, code: H2_ERROR.PROTOCOL_ERROR })));
    expect(got().filter((f) => f.type === FRAME.GOAWAY)).toEqual([]);
    // Only the good request reached the HBONE server's callback.
    expect(pair.requests).toHaveLength(1);
    expect(pair.requests[0]?.target).toEqual({ host: '127.0.0.1', port: echo.port });
    expect(pair.requests[0]?.forwardedFor).toBeUndefined();
    expect(
      await metricValue(pair.registry, 'hbone_stream_errors_total', { side: 'server', reason: 'malformed' }),
    ).toBe(bad.length);
  });
});

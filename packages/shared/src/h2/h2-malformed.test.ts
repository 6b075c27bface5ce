/**
 * Malformed requests and responses (RFC 9113 §8.1.1): each costs only its stream, with RST_STREAM
 * PROTOCOL_ERROR, never reaches the application, and the connection goes on serving. The peer is
 * a raw socket writing frames, since well-behaved clients (Node's among them) refuse to send these.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../testing/mesh-fixture.js';
import { H2Connection, type H2IncomingHeaders } from './h2-connection.js';
import { CLIENT_PREFACE, FLAG, FRAME, frameHeader, H2_ERROR, type H2StreamError } from './h2-frames.js';
import type { H2Stream } from './h2-stream.js';
import { type HeaderList, hpackEncode } from './hpack.js';

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

const WINDOWS = { streamWindow: 1024 * 1024, connectionWindow: 4 * 1024 * 1024, maxConcurrentStreams: 100 };

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

function headersFrame(id: number, list: HeaderList, endStream: boolean): Buffer {
  const block = hpackEncode(list);
  return Buffer.concat([
    frameHeader(block.length, FRAME.HEADERS, FLAG.END_HEADERS | (endStream ? FLAG.END_STREAM : 0), id),
    block,
  ]);
}

const FENCE = Buffer.concat([frameHeader(8, FRAME.PING, 0, 0), Buffer.from('fence123')]);
const resets = (got: Frame[]) =>
  got.filter((f) => f.type === FRAME.RST_STREAM).map((f) => ({ id: f.id, code: f.payload.readUInt32BE(0) }));

const CONNECT: HeaderList = [
  [':method', 'CONNECT'],
  [':authority', '10.0.0.1:80'],
];

/** Every request the server must refuse as malformed, by what is wrong with it. */
const MALFORMED_REQUESTS: Array<[string, HeaderList]> = [
  ['upper-case name', [...CONNECT, ['X-Upper', '1']]],
  [
    'pseudo-header after a regular field',
    [
      [':method', 'CONNECT'],
      ['x-a', '1'],
      [':authority', '10.0.0.1:80'],
    ],
  ],
  ['unknown pseudo-header', [...CONNECT, [':foo', 'bar']]],
  ['response pseudo-header', [...CONNECT, [':status', '200']]],
  ['connection', [...CONNECT, ['connection', 'keep-alive']]],
  ['keep-alive', [...CONNECT, ['keep-alive', 'timeout=5']]],
  ['proxy-connection', [...CONNECT, ['proxy-connection', 'keep-alive']]],
  ['transfer-encoding', [...CONNECT, ['transfer-encoding', 'chunked']]],
  ['upgrade', [...CONNECT, ['upgrade', 'websocket']]],
  ['te: gzip', [...CONNECT, ['te', 'gzip']]],
  ['CR in a value', [...CONNECT, ['x-a', 'a\rb']]],
  ['LF in a value', [...CONNECT, ['x-a', 'a\nb']]],
  ['NUL in a value', [...CONNECT, ['x-a', 'a\0b']]],
  ['leading whitespace in a value', [...CONNECT, ['x-a', ' a']]],
  ['trailing whitespace in a value', [...CONNECT, ['x-a', 'a ']]],
  ['missing :method', [[':authority', '10.0.0.1:80']]],
  [
    'GET without :path',
    [
      [':method', 'GET'],
      [':scheme', 'https'],
      [':authority', 'x'],
    ],
  ],
  ['CONNECT with :scheme', [...CONNECT, [':scheme', 'https']]],
  ['CONNECT with :path', [...CONNECT, [':path', '/']]],
  ['CONNECT without :authority', [[':method', 'CONNECT']]],
];

async function rawPeerOf(
  listen: (socket: net.Socket) => void,
): Promise<{ peer: net.Socket; got: () => Frame[] }> {
  const server = net.createServer(listen);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise((r) => server.close(r)));
  const peer = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise((r) => peer.once('connect', r));
  peer.on('error', () => {});
  closers.push(() => peer.destroy());
  const reply: Buffer[] = [];
  peer.on('data', (d: Buffer) => reply.push(d));
  return { peer, got: () => frames(Buffer.concat(reply)) };
}

describe('H2Connection refuses malformed requests per stream (RFC 9113 §8.1.1–§8.5)', () => {
  it('as a server: RST_STREAM PROTOCOL_ERROR for each malformed request, none reaches the application, and the next request is served', async () => {
    const seen: H2IncomingHeaders[] = [];
    const malformed: string[] = [];
    const connectionErrors: number[] = [];
    const { peer, got } = await rawPeerOf((socket) => {
      const conn = new H2Connection(socket, { role: 'server', ...WINDOWS });
      closers.push(() => conn.destroy());
      conn.on('protocolError', (e: { code: number }) => connectionErrors.push(e.code));
      conn.on('malformed', (e: H2StreamError) => malformed.push(`${e.streamId} ${e.message}`));
      conn.on('stream', (s: H2Stream, h: H2IncomingHeaders) => {
        seen.push(h);
        s.on('error', () => {});
        s.respond({ ':status': 200 }, { endStream: true });
      });
    });
    const out: Buffer[] = [CLIENT_PREFACE, frameHeader(0, FRAME.SETTINGS, 0, 0)];
    MALFORMED_REQUESTS.forEach(([, list], i) => {
      const id = 1 + 2 * i;
      // Every other one leaves the stream open and keeps sending, as a tunnel would: its DATA and
      // trailers arrive after our reset and must be ignored, not taken for a new stream.
      if (i % 2 === 0) out.push(headersFrame(id, list, true));
      else
        out.push(
          headersFrame(id, list, false),
          frameHeader(5, FRAME.DATA, 0, id),
          Buffer.from('hello'),
          headersFrame(id, [['x-trailer', '1']], true),
        );
    });
    const good = 1 + 2 * MALFORMED_REQUESTS.length;
    out.push(headersFrame(good, [...CONNECT, ['forwarded', 'for="10.0.0.2:1234"']], true), FENCE);
    peer.write(Buffer.concat(out));
    await eventually(() => got().some((f) => f.type === FRAME.PING && f.flags === FLAG.ACK));

    expect(connectionErrors).toEqual([]);
    expect(got().filter((f) => f.type === FRAME.GOAWAY)).toEqual([]);
    expect(resets(got())).toEqual(
      MALFORMED_REQUESTS.map((_, i) => ({ id: 1 + 2 * i, code: H2_ERROR.PROTOCOL_ERROR })),
    );
    expect(malformed).toHaveLength(MALFORMED_REQUESTS.length);
    // Only the well-formed request reached the application, and it was answered.
    expect(seen).toEqual([
      { ':method': 'CONNECT', ':authority': '10.0.0.1:80', forwarded: 'for="10.0.0.2:1234"' },
    ]);
    expect(
      got()
        .filter((f) => f.type === FRAME.HEADERS)
        .map((f) => f.id),
    ).toEqual([good]);
  });

  it('as a server: trailers with a pseudo-header reset their stream with PROTOCOL_ERROR', async () => {
    const ended: string[] = [];
    const { peer, got } = await rawPeerOf((socket) => {
      const conn = new H2Connection(socket, { role: 'server', ...WINDOWS });
      closers.push(() => conn.destroy());
      conn.on('stream', (s: H2Stream) => {
        s.respond({ ':status': 200 });
        s.on('error', (e: Error) => ended.push(`error ${e.message}`));
        s.on('end', () => ended.push('end'));
        s.resume();
      });
    });
    peer.write(
      Buffer.concat([
        CLIENT_PREFACE,
        frameHeader(0, FRAME.SETTINGS, 0, 0),
        headersFrame(1, CONNECT, false),
        headersFrame(1, [[':path', '/x']], true),
        headersFrame(3, CONNECT, false),
        headersFrame(3, [['x-ok', '1']], true),
        FENCE,
      ]),
    );
    await eventually(() => got().some((f) => f.type === FRAME.PING && f.flags === FLAG.ACK));
    await eventually(() => ended.length === 2);
    expect(resets(got())).toEqual([{ id: 1, code: H2_ERROR.PROTOCOL_ERROR }]);
    expect(ended.sort()).toEqual(['end', 'error malformed trailers: pseudo-header :path in trailers']);
  });
});

/** Every response the client must refuse as malformed. */
const MALFORMED_RESPONSES: Array<[string, HeaderList]> = [
  ['no :status', [['x-a', '1']]],
  [
    'request pseudo-header',
    [
      [':status', '200'],
      [':path', '/'],
    ],
  ],
  [
    'pseudo-header after a field',
    [
      ['x-a', '1'],
      [':status', '200'],
    ],
  ],
  [
    'upper-case name',
    [
      [':status', '200'],
      ['X-A', '1'],
    ],
  ],
  [
    'connection-specific field',
    [
      [':status', '200'],
      ['connection', 'close'],
    ],
  ],
  [
    'LF in a value',
    [
      [':status', '200'],
      ['x-a', 'a\nb'],
    ],
  ],
  ['status 101', [[':status', '101']]],
];

describe('H2Connection refuses malformed responses per stream (RFC 9113 §8.3.2)', () => {
  it('as a client: the stream fails with PROTOCOL_ERROR, the server gets RST_STREAM, and the next request succeeds', async () => {
    const serverSaw: Frame[] = [];
    let conn!: H2Connection;
    const { peer } = await rawPeerOf((socket) => {
      conn = new H2Connection(socket, { role: 'client', ...WINDOWS });
      closers.push(() => conn.destroy());
    });
    // The raw side plays the server: it answers stream 1, 3, ... in order from the list.
    const all: Buffer[] = [];
    let answered = 0;
    peer.on('data', (d: Buffer) => {
      all.push(d);
      const got = frames(Buffer.concat(all).subarray(CLIENT_PREFACE.length));
      serverSaw.splice(0, serverSaw.length, ...got);
      for (const f of got.filter((x) => x.type === FRAME.HEADERS).slice(answered)) {
        answered += 1;
        const list = MALFORMED_RESPONSES[(f.id - 1) / 2]?.[1] ?? [[':status', '200']];
        peer.write(headersFrame(f.id, list, false));
      }
    });
    peer.write(frameHeader(0, FRAME.SETTINGS, 0, 0));
    await eventually(() => conn !== undefined);
    const outcome = (s: H2Stream) =>
      new Promise<string>((resolve) => {
        s.once('response', (h: H2IncomingHeaders) => resolve(`response ${h[':status']}`));
        s.once('error', (e: Error) => resolve(`error ${s.rstCode} ${e.message}`));
      });
    for (const [what] of MALFORMED_RESPONSES) {
      const s = conn.request({ ':method': 'CONNECT', ':authority': '10.0.0.1:80' });
      const result = await outcome(s);
      expect(result, what).toMatch(new RegExp(`^error ${H2_ERROR.PROTOCOL_ERROR} malformed response`));
    }
    const last = conn.request({ ':method': 'CONNECT', ':authority': '10.0.0.1:80' });
    expect(await outcome(last)).toBe('response 200');
    await eventually(() => resets(serverSaw).length === MALFORMED_RESPONSES.length);
    expect(resets(serverSaw)).toEqual(
      MALFORMED_RESPONSES.map((_, i) => ({ id: 1 + 2 * i, code: H2_ERROR.PROTOCOL_ERROR })),
    );
    expect(conn.destroyed).toBe(false);
  });

  it('as a client: an informational response with END_STREAM is malformed', async () => {
    let conn!: H2Connection;
    const { peer } = await rawPeerOf((socket) => {
      conn = new H2Connection(socket, { role: 'client', ...WINDOWS });
      closers.push(() => conn.destroy());
    });
    peer.write(frameHeader(0, FRAME.SETTINGS, 0, 0));
    await eventually(() => conn !== undefined);
    const s = conn.request({ ':method': 'CONNECT', ':authority': '10.0.0.1:80' });
    peer.write(headersFrame(1, [[':status', '103']], true));
    const err = await new Promise<Error>((r) => s.once('error', r));
    expect(err.message).toMatch(/informational response with END_STREAM/);
    expect(s.rstCode).toBe(H2_ERROR.PROTOCOL_ERROR);
  });
});

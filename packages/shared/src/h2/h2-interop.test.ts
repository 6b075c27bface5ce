import { createHash, randomBytes } from 'node:crypto';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { CertManager } from '../identity/cert-manager.js';
import { LocalCa } from '../identity/local-ca.js';
import { SpiffeId } from '../identity/spiffe-id.js';
import { eventually } from '../testing/mesh-fixture.js';
import { secureContextOptions } from '../tls/mesh-tls.js';
import { H2Connection, type H2IncomingHeaders } from './h2-connection.js';
import { FLAG, FRAME, frameHeader, H2_ERROR } from './h2-frames.js';
import type { H2Stream } from './h2-stream.js';
import { HpackDecoder, hpackEncode } from './hpack.js';

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

async function tlsMaterial() {
  const ca = await LocalCa.create({ trustDomain: 'cluster.local' });
  const certs = new CertManager({ ca });
  closers.push(() => certs.close());
  const server = secureContextOptions(await certs.fetch(SpiffeId.of('cluster.local', 'x', 'server')));
  const client = secureContextOptions(await certs.fetch(SpiffeId.of('cluster.local', 'x', 'client')));
  return { server, client };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A TLS listener that hands each socket to `onSocket`. */
async function tlsServer(opts: tls.TlsOptions, onSocket: (s: tls.TLSSocket) => void): Promise<number> {
  const server = tls.createServer({ ...opts, ALPNProtocols: ['h2'], requestCert: true }, onSocket);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => server.close());
  return (server.address() as net.AddressInfo).port;
}

function tlsClient(port: number, opts: tls.ConnectionOptions): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      ...opts,
      host: '127.0.0.1',
      port,
      ALPNProtocols: ['h2'],
      checkServerIdentity: () => undefined,
    });
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  });
}

function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    stream.on('data', (c: Buffer) => parts.push(c));
    stream.on('end', () => resolve(Buffer.concat(parts)));
    stream.on('error', reject);
  });
}

const WINDOWS = {
  streamWindow: 4 * 1024 * 1024,
  connectionWindow: 16 * 1024 * 1024,
  maxConcurrentStreams: 100,
};

describe('H2Connection interoperates with Node http2', () => {
  it('as a client: CONNECT, 24 MiB each way with flow control, half-close, several streams', async () => {
    const { server, client } = await tlsMaterial();
    const port = await tlsServer(server, (socket) => {
      const session = http2.performServerHandshake(socket);
      session.on('stream', (stream, headers) => {
        expect(headers[':method']).toBe('CONNECT');
        stream.respond({ ':status': 200, 'x-seen-authority': String(headers[':authority']) });
        stream.pipe(stream); // echo, ending when the client ends
      });
      closers.push(() => session.destroy());
    });
    const conn = new H2Connection(await tlsClient(port, client), { role: 'client', ...WINDOWS });
    closers.push(() => conn.destroy());
    const payload = randomBytes(24 * 1024 * 1024);
    const streams = await Promise.all(
      [0, 1, 2].map(async (i) => {
        const s = conn.request({ ':method': 'CONNECT', ':authority': `10.0.0.${i}:80` });
        const headers = await new Promise<H2IncomingHeaders>((r) => s.once('response', r));
        expect(headers[':status']).toBe('200');
        expect(headers['x-seen-authority']).toBe(`10.0.0.${i}:80`);
        return s;
      }),
    );
    const results = await Promise.all(
      streams.map((s, i) => {
        const body = i === 0 ? payload : Buffer.from(`small ${i}`);
        const got = collect(s);
        s.end(body);
        return got.then((b) => [sha(b), sha(body)]);
      }),
    );
    for (const [got, sent] of results) expect(got).toBe(sent);
    await eventually(() => conn.streamCount === 0);
  });

  it('as a server: Node client with Huffman and dynamic-table headers, 24 MiB each way, RST and PING', async () => {
    const { server, client } = await tlsMaterial();
    const seen: H2IncomingHeaders[] = [];
    const conns: H2Connection[] = [];
    const port = await tlsServer(server, (socket) => {
      const conn = new H2Connection(socket, { role: 'server', ...WINDOWS });
      conns.push(conn);
      closers.push(() => conn.destroy());
      conn.on('stream', (stream: H2Stream, headers: H2IncomingHeaders) => {
        stream.respond({ ':status': 200 });
        stream.on('error', () => {});
        // 'hold' keeps our side open, so that the client's reset finds a live stream.
        if (headers['x-mode'] === 'hold') return;
        seen.push(headers);
        stream.pipe(stream);
      });
    });
    const session = http2.connect(`https://127.0.0.1:${port}`, {
      createConnection: () =>
        tls.connect({
          ...client,
          host: '127.0.0.1',
          port,
          ALPNProtocols: ['h2'],
          checkServerIdentity: () => undefined,
        }),
    });
    closers.push(() => session.destroy());
    const headers = {
      ':method': 'CONNECT',
      ':authority': '198.18.0.9:8080',
      forwarded: 'for="198.18.0.7:40000"',
      baggage: 'k8s.namespace.name=demo,k8s.pod.name=sleep-1',
    };
    const payload = randomBytes(24 * 1024 * 1024);
    for (let round = 0; round < 2; round++) {
      const req = session.request(headers, { endStream: false });
      const status = await new Promise<number>((r) => req.once('response', (h) => r(Number(h[':status']))));
      expect(status).toBe(200);
      const got = collect(req);
      req.end(round === 0 ? payload : Buffer.from('again'));
      expect(sha(await got)).toBe(sha(round === 0 ? payload : Buffer.from('again')));
    }
    // The second request's headers came from Node's dynamic table: they must decode the same.
    expect(seen).toHaveLength(2);
    for (const h of seen) expect(h).toMatchObject(headers);
    // A reset from the client reaches our stream as aborted, with the code.
    const aborted = new Promise<number | undefined>((resolve) => {
      conns[0]!.once('stream', (s: H2Stream) => s.once('close', () => resolve(s.rstCode)));
    });
    const req = session.request({ ...headers, 'x-mode': 'hold' }, { endStream: false });
    await new Promise((r) => req.once('response', r));
    req.close(http2.constants.NGHTTP2_CANCEL);
    expect(await aborted).toBe(H2_ERROR.CANCEL);
    // PING round trip in both directions.
    await new Promise<void>((resolve, reject) => session.ping((err) => (err ? reject(err) : resolve())));
    await new Promise<void>((resolve, reject) => conns[0]!.ping((err) => (err ? reject(err) : resolve())));
  });

  it('answers protocol violations with GOAWAY and the RFC error code, and never throws', async () => {
    const { server, client } = await tlsMaterial();
    const errors: number[] = [];
    const port = await tlsServer(server, (socket) => {
      const conn = new H2Connection(socket, { role: 'server', ...WINDOWS, maxFrameSize: 16_384 });
      conn.on('protocolError', (e: { code: number }) => errors.push(e.code));
      closers.push(() => conn.destroy());
    });
    const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
    const settings = frameHeader(0, FRAME.SETTINGS, 0, 0);
    const cases: Array<[string, Buffer, number]> = [
      ['bad preface', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), H2_ERROR.PROTOCOL_ERROR],
      [
        'oversized frame',
        Buffer.concat([preface, settings, frameHeader(20_000, FRAME.DATA, 0, 1)]),
        H2_ERROR.FRAME_SIZE_ERROR,
      ],
      [
        'even stream id',
        Buffer.concat([
          preface,
          settings,
          frameHeader(1, FRAME.HEADERS, FLAG.END_HEADERS, 2),
          Buffer.from([0x82]),
        ]),
        H2_ERROR.PROTOCOL_ERROR,
      ],
      [
        'garbage HPACK',
        Buffer.concat([
          preface,
          settings,
          frameHeader(1, FRAME.HEADERS, FLAG.END_HEADERS, 1),
          Buffer.from([0x80]),
        ]),
        H2_ERROR.COMPRESSION_ERROR,
      ],
      [
        'window overflow',
        Buffer.concat([
          preface,
          settings,
          frameHeader(4, FRAME.WINDOW_UPDATE, 0, 0),
          Buffer.from([0x7f, 0xff, 0xff, 0xff]),
        ]),
        H2_ERROR.FLOW_CONTROL_ERROR,
      ],
      [
        'PUSH_PROMISE',
        Buffer.concat([
          preface,
          settings,
          frameHeader(4, FRAME.PUSH_PROMISE, FLAG.END_HEADERS, 1),
          Buffer.alloc(4),
        ]),
        H2_ERROR.PROTOCOL_ERROR,
      ],
      [
        'first frame after the preface is not SETTINGS',
        Buffer.concat([preface, frameHeader(8, FRAME.PING, 0, 0), Buffer.alloc(8), settings]),
        H2_ERROR.PROTOCOL_ERROR,
      ],
      [
        'SETTINGS ACK before SETTINGS',
        Buffer.concat([preface, frameHeader(0, FRAME.SETTINGS, FLAG.ACK, 0), settings]),
        H2_ERROR.PROTOCOL_ERROR,
      ],
      [
        'RST_STREAM on idle stream',
        Buffer.concat([preface, settings, frameHeader(4, FRAME.RST_STREAM, 0, 9), Buffer.alloc(4)]),
        H2_ERROR.PROTOCOL_ERROR,
      ],
      [
        'WINDOW_UPDATE on idle stream',
        Buffer.concat([
          preface,
          settings,
          frameHeader(4, FRAME.WINDOW_UPDATE, 0, 9),
          Buffer.from([0, 0, 0, 1]),
        ]),
        H2_ERROR.PROTOCOL_ERROR,
      ],
      [
        'DATA on idle stream',
        Buffer.concat([preface, settings, frameHeader(1, FRAME.DATA, 0, 7), Buffer.from('x')]),
        H2_ERROR.PROTOCOL_ERROR,
      ],
    ];
    for (const [name, bytes, code] of cases) {
      const before = errors.length;
      const s = await tlsClient(port, client);
      const reply: Buffer[] = [];
      s.on('data', (d) => reply.push(d));
      s.on('error', () => {});
      s.write(bytes);
      await new Promise((r) => s.once('close', r));
      expect(errors.slice(before), name).toEqual([code]);
      const all = Buffer.concat(reply);
      // The last frame the server sent is GOAWAY carrying the same code.
      const goawayAt = all.lastIndexOf(Buffer.from([FRAME.GOAWAY, 0, 0, 0, 0, 0]));
      expect(goawayAt, name).toBeGreaterThan(0);
      expect(all.readUInt32BE(goawayAt + 10), name).toBe(code);
    }
  });

  it('as a client: a server whose first frame is not SETTINGS gets GOAWAY PROTOCOL_ERROR (RFC 9113 §3.4)', async () => {
    const { server, client } = await tlsMaterial();
    const received: Buffer[] = [];
    let serverClosed!: Promise<unknown>;
    const port = await tlsServer(server, (socket) => {
      socket.on('error', () => {});
      socket.on('data', (d: Buffer) => received.push(d));
      serverClosed = new Promise((r) => socket.once('close', r));
      // A PING where the server preface (SETTINGS) belongs.
      socket.write(Buffer.concat([frameHeader(8, FRAME.PING, 0, 0), Buffer.alloc(8)]));
    });
    const socket = await tlsClient(port, client);
    const conn = new H2Connection(socket, { role: 'client', ...WINDOWS });
    const errors: number[] = [];
    conn.on('protocolError', (e: { code: number }) => errors.push(e.code));
    conn.on('error', () => {});
    closers.push(() => conn.destroy());
    await eventually(() => errors.length > 0);
    expect(errors).toEqual([H2_ERROR.PROTOCOL_ERROR]);
    await serverClosed;
    const all = Buffer.concat(received);
    const goawayAt = all.lastIndexOf(Buffer.from([FRAME.GOAWAY, 0, 0, 0, 0, 0]));
    expect(goawayAt).toBeGreaterThan(0);
    expect(all.readUInt32BE(goawayAt + 10)).toBe(H2_ERROR.PROTOCOL_ERROR);
    // No PING ACK: the PING was never processed.
    expect(all.includes(Buffer.from([FRAME.PING, FLAG.ACK, 0, 0, 0, 0]))).toBe(false);
  });

  it('stops a peer that floods PINGs without reading, and a rapid-reset client, with ENHANCE_YOUR_CALM', async () => {
    const { server, client } = await tlsMaterial();
    const errors: number[] = [];
    const streams: number[] = [];
    const port = await tlsServer(server, (socket) => {
      const conn = new H2Connection(socket, { role: 'server', ...WINDOWS });
      conn.on('protocolError', (e: { code: number }) => errors.push(e.code));
      conn.on('stream', (s: H2Stream) => {
        streams.push(s.id);
        s.on('error', () => {});
        // Answered a turn later, as the HBONE server answers a CONNECT once it has dialled.
        setImmediate(() => s.respond({ ':status': 200 }));
      });
      closers.push(() => conn.destroy());
    });
    const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
    const start = Buffer.concat([preface, frameHeader(0, FRAME.SETTINGS, 0, 0)]);

    // 1. PING flood: 1,000,000 PINGs (17 MB), never reading the ACKs; kernel buffers absorb only a few MB.
    const ping = Buffer.concat([frameHeader(8, FRAME.PING, 0, 0), Buffer.alloc(8)]);
    const flood = Buffer.concat([start, Buffer.concat(Array.from({ length: 1_000_000 }, () => ping))]);
    const flooder = await tlsClient(port, client);
    flooder.on('error', () => {});
    flooder.pause();
    flooder.write(flood);
    await eventually(() => errors.includes(H2_ERROR.ENHANCE_YOUR_CALM));
    flooder.destroy();

    // 2. Rapid reset: open and cancel 3,000 streams in one burst.
    const before = errors.length;
    const headerBlock = hpackEncode([
      [':method', 'CONNECT'],
      [':authority', '10.0.0.1:80'],
    ]);
    const burst: Buffer[] = [start];
    for (let id = 1; id < 6_000; id += 2) {
      burst.push(frameHeader(headerBlock.length, FRAME.HEADERS, FLAG.END_HEADERS, id), headerBlock);
      burst.push(frameHeader(4, FRAME.RST_STREAM, 0, id), Buffer.from([0, 0, 0, H2_ERROR.CANCEL]));
    }
    const resetter = await tlsClient(port, client);
    resetter.on('error', () => {});
    resetter.resume();
    resetter.write(Buffer.concat(burst));
    await eventually(() => errors.length > before);
    expect(errors[before]).toBe(H2_ERROR.ENHANCE_YOUR_CALM);
    // Cut off after the budget, not after serving every stream.
    expect(streams.length).toBeLessThan(1_200);
    resetter.destroy();
  });

  it('after a graceful close ended the socket, reads what the client still sends and writes nothing more', async () => {
    const { server, client } = await tlsMaterial();
    const errors: string[] = [];
    const port = await tlsServer(server, (socket) => {
      const conn = new H2Connection(socket, { role: 'server', ...WINDOWS });
      conn.on('error', (e: NodeJS.ErrnoException) => errors.push(e.code ?? e.message));
      conn.on('stream', (s: H2Stream) => {
        s.on('error', () => {});
        // GOAWAY with this stream as the last; the socket ends once it is done.
        conn.close();
        s.respond({ ':status': 200 }, { endStream: true });
      });
      closers.push(() => conn.destroy());
    });
    const request = (id: number) => {
      const block = hpackEncode([
        [':method', 'GET'],
        [':scheme', 'https'],
        [':path', '/'],
        [':authority', 'svc'],
      ]);
      return Buffer.concat([
        frameHeader(block.length, FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id),
        block,
      ]);
    };
    const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
    // Half-open, so that it can still write once the server has ended its side.
    const peer = await tlsClient(port, { ...client, allowHalfOpen: true } as tls.ConnectionOptions);
    peer.on('error', () => {});
    const ended = new Promise<void>((resolve) => peer.once('end', () => resolve()));
    peer.resume();
    peer.write(Buffer.concat([preface, frameHeader(0, FRAME.SETTINGS, 0, 0), request(1)]));
    await ended;
    // A client that had not yet read the GOAWAY sends another request: it is not answered (the
    // socket is ended), and nothing is written after the end, which would break the connection
    // under the client's own writes.
    expect(peer.writable).toBe(true);
    peer.write(request(3));
    await new Promise((r) => setTimeout(r, 100));
    expect(errors).toEqual([]);
    peer.destroy();
  });

  it('keeps serving a client that cancels 2,000 answered streams at once (not a rapid reset)', async () => {
    const { server, client } = await tlsMaterial();
    const errors: number[] = [];
    const opened: number[] = [];
    let answered = 0;
    let aborted = 0;
    const port = await tlsServer(server, (socket) => {
      const conn = new H2Connection(socket, { role: 'server', ...WINDOWS, maxConcurrentStreams: 4_000 });
      conn.on('protocolError', (e: { code: number }) => errors.push(e.code));
      conn.on('stream', (s: H2Stream) => {
        opened.push(s.id);
        s.on('error', () => {});
        s.on('aborted', () => {
          aborted += 1;
        });
        setImmediate(() => {
          s.respond({ ':status': 200 });
          answered += 1;
        });
      });
      closers.push(() => conn.destroy());
    });
    const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
    const start = Buffer.concat([preface, frameHeader(0, FRAME.SETTINGS, 0, 0)]);
    const headerBlock = hpackEncode([
      [':method', 'CONNECT'],
      [':authority', '10.0.0.1:80'],
    ]);
    const ids = Array.from({ length: 2_000 }, (_, i) => 2 * i + 1);
    const opens: Buffer[] = [start];
    for (const id of ids)
      opens.push(frameHeader(headerBlock.length, FRAME.HEADERS, FLAG.END_HEADERS, id), headerBlock);
    const canceller = await tlsClient(port, client);
    canceller.on('error', () => {});
    canceller.resume();
    canceller.write(Buffer.concat(opens));
    await eventually(() => answered === ids.length);
    // Every answered stream cancelled in one write: more than the 1,000 a second a rapid reset may.
    canceller.write(
      Buffer.concat(
        ids.flatMap((id) => [
          frameHeader(4, FRAME.RST_STREAM, 0, id),
          Buffer.from([0, 0, 0, H2_ERROR.CANCEL]),
        ]),
      ),
    );
    const next = 2 * ids.length + 1;
    canceller.write(
      Buffer.concat([frameHeader(headerBlock.length, FRAME.HEADERS, FLAG.END_HEADERS, next), headerBlock]),
    );
    await eventually(() => opened.includes(next) && answered === ids.length + 1);
    expect(aborted).toBe(ids.length);
    expect(errors).toEqual([]);
    expect(canceller.destroyed).toBe(false);
    canceller.destroy();
  });
});

/** Fails on a session or stream error, so a COMPRESSION_ERROR cannot pass unnoticed. */
function nodeGet(session: http2.ClientHttp2Session, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'GET', ':path': path, 'x-request': path });
    req.once('error', reject);
    // A session torn down on a decoding error closes the stream without an 'error' event.
    req.once('close', () => reject(new Error(`stream closed with code ${req.rstCode}`)));
    req.once('response', (h) => {
      collect(req).then((b) => resolve({ status: Number(h[':status']), body: b.toString() }), reject);
    });
    req.end();
  });
}

describe('H2Connection honours a peer SETTINGS_HEADER_TABLE_SIZE of 0 (RFC 7541 §4.2)', () => {
  it('as a server: a Node client with headerTableSize 0 completes several requests', async () => {
    // Node's client sends GOAWAY(COMPRESSION_ERROR) but may then raise no event on the request:
    // our side of the connection sees the GOAWAY, so the test fails at once rather than hanging.
    let peerGoaway: (err: Error) => void = () => {};
    const goaway = new Promise<never>((_, reject) => {
      peerGoaway = reject;
    });
    goaway.catch(() => {});
    const server = net.createServer((socket) => {
      const conn = new H2Connection(socket, { role: 'server', ...WINDOWS });
      closers.push(() => conn.destroy());
      conn.on('goaway', (code: number) => peerGoaway(new Error(`peer sent GOAWAY ${code}`)));
      conn.on('stream', (stream: H2Stream, headers: H2IncomingHeaders) => {
        stream.on('error', () => {});
        stream.respond({ ':status': 200, 'x-echo': String(headers['x-request']), server: 'ours' });
        stream.end(`hello ${headers[':path']}`);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(() => server.close());
    const { port } = server.address() as net.AddressInfo;
    const session = http2.connect(`http://127.0.0.1:${port}`, { settings: { headerTableSize: 0 } });
    closers.push(() => session.destroy());
    // nghttp2 answers a missing size update with GOAWAY(COMPRESSION_ERROR) and closes the session.
    const sessionError = new Promise<never>((_, reject) => {
      session.once('error', reject);
      session.once('goaway', (code) => reject(new Error(`GOAWAY ${code}`)));
      session.once('close', () => reject(new Error('session closed')));
    });
    sessionError.catch(() => {});
    for (let i = 0; i < 5; i++) {
      const res = await Promise.race([nodeGet(session, `/r${i}`), sessionError, goaway]);
      expect(res).toEqual({ status: 200, body: `hello /r${i}` });
    }
    expect(session.destroyed).toBe(false);
  });

  it('as a client: a Node server with headerTableSize 0 answers several requests', async () => {
    const server = http2.createServer({ settings: { headerTableSize: 0 } });
    const sessionErrors: Error[] = [];
    server.on('session', (s) => s.on('error', (e) => sessionErrors.push(e)));
    server.on('stream', (stream, headers) => {
      stream.respond({ ':status': 200, 'x-echo': String(headers['x-request']) });
      stream.end(`hello ${headers[':path']}`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(() => server.close());
    const { port } = server.address() as net.AddressInfo;
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    const conn = new H2Connection(socket, { role: 'client', ...WINDOWS });
    closers.push(() => conn.destroy());
    const goaway = new Promise<never>((_, reject) => {
      conn.once('goaway', (code: number) => reject(new Error(`GOAWAY ${code}`)));
      conn.once('close', () => reject(new Error('connection closed')));
    });
    goaway.catch(() => {});
    for (let i = 0; i < 5; i++) {
      const s = conn.request(
        {
          ':method': 'GET',
          ':path': `/r${i}`,
          ':scheme': 'http',
          ':authority': 'example',
          'x-request': `/r${i}`,
        },
        { endStream: true },
      );
      const response = new Promise<H2IncomingHeaders>((resolve, reject) => {
        s.once('response', resolve);
        s.once('error', reject);
      });
      const headers = await Promise.race([response, goaway]);
      expect(headers[':status']).toBe('200');
      expect(headers['x-echo']).toBe(`/r${i}`);
      expect((await Promise.race([collect(s), goaway])).toString()).toBe(`hello /r${i}`);
    }
    expect(sessionErrors).toEqual([]);
  });
});

/** Splits raw bytes into frames (whole frames only). */
function frames(all: Buffer): Array<{ type: number; flags: number; id: number; payload: Buffer }> {
  const out: Array<{ type: number; flags: number; id: number; payload: Buffer }> = [];
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

describe('H2Connection refuses an oversized header list per stream (RFC 9113 §10.5.1)', () => {
  it('as a server: 431 for the oversized request, and the next request on the connection succeeds', async () => {
    const { server, client } = await tlsMaterial();
    const errors: number[] = [];
    const seen: Array<string | undefined> = [];
    const port = await tlsServer(server, (socket) => {
      const conn = new H2Connection(socket, { role: 'server', ...WINDOWS, maxHeaderListSize: 4096 });
      conn.on('protocolError', (e: { code: number }) => errors.push(e.code));
      conn.on('stream', (s: H2Stream, headers: H2IncomingHeaders) => {
        const sync = headers['x-sync'];
        seen.push(typeof sync === 'string' ? sync : undefined);
        s.on('error', () => {});
        s.respond({ ':status': 200, 'x-sync': String(sync) }, { endStream: true });
      });
      closers.push(() => conn.destroy());
    });
    const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
    const get = hpackEncode([
      [':method', 'GET'],
      [':scheme', 'https'],
      [':path', '/'],
      [':authority', 'x'],
    ]);
    // 5000 bytes over a 4096 limit, then 'x-sync: 1' with incremental indexing: it must still
    // enter the dynamic table, or the second request (which names it by index 62) cannot decode.
    const big = Buffer.concat([
      get,
      hpackEncode([['x-big', 'a'.repeat(5000)]]),
      Buffer.from([0x40, 6]),
      Buffer.from('x-sync'),
      Buffer.from([1]),
      Buffer.from('1'),
    ]);
    const next = Buffer.concat([get, Buffer.from([0xbe])]);
    const s = await tlsClient(port, client);
    s.on('error', () => {});
    const reply: Buffer[] = [];
    s.on('data', (d: Buffer) => reply.push(d));
    s.write(
      Buffer.concat([
        preface,
        frameHeader(0, FRAME.SETTINGS, 0, 0),
        frameHeader(big.length, FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1),
        big,
        frameHeader(next.length, FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 3),
        next,
      ]),
    );
    const done = () =>
      frames(Buffer.concat(reply)).some(
        (f) => f.type === FRAME.GOAWAY || (f.type === FRAME.HEADERS && f.id === 3),
      );
    await eventually(done);
    s.destroy();
    const got = frames(Buffer.concat(reply));
    expect(got.filter((f) => f.type === FRAME.GOAWAY)).toEqual([]);
    expect(errors).toEqual([]);
    const decoder = new HpackDecoder();
    const responses = got
      .filter((f) => f.type === FRAME.HEADERS)
      .map((f) => ({ id: f.id, headers: Object.fromEntries(decoder.decode(f.payload)) }));
    expect(responses).toEqual([
      { id: 1, headers: { ':status': '431' } },
      { id: 3, headers: { ':status': '200', 'x-sync': '1' } },
    ]);
    // The oversized request never reached the application.
    expect(seen).toEqual(['1']);
  });
});

describe('H2Connection on half-closed and closed streams (RFC 9113 §5.1)', () => {
  it('as a server: STREAM_CLOSED for DATA or HEADERS after END_STREAM, and no RST_STREAM on a closed stream', async () => {
    const { server, client } = await tlsMaterial();
    const errors: number[] = [];
    const port = await tlsServer(server, (socket) => {
      const conn = new H2Connection(socket, { role: 'server', ...WINDOWS });
      conn.on('protocolError', (e: { code: number }) => errors.push(e.code));
      // The application holds every request without answering: the streams stay half-closed (remote).
      conn.on('stream', (s: H2Stream) => s.on('error', () => {}));
      closers.push(() => conn.destroy());
    });
    const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
    const get = hpackEncode([
      [':method', 'GET'],
      [':scheme', 'https'],
      [':path', '/'],
      [':authority', 'x'],
    ]);
    const trailers = hpackEncode([['x-trailer', '1']]);
    const s = await tlsClient(port, client);
    s.on('error', () => {});
    const reply: Buffer[] = [];
    s.on('data', (d: Buffer) => reply.push(d));
    s.write(
      Buffer.concat([
        preface,
        frameHeader(0, FRAME.SETTINGS, 0, 0),
        // Stream 1: request with END_STREAM, then DATA on it.
        frameHeader(get.length, FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1),
        get,
        frameHeader(1, FRAME.DATA, 0, 1),
        Buffer.from('x'),
        // Stream 3: request with END_STREAM, then trailers on it.
        frameHeader(get.length, FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 3),
        get,
        frameHeader(trailers.length, FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 3),
        trailers,
        // Stream 1 is closed now: a bad WINDOW_UPDATE and a RST_STREAM for it get no RST_STREAM back.
        frameHeader(4, FRAME.WINDOW_UPDATE, 0, 1),
        Buffer.alloc(4),
        frameHeader(4, FRAME.RST_STREAM, 0, 1),
        Buffer.from([0, 0, 0, H2_ERROR.CANCEL]),
        // A fence: its ACK comes after any answer to the frames above.
        frameHeader(8, FRAME.PING, 0, 0),
        Buffer.from('fence123'),
      ]),
    );
    const fenced = () =>
      frames(Buffer.concat(reply)).some((f) => f.type === FRAME.PING && f.flags === FLAG.ACK);
    await eventually(() => fenced() || frames(Buffer.concat(reply)).some((f) => f.type === FRAME.GOAWAY));
    s.destroy();
    const got = frames(Buffer.concat(reply));
    expect(got.filter((f) => f.type === FRAME.GOAWAY)).toEqual([]);
    expect(errors).toEqual([]);
    const resets = got
      .filter((f) => f.type === FRAME.RST_STREAM)
      .map((f) => ({ id: f.id, code: f.payload.readUInt32BE(0) }));
    expect(resets).toEqual([
      { id: 1, code: H2_ERROR.STREAM_CLOSED },
      { id: 3, code: H2_ERROR.STREAM_CLOSED },
    ]);
    expect(fenced()).toBe(true);
  });
});

describe('H2Connection on fully closed streams (RFC 9113 §5.1, §6.1)', () => {
  const get = hpackEncode([
    [':method', 'GET'],
    [':scheme', 'https'],
    [':path', '/'],
    [':authority', 'x'],
  ]);
  const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

  async function serve(onStream: (s: H2Stream) => void) {
    const { server, client } = await tlsMaterial();
    const errors: number[] = [];
    const port = await tlsServer(server, (socket) => {
      const conn = new H2Connection(socket, { role: 'server', ...WINDOWS });
      conn.on('protocolError', (e: { code: number }) => errors.push(e.code));
      conn.on('stream', (s: H2Stream) => {
        s.on('error', () => {});
        onStream(s);
      });
      closers.push(() => conn.destroy());
    });
    const s = await tlsClient(port, client);
    s.on('error', () => {});
    const reply: Buffer[] = [];
    s.on('data', (d: Buffer) => reply.push(d));
    closers.push(() => s.destroy());
    return { s, errors, got: () => frames(Buffer.concat(reply)) };
  }

  it('as a server: DATA or HEADERS on a stream both sides ended is a connection error STREAM_CLOSED', async () => {
    for (const late of [
      Buffer.concat([frameHeader(1, FRAME.DATA, 0, 1), Buffer.from('x')]),
      Buffer.concat([frameHeader(get.length, FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1), get]),
    ]) {
      const { s, errors, got } = await serve((st) => st.respond({ ':status': 200 }, { endStream: true }));
      s.write(
        Buffer.concat([
          preface,
          frameHeader(0, FRAME.SETTINGS, 0, 0),
          frameHeader(get.length, FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1),
          get,
        ]),
      );
      await eventually(() => got().some((f) => f.type === FRAME.HEADERS && f.id === 1));
      s.write(late);
      await eventually(() => got().some((f) => f.type === FRAME.GOAWAY));
      const goaway = got().find((f) => f.type === FRAME.GOAWAY);
      expect(goaway?.payload.readUInt32BE(4)).toBe(H2_ERROR.STREAM_CLOSED);
      expect(errors).toEqual([H2_ERROR.STREAM_CLOSED]);
      // Never a RST_STREAM on the closed stream.
      expect(got().filter((f) => f.type === FRAME.RST_STREAM)).toEqual([]);
    }
  });

  it('as a server: DATA still in flight on a stream we reset is ignored', async () => {
    const { s, errors, got } = await serve((st) => st.close(H2_ERROR.CANCEL));
    s.write(
      Buffer.concat([
        preface,
        frameHeader(0, FRAME.SETTINGS, 0, 0),
        frameHeader(get.length, FRAME.HEADERS, FLAG.END_HEADERS, 1),
        get,
      ]),
    );
    await eventually(() => got().some((f) => f.type === FRAME.RST_STREAM && f.id === 1));
    s.write(
      Buffer.concat([
        frameHeader(1, FRAME.DATA, FLAG.END_STREAM, 1),
        Buffer.from('x'),
        frameHeader(8, FRAME.PING, 0, 0),
        Buffer.from('fence123'),
      ]),
    );
    await eventually(() => got().some((f) => f.type === FRAME.PING || f.type === FRAME.GOAWAY));
    expect(got().filter((f) => f.type === FRAME.GOAWAY)).toEqual([]);
    expect(errors).toEqual([]);
    expect(got().filter((f) => f.type === FRAME.RST_STREAM)).toHaveLength(1);
  });
});

describe('H2Connection refuses an oversized response header list per stream', () => {
  it('as a client: the stream is reset with CANCEL and the next request on the connection succeeds', async () => {
    const server = http2.createServer();
    const serverRst: number[] = [];
    server.on('stream', (stream, headers) => {
      stream.on('error', () => {});
      stream.on('close', () => {
        if (headers[':path'] === '/big') serverRst.push(stream.rstCode);
      });
      const big = headers[':path'] === '/big';
      stream.respond({ ':status': 200, ...(big ? { 'x-big': 'a'.repeat(5000) } : { 'x-small': '1' }) });
      // The big response stays open, so the client's RST_STREAM is what closes it.
      if (!big) stream.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(() => server.close());
    const { port } = server.address() as net.AddressInfo;
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    const conn = new H2Connection(socket, { role: 'client', ...WINDOWS, maxHeaderListSize: 4096 });
    closers.push(() => conn.destroy());
    const outcome = (path: string) => {
      const s = conn.request(
        { ':method': 'GET', ':path': path, ':scheme': 'http', ':authority': 'example' },
        { endStream: true },
      );
      return new Promise<string>((resolve) => {
        s.once('response', (h: H2IncomingHeaders) => resolve(`response ${h[':status']}`));
        s.once('error', (e: Error) => resolve(`error ${e.message}`));
        s.once('close', () => resolve('closed'));
      });
    };
    expect(await outcome('/big')).toMatch(/^error .*header list too large/);
    expect(await outcome('/small')).toBe('response 200');
    await eventually(() => serverRst.length > 0);
    expect(serverRst).toEqual([H2_ERROR.CANCEL]);
  });
});

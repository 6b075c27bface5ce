/**
 * Interop of our HTTP/2 engine with independent implementations, each in its own process:
 * nghttp2 (nghttp, nghttpd, nghttpx), python3-h2 and Go's net/http. Both roles where the peer
 * can play them, over the mesh's mutual TLS (ALPN h2) with certificates from our CA.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HboneClient } from '../hbone/hbone-client.js';
import { CertManager } from '../identity/cert-manager.js';
import { LocalCa } from '../identity/local-ca.js';
import { SpiffeId } from '../identity/spiffe-id.js';
import { HboneMetrics } from '../telemetry/hbone-metrics.js';
import {
  buildGoProgram,
  DEBIAN_PYTHON,
  freePort,
  missingPeer,
  NGHTTP,
  NGHTTPD,
  NGHTTPX,
  type PeerProcess,
  type PemFiles,
  run,
  startPeer,
  tempDir,
  waitForListener,
  writePemFiles,
} from '../testing/h2-peers.js';
import { echoServer, eventually, meshPair, readAll } from '../testing/mesh-fixture.js';
import { secureContextOptions } from '../tls/mesh-tls.js';
import { H2Connection, type H2Headers, type H2IncomingHeaders } from './h2-connection.js';
import { FRAME } from './h2-frames.js';
import type { H2Stream } from './h2-stream.js';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
const TRUST_DOMAIN = 'cluster.local';
const WINDOWS = { streamWindow: 4 * 1024 * 1024, connectionWindow: 16 * 1024 * 1024 };

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const missing = {
  nghttp2: await missingPeer('nghttp2'),
  python: await missingPeer('python3-h2'),
  go: await missingPeer('go'),
};
for (const [peer, why] of Object.entries(missing)) {
  if (why) console.log(`h2 peers: skipping the ${peer} cases: ${why}`);
}

/** One CA for the file; the peers get PEM files of identities it issued. */
interface Material {
  ca: LocalCa;
  certs: CertManager;
  dir: string;
  server: tls.SecureContextOptions;
  client: tls.SecureContextOptions;
  pem(name: string): Promise<PemFiles>;
}
let material: Material;
let removeDir: () => Promise<void> = async () => {};

beforeAll(async () => {
  const ca = await LocalCa.create({ trustDomain: TRUST_DOMAIN });
  const certs = new CertManager({ ca });
  const { dir, remove } = await tempDir('h2-peers-');
  removeDir = remove;
  material = {
    ca,
    certs,
    dir,
    server: secureContextOptions(await certs.fetch(SpiffeId.of(TRUST_DOMAIN, 'x', 'ours-server'))),
    client: secureContextOptions(await certs.fetch(SpiffeId.of(TRUST_DOMAIN, 'x', 'ours-client'))),
    pem: async (name) => writePemFiles(dir, name, await certs.fetch(SpiffeId.of(TRUST_DOMAIN, 'peer', name))),
  };
});
afterAll(async () => {
  material?.certs.close();
  await removeDir();
});

const spiffe = (name: string) => `spiffe://${TRUST_DOMAIN}/ns/peer/sa/${name}`;

/** Counts the frames a peer sends on `socket`, by type (the client preface skipped). */
function countFrames(
  socket: NodeJS.EventEmitter,
  preface: boolean,
  counts = new Map<number, number>(),
): Map<number, number> {
  let pending = Buffer.alloc(0);
  let skip = preface ? 24 : 0;
  socket.on('data', (chunk: Buffer) => {
    let buf = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
    for (;;) {
      if (skip > 0) {
        const n = Math.min(skip, buf.length);
        skip -= n;
        buf = buf.subarray(n);
      }
      if (skip > 0 || buf.length < 9) break;
      const type = buf[3] as number;
      counts.set(type, (counts.get(type) ?? 0) + 1);
      skip = 9 + buf.readUIntBE(0, 3);
    }
    pending = Buffer.from(buf);
  });
  return counts;
}

// ---- our engine as the server ----

interface SeenRequest {
  headers: H2IncomingHeaders;
  bodyLength: number;
  bodySha256: string;
}

interface OurServer {
  port: number;
  seen: SeenRequest[];
  /** Most streams open at once on any connection. */
  maxOpen(): number;
  /** Bytes the peer sent, all connections together. */
  bytesIn(): number;
  /** Connection errors we reported, by code. */
  protocolErrors: number[];
  /** Frames received, by type, all connections together. */
  frames: Map<number, number>;
  connections(): number;
}

/**
 * Our engine as an HTTP/2 server over mutual TLS (or cleartext with `tls: false`). CONNECT is
 * answered 200 and echoed. Other requests are answered once their body ended, with its SHA-256 and
 * length, every x-big-* header copied back, and the body echoed (or, with `x-summary`, one line
 * naming path, hash and length).
 */
async function ourServer(
  options: {
    maxConcurrentStreams?: number;
    maxHeaderListSize?: number;
    tls?: boolean;
    /** Each connection starts a graceful close (GOAWAY NO_ERROR) when its first request arrives. */
    goawayOnFirstStream?: boolean;
  } = {},
): Promise<OurServer> {
  const seen: SeenRequest[] = [];
  const protocolErrors: number[] = [];
  let maxOpen = 0;
  let bytesIn = 0;
  const frames = new Map<number, number>();
  let connections = 0;
  const onSocket = (socket: net.Socket) => {
    connections += 1;
    socket.on('data', (d: Buffer) => {
      bytesIn += d.length;
    });
    countFrames(socket, true, frames);
    const conn = new H2Connection(socket, {
      role: 'server',
      ...WINDOWS,
      maxConcurrentStreams: options.maxConcurrentStreams ?? 100,
      ...(options.maxHeaderListSize !== undefined && { maxHeaderListSize: options.maxHeaderListSize }),
    });
    closers.push(() => conn.destroy());
    conn.on('error', () => {});
    conn.on('protocolError', (e: { code: number }) => protocolErrors.push(e.code));
    conn.on('stream', (stream: H2Stream, headers: H2IncomingHeaders) => {
      maxOpen = Math.max(maxOpen, conn.streamCount);
      if (options.goawayOnFirstStream) conn.close();
      stream.on('error', () => {});
      if (headers[':method'] === 'CONNECT') {
        seen.push({ headers, bodyLength: 0, bodySha256: '' });
        stream.respond({ ':status': 200, 'x-authority': headers[':authority'] });
        stream.pipe(stream);
        return;
      }
      readAll(stream).then(
        (body) => {
          const bodySha256 = sha(body);
          seen.push({ headers, bodyLength: body.length, bodySha256 });
          const response: H2Headers = {
            ':status': 200,
            'x-body-sha256': bodySha256,
            'x-body-length': body.length,
            'x-method': headers[':method'],
            'x-path': headers[':path'],
          };
          for (const [name, value] of Object.entries(headers)) {
            if (name.startsWith('x-big-')) response[name] = value;
          }
          stream.respond(response);
          stream.end(
            headers['x-summary']
              ? `${headers[':path']} ${bodySha256} ${body.length} ${headers['x-big-a']?.length ?? 0}\n`
              : body,
          );
        },
        () => {},
      );
    });
  };
  let server: net.Server;
  if (options.tls === false) {
    server = net.createServer(onSocket);
  } else {
    server = tls.createServer({ ...material.server, ALPNProtocols: ['h2'], requestCert: true }, onSocket);
  }
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise((r) => server.close(r)));
  return {
    port: (server.address() as net.AddressInfo).port,
    seen,
    maxOpen: () => maxOpen,
    bytesIn: () => bytesIn,
    protocolErrors,
    frames,
    connections: () => connections,
  };
}

// ---- our engine as the client ----

async function ourClient(port: number, options: { tls?: boolean } = {}): Promise<H2Connection> {
  let socket: net.Socket;
  if (options.tls === false) {
    socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
  } else {
    const s = tls.connect({
      ...material.client,
      host: '127.0.0.1',
      port,
      ALPNProtocols: ['h2'],
      // The peers' certificates are checked by chain here; the URI SAN by the cases that care.
      checkServerIdentity: () => undefined,
    });
    await new Promise((resolve, reject) => {
      s.once('secureConnect', resolve);
      s.once('error', reject);
    });
    expect(s.alpnProtocol).toBe('h2');
    socket = s;
  }
  const conn = new H2Connection(socket, { role: 'client', ...WINDOWS, maxConcurrentStreams: 100 });
  conn.on('error', () => {});
  closers.push(() => conn.destroy());
  return conn;
}

interface Exchange {
  headers: H2IncomingHeaders;
  body: Buffer;
}

/** One request with a body; resolves with the response once its body ended. */
function exchange(
  conn: H2Connection,
  headers: H2Headers,
  body?: Buffer,
  onStream?: (stream: H2Stream) => void,
): Promise<Exchange> {
  const stream = conn.request(headers, { endStream: body === undefined });
  onStream?.(stream);
  return new Promise((resolve, reject) => {
    stream.once('error', reject);
    // 'close' follows 'end' on the next tick, before readAll's promise settles: only an early close fails.
    stream.once('close', () => {
      if (!stream.readableEnded) reject(new Error(`stream ${stream.id} closed with code ${stream.rstCode}`));
    });
    stream.once('response', (h: H2IncomingHeaders) => {
      readAll(stream).then((b) => resolve({ headers: h, body: b }), reject);
    });
    if (body !== undefined) stream.end(body);
  });
}

/** A CONNECT tunnel: writes `payload` while reading the echo; resolves with what came back. */
async function tunnel(
  conn: H2Connection,
  authority: string,
  payload: Buffer,
): Promise<{ headers: H2IncomingHeaders; body: Buffer }> {
  const stream = conn.request({ ':method': 'CONNECT', ':authority': authority }, { endStream: false });
  stream.on('error', () => {});
  const headers = await new Promise<H2IncomingHeaders>((resolve, reject) => {
    stream.once('response', resolve);
    stream.once('close', () => reject(new Error(`CONNECT closed with code ${stream.rstCode}`)));
  });
  const body = readAll(stream);
  stream.end(payload);
  return { headers, body: await body };
}

/** A PING round trip to the peer. */
function ping(conn: H2Connection): Promise<void> {
  return new Promise((resolve, reject) => conn.ping((err) => (err ? reject(err) : resolve())));
}

async function waitForSettings(conn: H2Connection): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    conn.once('remoteSettings', () => resolve());
    conn.once('close', () => reject(new Error('connection closed before SETTINGS')));
  });
}

/** `nghttp -v` lines `recv (stream_id=N) name: value`, as header maps per stream. */
function nghttpResponses(verbose: string): Map<number, Record<string, string>> {
  const out = new Map<number, Record<string, string>>();
  for (const m of verbose.matchAll(/recv \(stream_id=(\d+)\) ([^:\s][^:]*|:[a-z]+): (.*)$/gm)) {
    const id = Number(m[1]);
    const headers = out.get(id) ?? {};
    headers[m[2] as string] = m[3] as string;
    out.set(id, headers);
  }
  return out;
}

describe.skipIf(missing.nghttp2)('nghttp2 peers', () => {
  it('nghttp client → our server: uploads on 8 concurrent streams, padded frames, CONTINUATION, trailers, a smaller encoder table', async () => {
    const server = await ourServer();
    const pem = await material.pem('nghttp');
    const upload = randomBytes(300_000);
    const file = path.join(material.dir, 'nghttp-upload.bin');
    await writeFile(file, upload);
    const uris = Array.from({ length: 8 }, (_, i) => `https://127.0.0.1:${server.port}/up/${i}`);
    const result = await run(
      NGHTTP,
      [
        '-v',
        '--cert',
        pem.cert,
        '--key',
        pem.key,
        '-d',
        file,
        '-b',
        '31',
        '--continuation',
        // Its encoder's table shrinks from 4096: a size update our decoder must apply.
        '--encoder-header-table-size=512',
        '--trailer',
        'x-upload-trailer: done',
        '-H',
        'x-summary: 1',
        ...uris,
      ],
      { timeoutMs: 20_000 },
    );
    expect(result.code, result.stderr).toBe(0);
    // What the peer received: one summary line per stream, each naming the exact upload.
    // nghttp padded its frames as asked.
    expect(result.stdout).toMatch(
      /send DATA frame <length=\d+, flags=0x0[89], stream_id=\d+>\n\s+; (END_STREAM \| )?PADDED/,
    );
    const lines = result.stdout
      .split('\n')
      .filter((l) => l.startsWith('/up/'))
      .sort();
    expect(lines).toEqual(uris.map((_, i) => `/up/${i} ${sha(upload)} ${upload.length} 0`).sort());
    const responses = [...nghttpResponses(result.stdout).values()];
    expect(responses.map((h) => h[':status'])).toEqual(Array(8).fill('200'));
    expect(new Set(responses.map((h) => h['x-body-sha256']))).toEqual(new Set([sha(upload)]));
    // What we received: every body whole, and nghttp's 24 KiB of continuation-test headers.
    expect(server.seen).toHaveLength(8);
    for (const r of server.seen) {
      expect(r.bodySha256).toBe(sha(upload));
      expect(r.headers[':method']).toBe('POST');
      expect(r.headers['continuation-test-6']).toBe('-'.repeat(4096));
    }
    expect(server.frames.get(FRAME.CONTINUATION)).toBeGreaterThanOrEqual(8);
    expect(server.protocolErrors).toEqual([]);
  });

  it('nghttp client → our server: SETTINGS_HEADER_TABLE_SIZE 0, and large headers through its dynamic table', async () => {
    const server = await ourServer();
    const pem = await material.pem('nghttp');
    const bigA = 'a'.repeat(1500);
    const bigB = 'b'.repeat(1000);
    const count = 12;
    const uris = Array.from({ length: count }, (_, i) => `https://127.0.0.1:${server.port}/get/${i}`);
    const result = await run(
      NGHTTP,
      [
        '-v',
        '--cert',
        pem.cert,
        '--key',
        pem.key,
        '--header-table-size=0',
        '-H',
        `x-big-a: ${bigA}`,
        '-H',
        `x-big-b: ${bigB}`,
        '-H',
        'x-summary: 1',
        ...uris,
      ],
      { timeoutMs: 20_000 },
    );
    // nghttp2 answers a missing dynamic table size update with GOAWAY COMPRESSION_ERROR.
    expect(result.code, result.stderr + result.stdout.slice(-2000)).toBe(0);
    expect(result.stdout).not.toMatch(/recv GOAWAY|COMPRESSION_ERROR/);
    expect(result.stdout).toMatch(/SETTINGS_HEADER_TABLE_SIZE\(0x01\):0/);
    const responses = [...nghttpResponses(result.stdout).values()];
    expect(responses).toHaveLength(count);
    for (const h of responses) {
      expect(h[':status']).toBe('200');
      // Our 1.5 kB response headers, decoded by nghttp2 with a zero-size table.
      expect(h['x-big-a']).toBe(bigA);
      expect(h['x-big-b']).toBe(bigB);
    }
    expect(server.seen.map((r) => r.headers['x-big-a'])).toEqual(Array(count).fill(bigA));
    expect(server.seen.map((r) => r.headers['x-big-b'])).toEqual(Array(count).fill(bigB));
    // nghttp2 sent the 2.5 kB of big headers once, then as dynamic table indexes.
    const headerBytes = count * (bigA.length + bigB.length);
    console.log(
      `nghttp → ours: ${server.bytesIn()} bytes received for ${headerBytes} bytes of big header values`,
    );
    expect(server.bytesIn()).toBeLessThan(headerBytes / 2);
  });

  it('nghttp client → our server: a header list over our SETTINGS_MAX_HEADER_LIST_SIZE gets 431, the connection carries on', async () => {
    // 8 KiB here: nghttp2 itself refuses to send a header block near 64 KiB, our default.
    const server = await ourServer({ maxHeaderListSize: 8192 });
    const pem = await material.pem('nghttp');
    const uris = [0, 1, 2].map((i) => `https://127.0.0.1:${server.port}/big/${i}`);
    const result = await run(
      NGHTTP,
      ['-v', '--cert', pem.cert, '--key', pem.key, '-H', `x-huge: ${'h'.repeat(10_000)}`, ...uris],
      { timeoutMs: 20_000 },
    );
    expect(result.code, result.stderr).toBe(0);
    const responses = [...nghttpResponses(result.stdout).values()];
    expect(responses.map((h) => h[':status'])).toEqual(['431', '431', '431']);
    expect(result.stdout).not.toMatch(/recv GOAWAY/);
    // Refused before the application saw anything, with no connection error.
    expect(server.seen).toEqual([]);
    expect(server.protocolErrors).toEqual([]);
  });

  it('nghttp client with a 1023-byte stream window → our server: a 3 MiB upload echoed', async () => {
    const server = await ourServer();
    const pem = await material.pem('nghttp');
    const upload = randomBytes(3 * 1024 * 1024);
    const file = path.join(material.dir, 'nghttp-upload-3.bin');
    await writeFile(file, upload);
    const out = path.join(material.dir, 'nghttp-echo.bin');
    const result = await run(
      '/bin/sh',
      [
        '-c',
        `"$0" "$@" > '${out}'`,
        NGHTTP,
        ...['--cert', pem.cert, '--key', pem.key, '--window-bits=10', '--connection-window-bits=16'],
        ...['-d', file, `https://127.0.0.1:${server.port}/echo`],
      ],
      { timeoutMs: 40_000 },
    );
    expect(result.code, result.stderr).toBe(0);
    // Our 3 MiB reply went out in slices of at most the 1023-byte window nghttp kept re-opening.
    expect(sha(await readFile(out))).toBe(sha(upload));
    expect(server.seen.map((r) => r.bodySha256)).toEqual([sha(upload)]);
  });

  it('nghttp client → our server advertising MAX_CONCURRENT_STREAMS 2: 10 uploads, never more than 2 open', async () => {
    const server = await ourServer({ maxConcurrentStreams: 2 });
    const pem = await material.pem('nghttp');
    const upload = randomBytes(200_000);
    const file = path.join(material.dir, 'nghttp-upload-2.bin');
    await writeFile(file, upload);
    const result = await run(
      NGHTTP,
      [
        '--cert',
        pem.cert,
        '--key',
        pem.key,
        // nghttp2 assumes 100 until our SETTINGS arrive, and sends its requests before they do:
        // streams over our limit would be refused (REFUSED_STREAM), and nghttp does not retry.
        '--peer-max-concurrent-streams=1',
        '-d',
        file,
        '-m',
        '10',
        '-H',
        'x-summary: 1',
        `https://127.0.0.1:${server.port}/limited`,
      ],
      { timeoutMs: 20_000 },
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim().split('\n')).toEqual(
      Array(10).fill(`/limited ${sha(upload)} ${upload.length} 0`),
    );
    expect(server.seen).toHaveLength(10);
    console.log(`nghttp → ours (limit 2): at most ${server.maxOpen()} streams open at once`);
    expect(server.maxOpen()).toBeLessThanOrEqual(2);
    expect(server.maxOpen()).toBeGreaterThanOrEqual(1);
  });

  async function nghttpd(extra: string[]) {
    const pem = await material.pem('nghttpd');
    const { dir } = material;
    const htdocs = path.join(dir, 'htdocs');
    await mkdir(htdocs, { recursive: true });
    await writeFile(path.join(htdocs, 'index.html'), 'hello from nghttpd\n');
    const port = await freePort();
    const peer = startPeer(NGHTTPD, [
      '--echo-upload',
      '-d',
      htdocs,
      '-a',
      '127.0.0.1',
      ...extra,
      String(port),
      pem.key,
      pem.cert,
    ]);
    closers.push(() => peer.stop());
    await waitForListener(port, peer);
    return { port, peer };
  }

  it('our client → nghttpd: echoed uploads on 6 concurrent streams, padded responses, a large request header block, an interim 100, PING', async () => {
    const { port, peer } = await nghttpd(['-v', '-b', '19', '--trailer', 'x-trailer: t']);
    const conn = await ourClient(port);
    const bodies = Array.from({ length: 6 }, (_, i) => randomBytes(150_000 * (i + 1)));
    const results = await Promise.all(
      bodies.map((body, i) =>
        exchange(
          conn,
          {
            ':method': 'POST',
            ':scheme': 'https',
            ':authority': `127.0.0.1:${port}`,
            ':path': `/echo/${i}`,
            // Over 16 KiB: we must send it as HEADERS plus CONTINUATION.
            'x-large': 'L'.repeat(20_000),
          },
          body,
        ),
      ),
    );
    results.forEach((r, i) => {
      expect(r.headers[':status']).toBe('200');
      expect(r.headers.server).toMatch(/^nghttpd/);
      expect(sha(r.body)).toBe(sha(bodies[i] as Buffer));
    });
    const page = await exchange(conn, {
      ':method': 'GET',
      ':scheme': 'https',
      ':authority': `127.0.0.1:${port}`,
      ':path': '/index.html',
    });
    expect(page.headers[':status']).toBe('200');
    expect(page.body.toString()).toBe('hello from nghttpd\n');
    // An interim 100 (Continue) before the final response is skipped.
    const continued = await exchange(
      conn,
      {
        ':method': 'POST',
        ':scheme': 'https',
        ':authority': `127.0.0.1:${port}`,
        ':path': '/continue',
        expect: '100-continue',
      },
      Buffer.from('after the 100'),
    );
    expect(continued.headers[':status']).toBe('200');
    expect(continued.body.toString()).toBe('after the 100');
    // nghttpd's log (written after the frames) shows the interim response went out.
    await eventually(() => /:status: 100/.test(peer.stdout()));
    await ping(conn);
    // nghttpd padded its DATA frames and ended each response with trailers, as asked.
    await eventually(() => /x-trailer: t/.test(peer.stdout()));
    expect(peer.stdout()).toMatch(
      /send DATA frame <length=\d+, flags=0x0[89], stream_id=\d+>\n\s+; (END_STREAM \| )?PADDED/,
    );
  });

  it('our client → nghttpd with a 1023-byte stream window: 2 MiB and 1 MiB uploads echoed', async () => {
    const { port } = await nghttpd(['--window-bits=10', '--connection-window-bits=16']);
    const conn = await ourClient(port);
    await waitForSettings(conn);
    expect(conn.remoteSettings.initialWindowSize).toBe(1023);
    const bodies = [randomBytes(2 * 1024 * 1024), randomBytes(1024 * 1024 + 7)];
    const results = await Promise.all(
      bodies.map((body, i) =>
        exchange(
          conn,
          { ':method': 'POST', ':scheme': 'https', ':authority': `127.0.0.1:${port}`, ':path': `/w/${i}` },
          body,
        ),
      ),
    );
    results.forEach((r, i) => {
      expect(r.headers[':status']).toBe('200');
      expect(sha(r.body)).toBe(sha(bodies[i] as Buffer));
    });
  });

  it('our client → nghttpd with SETTINGS_HEADER_TABLE_SIZE 0, a 256-byte encoder table and MAX_CONCURRENT_STREAMS 2', async () => {
    // Its encoder's table also shrinks (to 256 bytes): size updates for our decoder.
    const { port } = await nghttpd([
      '--header-table-size=0',
      '--encoder-header-table-size=256',
      '--max-concurrent-streams=2',
    ]);
    const conn = await ourClient(port);
    await waitForSettings(conn);
    expect(conn.remoteSettings.maxConcurrentStreams).toBe(2);
    expect(conn.remoteSettings.headerTableSize).toBe(0);
    const goaway = new Promise<never>((_, reject) =>
      conn.once('goaway', (code: number) => reject(new Error(`nghttpd sent GOAWAY ${code}`))),
    );
    goaway.catch(() => {});
    // Ten uploads, two at a time: the peer's limit, which it enforces with RST_STREAM REFUSED_STREAM.
    for (let round = 0; round < 5; round++) {
      const bodies = [randomBytes(100_000), randomBytes(70_000)];
      const results = await Promise.race([
        Promise.all(
          bodies.map((body, i) =>
            exchange(
              conn,
              {
                ':method': 'PUT',
                ':scheme': 'https',
                ':authority': `127.0.0.1:${port}`,
                ':path': `/r${round}/${i}`,
                'x-repeated': 'v'.repeat(800),
              },
              body,
            ),
          ),
        ),
        goaway,
      ]);
      results.forEach((r, i) => {
        expect(r.headers[':status']).toBe('200');
        expect(sha(r.body)).toBe(sha(bodies[i] as Buffer));
      });
    }
  });

  it('our client → nghttpx → our server as its HTTP/2 backend: 30 kB header blocks split into CONTINUATION both ways', async () => {
    const backend = await ourServer({ tls: false });
    const pem = await material.pem('nghttpx');
    const port = await freePort();
    const proxy = startPeer(NGHTTPX, [
      `--frontend=127.0.0.1,${port}`,
      `--backend=127.0.0.1,${backend.port};;proto=h2`,
      ...['--workers=1', '--no-ocsp', '--conf=/dev/null', '--errorlog-file=/dev/stderr'],
      '--accesslog-file=/dev/null',
      pem.key,
      pem.cert,
    ]);
    closers.push(() => proxy.stop());
    await waitForListener(port, proxy);
    const conn = await ourClient(port);
    const fromProxy = countFrames(conn.socket, false);
    const bigA = 'A'.repeat(20_000);
    const bigB = 'B'.repeat(10_000);
    const bodies = [randomBytes(600_000), randomBytes(300_000), randomBytes(5)];
    const results = await Promise.all(
      bodies.map((body, i) =>
        exchange(
          conn,
          {
            ':method': 'POST',
            ':scheme': 'https',
            ':authority': `127.0.0.1:${port}`,
            ':path': `/via/${i}`,
            'x-big-a': bigA,
            'x-big-b': bigB,
          },
          body,
        ),
      ),
    );
    results.forEach((r, i) => {
      expect(r.headers[':status']).toBe('200');
      expect(r.headers.via).toMatch(/nghttpx/);
      // nghttp2 sends header blocks over 16 KiB as HEADERS plus CONTINUATION, whatever frame size we allow.
      expect(r.headers['x-big-a']).toBe(bigA);
      expect(r.headers['x-big-b']).toBe(bigB);
      expect(r.headers['x-body-sha256']).toBe(sha(bodies[i] as Buffer));
      expect(sha(r.body)).toBe(sha(bodies[i] as Buffer));
    });
    expect(
      backend.seen.map((r) => [r.headers[':path'], r.headers['x-big-a'], r.headers['x-big-b']]).sort(),
    ).toEqual(bodies.map((_, i) => [`/via/${i}`, bigA, bigB]));
    expect(backend.protocolErrors).toEqual([]);
    expect(backend.frames.get(FRAME.CONTINUATION)).toBeGreaterThanOrEqual(3);
    expect(fromProxy.get(FRAME.CONTINUATION)).toBeGreaterThanOrEqual(3);
  });

  it('our client → nghttpx (HTTP/2 proxy mode): a CONNECT tunnel to an HTTP/1.1 backend carries 3 MiB each way', async () => {
    // nghttpx needs a backend even in proxy mode: it forwards CONNECT to it as an HTTP/1.1 CONNECT.
    // This backend answers it and echoes the tunnel.
    const backendSaw: string[] = [];
    const backend = http.createServer();
    backend.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      backendSaw.push(`${req.method} ${req.url}`);
      socket.on('error', () => {});
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) socket.write(head);
      socket.pipe(socket);
    });
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    closers.push(() => {
      backend.closeAllConnections();
      return new Promise((r) => backend.close(r));
    });
    const backendPort = (backend.address() as net.AddressInfo).port;
    const pem = await material.pem('nghttpx');
    const port = await freePort();
    const proxy = startPeer(NGHTTPX, [
      '--http2-proxy',
      `--frontend=127.0.0.1,${port}`,
      `--backend=127.0.0.1,${backendPort}`,
      '--workers=1',
      '--no-ocsp',
      '--conf=/dev/null',
      '--errorlog-file=/dev/stderr',
      '--accesslog-file=/dev/null',
      pem.key,
      pem.cert,
    ]);
    closers.push(() => proxy.stop());
    await waitForListener(port, proxy);
    const conn = await ourClient(port);
    const stream = conn.request(
      { ':method': 'CONNECT', ':authority': '198.18.0.9:8080' },
      { endStream: false },
    );
    stream.on('error', () => {});
    const headers = await new Promise<H2IncomingHeaders>((resolve) => stream.once('response', resolve));
    expect(headers[':status']).toBe('200');
    expect(headers.via).toMatch(/nghttpx/);
    expect(backendSaw).toEqual(['CONNECT 198.18.0.9:8080']);
    // nghttpx does not pass our END_STREAM on to the backend as a half-close, so the echo never
    // ends: read exactly what was sent, then reset the stream.
    const payload = randomBytes(3 * 1024 * 1024);
    const parts: Buffer[] = [];
    let got = 0;
    const echoed = new Promise<void>((resolve) =>
      stream.on('data', (d: Buffer) => {
        parts.push(d);
        got += d.length;
        if (got >= payload.length) resolve();
      }),
    );
    stream.write(payload);
    await echoed;
    expect(sha(Buffer.concat(parts))).toBe(sha(payload));
    stream.close();
  });
});

interface GoResult {
  kind: string;
  status: number;
  proto: string;
  headers: Record<string, string>;
  sentSha256: string;
  bodySha256: string;
  bodyLength: number;
  firstLine?: string;
  error?: string;
  serverIdentity: string;
}

describe.skipIf(missing.go)("Go's net/http", () => {
  let goPeer = '';
  beforeAll(async () => {
    const build = await buildGoProgram(path.join(FIXTURES, 'go-peer.go'));
    console.log(`go peer: ${build.cached ? 'cached build' : `built in ${build.ms} ms`} at ${build.binary}`);
    goPeer = build.binary;
  }, 180_000);

  /** Runs the Go client; its requests sorted by kind, and how many connections they used. */
  async function goClient(args: string[]): Promise<GoResult[] & { connections: number }> {
    const result = await run(goPeer, ['client', ...args], { timeoutMs: 25_000 });
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as GoResult);
    const summary = lines.find((l) => l.kind === '~connections');
    const requests = lines.filter((l) => l !== summary).sort((a, b) => a.kind.localeCompare(b.kind));
    return Object.assign(requests, { connections: summary?.status ?? 0 });
  }

  async function goServerProcess(): Promise<{ port: number; peer: PeerProcess }> {
    const pem = await material.pem('go-server');
    const peer = startPeer(goPeer, ['server', '--cert', pem.cert, '--key', pem.key, '--ca', pem.ca]);
    closers.push(() => peer.stop());
    const [, port] = await peer.waitFor(/listening (\d+)/);
    return { port: Number(port), peer };
  }
  const goServer = async () => (await goServerProcess()).port;

  it('Go client → our HBONE server: CONNECT over mutual TLS, 2 MiB each way through the tunnel; POST gets 400', async () => {
    const echo = await echoServer();
    closers.push(() => echo.server.close());
    const mesh = await meshPair();
    closers.push(() => mesh.close());
    const pem = await writePemFiles(
      material.dir,
      'go-hbone-client',
      await mesh.certs.fetch(SpiffeId.of(TRUST_DOMAIN, 'peer', 'go-client')),
    );
    const [connect, ...posts] = await goClient([
      ...['--cert', pem.cert, '--key', pem.key, '--ca', pem.ca],
      ...['--addr', `127.0.0.1:${mesh.serverPort}`, '--authority', `127.0.0.1:${echo.port}`],
      ...['--body-bytes', String(2 * 1024 * 1024), '--streams', '2'],
    ]);
    // HBONE carries only CONNECT: Go's POSTs on the same connection are answered 400.
    expect(posts.map((p) => [p.kind, p.status, p.error])).toEqual([
      ['post 0', 400, undefined],
      ['post 1', 400, undefined],
    ]);
    expect(connect).toMatchObject({
      kind: 'connect',
      status: 200,
      proto: 'HTTP/2.0',
      bodyLength: 2 * 1024 * 1024,
    });
    expect(connect?.error).toBeUndefined();
    expect(connect?.bodySha256).toBe(connect?.sentSha256);
    // Go verified our server's chain; the mesh identity it presented is the HBONE server's.
    expect(connect?.serverIdentity).toBe(`spiffe://${TRUST_DOMAIN}/ns/demo/sa/server`);
    // Our server verified Go's certificate and authorized on it, not on anything Go wrote.
    expect(
      mesh.requests.map((r) => [r.peer.toString(), `${r.target.host}:${r.target.port}`, r.forwardedFor]),
    ).toEqual([[spiffe('go-client'), `127.0.0.1:${echo.port}`, '198.18.0.7:40000']]);
  });

  it('Go client → our server: 6 concurrent uploads with large headers from its dynamic table, and CONNECT', async () => {
    const server = await ourServer();
    const pem = await material.pem('go-client');
    const results = await goClient([
      ...['--cert', pem.cert, '--key', pem.key, '--ca', pem.ca],
      ...['--addr', `127.0.0.1:${server.port}`, '--authority', '10.1.2.3:443'],
      ...['--body-bytes', String(1024 * 1024), '--streams', '6', '--big-header', '3000'],
    ]);
    expect(results.map((r) => r.kind)).toEqual([
      'connect',
      ...Array.from({ length: 6 }, (_, i) => `post ${i}`),
    ]);
    for (const r of results) {
      expect(r.error, r.kind).toBeUndefined();
      expect(r.status, r.kind).toBe(200);
      expect(r.proto).toBe('HTTP/2.0');
      expect(r.bodySha256, r.kind).toBe(r.sentSha256);
      expect(r.serverIdentity).toBe(`spiffe://${TRUST_DOMAIN}/ns/x/sa/ours-server`);
    }
    const connect = results[0] as GoResult;
    expect(connect.headers['x-authority']).toBe('10.1.2.3:443');
    expect(connect.bodyLength).toBe(1024 * 1024);
    for (const r of results.slice(1)) {
      expect(r.headers['x-body-sha256']).toBe(r.sentSha256);
      // Our 3 kB response headers, decoded by Go.
      expect(r.headers['x-big-a']).toBe('a'.repeat(3000));
      expect(r.headers['x-big-b']).toBe('b'.repeat(1500));
    }
    const posts = server.seen.filter((s) => s.headers[':method'] === 'POST');
    expect(posts).toHaveLength(6);
    for (const s of posts) {
      expect(s.headers['x-big-a']).toBe('a'.repeat(3000));
      expect(s.headers['x-big-b']).toBe('b'.repeat(1500));
      const i = Number(s.headers['x-stream']);
      expect(s.headers[':path']).toBe(`/post/${i}`);
      expect(s.bodyLength).toBe(Math.floor((1024 * 1024) / (i + 1)));
    }
    expect(server.protocolErrors).toEqual([]);
  });

  it('Go client → our server closing gracefully: GOAWAY after each first request, Go retries the rest elsewhere, none served twice', async () => {
    const server = await ourServer({ goawayOnFirstStream: true });
    const pem = await material.pem('go-client');
    const results = await goClient([
      ...['--cert', pem.cert, '--key', pem.key, '--ca', pem.ca],
      ...['--addr', `127.0.0.1:${server.port}`, '--authority', ''],
      ...['--body-bytes', String(256 * 1024), '--streams', '8'],
    ]);
    expect(results.map((r) => r.kind)).toEqual(Array.from({ length: 8 }, (_, i) => `post ${i}`));
    for (const r of results) {
      expect(r.error, r.kind).toBeUndefined();
      expect(r.status, r.kind).toBe(200);
      expect(r.bodySha256, r.kind).toBe(r.sentSha256);
    }
    // Each connection served what it accepted before its GOAWAY; Go sent everything beyond the
    // GOAWAY's last stream id again on a new connection, and nothing reached us twice.
    console.log(`Go → ours closing on each first request: ${results.connections} connections for 8 requests`);
    expect(results.connections).toBeGreaterThanOrEqual(2);
    expect(server.connections()).toBe(results.connections);
    const paths = server.seen.map((r) => r.headers[':path']).sort();
    expect(paths).toEqual(Array.from({ length: 8 }, (_, i) => `/post/${i}`));
    expect(server.protocolErrors).toEqual([]);
  });

  it('our HBONE client → Go server: CONNECT over mutual TLS, each side verifying the other', async () => {
    const port = await goServer();
    const client = new HboneClient({
      certificates: material.certs,
      metrics: new HboneMetrics(new Registry()),
      logger: pino({ level: 'silent' }),
    });
    closers.push(() => client.destroy());
    const source = SpiffeId.of(TRUST_DOMAIN, 'x', 'ours-client');
    const stream = await client.connect({
      source,
      destination: SpiffeId.of(TRUST_DOMAIN, 'peer', 'go-server'),
      address: { host: '127.0.0.1', port },
      authority: '10.9.8.7:5432',
      forwarded: 'for="198.18.0.7:40000"',
    });
    expect(client.peerOf(stream)).toBe(spiffe('go-server'));
    const payload = randomBytes(2 * 1024 * 1024);
    const echoed = readAll(stream);
    stream.end(payload);
    const got = await echoed;
    const newline = got.indexOf(10);
    // Go's first line: the identity it verified on our client certificate.
    expect(got.subarray(0, newline).toString()).toBe(source.toString());
    expect(sha(got.subarray(newline + 1))).toBe(sha(payload));
  });

  it('our client → Go server: a complete response before the request body, then RST_STREAM NO_ERROR, is kept (RFC 9113 §8.1)', async () => {
    const port = await goServer();
    const conn = await ourClient(port);
    // Go answers /early without reading the 8 MiB body, then resets the stream with NO_ERROR so
    // that we stop sending. The response is complete and must reach the application whole.
    const early = await exchange(
      conn,
      { ':method': 'POST', ':scheme': 'https', ':authority': `127.0.0.1:${port}`, ':path': '/early' },
      randomBytes(8 * 1024 * 1024),
    );
    expect(early.headers[':status']).toBe('202');
    expect(early.body.toString()).toBe('early answer');
    // The connection carries on.
    const next = await exchange(
      conn,
      { ':method': 'POST', ':scheme': 'https', ':authority': `127.0.0.1:${port}`, ':path': '/after' },
      Buffer.from('after'),
    );
    expect(next.headers[':status']).toBe('200');
    expect(next.body.toString()).toBe('after');
    await eventually(() => conn.streamCount === 0);
  });

  it('our client → Go server shutting down gracefully: GOAWAY NO_ERROR, the open tunnel finishes, no new streams', async () => {
    const { port, peer } = await goServerProcess();
    const conn = await ourClient(port);
    const stream = conn.request(
      { ':method': 'CONNECT', ':authority': '10.0.0.6:6000' },
      { endStream: false },
    );
    stream.on('error', () => {});
    const response = await new Promise<H2IncomingHeaders>((resolve) => stream.once('response', resolve));
    expect(response[':status']).toBe('200');
    const echoed = readAll(stream);
    const first = randomBytes(512 * 1024);
    stream.write(first);
    const goaway = new Promise<[number, number]>((resolve) =>
      conn.once('goaway', (code: number, lastStreamId: number) => resolve([code, lastStreamId])),
    );
    peer.child.kill('SIGTERM');
    const [code, lastStreamId] = await goaway;
    expect(code).toBe(0);
    expect(lastStreamId).toBeGreaterThanOrEqual(stream.id);
    // No new stream gets through: refused at once, or closed without a response.
    const refused = await new Promise<boolean>((resolve) => {
      try {
        const late = conn.request(
          { ':method': 'CONNECT', ':authority': '10.0.0.6:6001' },
          { endStream: false },
        );
        late.on('error', () => {});
        late.once('response', () => resolve(false));
        late.once('close', () => resolve(true));
      } catch {
        resolve(true);
      }
    });
    expect(refused).toBe(true);
    // The tunnel opened before the GOAWAY keeps working both ways until it ends.
    const second = randomBytes(512 * 1024);
    stream.end(second);
    const body = await echoed;
    const newline = body.indexOf(10);
    expect(body.subarray(0, newline).toString()).toBe(`spiffe://${TRUST_DOMAIN}/ns/x/sa/ours-client`);
    expect(sha(body.subarray(newline + 1))).toBe(sha(Buffer.concat([first, second])));
    await peer.waitFor(/shut down/);
    await new Promise((r) => (conn.destroyed ? r(undefined) : conn.once('close', r)));
  });

  it('our client → Go server: concurrent uploads, large response headers from its dynamic table, CONNECT', async () => {
    const port = await goServer();
    const conn = await ourClient(port);
    const bodies = Array.from({ length: 5 }, (_, i) => randomBytes(400_000 + i));
    const results = await Promise.all(
      bodies.map((body, i) =>
        exchange(
          conn,
          {
            ':method': 'POST',
            ':scheme': 'https',
            ':authority': `127.0.0.1:${port}`,
            ':path': `/up/${i}`,
            'x-big-a': 'A'.repeat(1800),
            'x-big-b': 'B'.repeat(1200),
          },
          body,
        ),
      ),
    );
    results.forEach((r, i) => {
      expect(r.headers[':status']).toBe('200');
      expect(r.headers['x-proto']).toBe('HTTP/2.0');
      expect(r.headers['x-peer-identity']).toBe(`spiffe://${TRUST_DOMAIN}/ns/x/sa/ours-client`);
      expect(r.headers['x-path']).toBe(`/up/${i}`);
      expect(r.headers['x-body-sha256']).toBe(sha(bodies[i] as Buffer));
      expect(r.headers['x-big-a']).toBe('A'.repeat(1800));
      expect(r.headers['x-big-b']).toBe('B'.repeat(1200));
      expect(sha(r.body)).toBe(sha(bodies[i] as Buffer));
    });
    const payload = randomBytes(1024 * 1024);
    const { headers, body } = await tunnel(conn, '10.0.0.5:9000', payload);
    expect(headers[':status']).toBe('200');
    expect(headers['x-authority']).toBe('10.0.0.5:9000');
    await ping(conn);
    const newline = body.indexOf(10);
    expect(body.subarray(0, newline).toString()).toBe(`spiffe://${TRUST_DOMAIN}/ns/x/sa/ours-client`);
    expect(sha(body.subarray(newline + 1))).toBe(sha(payload));
  });
});

interface PyStream {
  kind: string;
  sent: string;
  headers: Record<string, string>;
  bodySha256: string;
  bodyLength: number;
  reset?: number;
}

describe.skipIf(missing.python)('python3-h2', () => {
  const script = path.join(FIXTURES, 'python-h2-peer.py');

  async function pyClient(port: number, args: string[]) {
    const pem = await material.pem('python-client');
    const result = await run(
      DEBIAN_PYTHON,
      [script, 'client', '--port', String(port), '--cert', pem.cert, '--key', pem.key, ...args],
      { timeoutMs: 25_000 },
    );
    expect(result.code, result.stderr + result.stdout).toBe(0);
    const lines = result.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const connection = lines.pop() as { kind: string; maxOpen: number; limit: number };
    expect(connection.kind).toBe('connection');
    return { streams: (lines as PyStream[]).sort((a, b) => a.kind.localeCompare(b.kind)), connection };
  }

  async function pyServer(args: string[]): Promise<number> {
    const pem = await material.pem('python-server');
    const peer = startPeer(DEBIAN_PYTHON, [
      script,
      'server',
      ...['--cert', pem.cert, '--key', pem.key, '--ca', pem.ca],
      ...args,
    ]);
    closers.push(() => peer.stop());
    const [, port] = await peer.waitFor(/listening (\d+)/);
    return Number(port);
  }

  it('python3-h2 client → our server: CONNECT and 5 uploads, SETTINGS_HEADER_TABLE_SIZE 0, large headers', async () => {
    const server = await ourServer();
    const { streams } = await pyClient(server.port, [
      ...['--header-table-size', '0', '--streams', '5', '--body-bytes', String(512 * 1024)],
      ...['--big-header', '2500', '--authority', '10.20.30.40:8443'],
    ]);
    expect(streams.map((s) => s.kind)).toEqual(['connect', 'post 0', 'post 1', 'post 2', 'post 3', 'post 4']);
    for (const s of streams) {
      expect(s.reset, s.kind).toBeUndefined();
      expect(s.headers[':status'], s.kind).toBe('200');
      expect(s.bodySha256, s.kind).toBe(s.sent);
    }
    expect(streams[0]?.headers['x-authority']).toBe('10.20.30.40:8443');
    for (const s of streams.slice(1)) {
      expect(s.headers['x-body-sha256']).toBe(s.sent);
      expect(s.headers['x-big-a']).toBe('a'.repeat(2500));
    }
    const connect = server.seen.find((s) => s.headers[':method'] === 'CONNECT');
    expect(connect?.headers).toMatchObject({
      ':authority': '10.20.30.40:8443',
      forwarded: 'for="198.18.0.7:40000"',
    });
    const posts = server.seen.filter((s) => s.headers[':method'] === 'POST');
    expect(posts.map((s) => s.headers['x-big-b'])).toEqual(Array(5).fill('b'.repeat(1250)));
    expect(server.protocolErrors).toEqual([]);
  });

  it('python3-h2 client → our server advertising MAX_CONCURRENT_STREAMS 2: 8 streams, never more than 2 open', async () => {
    const server = await ourServer({ maxConcurrentStreams: 2 });
    const { streams, connection } = await pyClient(server.port, ['--streams', '7', '--body-bytes', '300000']);
    expect(streams).toHaveLength(8);
    for (const s of streams) {
      expect(s.headers[':status'], s.kind).toBe('200');
      expect(s.bodySha256, s.kind).toBe(s.sent);
    }
    expect(connection.limit).toBe(2);
    console.log(
      `python3-h2 → ours (limit 2): client had at most ${connection.maxOpen}, we saw ${server.maxOpen()}`,
    );
    expect(connection.maxOpen).toBeLessThanOrEqual(2);
    expect(server.maxOpen()).toBeLessThanOrEqual(2);
  });

  it('python3-h2 client → our HBONE server: CONNECT over mutual TLS through to the upstream', async () => {
    const echo = await echoServer();
    closers.push(() => echo.server.close());
    const mesh = await meshPair();
    closers.push(() => mesh.close());
    const pem = await writePemFiles(
      material.dir,
      'python-hbone-client',
      await mesh.certs.fetch(SpiffeId.of(TRUST_DOMAIN, 'peer', 'python-client')),
    );
    const result = await run(
      DEBIAN_PYTHON,
      [
        script,
        'client',
        ...['--port', String(mesh.serverPort), '--cert', pem.cert, '--key', pem.key],
        ...['--streams', '0', '--body-bytes', String(1024 * 1024), '--authority', `127.0.0.1:${echo.port}`],
      ],
      { timeoutMs: 25_000 },
    );
    expect(result.code, result.stderr).toBe(0);
    const connect = JSON.parse(result.stdout.split('\n')[0] as string) as PyStream;
    expect(connect.headers[':status']).toBe('200');
    expect(connect.bodyLength).toBe(1024 * 1024);
    expect(connect.bodySha256).toBe(connect.sent);
    expect(mesh.requests.map((r) => r.peer.toString())).toEqual([spiffe('python-client')]);
  });

  it('our client → python3-h2 server with SETTINGS_HEADER_TABLE_SIZE 0 and MAX_CONCURRENT_STREAMS 2', async () => {
    const port = await pyServer(['--header-table-size', '0', '--max-concurrent-streams', '2']);
    const conn = await ourClient(port);
    await waitForSettings(conn);
    expect(conn.remoteSettings).toMatchObject({ headerTableSize: 0, maxConcurrentStreams: 2 });
    for (let round = 0; round < 4; round++) {
      const bodies = [randomBytes(200_000), randomBytes(90_000)];
      const results = await Promise.all(
        bodies.map((body, i) =>
          exchange(
            conn,
            {
              ':method': 'POST',
              ':scheme': 'https',
              ':authority': 'peer.test',
              ':path': `/r${round}/${i}`,
              'x-big-a': 'q'.repeat(1500),
            },
            body,
          ),
        ),
      );
      results.forEach((r, i) => {
        expect(r.headers[':status']).toBe('200');
        expect(r.headers['x-path']).toBe(`/r${round}/${i}`);
        expect(r.headers['x-body-sha256']).toBe(sha(bodies[i] as Buffer));
        expect(Number(r.headers['x-max-open'])).toBeLessThanOrEqual(2);
        expect(sha(r.body)).toBe(sha(bodies[i] as Buffer));
      });
    }
  });

  for (const window of [1000, 1024 * 1024]) {
    it(`our client → python3-h2 server changing SETTINGS_INITIAL_WINDOW_SIZE to ${window} mid-upload`, async () => {
      const port = await pyServer(['--window-after-first', String(window)]);
      const conn = await ourClient(port);
      await waitForSettings(conn);
      const streams: H2Stream[] = [];
      const post = (i: number, body: Buffer) => {
        const headers = {
          ':method': 'POST',
          ':scheme': 'https',
          ':authority': 'peer.test',
          ':path': `/w/${i}`,
        };
        return exchange(conn, headers, body, (s) => streams.push(s));
      };
      // Stream 1 has sent at least one 16 KiB frame when the window changes under it.
      const size = window < 65_535 ? 100_000 : 1024 * 1024;
      const bodies = [randomBytes(size), randomBytes(size / 2), randomBytes(size / 4)];
      const first = post(0, bodies[0] as Buffer);
      const windowAfter = await new Promise<number>((resolve) =>
        conn.on('remoteSettings', (s: { initialWindowSize: number }) => {
          if (s.initialWindowSize === window) resolve(streams[0]?.sendWindow ?? Number.NaN);
        }),
      );
      console.log(`python3-h2 INITIAL_WINDOW_SIZE → ${window}: stream 1's send window became ${windowAfter}`);
      if (window < 65_535) expect(windowAfter).toBeLessThan(0);
      const results = await Promise.all([first, post(1, bodies[1] as Buffer), post(2, bodies[2] as Buffer)]);
      results.forEach((r, i) => {
        expect(r.headers[':status']).toBe('200');
        expect(r.headers['x-body-sha256']).toBe(sha(bodies[i] as Buffer));
        expect(sha(r.body)).toBe(sha(bodies[i] as Buffer));
      });
    });
  }

  it('our client → python3-h2 server: large response headers from its dynamic table, and a CONNECT tunnel', async () => {
    const port = await pyServer(['--allow-connect']);
    const conn = await ourClient(port);
    for (let i = 0; i < 6; i++) {
      const r = await exchange(
        conn,
        {
          ':method': 'PUT',
          ':scheme': 'https',
          ':authority': 'peer.test',
          ':path': `/h/${i}`,
          'x-big-a': 'x'.repeat(2000),
          'x-big-b': 'y'.repeat(1000),
          // Over 16 KiB in all: HEADERS plus CONTINUATION from us.
          'x-big-c': 'z'.repeat(17_000),
        },
        Buffer.from(`body ${i}`),
      );
      expect(r.headers[':status']).toBe('200');
      // Sent back by python3-h2's HPACK encoder, which indexes them after the first response.
      expect(r.headers['x-big-a']).toBe('x'.repeat(2000));
      expect(r.headers['x-big-b']).toBe('y'.repeat(1000));
      expect(r.headers['x-big-c']).toBe('z'.repeat(17_000));
      expect(r.body.toString()).toBe(`body ${i}`);
    }
    const payload = randomBytes(2 * 1024 * 1024);
    const { headers, body } = await tunnel(conn, '10.0.0.8:7000', payload);
    expect(headers[':status']).toBe('200');
    expect(headers['x-authority']).toBe('10.0.0.8:7000');
    expect(sha(body)).toBe(sha(payload));
    await ping(conn);
  });
});

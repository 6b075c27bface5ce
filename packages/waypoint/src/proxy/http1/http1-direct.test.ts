import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WaypointConfig } from '../../config/waypoint-config.js';
import {
  closeFronts,
  cluster,
  endpoint,
  type ProxyFront as Front,
  grpcLikeBackend,
  listen,
  rawExchange,
  retryOn5xx,
  route,
  routeTable,
  startFront,
} from '../../testing/proxy-harness.js';

/** A Node backend that counts the connections it accepted. */
async function nodeBackend() {
  const seen = new Set<string>();
  const connections: string[] = [];
  const ports = new Map<string, number | undefined>();
  /** Every request as it came: its path and the upstream stream (local port) it rode. */
  const requests: Array<[string, number | undefined]> = [];
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    ports.set(url, req.socket.remotePort);
    requests.push([url, req.socket.remotePort]);
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      const m = /^\/fail-once\/(\w+)/.exec(url);
      if (m) {
        const first = !seen.has(m[1] as string);
        seen.add(m[1] as string);
        res.writeHead(first ? 503 : 200);
        res.end(first ? 'failed' : `ok ${body.length} ${body}`);
        return;
      }
      if (url.startsWith('/big')) {
        // 4 MiB in 64 KiB writes: more than any buffer on the way, so backpressure must hold.
        const piece = Buffer.alloc(64 * 1024, 98);
        for (let i = 0; i < 64; i++) res.write(piece);
        res.end();
        return;
      }
      if (url.startsWith('/close')) res.setHeader('connection', 'close');
      res.end(`${req.method} ${url} ${body.length} ${req.headers['transfer-encoding'] ?? '-'}`);
    });
  });
  server.on('connection', (s) => connections.push(`${s.remotePort}`));
  return { server, port: await listen(server), connections, ports, requests };
}

/** Backend streams the proxy closed after they sent bytes while idle. */
const closedAfterGarbage: boolean[] = [];

/** A scripted backend: answers by path with exact bytes, to try each response framing. */
async function rawBackend() {
  const scripts: Record<string, (s: net.Socket) => void> = {
    '/raw/cl': (s) => s.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello'),
    '/raw/chunked': (s) =>
      s.write(
        'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-checksum: 42\r\n\r\n',
      ),
    '/raw/until-close': (s) =>
      s.end('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nstreamed until close'),
    '/raw/reset': (s) => {
      s.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial');
      setTimeout(() => s.resetAndDestroy(), 20);
    },
    '/raw/garbage-after': (s) => {
      s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      setTimeout(() => {
        if (!s.destroyed) s.write('junk');
        s.once('close', () => closedAfterGarbage.push(true));
      }, 30);
    },
    '/raw/bad-head': (s) => s.write('HTTP/1.1 200 OK\r\nx-bad : 1\r\ncontent-length: 0\r\n\r\n'),
  };
  const server = net.createServer((s) => {
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const path = buf.slice(0, end).split(' ')[1] ?? '';
        buf = buf.slice(end + 4);
        (scripts[path] ?? ((x: net.Socket) => x.destroy()))(s);
      }
    });
    s.on('error', () => {});
  });
  return { server, port: await listen(server) };
}

/** Responses in a raw HTTP/1.1 byte stream: status, headers (lower-case) and decoded body. */
function responsesOf(text: string): Array<{ status: number; headers: Record<string, string>; body: string }> {
  const out: Array<{ status: number; headers: Record<string, string>; body: string }> = [];
  let rest = text;
  while (rest.startsWith('HTTP/1.1 ')) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const lines = rest.slice(0, end).split('\r\n');
    const status = Number(lines[0]?.split(' ')[1]);
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    rest = rest.slice(end + 4);
    let body = '';
    if (headers['transfer-encoding'] === 'chunked') {
      for (;;) {
        const nl = rest.indexOf('\r\n');
        const size = Number.parseInt(rest.slice(0, nl), 16);
        rest = rest.slice(nl + 2);
        if (size === 0) {
          const t = rest.indexOf('\r\n\r\n');
          const tEnd = rest.startsWith('\r\n') ? 2 : t + 4;
          for (const l of rest
            .slice(0, tEnd - 2)
            .split('\r\n')
            .filter(Boolean)) {
            const i = l.indexOf(':');
            headers[`trailer:${l.slice(0, i).toLowerCase()}`] = l.slice(i + 1).trim();
          }
          rest = rest.slice(tEnd);
          break;
        }
        body += rest.slice(0, size);
        rest = rest.slice(size + 2);
      }
    } else if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      body = rest.slice(0, n);
      rest = rest.slice(n);
    } else {
      body = rest;
      rest = '';
    }
    out.push({ status, headers, body });
  }
  return out;
}

describe('direct HTTP/1.1 path: connection, framing, pooling and fallback', () => {
  let nb: Awaited<ReturnType<typeof nodeBackend>>;
  let rb: Awaited<ReturnType<typeof rawBackend>>;
  let h2b: Awaited<ReturnType<typeof grpcLikeBackend>>;
  let direct: Front;
  let node: Front;
  let config: WaypointConfig;

  beforeAll(async () => {
    nb = await nodeBackend();
    rb = await rawBackend();
    h2b = await grpcLikeBackend();
    config = {
      routes: routeTable([
        route('retry', '/fail-once', {
          clusters: [{ cluster: 'n', weight: 1 }],
          retry: retryOn5xx(),
        }),
        route('raw', '/raw', { clusters: [{ cluster: 'raw', weight: 1 }] }),
        route('grpc', '/test.Echo', { clusters: [{ cluster: 'grpc', weight: 1 }] }),
        route('default', '/', { clusters: [{ cluster: 'n', weight: 1 }] }),
      ]),
      clusters: new Map([
        ['n', cluster('n')],
        ['raw', cluster('raw')],
        ['grpc', { ...cluster('grpc'), protocol: 'http2' }],
      ]),
      endpoints: new Map([
        ['n', [endpoint('n', nb.port)]],
        ['raw', [endpoint('raw', rb.port)]],
        ['grpc', [endpoint('grpc', h2b.port)]],
      ]),
    };
    direct = await startFront(config, { direct: true });
    node = await startFront(config, { direct: false });
  });

  afterAll(() => {
    closeFronts([direct, node]);
    nb.server.close();
    rb.server.close();
    h2b.server.close();
  });

  it('answers pipelined requests in order on one connection, then closes on Connection: close', async () => {
    const out = await rawExchange(direct.port, [
      'GET /p1 HTTP/1.1\r\nhost: svc\r\n\r\nPOST /p2 HTTP/1.1\r\nhost: svc\r\ncontent-length: 3\r\n\r\nabcGET /p3 HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n',
    ]);
    const rs = responsesOf(out);
    expect(rs.map((r) => r.body)).toEqual(['GET /p1 0 -', 'POST /p2 3 -', 'GET /p3 0 -']);
    expect(rs[2]?.headers.connection).toBe('close');
    expect(rs[0]?.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('reuses one upstream stream across requests and across tunnels of the same client, not across clients', async () => {
    const before = nb.connections.length;
    await rawExchange(
      direct.port,
      ['GET /k1 HTTP/1.1\r\nhost: svc\r\n\r\n', 'GET /k2 HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n'],
      { gapMs: 50 },
    );
    await rawExchange(direct.port, ['GET /k3 HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n']);
    const sameClient = nb.connections.length - before;
    direct.sourceIp.value = '198.18.16.11';
    try {
      await rawExchange(direct.port, ['GET /k4 HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n']);
    } finally {
      direct.sourceIp.value = '198.18.16.10';
    }
    console.log(`upstream connections: ${sameClient} for 3 requests of one client on 2 tunnels`);
    expect(sameClient).toBeLessThanOrEqual(1);
    // The same upstream stream (its local port) carried all three.
    expect(nb.ports.get('/k1')).toBeDefined();
    expect(nb.ports.get('/k2')).toBe(nb.ports.get('/k1'));
    expect(nb.ports.get('/k3')).toBe(nb.ports.get('/k1'));
    expect(nb.ports.get('/k4')).not.toBe(nb.ports.get('/k1'));
    // Another client's requests never ride a stream whose CONNECT carried the first's address.
    expect(nb.connections.length - before).toBe(sameClient + 1);
  });

  it('keeps the client connection but not the upstream stream when the upstream says Connection: close', async () => {
    const out = await rawExchange(direct.port, [
      'GET /close/1 HTTP/1.1\r\nhost: svc\r\n\r\nGET /close/2 HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n',
    ]);
    const rs = responsesOf(out);
    expect(rs.map((r) => r.body)).toEqual(['GET /close/1 0 -', 'GET /close/2 0 -']);
    expect(rs[0]?.headers.connection).toBeUndefined();
    // The stream the upstream closed is not reused for the second request.
    expect(nb.ports.get('/close/2')).toBeDefined();
    expect(nb.ports.get('/close/2')).not.toBe(nb.ports.get('/close/1'));
  });

  it('retries a chunked request body after a 503, sending it whole again', async () => {
    const out = await rawExchange(
      direct.port,
      [
        'POST /fail-once/chunky HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n5\r\nhello\r\n',
        '6\r\n world\r\n0\r\n\r\n',
      ],
      { gapMs: 30 },
    );
    const [r] = responsesOf(out);
    expect(r?.status).toBe(200);
    expect(r?.body).toBe('ok 11 hello world');
    expect(direct.logs.find((e) => e.path === '/fail-once/chunky')).toMatchObject({
      attempts: 2,
      bytes_received: 11,
      response_code: 200,
    });
  });

  it('retries a 503 that came whole on the stream it came on, which went back to the pool first', async () => {
    const out = await rawExchange(direct.port, [
      'GET /fail-once/same-stream HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n',
    ]);
    expect(responsesOf(out)[0]?.status).toBe(200);
    const ports = nb.requests.filter(([url]) => url === '/fail-once/same-stream').map(([, port]) => port);
    expect(ports).toHaveLength(2);
    expect(ports[0]).toBeDefined();
    expect(ports[1]).toBe(ports[0]);
  });

  it('relays Content-Length, chunked (with trailers) and until-close upstream bodies with correct framing', async () => {
    const out = await rawExchange(direct.port, [
      'GET /raw/cl HTTP/1.1\r\nhost: svc\r\n\r\nGET /raw/chunked HTTP/1.1\r\nhost: svc\r\n\r\nGET /raw/until-close HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n',
    ]);
    const [cl, chunked, untilClose] = responsesOf(out);
    expect(cl).toMatchObject({ status: 200, body: 'hello' });
    expect(cl?.headers['content-length']).toBe('5');
    expect(chunked?.body).toBe('hello world');
    expect(chunked?.headers['transfer-encoding']).toBe('chunked');
    expect(chunked?.headers['trailer:x-checksum']).toBe('42');
    expect(untilClose?.body).toBe('streamed until close');
    expect(untilClose?.headers['transfer-encoding']).toBe('chunked');
    // HTTP/1.0 has no chunked coding: the body ends with the connection.
    const old = await rawExchange(direct.port, ['GET /raw/chunked HTTP/1.0\r\n\r\n']);
    expect(old).toMatch(/^HTTP\/1.1 200 OK\r\n/);
    expect(old).toContain('connection: close\r\n');
    expect(old.endsWith('\r\n\r\nhello world')).toBe(true);
  });

  it('relays a 4 MiB response whole, with backpressure, and counts its bytes', async () => {
    const r = await fetch(`http://127.0.0.1:${direct.port}/big`);
    const body = Buffer.from(await r.arrayBuffer());
    expect(body.length).toBe(4 * 1024 * 1024);
    expect(body.every((b) => b === 98)).toBe(true);
    await new Promise((x) => setTimeout(x, 20));
    expect(direct.logs.find((e) => e.path === '/big')).toMatchObject({ bytes_sent: 4 * 1024 * 1024 });
  });

  it('sends an HTTP/1.1 request to an HTTP/2 cluster and writes its trailers on the chunked response', async () => {
    const out = await rawExchange(direct.port, [
      'POST /test.Echo/Say HTTP/1.1\r\nhost: svc\r\ncontent-type: application/grpc\r\nte: trailers\r\ncontent-length: 5\r\nconnection: close\r\n\r\n\0\0\0\0\0',
    ]);
    const [r] = responsesOf(out);
    expect(r?.status).toBe(200);
    expect(r?.headers['content-type']).toBe('application/grpc');
    expect(r?.headers['trailer:grpc-status']).toBe('0');
    expect(Buffer.from(r?.body ?? '', 'latin1')).toEqual(Buffer.from([0, 0, 0, 0, 2, 0x0a, 0x00]));
    expect(direct.logs.find((e) => e.path === '/test.Echo/Say')).toMatchObject({
      grpc_status: '0',
      upstream_cluster: 'grpc',
    });
  });

  it('destroys the client connection when the upstream resets mid-response, flagged UR', async () => {
    const out = await rawExchange(direct.port, ['GET /raw/reset HTTP/1.1\r\nhost: svc\r\n\r\n']);
    expect(out).toMatch(/^HTTP\/1.1 200 OK/);
    expect(out).toContain('partial');
    expect(out.length).toBeLessThan(out.indexOf('\r\n\r\n') + 4 + 100);
    const viaNode = await rawExchange(node.port, ['GET /raw/reset HTTP/1.1\r\nhost: svc\r\n\r\n']);
    expect(viaNode).toContain('partial');
    await new Promise((r) => setTimeout(r, 50));
    const d = direct.logs.find((e) => e.path === '/raw/reset');
    const n = node.logs.find((e) => e.path === '/raw/reset');
    expect(String(d?.response_flags).split(',')).toContain('UR');
    // Logged as the Node path logs it (the client saw no complete response).
    expect([d?.response_code, d?.response_flags]).toEqual([n?.response_code, n?.response_flags]);
  });

  it('closes a pooled upstream stream that sends bytes while idle', async () => {
    const [r] = responsesOf(
      await rawExchange(direct.port, [
        'GET /raw/garbage-after HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n',
      ]),
    );
    expect(r?.body).toBe('ok');
    for (let i = 0; i < 100 && closedAfterGarbage.length === 0; i++)
      await new Promise((x) => setTimeout(x, 10));
    expect(closedAfterGarbage).toEqual([true]);
    // The next request gets a fresh stream and its answer.
    const [next] = responsesOf(
      await rawExchange(direct.port, ['GET /raw/cl HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n']),
    );
    expect(next?.body).toBe('hello');
  });

  it('answers 503 UC for an upstream response head it refuses, as the Node client path does', async () => {
    const [d] = responsesOf(
      await rawExchange(direct.port, [
        'GET /raw/bad-head HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n',
      ]),
    );
    const [n] = responsesOf(
      await rawExchange(node.port, ['GET /raw/bad-head HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n']),
    );
    expect(d?.status).toBe(503);
    expect(n?.status).toBe(503);
    expect(d?.body).toBe(n?.body);
  });

  it('hands a connection to Node’s server at a request boundary for Expect: 100-continue', async () => {
    const out = await rawExchange(
      direct.port,
      [
        'GET /before HTTP/1.1\r\nhost: svc\r\n\r\n',
        'POST /expect HTTP/1.1\r\nhost: svc\r\nexpect: 100-continue\r\ncontent-length: 4\r\nconnection: close\r\n\r\n',
        'body',
      ],
      { gapMs: 50 },
    );
    expect(out).toContain('HTTP/1.1 100 Continue');
    const rs = responsesOf(out.replace('HTTP/1.1 100 Continue\r\n\r\n', ''));
    expect(rs.map((r) => r.body)).toEqual(['GET /before 0 -', 'POST /expect 4 -']);
  });

  it('refuses obs-fold, CL with TE and a bad chunk size on the connection with 400, counted', async () => {
    const refusals = [
      'GET / HTTP/1.1\r\nhost: svc\r\nx-a: 1\r\n 2\r\n\r\n',
      'POST / HTTP/1.1\r\nhost: svc\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n',
      'POST / HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n',
    ];
    for (const r of refusals) {
      expect(await rawExchange(direct.port, [r])).toMatch(/^HTTP\/1.1 400 Bad Request\r\n/);
      expect(await rawExchange(node.port, [r])).toMatch(/^HTTP\/1.1 400 Bad Request\r\n/);
    }
    expect(await direct.registry.metrics()).toMatch(
      /waypoint_downstream_errors_total\{reason="malformed_request"\} 3/,
    );
  });

  it('answers a client that ends its side mid-body as the Node path does', async () => {
    const cut = (port: number) =>
      new Promise<string>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () =>
          s.end('POST /cut HTTP/1.1\r\nhost: svc\r\ncontent-length: 10\r\n\r\nabc'),
        );
        let out = '';
        s.on('data', (d) => {
          out += d.toString('latin1');
        });
        s.on('close', () => resolve(out));
        s.on('error', () => resolve(out));
        setTimeout(() => s.destroy(), 2000);
      });
    const d = await cut(direct.port);
    const n = await cut(node.port);
    console.log(
      `client ended mid-body: direct ${JSON.stringify(d.slice(0, 12))}, node ${JSON.stringify(n.slice(0, 12))}`,
    );
    expect(d).toMatch(/^HTTP\/1.1 400 /);
    expect(d.slice(0, 12)).toBe(n.slice(0, 12));
    await new Promise((x) => setTimeout(x, 50));
    const de = direct.logs.find((e) => e.path === '/cut');
    const ne = node.logs.find((e) => e.path === '/cut');
    console.log(
      `logged: direct ${de?.response_code} ${de?.response_flags}, node ${ne?.response_code} ${ne?.response_flags}`,
    );
    expect([de?.response_code, de?.response_flags]).toEqual([ne?.response_code, ne?.response_flags]);
  });

  it('closes the connection after a 431 for too many headers, serving nothing pipelined behind it', async () => {
    const fields = Array.from({ length: 120 }, (_, i) => `x-f${i}: v\r\n`).join('');
    const out = await rawExchange(direct.port, [
      `GET /many HTTP/1.1\r\nhost: svc\r\n${fields}\r\nGET /behind HTTP/1.1\r\nhost: svc\r\n\r\n`,
    ]);
    const rs = responsesOf(out);
    expect(rs.map((r) => r.status)).toEqual([431]);
    expect(rs[0]?.headers.connection).toBe('close');
    expect(out.match(/\r\nconnection:/g)).toHaveLength(1);
    expect(rs[0]?.headers.date).toMatch(/GMT$/);
    expect(nb.ports.has('/behind')).toBe(false);
  });

  it('writes the same access log entry on both paths for the same requests', async () => {
    const requests = [
      'GET /same/get HTTP/1.1\r\nhost: svc\r\nx-request-id: id-1\r\nconnection: close\r\n\r\n',
      'POST /same/cl HTTP/1.1\r\nhost: svc\r\nx-request-id: id-2\r\ncontent-length: 7\r\nconnection: close\r\n\r\npayload',
      'POST /same/chunked HTTP/1.1\r\nhost: svc\r\nx-request-id: id-3\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
      'GET /raw/chunked HTTP/1.1\r\nhost: svc\r\nx-request-id: id-4\r\nconnection: close\r\n\r\n',
    ];
    const strip = (e: Record<string, unknown> | undefined) => {
      const { start_time: _s, duration: _d, traceparent: _t, ...rest } = e ?? {};
      return rest;
    };
    for (const r of requests) {
      const d = await rawExchange(direct.port, [r]);
      const n = await rawExchange(node.port, [r]);
      expect(responsesOf(d)[0]?.body).toBe(responsesOf(n)[0]?.body);
      const id = /x-request-id: (\S+)/.exec(r)?.[1];
      const de = direct.logs.find((e) => e.x_request_id === id);
      const ne = node.logs.find((e) => e.x_request_id === id);
      expect(de).toBeDefined();
      expect(strip(de)).toEqual(strip(ne));
    }
  });
});

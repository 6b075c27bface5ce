import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BodyDecoder,
  Http1ParseError,
  headEnd,
  keepAlive,
  parseRequestHead,
  parseResponseHead,
  requestFraming,
  responseFraming,
  skipBlankLines,
} from './http1-parser.js';

const MAX = 1024;

/** What the direct path answers for these bytes: 'ok' (a whole request) or the refusal status. */
function direct(text: string): 'ok' | 'incomplete' | 400 | 431 {
  const buf = Buffer.from(text, 'latin1');
  try {
    const start = skipBlankLines(buf);
    const end = headEnd(buf, MAX, start);
    if (end < 0) return 'incomplete';
    const head = parseRequestHead(buf, start, end);
    const body = new BodyDecoder(requestFraming(head));
    body.feed(buf, end, () => {});
    return body.done ? 'ok' : 'incomplete';
  } catch (err) {
    if (!(err instanceof Http1ParseError)) throw err;
    return err.reply.status as 400 | 431;
  }
}

/**
 * [name, bytes, direct path's answer, Node's answer where it differs]. Where they differ the
 * direct path is the stricter (docs/waypoint-http1-direct.md lists each).
 */
const CASES: Array<[string, string, 'ok' | 400 | 431, ('ok' | 400)?]> = [
  ['a plain GET', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 'ok'],
  ['blank lines before the request line', '\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n', 'ok'],
  ['HTTP/1.0 without headers', 'GET / HTTP/1.0\r\n\r\n', 'ok'],
  ['a Content-Length body', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc', 'ok'],
  [
    'a chunked body with extensions and trailers',
    'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n',
    'ok',
  ],
  ['tabs and obs-text in a value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\tb\xe9\r\n\r\n', 'ok'],
  ['obs-fold (line folding)', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  2\r\n\r\n', 400],
  ['obs-fold with a tab', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\t2\r\n\r\n', 400],
  [
    'Content-Length and Transfer-Encoding',
    'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    400,
  ],
  [
    'differing Content-Lengths',
    'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd',
    400,
  ],
  [
    'repeated equal Content-Lengths',
    'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc',
    400,
  ],
  ['a Content-Length list', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc', 400],
  ['a signed Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc', 400],
  ['a non-numeric Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3a\r\n\r\nabc', 400],
  ['Transfer-Encoding gzip', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n', 400],
  [
    'a coding before chunked',
    'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
    400,
    'ok',
  ],
  ['two Host fields', 'GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n', 400, 'ok'],
  ['chunked not last', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', 400],
  [
    'a chunk size that is not hex',
    'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    400,
  ],
  [
    'a 0x chunk size',
    'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n',
    400,
  ],
  [
    'a negative chunk size',
    'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n',
    400,
  ],
  [
    'an empty chunk size',
    'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\r\nabc\r\n0\r\n\r\n',
    400,
  ],
  [
    'chunk data longer than its size',
    'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n',
    400,
  ],
  ['an invalid character in the method', 'G(T / HTTP/1.1\r\nHost: x\r\n\r\n', 400],
  ['an unknown method', 'FOO / HTTP/1.1\r\nHost: x\r\n\r\n', 400],
  ['a garbage request line', 'GARBAGE\r\n\r\n', 400],
  ['a space before the colon', 'GET / HTTP/1.1\r\nHost : x\r\n\r\n', 400],
  ['an invalid character in a header name', 'GET / HTTP/1.1\r\nHost: x\r\nX(A): 1\r\n\r\n', 400],
  ['a header line without a colon', 'GET / HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n', 400],
  ['an empty header name', 'GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n', 400],
  ['a CTL in a value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n', 400],
  ['a NUL in a value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n', 400],
  ['bare LF line ends', 'GET / HTTP/1.1\nHost: x\n\n', 400],
  ['a bare LF after a header', 'GET / HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n', 400],
  ['a bare CR in a value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n', 400],
  ['a CR just before a line end', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\r\n\r\n', 400],
  ['a bare CR in the request line', 'GET /a\rb HTTP/1.1\r\nHost: x\r\n\r\n', 400],
  ['version HTTP/1.2', 'GET / HTTP/1.2\r\nHost: x\r\n\r\n', 400],
  ['version HTTP/3.0', 'GET / HTTP/3.0\r\nHost: x\r\n\r\n', 400],
  ['a lower-case version', 'GET / http/1.1\r\nHost: x\r\n\r\n', 400],
  ['two spaces in the request line', 'GET  / HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'ok'],
  ['no space in the request line, one in a field', 'GET/\r\nHost: a b\r\n\r\n', 400],
  ['a version with a third digit', 'GET / HTTP/1.10\r\nHost: x\r\n\r\n', 400],
  ['a field name with a space before the next field', 'GET / HTTP/1.1\r\nHost: x\r\nX A: 1\r\n\r\n', 400],
  ['a head over the size limit', `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(4000)}\r\n\r\n`, 431],
  ['an unfinished head over the size limit', `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(4000)}`, 431],
];

/** What Node's HTTP server (llhttp) answers for the same bytes, on a real socket. */
let nodeServer: http.Server;
let nodePort: number;
function nodeAnswer(text: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(nodePort, '127.0.0.1', () => s.end(Buffer.from(text, 'latin1')));
    let out = '';
    s.on('data', (d) => {
      out += d.toString('latin1');
    });
    const done = () => resolve(/^HTTP\/1\.1 (\d{3})/.exec(out)?.[1] ?? 'none');
    s.on('close', done);
    s.on('error', done);
    setTimeout(() => s.destroy(), 2000);
  });
}

describe('HTTP/1.1 parser refusals, each checked against Node’s own server', () => {
  beforeAll(async () => {
    nodeServer = http.createServer({ maxHeaderSize: MAX }, (req, res) => {
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    nodeServer.maxHeadersCount = 0;
    await new Promise<void>((r) => nodeServer.listen(0, '127.0.0.1', r));
    nodePort = (nodeServer.address() as net.AddressInfo).port;
  });
  afterAll(() => nodeServer.close());

  it.each(CASES)('%s', async (_name, text, expected, nodeDiffers) => {
    expect(direct(text)).toBe(expected);
    const node = await nodeAnswer(text);
    const nodeExpected = nodeDiffers ?? expected;
    expect(node).toBe(nodeExpected === 'ok' ? '200' : String(nodeExpected));
  });
});

describe('HTTP/1.1 parser: heads, framing and body decoding', () => {
  it('parses a request head incrementally, keeping name case in the raw list', () => {
    const text =
      'GET /a?b=1 HTTP/1.1\r\nHost: svc\r\nX-Dup: 1\r\nx-dup: 2\r\nSet-Cookie: a\r\nset-cookie: b\r\n\r\n';
    const buf = Buffer.from(text);
    expect(headEnd(buf.subarray(0, 20), MAX)).toBe(-1);
    const end = headEnd(buf, MAX);
    expect(end).toBe(buf.length);
    const head = parseRequestHead(buf, 0, end);
    expect(head).toMatchObject({ method: 'GET', target: '/a?b=1', versionMinor: 1, size: buf.length });
    expect(head.headers).toEqual({ host: 'svc', 'x-dup': '1, 2', 'set-cookie': ['a', 'b'] });
    expect(head.raw[0]).toEqual(['Host', 'svc']);
    expect(keepAlive(head)).toBe(true);
  });

  it('reads the request line and the status line by their exact shapes', () => {
    const req = (t: string) => {
      const b = Buffer.from(t, 'latin1');
      return parseRequestHead(b, 0, headEnd(b, MAX));
    };
    expect(req('M-SEARCH * HTTP/1.1\r\nHost: x\r\n\r\n')).toMatchObject({ method: 'M-SEARCH', target: '*' });
    expect(req('GET /\xe9?a=%20 HTTP/1.0\r\n\r\n')).toMatchObject({ target: '/\xe9?a=%20', versionMinor: 0 });
    for (const bad of [
      'GET  HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET / HTTP/1.1 \r\nHost: x\r\n\r\n',
      'GET /\tx HTTP/1.1\r\nHost: x\r\n\r\n',
      ' GET / HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET / HTTP/1.2\r\nHost: x\r\n\r\n',
      'GET / HTTP/1.\r\nHost: x\r\n\r\n',
    ])
      expect(() => req(bad), JSON.stringify(bad)).toThrow(Http1ParseError);
    const res = (t: string) => {
      const b = Buffer.from(t, 'latin1');
      return parseResponseHead(b, 0, headEnd(b, MAX));
    };
    expect(res('HTTP/1.0 404 \r\n\r\n')).toMatchObject({ status: 404, reason: '', versionMinor: 0 });
    expect(res('HTTP/1.1 200 All \tfine\xe9\r\nX-A: 1\r\n\r\n')).toMatchObject({
      status: 200,
      reason: 'All \tfine\xe9',
      headers: { 'x-a': '1' },
    });
    for (const bad of [
      'HTTP/1.1 200OK\r\n\r\n',
      'HTTP/1.1 2000\r\n\r\n',
      'HTTP/1.1  200 OK\r\n\r\n',
      'HTTP/1.2 200 OK\r\n\r\n',
      'HTTP/1.1 2x0 OK\r\n\r\n',
      'HTTP/1.1 200 O\x01K\r\n\r\n',
      'http/1.1 200 OK\r\n\r\n',
      'HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n',
    ])
      expect(() => res(bad), JSON.stringify(bad)).toThrow(Http1ParseError);
  });

  it('strips spaces and tabs around a field value, keeping those inside it', () => {
    const text = 'GET / HTTP/1.1\r\nHost:x\r\nX-A: \t a \t b\t \r\nX-B:\t\r\nX-C:  c\r\nX-D:d \r\n\r\n';
    const buf = Buffer.from(text, 'latin1');
    const head = parseRequestHead(buf, 0, headEnd(buf, 8192));
    expect(head.headers).toEqual({ host: 'x', 'x-a': 'a \t b', 'x-b': '', 'x-c': 'c', 'x-d': 'd' });
    expect(head.raw).toEqual([
      ['Host', 'x'],
      ['X-A', 'a \t b'],
      ['X-B', ''],
      ['X-C', 'c'],
      ['X-D', 'd'],
    ]);
  });

  it('keeps HTTP/1.1 alive unless Connection: close, and HTTP/1.0 only with keep-alive', () => {
    const head = (t: string) => {
      const b = Buffer.from(t);
      return parseRequestHead(b, 0, headEnd(b, MAX));
    };
    expect(keepAlive(head('GET / HTTP/1.1\r\nConnection: close\r\n\r\n'))).toBe(false);
    expect(keepAlive(head('GET / HTTP/1.1\r\nConnection: foo, Close\r\n\r\n'))).toBe(false);
    expect(keepAlive(head('GET / HTTP/1.0\r\n\r\n'))).toBe(false);
    expect(keepAlive(head('GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'))).toBe(true);
  });

  it('frames responses: chunked, Content-Length, until close, and none for HEAD, 204 and 304', () => {
    const res = (t: string) => {
      const b = Buffer.from(t);
      return parseResponseHead(b, 0, headEnd(b, MAX));
    };
    expect(responseFraming(res('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'), 'GET')).toEqual({
      kind: 'chunked',
    });
    expect(responseFraming(res('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n'), 'GET')).toEqual({
      kind: 'length',
      length: 5,
    });
    expect(responseFraming(res('HTTP/1.1 200 OK\r\n\r\n'), 'GET')).toEqual({ kind: 'close' });
    expect(responseFraming(res('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n'), 'HEAD')).toEqual({
      kind: 'none',
    });
    expect(responseFraming(res('HTTP/1.1 204 No Content\r\n\r\n'), 'GET')).toEqual({ kind: 'none' });
    expect(responseFraming(res('HTTP/1.1 304 Not Modified\r\n\r\n'), 'GET')).toEqual({ kind: 'none' });
    expect(res('HTTP/1.1 503 Service Unavailable\r\n\r\n')).toMatchObject({ status: 503 });
    expect(res('HTTP/1.1 200\r\n\r\n')).toMatchObject({ status: 200, reason: '' });
    expect(() => res('HTTP/1.1 20 OK\r\n\r\n')).toThrow(Http1ParseError);
    expect(() =>
      res('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n'),
    ).not.toThrow();
    expect(() =>
      responseFraming(
        res('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n'),
        'GET',
      ),
    ).toThrow(Http1ParseError);
  });

  it('decodes a chunked body fed one byte at a time, with its trailers', () => {
    const wire = Buffer.from('5;name=v\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 9\r\nX-Other: a\r\n\r\nNEXT');
    const d = new BodyDecoder({ kind: 'chunked' });
    const out: Buffer[] = [];
    let pending = Buffer.alloc(0);
    let used = 0;
    for (let i = 0; i < wire.length && !d.done; i++) {
      pending = Buffer.concat([pending, wire.subarray(i, i + 1)]);
      const n = d.feed(pending, 0, (c) => out.push(Buffer.from(c)));
      used += n;
      pending = pending.subarray(n);
    }
    expect(d.done).toBe(true);
    expect(Buffer.concat(out).toString()).toBe('hello world');
    expect(d.trailers).toEqual([
      ['X-Sum', '9'],
      ['X-Other', 'a'],
    ]);
    expect(wire.subarray(used).toString()).toBe('NEXT');
  });

  it('ends a read-until-close body only when the peer closes, and reports a cut Content-Length body', () => {
    const close = new BodyDecoder({ kind: 'close' });
    let got = '';
    close.feed(Buffer.from('abc'), 0, (c) => {
      got += c.toString();
    });
    expect(close.done).toBe(false);
    expect(close.finish()).toBe(true);
    expect(got).toBe('abc');
    const cut = new BodyDecoder({ kind: 'length', length: 10 });
    cut.feed(Buffer.from('abc'), 0, () => {});
    expect(cut.finish()).toBe(false);
  });
});

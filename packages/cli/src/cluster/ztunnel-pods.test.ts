import { describe, expect, it } from 'vitest';
import { parseHttpResponse } from './ztunnel-pods.js';

describe('reading an HTTP/1.0 answer off a port-forward stream', () => {
  it('is incomplete until the head and Content-Length bytes of body are in', () => {
    const full = Buffer.from(
      'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 11\r\n\r\n{"a":"bcd"}',
    );
    expect(parseHttpResponse(full.subarray(0, 20))).toBeUndefined();
    expect(parseHttpResponse(full.subarray(0, full.length - 1))).toMatchObject({
      status: 200,
      complete: false,
    });
    expect(parseHttpResponse(full)).toEqual({ status: 200, body: '{"a":"bcd"}', complete: true });
  });

  it('without Content-Length the body runs to the end of the stream (never complete early)', () => {
    expect(parseHttpResponse(Buffer.from('HTTP/1.0 404 Not Found\r\n\r\nno'))).toEqual({
      status: 404,
      body: 'no',
      complete: false,
    });
  });
});

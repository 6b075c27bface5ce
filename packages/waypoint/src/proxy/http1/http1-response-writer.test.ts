import { describe, expect, it } from 'vitest';
import { type Http1Connection, Http1ResponseWriter } from './http1-connection.js';

/** The connection side the writer uses: what it output, and when it reported the response done. */
function fakeConnection() {
  const out: Buffer[] = [];
  const done: Http1ResponseWriter[] = [];
  const conn = {
    output: (b: Buffer) => {
      out.push(b);
      return true;
    },
    date: () => 'Sat, 05 Dec 2026 12:00:00 GMT',
    responseDone: (r: Http1ResponseWriter) => done.push(r),
    destroy: () => {},
  };
  return { conn: conn as unknown as Http1Connection, out, done };
}

describe('Http1ResponseWriter events', () => {
  it('calls once-listeners once, in order, and those added during an emit only on the next', () => {
    const { conn } = fakeConnection();
    const w = new Http1ResponseWriter(conn, 'GET', 1, true);
    const seen: string[] = [];
    expect(w.emit('drain')).toBe(false);
    w.once('drain', () => {
      seen.push('a');
      w.once('drain', () => seen.push('c'));
    });
    w.once('close', () => seen.push('close'));
    w.once('drain', () => seen.push('b'));
    expect(w.emit('drain')).toBe(true);
    expect(seen).toEqual(['a', 'b']);
    expect(w.emit('drain')).toBe(true);
    expect(seen).toEqual(['a', 'b', 'c']);
    expect(w.emit('drain')).toBe(false);
    expect(w.emit('close')).toBe(true);
    expect(w.emit('close')).toBe(false);
    expect(seen).toEqual(['a', 'b', 'c', 'close']);
  });

  it('ends with finish then close, each once, after writing the head and body', () => {
    const { conn, out, done } = fakeConnection();
    const w = new Http1ResponseWriter(conn, 'GET', 1, true);
    const seen: string[] = [];
    w.once('finish', () => seen.push('finish'));
    w.once('close', () => seen.push('close'));
    w.writeHead(200, { 'content-length': '2' });
    w.end(Buffer.from('ok'));
    w.end();
    expect(seen).toEqual(['finish', 'close']);
    expect(done).toEqual([w]);
    expect(w.writableFinished).toBe(true);
    const text = Buffer.concat(out).toString('latin1');
    expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\ncontent-length: 2\r\ndate: [^\r]+\r\n\r\nok$/);
  });
});

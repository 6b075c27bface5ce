export interface Http1Response {
  readonly status: number;
  readonly bodyBytes: number;
  /** The server asked to close the connection after this response. */
  readonly close: boolean;
}

const HEAD_END = Buffer.from('\r\n\r\n');
const CRLF = Buffer.from('\r\n');
const MAX_HEAD = 64 * 1024;

/**
 * Splits the bytes of a keep-alive HTTP/1.1 connection into responses to GETs: status, body
 * length (Content-Length or chunked), and whether the server closes. Only counts body bytes,
 * never keeps them. Throws on anything it cannot frame; the connection is then unusable.
 */
export class Http1ResponseReader {
  private buf: Buffer = Buffer.alloc(0);
  private state: 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'trailers' = 'head';
  private remaining = 0;
  private status = 0;
  private bytes = 0;
  private close = false;

  push(chunk: Buffer): Http1Response[] {
    this.buf = this.buf.length > 0 ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: Http1Response[] = [];
    for (;;) {
      if (this.state === 'head') {
        const end = this.buf.indexOf(HEAD_END);
        if (end < 0) {
          if (this.buf.length > MAX_HEAD) throw new Error('response head over 64 KiB');
          break;
        }
        this.readHead(this.buf.toString('latin1', 0, end));
        this.buf = this.buf.subarray(end + 4);
        if (this.state === 'head') out.push(this.done());
      } else if (this.state === 'length' || this.state === 'chunk-data') {
        const n = Math.min(this.remaining, this.buf.length);
        this.remaining -= n;
        this.buf = this.buf.subarray(n);
        if (this.remaining > 0) break;
        if (this.state === 'length') {
          out.push(this.done());
        } else {
          if (!this.buf.subarray(0, 2).equals(CRLF)) {
            if (this.buf.length < 2) break;
            throw new Error('chunk not followed by CRLF');
          }
          this.buf = this.buf.subarray(2);
          this.state = 'chunk-size';
        }
      } else if (this.state === 'chunk-size') {
        const end = this.buf.indexOf(CRLF);
        if (end < 0) break;
        const size = Number.parseInt(this.buf.toString('latin1', 0, end).split(';')[0] ?? '', 16);
        if (!Number.isInteger(size) || size < 0) throw new Error('bad chunk size');
        this.buf = this.buf.subarray(end + 2);
        if (size === 0) {
          this.state = 'trailers';
        } else {
          this.bytes += size;
          this.remaining = size;
          this.state = 'chunk-data';
        }
      } else {
        // After the last chunk: an empty line, or trailer fields and then an empty line.
        if (this.buf.subarray(0, 2).equals(CRLF)) {
          this.buf = this.buf.subarray(2);
        } else {
          const end = this.buf.indexOf(HEAD_END);
          if (end < 0) break;
          this.buf = this.buf.subarray(end + 4);
        }
        out.push(this.done());
      }
    }
    return out;
  }

  private readHead(head: string): void {
    const lines = head.split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
    if (!m) throw new Error(`not an HTTP/1.x status line: ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
    this.status = Number(m[1]);
    this.bytes = 0;
    this.close = false;
    let length: number | undefined;
    let chunked = false;
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line
        .slice(colon + 1)
        .trim()
        .toLowerCase();
      if (name === 'content-length') length = Number(value);
      else if (name === 'transfer-encoding') chunked = value.split(',').pop()?.trim() === 'chunked';
      else if (name === 'connection') this.close = value.split(',').some((v) => v.trim() === 'close');
    }
    if (this.status < 200) throw new Error(`interim response ${this.status} to a GET`);
    if (chunked) {
      this.state = 'chunk-size';
    } else if (this.status === 204 || this.status === 304 || length === 0) {
      this.state = 'head';
    } else if (length !== undefined && Number.isInteger(length) && length > 0) {
      this.bytes = length;
      this.remaining = length;
      this.state = 'length';
    } else {
      throw new Error(`response ${this.status} has neither Content-Length nor chunked encoding`);
    }
  }

  private done(): Http1Response {
    this.state = 'head';
    return { status: this.status, bodyBytes: this.bytes, close: this.close };
  }
}

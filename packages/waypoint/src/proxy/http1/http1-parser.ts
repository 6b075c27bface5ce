/**
 * A strict HTTP/1.1 parser over Buffers, no sockets: request and response heads, and body framers
 * (Content-Length, chunked with trailers, read until close). It refuses what Node's llhttp refuses
 * on the waypoint's other path (obs-fold, bare CR or LF, CL with TE, several Content-Lengths, a
 * Transfer-Encoding other than `chunked`, bad chunk sizes, invalid tokens, CTLs in values, unknown
 * methods and versions), so either path gives a client the same answer for the same bytes.
 */
import http from 'node:http';
import { WaypointError } from '../waypoint-errors.js';

/** A head or body the parser refuses: malformed (400) or over the head size limit (431). */
export class Http1ParseError extends WaypointError {
  constructor(
    code: 'WP_ERR_MALFORMED_REQUEST' | 'WP_ERR_HEADERS_TOO_LARGE',
    readonly reason: string,
  ) {
    super(code, reason);
    this.name = 'Http1ParseError';
  }
}

const malformed = (reason: string) => new Http1ParseError('WP_ERR_MALFORMED_REQUEST', reason);

/** Header fields as sent (name case kept), in order. */
export type RawHeaders = Array<[string, string]>;

export interface Http1Head {
  readonly versionMinor: 0 | 1;
  readonly raw: RawHeaders;
  /** Lower-case names; repeated fields joined with ", " (set-cookie kept as a list). */
  readonly headers: Record<string, string | string[]>;
  /** Bytes of the head including its blank line. */
  readonly size: number;
}

export interface RequestHead extends Http1Head {
  readonly method: string;
  readonly target: string;
}

export interface ResponseHead extends Http1Head {
  readonly status: number;
  readonly reason: string;
}

const METHODS = new Set(http.METHODS);
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: HTAB, visible ASCII, space and obs-text; never CR, LF, NUL or other CTLs.
const VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const TARGET = /^[\x21-\x7e\x80-\xff]+$/;
const CRLF = 0x0a;

/**
 * Where the head in `buf` ends (the index after its blank line), -1 if it has not ended yet.
 * Throws on a bare LF and when the head is over `maxBytes`. Leading blank lines are skipped by
 * the caller (`skipBlankLines`).
 */
export function headEnd(buf: Buffer, maxBytes: number, from = 0, scan?: { lineStart: number }): number {
  // With `scan`, lines already looked at on an earlier call (the same head, more bytes since)
  // are not looked at again: a head arriving a byte at a time costs its length, not its square.
  let lineStart = scan && scan.lineStart > from ? scan.lineStart : from;
  for (;;) {
    const nl = buf.indexOf(CRLF, lineStart);
    if (nl < 0) break;
    if (nl === 0 || buf[nl - 1] !== 0x0d) throw malformed('bare LF');
    if (nl - 1 === lineStart && lineStart > from) {
      if (nl + 1 - from > maxBytes) throw new Http1ParseError('WP_ERR_HEADERS_TOO_LARGE', 'head too large');
      return nl + 1;
    }
    if (nl - 1 === lineStart) throw malformed('empty start line');
    lineStart = nl + 1;
  }
  if (buf.length - from > maxBytes) throw new Http1ParseError('WP_ERR_HEADERS_TOO_LARGE', 'head too large');
  if (scan) scan.lineStart = lineStart;
  return -1;
}

/** Bytes of blank lines (CRLF) before a request line, which HTTP/1.1 lets a server ignore. */
export function skipBlankLines(buf: Buffer, from = 0): number {
  let i = from;
  while (i + 1 < buf.length && buf[i] === 0x0d && buf[i + 1] === 0x0a) i += 2;
  return i;
}

/** Byte classes, by code: 1 where the byte may appear (a latin1 string's codes are bytes). */
function byteClass(ok: (c: number) => boolean): Uint8Array {
  const t = new Uint8Array(256);
  for (let c = 0; c < 256; c++) t[c] = ok(c) ? 1 : 0;
  return t;
}
/** tchar (RFC 9110 5.6.2): field names and methods. */
const TCHAR = byteClass((c) => TOKEN.test(String.fromCharCode(c)));
/** Field values and reason phrases: HTAB, visible ASCII, space and obs-text. */
const VCHAR = byteClass((c) => VALUE.test(String.fromCharCode(c)));
/** A request target: visible ASCII and obs-text, no space. */
const TCHAR_TARGET = byteClass((c) => TARGET.test(String.fromCharCode(c)));

/** Whether every code of `text[from, to)` is in `cls`. */
function allIn(cls: Uint8Array, text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (cls[text.charCodeAt(i)] !== 1) return false;
  return true;
}

/** The fields of a head as they are parsed: in order as sent, and by lower-case name. */
class Fields {
  readonly raw: RawHeaders = [];
  readonly headers: Record<string, string | string[]> = {};
  hosts = 0;
}

/**
 * Where the line starting at `from` ends in `text` (lines end in CRLF; the last one runs to the
 * end). Throws on a CR not followed by LF, found here so that the head is scanned once.
 */
function lineEnd(text: string, from: number): number {
  const cr = text.indexOf('\r', from);
  if (cr < 0) return text.length;
  if (text.charCodeAt(cr + 1) !== 0x0a) throw malformed('bare CR');
  return cr;
}

/** Parses the field lines of `text` from `pos` (each ended by CRLF but the last) into `into`. */
function parseFields(text: string, pos: number, into: Fields): void {
  const { raw, headers } = into;
  while (pos < text.length) {
    const eol = lineEnd(text, pos);
    const c0 = text.charCodeAt(pos);
    if (c0 === 0x20 || c0 === 0x09) throw malformed('obs-fold');
    // The name: tchars up to the colon (none before it is a space: "Host : x" is refused).
    let i = pos;
    let upper = false;
    for (; i < eol; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x3a) break;
      if (TCHAR[c] !== 1) throw malformed('invalid header name');
      if (c >= 0x41 && c <= 0x5a) upper = true;
    }
    if (i === eol || i === pos) throw malformed('header without a name or colon');
    const name = text.slice(pos, i);
    // Optional whitespace (SP, HTAB) around the value is not part of it (RFC 9110 5.5).
    let vs = i + 1;
    let ve = eol;
    while (vs < ve && isOws(text.charCodeAt(vs))) vs++;
    while (ve > vs && isOws(text.charCodeAt(ve - 1))) ve--;
    if (!allIn(VCHAR, text, vs, ve)) throw malformed('invalid header value');
    const value = text.slice(vs, ve);
    raw.push([name, value]);
    const k = upper ? name.toLowerCase() : name;
    if (k === 'host') into.hosts++;
    const had = headers[k];
    if (had === undefined) headers[k] = k === 'set-cookie' ? [value] : value;
    else if (Array.isArray(had)) had.push(value);
    else headers[k] = `${had}, ${value}`;
    pos = eol + 2;
  }
}

function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** The head without its final CRLF CRLF; every line ended in CRLF (headEnd checked for bare LF). */
function headText(buf: Buffer, start: number, end: number): string {
  return buf.toString('latin1', start, end - 4);
}

/** Parses a complete request head, `buf[start, end)` as `headEnd` found it. */
export function parseRequestHead(buf: Buffer, start: number, end: number): RequestHead {
  const text = headText(buf, start, end);
  // The request line: method SP request-target SP HTTP/1.x, single spaces.
  const eol = lineEnd(text, 0);
  const sp1 = text.indexOf(' ');
  const sp2 = sp1 < 0 ? -1 : text.indexOf(' ', sp1 + 1);
  if (sp1 <= 0 || sp2 < 0 || sp2 >= eol || eol - sp2 !== 9 || !text.startsWith('HTTP/1.', sp2 + 1))
    throw malformed('bad request line');
  const minor = text.charCodeAt(eol - 1);
  if (minor !== 0x30 && minor !== 0x31) throw malformed('bad request line');
  const method = text.slice(0, sp1);
  // Every known method is a token; one that is not known is refused, as llhttp does.
  if (!METHODS.has(method)) throw malformed('bad method');
  if (sp2 === sp1 + 1 || !allIn(TCHAR_TARGET, text, sp1 + 1, sp2)) throw malformed('bad request target');
  const target = text.slice(sp1 + 1, sp2);
  const fields = new Fields();
  parseFields(text, eol + 2, fields);
  // RFC 9112 3.2: more than one Host is refused (Node keeps the first; policy must see one).
  if (fields.hosts > 1) throw malformed('several host fields');
  return {
    method,
    target,
    versionMinor: minor === 0x31 ? 1 : 0,
    raw: fields.raw,
    headers: fields.headers,
    size: end - start,
  };
}

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;

/** Parses a complete response head. */
export function parseResponseHead(buf: Buffer, start: number, end: number): ResponseHead {
  const text = headText(buf, start, end);
  // The status line: HTTP/1.x SP 3DIGIT [SP reason-phrase].
  const eol = lineEnd(text, 0);
  const minor = text.charCodeAt(7);
  if (
    eol < 12 ||
    !text.startsWith('HTTP/1.', 0) ||
    (minor !== 0x30 && minor !== 0x31) ||
    text.charCodeAt(8) !== 0x20 ||
    !isDigit(text.charCodeAt(9)) ||
    !isDigit(text.charCodeAt(10)) ||
    !isDigit(text.charCodeAt(11)) ||
    (eol > 12 && text.charCodeAt(12) !== 0x20)
  )
    throw malformed('bad status line');
  if (!allIn(VCHAR, text, 13, eol)) throw malformed('bad reason phrase');
  const fields = new Fields();
  parseFields(text, eol + 2, fields);
  return {
    status: Number(text.slice(9, 12)),
    reason: eol > 13 ? text.slice(13, eol) : '',
    versionMinor: minor === 0x31 ? 1 : 0,
    raw: fields.raw,
    headers: fields.headers,
    size: end - start,
  };
}

/** What a field value written on the wire must not hold: it would split the head. */
export const VALUE_OK = /^[^\r\n\0]*$/;

/**
 * The `name: value` lines of a field to write (one per value of a list), or undefined when a value
 * holds CR, LF or NUL, as Node's writeHead and client refuse them.
 */
export function fieldLines(name: string, value: string | readonly string[]): string | undefined {
  if (!Array.isArray(value)) {
    const x = String(value);
    return VALUE_OK.test(x) ? `${name}: ${x}\r\n` : undefined;
  }
  let lines = '';
  for (const v of value) {
    const x = String(v);
    if (!VALUE_OK.test(x)) return undefined;
    lines += `${name}: ${x}\r\n`;
  }
  return lines;
}

/** How a message's body is delimited. */
export type Framing =
  | { kind: 'none' }
  | { kind: 'length'; length: number }
  | { kind: 'chunked' }
  | { kind: 'close' };

function contentLengthOf(head: Http1Head): number | undefined {
  let n: number | undefined;
  for (const [name, value] of head.raw) {
    if (name.length !== 14 || name.toLowerCase() !== 'content-length') continue;
    if (!/^\d{1,15}$/.test(value)) throw malformed('bad content-length');
    // llhttp refuses a second Content-Length even when it repeats the first.
    if (n !== undefined) throw malformed('several content-length fields');
    n = Number(value);
  }
  return n;
}

function isChunked(head: Http1Head): boolean | undefined {
  const te = head.headers['transfer-encoding'];
  if (te === undefined) return undefined;
  // Only `chunked`: a body with another coding would lose it, as Transfer-Encoding is hop-by-hop.
  if (typeof te !== 'string' || te.toLowerCase() !== 'chunked')
    throw malformed('unsupported transfer-encoding');
  return true;
}

/** A request's body framing; refuses both Content-Length and Transfer-Encoding. */
export function requestFraming(head: RequestHead): Framing {
  const chunked = isChunked(head);
  const length = contentLengthOf(head);
  if (chunked && length !== undefined) throw malformed('content-length with transfer-encoding');
  if (chunked) return { kind: 'chunked' };
  return length ? { kind: 'length', length } : { kind: 'none' };
}

/** A response's body framing, knowing the request's method. */
export function responseFraming(head: ResponseHead, method: string): Framing {
  if (method === 'HEAD' || head.status === 204 || head.status === 304 || head.status < 200)
    return { kind: 'none' };
  const chunked = isChunked(head);
  const length = contentLengthOf(head);
  if (chunked && length !== undefined) throw malformed('content-length with transfer-encoding');
  if (chunked) return { kind: 'chunked' };
  if (length !== undefined) return length ? { kind: 'length', length } : { kind: 'none' };
  return { kind: 'close' };
}

/** Whether the connection stays open after this message, by HTTP/1.x rules. */
export function keepAlive(head: Http1Head): boolean {
  const c = head.headers.connection;
  const tokens = typeof c === 'string' ? c.toLowerCase().split(/\s*,\s*/) : [];
  if (tokens.includes('close')) return false;
  return head.versionMinor === 1 || tokens.includes('keep-alive');
}

/** Largest chunk-size line (size and extensions) accepted. */
const MAX_CHUNK_LINE = 4096;

/**
 * Decodes a body incrementally by its framing. `feed` takes bytes and returns how many it used;
 * the data goes to `onData`; `done` once the body has ended (for `close`, only `finish()` ends
 * it). Chunk sizes must be hex digits (extensions after `;` tolerated); trailers are parsed.
 */
export class BodyDecoder {
  done = false;
  trailers: RawHeaders = [];
  private remaining = 0;
  private state: 'size' | 'data' | 'data-crlf' | 'trailers' = 'size';
  private readonly trailerScan = { lineStart: 0 };
  private trailerScanned = 0;

  constructor(
    readonly framing: Framing,
    private readonly maxTrailerBytes = 60 * 1024,
  ) {
    if (framing.kind === 'none') this.done = true;
    if (framing.kind === 'length') this.remaining = framing.length;
  }

  feed(buf: Buffer, start: number, onData: (chunk: Buffer) => void): number {
    if (this.done) return 0;
    const f = this.framing;
    if (f.kind === 'close') {
      if (start < buf.length) onData(buf.subarray(start));
      return buf.length - start;
    }
    if (f.kind === 'length') {
      const n = Math.min(this.remaining, buf.length - start);
      if (n > 0) onData(buf.subarray(start, start + n));
      this.remaining -= n;
      if (this.remaining === 0) this.done = true;
      return n;
    }
    return this.feedChunked(buf, start, onData);
  }

  /** The peer closed: ends a read-until-close body; false if the body was cut short. */
  finish(): boolean {
    if (this.framing.kind === 'close') this.done = true;
    return this.done;
  }

  private feedChunked(buf: Buffer, start: number, onData: (chunk: Buffer) => void): number {
    let i = start;
    while (i < buf.length && !this.done) {
      if (this.state === 'size') {
        const nl = buf.indexOf(CRLF, i);
        if (nl < 0) {
          if (buf.length - i > MAX_CHUNK_LINE) throw malformed('chunk size line too long');
          break;
        }
        if (nl === i || buf[nl - 1] !== 0x0d) throw malformed('bare LF in chunk size');
        const line = buf.toString('latin1', i, nl - 1);
        const m = /^([0-9A-Fa-f]{1,15})[ \t]*(;.*)?$/.exec(line);
        if (!m) throw malformed('bad chunk size');
        if (m[2] !== undefined && !VALUE.test(m[2])) throw malformed('bad chunk extension');
        this.remaining = Number.parseInt(m[1] as string, 16);
        // Past 2^53 the count would be inexact, and the body's end misplaced.
        if (this.remaining > Number.MAX_SAFE_INTEGER) throw malformed('chunk size too large');
        i = nl + 1;
        this.state = this.remaining === 0 ? 'trailers' : 'data';
      } else if (this.state === 'data') {
        const n = Math.min(this.remaining, buf.length - i);
        onData(buf.subarray(i, i + n));
        this.remaining -= n;
        i += n;
        if (this.remaining === 0) this.state = 'data-crlf';
      } else if (this.state === 'data-crlf') {
        if (buf.length - i < 2) break;
        if (buf[i] !== 0x0d || buf[i + 1] !== 0x0a) throw malformed('chunk not followed by CRLF');
        i += 2;
        this.state = 'size';
      } else {
        // Trailers: header lines up to a blank line.
        if (buf.length - i >= 2 && buf[i] === 0x0d && buf[i + 1] === 0x0a) {
          this.done = true;
          return i + 2 - start;
        }
        // Resumed where the last call stopped (relative to the trailers' start, as `buf` moves).
        this.trailerScan.lineStart = i + this.trailerScanned;
        const end = headEnd(buf, this.maxTrailerBytes, i, this.trailerScan);
        if (end < 0) {
          this.trailerScanned = this.trailerScan.lineStart - i;
          break;
        }
        const fields = new Fields();
        parseFields(headText(buf, i, end), 0, fields);
        this.trailers = fields.raw;
        this.done = true;
        return end - start;
      }
    }
    return i - start;
  }
}

import { HUFFMAN_CODES, HUFFMAN_LENGTHS } from './hpack-huffman-table.js';

/** RFC 7541 Appendix A. Index 1 is the first entry. */
const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

const STATIC_NAME_INDEX = new Map<string, number>();
STATIC_TABLE.forEach(([name], i) => {
  if (!STATIC_NAME_INDEX.has(name)) STATIC_NAME_INDEX.set(name, i + 1);
});
const STATIC_STATUS_INDEX = new Map<string, number>(
  STATIC_TABLE.flatMap(([name, value], i) => (name === ':status' ? [[value, i + 1] as const] : [])),
);

export class HpackError extends Error {
  override readonly name = 'HpackError';
}

/**
 * The block decoded fine but its list exceeds our SETTINGS_MAX_HEADER_LIST_SIZE. Only that stream
 * is refused: the whole block was decoded, so the dynamic table stays in step with the peer.
 */
export class HpackListTooLargeError extends Error {
  override readonly name = 'HpackListTooLargeError';
  constructor(readonly size: number) {
    super(`header list too large (${size} bytes)`);
  }
}

export type HeaderList = Array<[string, string]>;

/** Binary tree of the Huffman code, built on first use: node = [child0, child1] or a symbol. */
type HuffNode = number | [HuffNode | undefined, HuffNode | undefined];
let huffRoot: HuffNode | undefined;

function huffmanTree(): HuffNode {
  if (huffRoot) return huffRoot;
  const root: HuffNode = [undefined, undefined];
  for (let sym = 0; sym < HUFFMAN_CODES.length; sym++) {
    const code = HUFFMAN_CODES[sym] as number;
    const len = HUFFMAN_LENGTHS[sym] as number;
    let node = root as [HuffNode | undefined, HuffNode | undefined];
    for (let bit = len - 1; bit >= 0; bit--) {
      const b = (code >>> bit) & 1;
      if (bit === 0) {
        node[b] = sym;
      } else {
        let next = node[b];
        if (next === undefined) {
          next = [undefined, undefined];
          node[b] = next;
        }
        node = next as [HuffNode | undefined, HuffNode | undefined];
      }
    }
  }
  huffRoot = root;
  return root;
}

/** Decodes a Huffman-coded string; padding must be at most 7 bits, all ones (RFC 7541 §5.2). */
export function huffmanDecode(input: Uint8Array): string {
  const root = huffmanTree();
  const out: number[] = [];
  let node = root;
  let depth = 0;
  let allOnes = true;
  for (const byte of input) {
    for (let bit = 7; bit >= 0; bit--) {
      const b = (byte >>> bit) & 1;
      const next = (node as [HuffNode | undefined, HuffNode | undefined])[b];
      if (next === undefined) throw new HpackError('invalid Huffman code');
      depth += 1;
      allOnes &&= b === 1;
      if (typeof next === 'number') {
        if (next === 256) throw new HpackError('EOS in Huffman string');
        out.push(next);
        node = root;
        depth = 0;
        allOnes = true;
      } else {
        node = next;
      }
    }
  }
  if (depth > 7 || !allOnes) throw new HpackError('invalid Huffman padding');
  return Buffer.from(out).toString('latin1');
}

/**
 * HPACK decoder with its dynamic table. One per connection direction; a failure is a
 * connection error (COMPRESSION_ERROR), since the table state is then unknown.
 */
export class HpackDecoder {
  private readonly dynamic: Array<[string, string]> = [];
  private size = 0;
  private maxSize: number;

  /** `maxTableSize` is our SETTINGS_HEADER_TABLE_SIZE; `maxHeaderListSize` bounds one block. */
  constructor(
    private readonly maxTableSize = 4096,
    private readonly maxHeaderListSize = 64 * 1024,
  ) {
    this.maxSize = maxTableSize;
  }

  decode(block: Uint8Array): HeaderList {
    const headers: HeaderList = [];
    let listSize = 0;
    let pos = 0;
    const readInt = (prefixBits: number): number => {
      const max = (1 << prefixBits) - 1;
      let value = (block[pos] as number) & max;
      pos += 1;
      if (value < max) return value;
      let shift = 0;
      for (;;) {
        if (pos >= block.length) throw new HpackError('truncated integer');
        const b = block[pos] as number;
        pos += 1;
        value += (b & 0x7f) * 2 ** shift;
        shift += 7;
        if (value > 0xffffffff) throw new HpackError('integer overflow');
        if ((b & 0x80) === 0) return value;
      }
    };
    const readString = (): string => {
      if (pos >= block.length) throw new HpackError('truncated string');
      const huffman = ((block[pos] as number) & 0x80) !== 0;
      const len = readInt(7);
      if (pos + len > block.length) throw new HpackError('truncated string');
      const bytes = block.subarray(pos, pos + len);
      pos += len;
      return huffman
        ? huffmanDecode(bytes)
        : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
    };
    const emit = (name: string, value: string) => {
      listSize += name.length + value.length + 32;
      // Keep decoding past the limit (table updates must still apply), but keep nothing more.
      if (listSize <= this.maxHeaderListSize) headers.push([name, value]);
    };
    let sawField = false;
    while (pos < block.length) {
      const first = block[pos] as number;
      if (first & 0x80) {
        const index = readInt(7);
        const [name, value] = this.entry(index);
        emit(name, value);
        sawField = true;
      } else if (first & 0x40) {
        const index = readInt(6);
        const name = index === 0 ? readString() : (this.entry(index)[0] as string);
        const value = readString();
        emit(name, value);
        this.insert(name, value);
        sawField = true;
      } else if (first & 0x20) {
        if (sawField) throw new HpackError('table size update after a header field');
        const newSize = readInt(5);
        if (newSize > this.maxTableSize) throw new HpackError('table size update above the limit');
        this.maxSize = newSize;
        this.evict(0);
      } else {
        // Literal without indexing (0000) or never indexed (0001).
        const index = readInt(4);
        const name = index === 0 ? readString() : (this.entry(index)[0] as string);
        emit(name, readString());
        sawField = true;
      }
    }
    if (listSize > this.maxHeaderListSize) throw new HpackListTooLargeError(listSize);
    return headers;
  }

  private entry(index: number): readonly [string, string] {
    if (index === 0) throw new HpackError('index 0');
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1] as readonly [string, string];
    const e = this.dynamic[index - STATIC_TABLE.length - 1];
    if (!e) throw new HpackError(`index ${index} out of range`);
    return e;
  }

  private insert(name: string, value: string): void {
    const entrySize = name.length + value.length + 32;
    if (entrySize > this.maxSize) {
      this.dynamic.length = 0;
      this.size = 0;
      return;
    }
    this.evict(entrySize);
    this.dynamic.unshift([name, value]);
    this.size += entrySize;
  }

  private evict(room: number): void {
    while (this.size + room > this.maxSize && this.dynamic.length > 0) {
      const [n, v] = this.dynamic.pop() as [string, string];
      this.size -= n.length + v.length + 32;
    }
  }
}

/**
 * HPACK encoder state for one connection direction. Blocks never insert into the dynamic table,
 * but the peer's decoder still tracks its maximum size: when the peer lowers
 * SETTINGS_HEADER_TABLE_SIZE, it expects a Dynamic Table Size Update at the start of our next
 * block (RFC 7541 §4.2, §6.3; RFC 9113 §6.5.2), and nghttp2 answers its absence with
 * COMPRESSION_ERROR.
 */
export class HpackEncoder {
  private maxSize: number;
  /** Smallest maximum since the last block, and whether a change is still to be signalled. */
  private smallestPending: number;
  private pending = false;

  /** `ownLimit` caps the table whatever the peer allows; 4096 is the protocol's initial size. */
  constructor(private readonly ownLimit = 4096) {
    this.maxSize = Math.min(4096, ownLimit);
    this.smallestPending = this.maxSize;
    // The peer's decoder starts at 4096: a lower limit of ours is announced in the first block.
    this.pending = this.maxSize < 4096;
  }

  /** The table's current maximum size, as the peer's decoder will see it after the next block. */
  get tableSize(): number {
    return this.maxSize;
  }

  /** Adopts the peer's SETTINGS_HEADER_TABLE_SIZE (bounded by our own limit). */
  setMaxTableSize(peerSetting: number): void {
    const next = Math.min(peerSetting, this.ownLimit);
    if (next === this.maxSize && !this.pending) return;
    this.smallestPending = this.pending ? Math.min(this.smallestPending, next) : next;
    this.maxSize = next;
    this.pending = true;
    // Nothing to evict: no block ever inserts into the table.
  }

  encode(headers: ReadonlyArray<readonly [string, string]>): Buffer {
    const block = hpackEncode(headers);
    if (!this.pending) return block;
    this.pending = false;
    // A reduction followed by an increase signals the smallest value first, then the final one.
    const updates =
      this.smallestPending < this.maxSize
        ? [encodeInt(this.smallestPending, 5, 0x20), encodeInt(this.maxSize, 5, 0x20)]
        : [encodeInt(this.maxSize, 5, 0x20)];
    return Buffer.concat([...updates, block]);
  }
}

/**
 * HPACK encoder that never uses the dynamic table (so the peer's table size is irrelevant):
 * indexed :status where the static table has it, otherwise literals without indexing, with a
 * static name index where one exists. HBONE sends a handful of headers per stream. A connection
 * goes through `HpackEncoder`, which adds the table size updates the peer's settings call for.
 */
export function hpackEncode(headers: ReadonlyArray<readonly [string, string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of headers) {
    if (name === ':status') {
      const idx = STATIC_STATUS_INDEX.get(value);
      if (idx !== undefined) {
        parts.push(encodeInt(idx, 7, 0x80));
        continue;
      }
    }
    const nameIdx = STATIC_NAME_INDEX.get(name);
    if (nameIdx !== undefined) {
      parts.push(encodeInt(nameIdx, 4, 0x00));
    } else {
      parts.push(encodeInt(0, 4, 0x00), encodeString(name));
    }
    parts.push(encodeString(value));
  }
  return Buffer.concat(parts);
}

function encodeString(s: string): Buffer {
  const bytes = Buffer.from(s, 'latin1');
  return Buffer.concat([encodeInt(bytes.length, 7, 0x00), bytes]);
}

function encodeInt(value: number, prefixBits: number, flags: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([flags | value]);
  const out = [flags | max];
  let rest = value - max;
  while (rest >= 0x80) {
    out.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}

import { describe, expect, it } from 'vitest';
import {
  HpackDecoder,
  HpackEncoder,
  HpackError,
  HpackListTooLargeError,
  hpackEncode,
  huffmanDecode,
} from './hpack.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('HPACK decoder (RFC 7541 Appendix C examples)', () => {
  it('C.3: requests without Huffman, sharing one dynamic table', () => {
    const d = new HpackDecoder();
    expect(d.decode(hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d'))).toEqual([
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
    ]);
    expect(d.decode(hex('8286 84be 5808 6e6f 2d63 6163 6865'))).toEqual([
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
      ['cache-control', 'no-cache'],
    ]);
    expect(d.decode(hex('8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65'))).toEqual(
      [
        [':method', 'GET'],
        [':scheme', 'https'],
        [':path', '/index.html'],
        [':authority', 'www.example.com'],
        ['custom-key', 'custom-value'],
      ],
    );
  });

  it('C.4: the same requests with Huffman coding', () => {
    const d = new HpackDecoder();
    expect(d.decode(hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff'))).toEqual([
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
    ]);
    expect(d.decode(hex('8286 84be 5886 a8eb 1064 9cbf'))[4]).toEqual(['cache-control', 'no-cache']);
    expect(d.decode(hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'))[4]).toEqual([
      'custom-key',
      'custom-value',
    ]);
  });

  it('C.6: responses with Huffman coding and evictions from a 256-byte table', () => {
    const d = new HpackDecoder(256);
    const first = d.decode(
      hex(
        '4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3',
      ),
    );
    expect(first).toEqual([
      [':status', '302'],
      ['cache-control', 'private'],
      ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'],
      ['location', 'https://www.example.com'],
    ]);
    expect(d.decode(hex('4883 640e ffc1 c0bf'))).toEqual([
      [':status', '307'],
      ['cache-control', 'private'],
      ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'],
      ['location', 'https://www.example.com'],
    ]);
  });

  it('refuses malformed blocks with an HpackError', () => {
    expect(() => new HpackDecoder().decode(hex('80'))).toThrow(HpackError); // index 0
    expect(() => new HpackDecoder().decode(hex('ff ff ff ff ff 0f'))).toThrow(HpackError); // index overflow / range
    expect(() => new HpackDecoder().decode(hex('be'))).toThrow(/out of range/); // empty dynamic table
    expect(() => new HpackDecoder().decode(hex('41 0a 61'))).toThrow(/truncated/);
    expect(() => new HpackDecoder().decode(hex('82 3f e1 1f'))).toThrow(/table size update after/);
    // 4097 is above the 4096 we advertise.
    expect(() => new HpackDecoder().decode(hex('3f e2 1f 82'))).toThrow(/above the limit/);
    expect(() => huffmanDecode(hex('ff ff ff ff'))).toThrow(HpackError); // EOS
    expect(() => huffmanDecode(hex('00'))).toThrow(/padding/); // '0' then 3 zero bits
    expect(() => new HpackDecoder(4096, 100).decode(hpackEncode([['x', 'y'.repeat(200)]]))).toThrow(
      /too large/,
    );
  });
});

describe('HPACK decoder over SETTINGS_MAX_HEADER_LIST_SIZE', () => {
  it('refuses the list but applies the whole block to the dynamic table', () => {
    const d = new HpackDecoder(4096, 100);
    // 'x: yyy…' (too large), then 'k: v' with incremental indexing.
    const block = Buffer.concat([hpackEncode([['x', 'y'.repeat(200)]]), hex('40 01 6b 01 76')]);
    let thrown: unknown;
    try {
      d.decode(block);
    } catch (err) {
      thrown = err;
    }
    // Not a COMPRESSION_ERROR: only the stream is refused.
    expect(thrown).toBeInstanceOf(HpackListTooLargeError);
    expect(thrown).not.toBeInstanceOf(HpackError);
    // Index 62 is the entry the refused block added.
    expect(d.decode(hex('be'))).toEqual([['k', 'v']]);
  });
});

describe('HPACK encoder', () => {
  it('round-trips through the decoder, using static indexes where they exist', () => {
    const headers: Array<[string, string]> = [
      [':method', 'CONNECT'],
      [':authority', '10.1.2.3:8080'],
      ['forwarded', 'for="198.18.0.7:40000"'],
      ['traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'],
      ['x-long', 'v'.repeat(300)],
    ];
    const d = new HpackDecoder();
    expect(d.decode(hpackEncode(headers))).toEqual(headers);
    expect(hpackEncode([[':status', '200']])).toEqual(Buffer.from([0x88]));
    expect(d.decode(hpackEncode([[':status', '503']]))).toEqual([[':status', '503']]);
  });
});

describe('HPACK encoder: dynamic table size updates (RFC 7541 §4.2, §6.3)', () => {
  it('sends nothing while the peer keeps the initial 4096', () => {
    const e = new HpackEncoder();
    expect(e.encode([[':status', '200']])).toEqual(hex('88'));
    e.setMaxTableSize(4096);
    expect(e.encode([[':status', '200']])).toEqual(hex('88'));
  });

  it('signals a reduction to 0 once, at the start of the next block', () => {
    const e = new HpackEncoder();
    e.setMaxTableSize(0);
    expect(e.tableSize).toBe(0);
    expect(e.encode([[':status', '200']])).toEqual(hex('20 88'));
    expect(e.encode([[':status', '200']])).toEqual(hex('88'));
    // The peer's decoder, limited to 0, accepts the block.
    const d = new HpackDecoder(0);
    expect(d.decode(hex('20 88'))).toEqual([[':status', '200']]);
  });

  it('encodes sizes of 31 and more with the 5-bit prefix continuation', () => {
    const e = new HpackEncoder();
    e.setMaxTableSize(1000); // 1000 = 31 + 969; 969 = 0x49 + 7 * 128
    expect(e.encode([[':status', '200']])).toEqual(hex('3f c9 07 88'));
    e.setMaxTableSize(30);
    expect(e.encode([[':status', '200']])).toEqual(hex('3e 88'));
  });

  it('signals the smallest size first, then the final one, when a reduction is undone before a block', () => {
    const e = new HpackEncoder();
    e.setMaxTableSize(0);
    e.setMaxTableSize(2048);
    e.setMaxTableSize(4096);
    // 0, then 4096 = 31 + 4065 (0x61 + 31 * 128).
    const block = e.encode([[':status', '204']]);
    expect(block).toEqual(hex('20 3f e1 1f 89'));
    expect(new HpackDecoder().decode(block)).toEqual([[':status', '204']]);
    expect(e.encode([[':status', '204']])).toEqual(hex('89'));
  });

  it('never exceeds its own limit, whatever the peer allows', () => {
    const e = new HpackEncoder();
    e.setMaxTableSize(65_536);
    expect(e.tableSize).toBe(4096);
    expect(e.encode([[':status', '200']])).toEqual(hex('88'));
    const small = new HpackEncoder(100);
    expect(small.tableSize).toBe(100);
    small.setMaxTableSize(65_536);
    // Below the protocol's initial 4096, announced in the first block: 100 = 31 + 69 (0x45).
    expect(small.encode([[':status', '200']])).toEqual(hex('3f 45 88'));
    expect(small.encode([[':status', '200']])).toEqual(hex('88'));
  });
});

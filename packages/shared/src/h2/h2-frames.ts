/** HTTP/2 frame types, flags, error codes and settings (RFC 9113 §6, §7, §6.5.2). */
export const FRAME = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const FLAG = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

export const H2_ERROR = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

export const SETTING = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

export const CLIENT_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const DEFAULT_WINDOW = 65_535;
export const DEFAULT_MAX_FRAME = 16_384;
export const MAX_WINDOW = 2 ** 31 - 1;
export const FRAME_HEADER_LENGTH = 9;
/**
 * Largest DATA payload we send, whatever frame size the peer allows: with its header it fills
 * exactly one 16 KiB TLS record, so the receiver gets whole frames per record read instead of
 * headers split across records. Frames of four records (65,527 bytes) to peers that allow them
 * cost the node agents more CPU per GB in bench/ztunnel (1.5 against 2.1 Gbit/s), so there are none.
 */
export const DATA_FRAME_PAYLOAD = 16_384 - FRAME_HEADER_LENGTH;

export function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  return writeFrameHeader(Buffer.allocUnsafe(FRAME_HEADER_LENGTH), length, type, flags, streamId);
}

/** Writes a frame header into the first 9 bytes of `into` and returns it. */
export function writeFrameHeader(
  into: Buffer,
  length: number,
  type: number,
  flags: number,
  streamId: number,
): Buffer {
  into[0] = (length >>> 16) & 0xff;
  into[1] = (length >>> 8) & 0xff;
  into[2] = length & 0xff;
  into[3] = type;
  into[4] = flags;
  into.writeUInt32BE(streamId & 0x7fffffff, 5);
  return into;
}

/** A connection error: the whole connection ends with GOAWAY(code). */
export class H2ConnectionError extends Error {
  override readonly name = 'H2ConnectionError';
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** A stream error: only that stream ends, with RST_STREAM(code). */
export class H2StreamError extends Error {
  override readonly name = 'H2StreamError';
  constructor(
    readonly streamId: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

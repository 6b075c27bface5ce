/**
 * ZDS's error codes: they reject ZdsServer calls and name refused ZDS requests, never a proxied
 * connection, so they sit apart from ZT_ERRORS (whose every code has a response flag). A code is
 * never reused for another meaning.
 */
export const ZDS_ERRORS = {
  ZT_ERR_ZDS_SOCKET: 'ZDS socket failed',
  ZT_ERR_ZDS_PROXY: 'the pod could not be served',
  ZT_ERR_ZDS_NOT_CONNECTED: 'no ztunnel connection',
  ZT_ERR_ZDS_REFUSED: 'ztunnel refused the request',
  ZT_ERR_ZDS_TIMEOUT: 'ztunnel did not answer in time',
  ZT_ERR_ZDS_CLOSED: 'the ZDS connection closed before the answer',
  ZT_ERR_ZDS_TOO_LARGE: 'the request exceeds the 1024 bytes upstream reads per message',
} as const;

export type ZdsErrorCode = keyof typeof ZDS_ERRORS;

export class ZdsError extends Error {
  readonly code: ZdsErrorCode;

  constructor(code: ZdsErrorCode, detail?: string, options?: { cause?: unknown }) {
    super(detail ? `${ZDS_ERRORS[code]}: ${detail}` : ZDS_ERRORS[code], options);
    this.name = 'ZdsError';
    this.code = code;
  }
}

/**
 * The node agent's own error codes (ZT_ERR_*), for failures no shared component raises. A code is
 * never reused for another meaning; connection-failures.ts gives each its response flag.
 */
export const ZT_ERRORS = {
  ZT_ERR_NO_ENDPOINT: 'service has no endpoint for the port',
  ZT_ERR_WAYPOINT_UNREACHABLE: 'waypoint has no reachable pod',
  ZT_ERR_UNKNOWN_HOSTNAME: 'no service has the host name of the HBONE authority',
  ZT_ERR_NO_TARGET_PORT: 'the service has no target port for the HBONE authority port',
} as const;

export type ZtErrorCode = keyof typeof ZT_ERRORS;

export class ZtunnelError extends Error {
  readonly code: ZtErrorCode;

  constructor(code: ZtErrorCode, detail?: string, options?: { cause?: unknown }) {
    super(detail ? `${ZT_ERRORS[code]}: ${detail}` : ZT_ERRORS[code], options);
    this.name = 'ZtunnelError';
    this.code = code;
  }
}

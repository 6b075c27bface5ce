/**
 * The CNI node agent's error codes. A code is never reused for another meaning; the plugin event
 * server turns each into an HTTP status in one table (`CNI_ERROR_STATUS`).
 */
export const CNI_ERRORS = {
  CNI_ERR_BAD_EVENT: 'plugin event is malformed',
  CNI_ERR_EVENT_TOO_LARGE: 'plugin event is larger than the agent accepts',
  CNI_ERR_POD_UNKNOWN: 'pod is not known to the API server',
  CNI_ERR_POD_MISMATCH: 'pod named by the plugin event has another UID',
  CNI_ERR_KUBE: 'the API server did not answer',
  CNI_ERR_CAPTURE: 'capture rules could not be installed or removed in the pod network namespace',
  CNI_ERR_ZTUNNEL: 'ztunnel did not acknowledge the workload',
  CNI_ERR_NETNS_UNKNOWN: 'network namespace of the pod is not known',
  CNI_ERR_CONFLIST: 'CNI network configuration cannot be read or changed',
  CNI_ERR_CLOSED: 'agent is closed',
} as const;

export type CniErrorCode = keyof typeof CNI_ERRORS;

export class CniError extends Error {
  readonly code: CniErrorCode;
  constructor(code: CniErrorCode, detail?: string, options?: { cause?: unknown }) {
    super(detail ? `${CNI_ERRORS[code]}: ${detail}` : CNI_ERRORS[code], options);
    this.name = 'CniError';
    this.code = code;
  }
}

/** HTTP status of a plugin event that failed with this error (anything else: 500). */
export const CNI_ERROR_STATUS: Readonly<Partial<Record<CniErrorCode, number>>> = Object.freeze({
  CNI_ERR_BAD_EVENT: 400,
  CNI_ERR_EVENT_TOO_LARGE: 413,
  CNI_ERR_POD_UNKNOWN: 404,
  CNI_ERR_POD_MISMATCH: 409,
  CNI_ERR_KUBE: 503,
  CNI_ERR_ZTUNNEL: 503,
  CNI_ERR_CLOSED: 503,
});

export function cniErrorStatus(err: unknown): number {
  return (err instanceof CniError && CNI_ERROR_STATUS[err.code]) || 500;
}

/**
 * The errors ambientctl reports: one line each (main prints `ambientctl: <message>` and exits 1),
 * with a stable code per cause so tests and scripts need not match the wording.
 */
export type CliErrorCode =
  /** No cluster named (no --kubeconfig, KUBECONFIG or in-cluster) for a cluster-only command. */
  | 'CLI_ERR_NO_CLUSTER'
  /** The kubeconfig could not be read or names no cluster. */
  | 'CLI_ERR_KUBECONFIG'
  /** The API server did not answer (refused, unresolvable, timed out, TLS failure). */
  | 'CLI_ERR_API_UNREACHABLE'
  /** The API server answered with an error status. */
  | 'CLI_ERR_API'
  /** No ztunnel pod where one was asked for. */
  | 'CLI_ERR_NO_ZTUNNEL'
  /** A ztunnel pod was found but its admin or metrics endpoint could not be read. */
  | 'CLI_ERR_ZTUNNEL'
  /** Arguments that cannot work together, or a value out of range. */
  | 'CLI_ERR_ARGS'
  /** A wait (--wait) ran out. */
  | 'CLI_ERR_TIMEOUT';

export class CliError extends Error {
  constructor(
    readonly code: CliErrorCode,
    message: string,
    /** The API server's HTTP status, for CLI_ERR_API. */
    readonly status?: number,
  ) {
    // One line: whatever a server put in a message, newlines included, stays on it.
    super(message.replace(/\s*\n\s*/g, ' '));
    this.name = 'CliError';
  }
}

/**
 * What the node agent needs of ztunnel: hand over an enrolled pod's netns (settling on ztunnel's
 * acknowledgement) and take it back. ZDS (`/var/run/ztunnel/ztunnel.sock`, upstream zds.proto)
 * implements it; tests use a recorder.
 */
export interface WorkloadInfo {
  readonly name: string;
  readonly namespace: string;
  readonly serviceAccount: string;
}

export interface ZtunnelLink {
  /** Resolves when ztunnel acknowledged the workload; rejects when no ztunnel took it. */
  addWorkload(uid: string, netnsPath: string, info: WorkloadInfo): Promise<void>;
  removeWorkload(uid: string): Promise<void>;
}

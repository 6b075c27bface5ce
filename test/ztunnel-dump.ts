/**
 * What the end-to-end suites read from a node agent's `/config_dump`: upstream ztunnel's shape
 * (docs/ztunnel.md), with our own state under `agentState`.
 */

export interface DumpCert {
  readonly pem: string;
  /** Decimal. */
  readonly serialNumber: string;
  readonly validFrom: string;
  readonly expirationTime: string;
}

export interface DumpCerts {
  readonly identity: string;
  readonly state: string;
  readonly certChain: readonly DumpCert[];
  readonly rootCerts: readonly DumpCert[];
}

export interface ZtunnelDump {
  readonly workloads: ReadonlyArray<{ readonly name: string; readonly uid?: string }>;
  readonly policies: ReadonlyArray<{ readonly name: string }>;
  readonly certificates: readonly DumpCerts[];
  readonly workloadState: Readonly<Record<string, { readonly state: string }>>;
  readonly agentState: {
    readonly nodeName: string;
    readonly configRejections: number;
    readonly lastConfigProblems: ReadonlyArray<{ readonly path: string; readonly message: string }>;
    readonly xds?: {
      readonly streams: number;
      readonly connected: boolean;
      readonly rejections: ReadonlyArray<{ readonly message: string }>;
    };
  };
}

/** Uids of the pods the node agent serves now (state `Up`; `Pending` ones are not served yet), sorted. */
export function enrolledUids(dump: unknown): string[] {
  return Object.entries((dump as ZtunnelDump).workloadState)
    .filter(([, s]) => s.state === 'Up')
    .map(([uid]) => uid)
    .sort();
}

/** Each identity's leaf certificate, when it has one. */
export function leafCerts(dump: unknown): Array<{ identity: string; leaf?: DumpCert }> {
  return (dump as ZtunnelDump).certificates.map((c) => ({
    identity: c.identity,
    ...(c.certChain[0] && { leaf: c.certChain[0] }),
  }));
}

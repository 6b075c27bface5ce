import type { SpiffeId } from './spiffe-id.js';

export interface CertificateRequest {
  /** PEM CSR carrying the requested identity as its URI SAN. */
  readonly csrPem: string;
  readonly ttlSeconds: number;
  /** The identity the caller asks for (sent as impersonation metadata by a node agent). */
  readonly identity?: SpiffeId;
}

/** Anything that turns a CSR into a chain, leaf first, root last: the built-in CA or a remote CA service. */
export interface CaClient {
  createCertificate(request: CertificateRequest): Promise<string[]>;
}

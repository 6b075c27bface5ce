import { MeshError } from '../errors.js';
import { fail, ok, type Result } from '../result.js';

const LABEL = /^[A-Za-z0-9._-]+$/;
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;

/** A workload identity `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`. */
export class SpiffeId {
  private constructor(
    readonly trustDomain: string,
    readonly namespace: string,
    readonly serviceAccount: string,
    private readonly uri: string,
  ) {}

  static of(trustDomain: string, namespace: string, serviceAccount: string): SpiffeId {
    const parsed = SpiffeId.parse(`spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`);
    if (!parsed.ok) throw new MeshError('MESH_ERR_INVALID_SPIFFE_ID', parsed.problems[0]?.message);
    return parsed.value;
  }

  /** Whether a trust domain may stand in a SPIFFE ID: non-empty, characters [a-z0-9._-]. */
  static isTrustDomain(trustDomain: string): boolean {
    return TRUST_DOMAIN.test(trustDomain);
  }

  /** Parses a SPIFFE ID, returning the first reason it is malformed. */
  static parse(input: string): Result<SpiffeId> {
    const problem = (message: string) =>
      fail<SpiffeId>({ path: '', message: `${JSON.stringify(input)}: ${message}` });
    if (typeof input !== 'string') return problem('not a string');
    if (input.length > 2048) return problem('longer than 2048 characters');
    if (!input.startsWith('spiffe://')) return problem('scheme must be spiffe://');
    const rest = input.slice('spiffe://'.length);
    const slash = rest.indexOf('/');
    if (slash < 0) return problem('missing path /ns/<namespace>/sa/<service-account>');
    const trustDomain = rest.slice(0, slash);
    if (!trustDomain) return problem('empty trust domain');
    if (!TRUST_DOMAIN.test(trustDomain))
      return problem(`trust domain ${JSON.stringify(trustDomain)} has characters outside [a-z0-9._-]`);
    const segments = rest.slice(slash + 1).split('/');
    if (segments.length !== 4 || segments[0] !== 'ns' || segments[2] !== 'sa') {
      return problem('path must be /ns/<namespace>/sa/<service-account>');
    }
    const namespace = segments[1] ?? '';
    const serviceAccount = segments[3] ?? '';
    if (!namespace) return problem('empty namespace');
    if (!serviceAccount) return problem('empty service account');
    if (!LABEL.test(namespace))
      return problem(`namespace ${JSON.stringify(namespace)} has characters outside [A-Za-z0-9._-]`);
    if (!LABEL.test(serviceAccount)) {
      return problem(
        `service account ${JSON.stringify(serviceAccount)} has characters outside [A-Za-z0-9._-]`,
      );
    }
    return ok(new SpiffeId(trustDomain, namespace, serviceAccount, input));
  }

  /** Like parse, but throws MESH_ERR_INVALID_SPIFFE_ID. */
  static from(input: string): SpiffeId {
    const parsed = SpiffeId.parse(input);
    if (!parsed.ok) throw new MeshError('MESH_ERR_INVALID_SPIFFE_ID', parsed.problems[0]?.message);
    return parsed.value;
  }

  equals(other: SpiffeId): boolean {
    return this.uri === other.uri;
  }

  toString(): string {
    return this.uri;
  }

  toJSON(): string {
    return this.uri;
  }
}

/**
 * istio.v1.auth.IstioCertificateService/CreateCertificate. The caller is the bearer token's service
 * account. A node's ztunnel may ask for another identity with `ImpersonatedIdentity` (in the
 * request's metadata Struct, or as a header), and is granted it only when a pod with that service
 * account is scheduled on the ztunnel's node. The CSR's SAN must equal the granted identity.
 * Certificates live `workloadCertTtlSeconds` (CP_WORKLOAD_CERT_TTL), or less if the CSR asks for less.
 */

import {
  CREATE_CERTIFICATE_METHOD,
  IMPERSONATED_IDENTITY,
  isMeshError,
  type LocalCa,
  meshProtos,
  SpiffeId,
} from '@ambient/shared';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type protobuf from 'protobufjs';
import type { Authenticator } from '../auth/token-authenticator.js';
import type { ControlPlaneMetrics } from '../telemetry/controlplane-metrics.js';

export interface CaServiceInputs {
  readonly ca: LocalCa;
  readonly authenticator: Authenticator;
  /** `namespace/serviceAccount` of the running pods on a node. */
  readonly identitiesOnNode: (node: string) => ReadonlySet<string>;
  readonly metrics: ControlPlaneMetrics;
  readonly logger: Logger;
  /** Lifetime of issued certificates and the most a CSR may ask for. Default 24 h. */
  readonly workloadCertTtlSeconds?: number;
}

/**
 * The lifetime to sign for: what the CSR asked, at most the configured TTL; the configured TTL
 * when it asked for none. Istio refuses a validity_duration above MAX_WORKLOAD_CERT_TTL instead;
 * shortening it lets the control plane alone set lifetimes for node agents that ask for 24 h.
 */
export function issuedTtlSeconds(requested: number, workloadCertTtlSeconds: number): number {
  return requested > 0 ? Math.min(requested, workloadCertTtlSeconds) : workloadCertTtlSeconds;
}

type CsrResult = 'issued' | 'refused' | 'invalid' | 'error';

interface WireCertificateRequest {
  csr: string;
  validityDuration: number | { toNumber(): number };
  metadata?: { fields?: Record<string, { stringValue?: string }> };
}

export class CaService {
  private readonly requestType: protobuf.Type;
  private readonly responseType: protobuf.Type;

  constructor(private readonly inputs: CaServiceInputs) {
    const root = meshProtos();
    this.requestType = root.lookupType('istio.v1.auth.IstioCertificateRequest');
    this.responseType = root.lookupType('istio.v1.auth.IstioCertificateResponse');
  }

  register(server: grpc.Server): void {
    server.register<WireCertificateRequest, object>(
      CREATE_CERTIFICATE_METHOD,
      ((call: grpc.ServerUnaryCall<WireCertificateRequest, object>, callback: grpc.sendUnaryData<object>) => {
        this.create(call).then(
          (certChain) => callback(null, { certChain, rootCert: { caCert: [this.inputs.ca.rootPem] } }),
          (err: { code: grpc.status; details: string }) => callback(err),
        );
      }) as grpc.handleUnaryCall<WireCertificateRequest, object>,
      (res: object) => Buffer.from(this.responseType.encode(res).finish()),
      (buf: Buffer) =>
        this.requestType.toObject(this.requestType.decode(buf), {
          defaults: true,
          objects: true,
        }) as WireCertificateRequest,
      'unary',
    );
  }

  private async create(call: grpc.ServerUnaryCall<WireCertificateRequest, object>): Promise<string[]> {
    const { metrics, logger, ca } = this.inputs;
    metrics.csrCount.inc();
    const auth = await this.inputs.authenticator.authenticate(
      call.metadata.get('authorization')[0]?.toString(),
    );
    // Per caller node and granted identity, so that a node agent's signing rate can be read. The
    // identity label is set only once granted: a refused request cannot add label values.
    const count = (result: CsrResult, identity?: SpiffeId) =>
      metrics.csrByCaller.inc({
        node: auth.ok && auth.value.kind === 'ztunnel' ? auth.value.node : '',
        identity: identity ? `${identity.namespace}/${identity.serviceAccount}` : '',
        result,
      });
    if (!auth.ok) {
      count('refused');
      metrics.authFailures.inc({ reason: auth.reason ?? 'token' });
      throw {
        code: grpc.status.UNAUTHENTICATED,
        details: `authentication failed: ${auth.problems[0]?.message}`,
      };
    }
    const caller = auth.value;
    const req = call.request;
    const impersonated =
      req.metadata?.fields?.[IMPERSONATED_IDENTITY]?.stringValue ||
      call.metadata.get(IMPERSONATED_IDENTITY.toLowerCase())[0]?.toString() ||
      '';
    const own = `${caller.namespace}/${caller.serviceAccount}`;
    let granted: SpiffeId;
    if (impersonated) {
      const parsed = SpiffeId.parse(impersonated);
      if (!parsed.ok) {
        count('invalid');
        metrics.csrErrors.inc({ error: 'identity' });
        throw {
          code: grpc.status.INVALID_ARGUMENT,
          details: `ImpersonatedIdentity ${impersonated} is not a workload SPIFFE ID`,
        };
      }
      granted = parsed.value;
      const key = `${granted.namespace}/${granted.serviceAccount}`;
      if (caller.kind !== 'ztunnel' || !this.inputs.identitiesOnNode(caller.node).has(key)) {
        count('refused');
        metrics.authFailures.inc({ reason: 'impersonation' });
        logger.warn(
          { caller: own, node: caller.kind === 'ztunnel' ? caller.node : undefined, impersonated },
          'impersonation refused',
        );
        throw {
          code: grpc.status.PERMISSION_DENIED,
          details:
            caller.kind === 'ztunnel'
              ? `no pod with service account ${key} runs on node ${caller.node}`
              : `${own} may not impersonate other identities`,
        };
      }
    } else {
      granted = SpiffeId.of(ca.trustDomain, caller.namespace, caller.serviceAccount);
    }
    const requested =
      typeof req.validityDuration === 'number' ? req.validityDuration : req.validityDuration.toNumber();
    try {
      const chain = await ca.sign(req.csr, {
        ttlSeconds: issuedTtlSeconds(requested, this.inputs.workloadCertTtlSeconds ?? 24 * 3600),
        allowed: (id) => id.toString() === granted.toString(),
      });
      metrics.certsIssued.inc();
      count('issued', granted);
      return chain;
    } catch (err) {
      if (isMeshError(err, 'MESH_ERR_INVALID_CSR')) {
        count('invalid', granted);
        metrics.csrErrors.inc({ error: 'invalid_csr' });
        throw { code: grpc.status.INVALID_ARGUMENT, details: (err as Error).message };
      }
      if (isMeshError(err, 'MESH_ERR_IDENTITY_NOT_ALLOWED')) {
        count('refused', granted);
        metrics.csrErrors.inc({ error: 'identity' });
        throw {
          code: grpc.status.PERMISSION_DENIED,
          details: `${(err as Error).message} (granted ${granted})`,
        };
      }
      count('error', granted);
      throw { code: grpc.status.INTERNAL, details: (err as Error).message };
    }
  }
}

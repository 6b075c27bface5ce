/**
 * CaClient over Istio's CA API: istio.v1.auth.IstioCertificateService/CreateCertificate, with the
 * caller's bearer token as call metadata and, for a node agent asking on a workload's behalf, the
 * workload's identity as `ImpersonatedIdentity` in the request's metadata Struct.
 */
import * as grpc from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import { MeshError } from '../errors.js';
import { meshProtos } from '../xds/xds-protos.js';
import type { CaClient, CertificateRequest } from './ca-client.js';

export const CREATE_CERTIFICATE_METHOD = '/istio.v1.auth.IstioCertificateService/CreateCertificate';

/** The key Istio's CA reads the impersonated identity from. */
export const IMPERSONATED_IDENTITY = 'ImpersonatedIdentity';

export interface GrpcCaClientInputs {
  readonly target: string;
  readonly credentials: grpc.ChannelCredentials;
  readonly channelOptions?: grpc.ChannelOptions;
  /** The bearer token, read per call so a rotated token file is picked up. */
  readonly token: () => Promise<string> | string;
  /** Sent as the `clusterid` header, as Istio's ztunnel does. */
  readonly clusterId?: string;
  /** Send ImpersonatedIdentity (a node agent); off for a workload asking for itself. */
  readonly impersonate?: boolean;
  readonly timeoutMs?: number;
}

export class GrpcCaClient implements CaClient {
  private client: grpc.Client;
  private readonly requestType: protobuf.Type;
  private readonly responseType: protobuf.Type;

  constructor(private readonly inputs: GrpcCaClientInputs) {
    const root = meshProtos();
    this.requestType = root.lookupType('istio.v1.auth.IstioCertificateRequest');
    this.responseType = root.lookupType('istio.v1.auth.IstioCertificateResponse');
    this.client = this.newChannel();
  }

  /**
   * After a call fails for want of a connection the channel is replaced, so that the next call
   * (the certificate manager's next retry) really connects: a channel keeps a reconnect backoff
   * of its own (1 s growing to 120 s) during which it fails calls at once with a stale error,
   * which would waste retries made after the CA is back. A local subchannel pool keeps a new
   * channel from picking up the old one's connection state.
   */
  private newChannel(): grpc.Client {
    const { inputs } = this;
    return new grpc.Client(inputs.target, inputs.credentials, {
      'grpc.use_local_subchannel_pool': 1,
      ...inputs.channelOptions,
    });
  }

  async createCertificate(request: CertificateRequest): Promise<string[]> {
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${await this.inputs.token()}`);
    if (this.inputs.clusterId) metadata.set('clusterid', this.inputs.clusterId);
    const body = {
      csr: request.csrPem,
      validityDuration: request.ttlSeconds,
      ...(this.inputs.impersonate &&
        request.identity && {
          metadata: { fields: { [IMPERSONATED_IDENTITY]: { stringValue: request.identity.toString() } } },
        }),
    };
    const deadline = Date.now() + (this.inputs.timeoutMs ?? 10_000);
    const client = this.client;
    const chain = await new Promise<string[]>((resolve, reject) => {
      client.makeUnaryRequest<object, { certChain: string[] }>(
        CREATE_CERTIFICATE_METHOD,
        (req) => Buffer.from(this.requestType.encode(req).finish()),
        (buf) => this.responseType.decode(buf) as unknown as { certChain: string[] },
        body,
        metadata,
        { deadline },
        (err, res) => {
          if (err) {
            if (err.code === grpc.status.UNAVAILABLE && this.client === client) {
              client.close();
              this.client = this.newChannel();
            }
            const code =
              err.code === grpc.status.PERMISSION_DENIED || err.code === grpc.status.UNAUTHENTICATED
                ? 'MESH_ERR_IDENTITY_NOT_ALLOWED'
                : err.code === grpc.status.INVALID_ARGUMENT
                  ? 'MESH_ERR_INVALID_CSR'
                  : 'MESH_ERR_CA_UNAVAILABLE';
            reject(new MeshError(code, `${grpc.status[err.code]}: ${err.details}`, { cause: err }));
          } else resolve(res?.certChain ?? []);
        },
      );
    });
    if (chain.length < 2) throw new MeshError('MESH_ERR_CA_UNAVAILABLE', 'CA returned no chain');
    return chain;
  }

  close(): void {
    this.client.close();
  }
}

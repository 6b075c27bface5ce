import { CREATE_CERTIFICATE_METHOD, GrpcCaClient, meshProtos } from '@ambient/shared';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';

const Response = meshProtos().lookupType('istio.v1.auth.IstioCertificateResponse');

describe('CA client calling a CA that went away (real gRPC)', () => {
  const closers: Array<() => void> = [];
  afterEach(() => {
    for (const c of closers.splice(0)) c();
  });

  /** A CA that answers every request with the same two-certificate chain. */
  async function serve(port = 0): Promise<{ server: grpc.Server; port: number }> {
    const server = new grpc.Server();
    server.register<Buffer, Buffer>(
      CREATE_CERTIFICATE_METHOD,
      ((_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) =>
        callback(
          null,
          Buffer.from(Response.encode({ certChain: ['leaf-pem', 'root-pem'] }).finish()),
        )) as grpc.handleUnaryCall<Buffer, Buffer>,
      (b: Buffer) => b,
      (b: Buffer) => b,
      'unary',
    );
    const bound = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    closers.push(() => server.forceShutdown());
    return { server, port: bound };
  }

  it('the first request after the CA is back reaches it: none fails on a stale gRPC channel backoff', async () => {
    const first = await serve();
    const ca = new GrpcCaClient({
      target: `127.0.0.1:${first.port}`,
      credentials: grpc.credentials.createInsecure(),
      token: () => 'token',
      timeoutMs: 2_000,
    });
    closers.push(() => ca.close());
    const ask = () =>
      ca.createCertificate({ csrPem: 'csr', ttlSeconds: 60 }).then(
        () => true,
        () => false,
      );
    expect(await ask()).toBe(true);
    first.server.forceShutdown();
    // Requests every 40 ms for 3 s while it is down (bounded count), as a retrying caller would.
    let failedWhileDown = 0;
    for (let i = 0; i < 75; i++) {
      if (!(await ask())) failedWhileDown += 1;
      await new Promise((r) => setTimeout(r, 40));
    }
    await serve(first.port);
    let failedAfterReturn = 0;
    for (let i = 0; i < 200 && !(await ask()); i++) {
      failedAfterReturn += 1;
      await new Promise((r) => setTimeout(r, 40));
    }
    console.log(
      `CA requests failed while it was down: ${failedWhileDown}; after it returned: ${failedAfterReturn}`,
    );
    expect(failedWhileDown).toBe(75);
    expect(failedAfterReturn).toBe(0);
  }, 30_000);
});

import {
  ControlPlaneMetrics,
  DeltaAdsServer,
  TokenAuthenticator,
  XDS_METRIC_TYPES,
} from '@ambient/controlplane';
import { ADDRESS_TYPE_URL, DeltaAdsClient, XdsClientMetrics } from '@ambient/shared';
import { addressResourceType } from '@ambient/ztunnel';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';

const logger = pino({ level: 'silent' });
const TOKEN = 'node0-token-0123456789abcdef';

async function until(what: string, probe: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('Delta ADS client reconnecting to a control plane that went away (real gRPC)', () => {
  const closers: Array<() => void> = [];
  afterEach(() => {
    for (const c of closers.splice(0)) c();
  });

  async function serve(port = 0): Promise<{ server: grpc.Server; port: number }> {
    const ads = new DeltaAdsServer({
      logger,
      metrics: new ControlPlaneMetrics(new Registry()),
      authenticator: new TokenAuthenticator(
        new Map([
          [TOKEN, { kind: 'ztunnel', node: 'node0', namespace: 'istio-system', serviceAccount: 'ztunnel' }],
        ]),
      ),
      typeLabels: XDS_METRIC_TYPES,
    });
    ads.publish(new Map([[ADDRESS_TYPE_URL, new Map()]]));
    const server = new grpc.Server();
    ads.register(server);
    const bound = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    closers.push(() => server.forceShutdown());
    return { server, port: bound };
  }

  it('the first attempt after the control plane is back connects: no attempt fails on a stale gRPC channel backoff', async () => {
    const first = await serve();
    const client = new DeltaAdsClient({
      target: `127.0.0.1:${first.port}`,
      credentials: grpc.credentials.createInsecure(),
      callMetadata: () => ({ authorization: `Bearer ${TOKEN}` }),
      node: {
        id: 'ztunnel~10.0.0.9~ztunnel-node0.istio-system~istio-system.svc.cluster.local',
        metadata: { NODE_NAME: 'node0' },
      },
      subscriptions: [{ type: addressResourceType(), onChange: () => {} }],
      logger,
      metrics: new XdsClientMetrics(new Registry()),
      // Frequent attempts: the client's own backoff is never what delays the reconnection here.
      backoff: { initialMs: 10, maxMs: 40 },
    });
    closers.push(() => client.close());
    client.start();
    await client.synced();
    await until('connected', () => client.isConnected());

    first.server.forceShutdown();
    await until('the stream to end', () => !client.isConnected());
    // Down long enough for many refused attempts (a gRPC channel would back off 1 s, 1.6 s, ...).
    await new Promise((r) => setTimeout(r, 3_000));
    const failedWhileDown = client.dump().streams;
    await serve(first.port);
    const attemptsBeforeReturn = client.dump().streams;
    await until('the stream to come back', () => client.isConnected());
    const attemptsAfterReturn = client.dump().streams - attemptsBeforeReturn;
    console.log(
      `attempts while the control plane was down: ${failedWhileDown}; attempts after it returned until connected: ${attemptsAfterReturn}`,
    );
    expect(failedWhileDown).toBeGreaterThan(20);
    // An attempt begun before the server was back may still be refused; every later one is a
    // real connection, so the one after it succeeds.
    expect(attemptsAfterReturn).toBeLessThanOrEqual(2);
  }, 30_000);
});

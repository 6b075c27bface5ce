import net, { type AddressInfo } from 'node:net';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { HboneClient, type HboneClientInputs } from '../hbone/hbone-client.js';
import { type HboneRequest, HboneServer, type HboneServerInputs } from '../hbone/hbone-server.js';
import { CertManager } from '../identity/cert-manager.js';
import { LocalCa } from '../identity/local-ca.js';
import { SpiffeId } from '../identity/spiffe-id.js';
import { dialTcp } from '../net/dial-tcp.js';
import { HboneMetrics } from '../telemetry/hbone-metrics.js';

export const TRUST_DOMAIN = 'cluster.local';
export const CLIENT_ID = SpiffeId.of(TRUST_DOMAIN, 'demo', 'client');
export const SERVER_ID = SpiffeId.of(TRUST_DOMAIN, 'demo', 'server');

/** A TCP echo server on loopback that allows half-open connections. */
export async function echoServer(): Promise<{ server: net.Server; port: number; sockets: Set<net.Socket> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, sockets };
}

export function dialUpstream(port: number): Promise<net.Socket> {
  return dialTcp({ host: '127.0.0.1', port });
}

export interface MeshPair {
  ca: LocalCa;
  certs: CertManager;
  registry: Registry;
  metrics: HboneMetrics;
  server: HboneServer;
  serverPort: number;
  client: HboneClient;
  requests: HboneRequest[];
  close(): Promise<void>;
}

/**
 * A real HBONE server and client on loopback with a built-in CA. By default every CONNECT is
 * allowed and connected to `127.0.0.1:<authority port>`.
 */
export async function meshPair(
  options: {
    server?: Partial<HboneServerInputs>;
    client?: Partial<HboneClientInputs>;
    serverIdentity?: SpiffeId;
    ttlSeconds?: number;
  } = {},
): Promise<MeshPair> {
  const ca = await LocalCa.create({ trustDomain: TRUST_DOMAIN });
  const logger = pino({ level: 'silent' });
  const certs = new CertManager({
    ca,
    logger,
    ...(options.ttlSeconds !== undefined && { ttlSeconds: options.ttlSeconds }),
  });
  const registry = new Registry();
  const metrics = new HboneMetrics(registry);
  const requests: HboneRequest[] = [];
  const serverIdentity = options.serverIdentity ?? SERVER_ID;
  const server = new HboneServer({
    certificateFor: () => certs.fetch(serverIdentity),
    onRequest: async (req) => {
      requests.push(req);
      return dialUpstream(req.target.port);
    },
    metrics,
    logger,
    ...options.server,
  });
  const { port: serverPort } = await server.listen(0, '127.0.0.1');
  const client = new HboneClient({ certificates: certs, metrics, logger, ...options.client });
  return {
    ca,
    certs,
    registry,
    metrics,
    server,
    serverPort,
    client,
    requests,
    async close() {
      client.destroy();
      server.destroy();
      certs.close();
    },
  };
}

/** Current value of a counter or gauge with exactly these labels (0 when absent). */
export async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const data = await metric.get();
  const want = Object.entries(labels);
  return data.values
    .filter((v) => want.every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val))
    .reduce((sum, v) => sum + v.value, 0);
}

/** Polls `check` until it returns true; the surrounding test's timeout bounds the wait. */
export async function eventually(check: () => boolean | Promise<boolean>, stepMs = 10): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, stepMs));
}

/** Reads a stream to its end. */
export function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

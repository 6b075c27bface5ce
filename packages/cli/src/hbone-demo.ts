import { mkdtemp } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CertManager,
  dialTcp,
  formatForwarded,
  HboneClient,
  HboneMetrics,
  HboneServer,
  LocalCa,
  SpiffeId,
  splice,
} from '@ambient/shared';
import { pino } from 'pino';
import { Registry } from 'prom-client';

export interface HboneDemoOptions {
  /** Where the demo CA keeps its root; a fresh temporary directory when absent. */
  readonly caDir?: string;
  /** Demo connections to make before exiting; ignored with `keep`. */
  readonly connections: number;
  /** Keep the tunnel port open until interrupted instead of exiting after the demo connections. */
  readonly keep: boolean;
  readonly port: number;
  readonly signal?: AbortSignal;
  readonly print: (line: string) => void;
}

const TRUST_DOMAIN = 'cluster.local';
const CLIENT = SpiffeId.of(TRUST_DOMAIN, 'demo', 'sleep');
const SERVER = SpiffeId.of(TRUST_DOMAIN, 'demo', 'echo');

/**
 * Local port -> HBONE client -> (mutual TLS, HTTP/2 CONNECT) -> HBONE server -> echo app, all on
 * loopback, printing what each side verified about the other.
 */
export async function runHboneDemo(options: HboneDemoOptions): Promise<void> {
  const { print } = options;
  const logger = pino({ level: 'silent' });
  const caDir = options.caDir ?? (await mkdtemp(join(tmpdir(), 'ambient-demo-ca-')));
  const ca = await LocalCa.loadOrCreate(caDir, { trustDomain: TRUST_DOMAIN });
  const certs = new CertManager({ ca, logger });
  const registry = new Registry();
  const metrics = new HboneMetrics(registry);

  const app = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const appPort = (app.address() as AddressInfo).port;

  const server = new HboneServer({
    certificateFor: () => certs.fetch(SERVER),
    onRequest: async (req) => {
      print(
        `  server: verified client ${req.peer}; CONNECT ${req.target.host}:${req.target.port} (for ${req.forwardedFor})`,
      );
      return dialTcp(req.target);
    },
    metrics,
    logger,
  });
  const hbone = await server.listen(0, '127.0.0.1');
  const client = new HboneClient({ certificates: certs, metrics, logger });

  const tunnel = net.createServer({ allowHalfOpen: true }, async (socket) => {
    socket.on('error', () => {});
    try {
      const stream = await client.connect({
        source: CLIENT,
        destination: SERVER,
        address: { host: '127.0.0.1', port: hbone.port },
        authority: `127.0.0.1:${appPort}`,
        forwarded: formatForwarded({ host: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 }),
      });
      print(`  client: verified server ${client.peerOf(stream)}`);
      await splice(socket, stream);
    } catch (err) {
      print(`  client: tunnel failed: ${(err as Error).message}`);
      socket.destroy();
    }
  });
  await new Promise<void>((r) => tunnel.listen(options.port, '127.0.0.1', r));
  const tunnelPort = (tunnel.address() as AddressInfo).port;

  print(`CA root in ${caDir} (trust domain ${TRUST_DOMAIN})`);
  print(`echo app      127.0.0.1:${appPort}`);
  print(`HBONE server  127.0.0.1:${hbone.port}  presents ${SERVER}`);
  print(`tunnel port   127.0.0.1:${tunnelPort}  client presents ${CLIENT}`);

  try {
    if (options.keep) {
      print(`\nTunnel open. Try: echo hello | nc -N 127.0.0.1 ${tunnelPort}    (Ctrl-C to stop)`);
      await new Promise<void>((resolve) => {
        if (options.signal?.aborted) resolve();
        options.signal?.addEventListener('abort', () => resolve(), { once: true });
      });
      return;
    }
    for (let i = 1; i <= options.connections; i++) {
      const message = `hello #${i} through HBONE`;
      print(`connection ${i}: send ${JSON.stringify(message)}`);
      const reply = await exchange(tunnelPort, message);
      print(`connection ${i}: got  ${JSON.stringify(reply)}`);
      if (reply !== message) throw new Error(`echo mismatch: sent ${message}, got ${reply}`);
    }
    const opened = (await registry.getSingleMetric('hbone_connections_opened_total')?.get())?.values ?? [];
    const tlsConnections = opened.find((v) => v.labels.side === 'client')?.value ?? 0;
    print(
      `\nOK: ${options.connections} TCP connections tunnelled as HTTP/2 CONNECT streams over ${tlsConnections} pooled mutual-TLS connection(s).`,
    );
    for (const c of certs.dump())
      print(`certificate ${c.identity} serial ${c.serialNumber} valid until ${c.notAfter}`);
  } finally {
    tunnel.close();
    await client.close(1_000);
    await server.close(1_000);
    app.close();
    certs.close();
  }
}

/** Sends `message` on a fresh connection, half-closes, and returns everything read back. */
function exchange(port: number, message: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => s.end(message));
    s.on('data', (c) => chunks.push(c));
    s.on('end', () => resolve(Buffer.concat(chunks).toString()));
    s.on('error', reject);
  });
}

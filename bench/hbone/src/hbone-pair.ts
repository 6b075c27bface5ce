/**
 * One side of the benchmarked HBONE pair, run as its own process like a ztunnel on its own node.
 *   server <caDir> <hbonePort> [unframed]           HBONE server; CONNECTs go to 127.0.0.1:<authority port>
 *                                                   (unframed: upstream reads without frame-header headroom)
 *   client <caDir> <hbonePort> <listen>=<target>... local listeners, each tunnelled to a target port
 * Prints "ready" once listening.
 */
import net from 'node:net';
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

export const TRUST_DOMAIN = 'cluster.local';
export const CLIENT = SpiffeId.of(TRUST_DOMAIN, 'bench', 'client');
export const SERVER = SpiffeId.of(TRUST_DOMAIN, 'bench', 'server');

const [role, caDir, hbonePortText, ...mappings] = process.argv.slice(2);
const logger = pino({ level: 'warn' });
const ca = await LocalCa.loadOrCreate(caDir as string, { trustDomain: TRUST_DOMAIN });
const certs = new CertManager({ ca, logger });
const metrics = new HboneMetrics(new Registry());
const hbonePort = Number(hbonePortText);

if (role === 'server') {
  const server = new HboneServer({
    certificateFor: () => certs.fetch(SERVER),
    onRequest: (req) => dialTcp(req.target, undefined, { framedReads: mappings[0] !== 'unframed' }),
    metrics,
    logger,
  });
  await server.listen(hbonePort, '127.0.0.1');
} else {
  const client = new HboneClient({ certificates: certs, metrics, logger });
  await certs.fetch(CLIENT);
  for (const m of mappings) {
    const [listen, target] = m.split('=').map(Number) as [number, number];
    const listener = net.createServer({ allowHalfOpen: true, noDelay: true }, async (socket) => {
      socket.on('error', () => {});
      try {
        const stream = await client.connect({
          source: CLIENT,
          destination: SERVER,
          address: { host: '127.0.0.1', port: hbonePort },
          authority: `127.0.0.1:${target}`,
          forwarded: formatForwarded({ host: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 }),
        });
        await splice(socket, stream);
      } catch (err) {
        logger.warn({ err: (err as Error).message }, 'tunnel failed');
        socket.destroy();
      }
    });
    await new Promise<void>((r) => listener.listen(listen, '127.0.0.1', r));
  }
}
process.stdout.write('ready\n');
process.on('SIGTERM', () => process.exit(0));

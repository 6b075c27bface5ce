/**
 * The cheapest waypoint this benchmark can build in Node.js: the project's own HBONE server and
 * client (mutual TLS 1.3, HTTP/2 CONNECT) with an HTTP/1.1 relay directly on the tunnel's bytes,
 * as a direct path would do it. Each downstream tunnel is itself the relay (no in-memory pair, no
 * Node HTTP server or client); a request head is found by its blank line and written unchanged
 * on a keep-alive upstream HBONE stream taken from a pool shared by every tunnel; the response is
 * relayed by its Content-Length. No policy, routing, telemetry or body framing beyond that: it
 * measures what the transport and the parsing cost, a ceiling for a direct-path waypoint.
 *   node min-waypoint.js <caDir> <trustDomain> <namespace> <serviceAccount> <upstreamIp>
 *        <upstreamPort> <upstreamServiceAccount>
 * Prints {"listening":15008} once bound. Not a proxy to deploy.
 */
import type { Duplex } from 'node:stream';
import {
  CertManager,
  formatAuthority,
  HboneClient,
  HboneMetrics,
  HboneServer,
  LocalCa,
  SpiffeId,
} from '@ambient/shared';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { BareRelay } from './bare-relay.js';

const [caDir = '', trustDomain = '', namespace = '', sa = '', upIp = '', upPortArg = '', upSa = ''] =
  process.argv.slice(2);
const upPort = Number(upPortArg);
if (!upSa || !Number.isInteger(upPort)) {
  console.error(
    'usage: min-waypoint <caDir> <trustDomain> <namespace> <serviceAccount> <upstreamIp> <upstreamPort> <upstreamServiceAccount>',
  );
  process.exit(2);
}

const logger = pino({ level: 'warn' });
const metrics = new HboneMetrics(new Registry());
const ca = await LocalCa.loadOrCreate(caDir, { trustDomain });
const certs = new CertManager({ ca });
const own = SpiffeId.of(trustDomain, namespace, sa);
const upstreamId = SpiffeId.of(trustDomain, namespace, upSa);
const client = new HboneClient({ certificates: certs, metrics, logger });

/** Idle keep-alive upstream streams, shared by every tunnel. */
const idle: Duplex[] = [];
async function upstream(): Promise<Duplex> {
  const pooled = idle.pop();
  if (pooled) return pooled;
  const s = await client.connect({
    source: own,
    destination: upstreamId,
    address: { host: upIp, port: 15008 },
    authority: formatAuthority({ host: upIp, port: upPort }),
  });
  s.on('error', () => {});
  s.once('close', () => {
    const i = idle.indexOf(s);
    if (i >= 0) idle.splice(i, 1);
  });
  return s;
}

const upstreams = { take: upstream, give: (up: Duplex) => idle.push(up) };

const server = new HboneServer({
  certificateFor: () => certs.fetch(own),
  onRequest: async () => new BareRelay(upstreams),
  metrics,
  logger,
});
await server.listen(15008, '0.0.0.0');
console.log(JSON.stringify({ listening: 15008 }));

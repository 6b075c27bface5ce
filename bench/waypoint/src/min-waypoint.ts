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
import { Duplex } from 'node:stream';
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
import { contentLength, HEAD_END } from './http1-head.js';

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

/** One downstream tunnel: what the client writes is parsed here; responses are pushed back. */
class Relay extends Duplex {
  private buf: Buffer = Buffer.alloc(0);
  private busy = false;

  constructor() {
    super({ allowHalfOpen: true });
  }

  override _read(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    this.next();
    cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.push(null);
    cb();
  }

  private next(): void {
    if (this.busy) return;
    const end = this.buf.indexOf(HEAD_END);
    if (end < 0) return;
    const headLen = end + 4;
    if (contentLength(this.buf.toString('latin1', 0, headLen), false) !== 0) {
      this.destroy();
      return;
    }
    const head = this.buf.subarray(0, headLen);
    this.buf = this.buf.subarray(headLen);
    this.busy = true;
    upstream().then(
      (up) => this.exchange(up, head),
      () => this.destroy(),
    );
  }

  private exchange(up: Duplex, head: Buffer): void {
    let rbuf: Buffer | undefined = Buffer.alloc(0);
    let remaining = -1;
    const onData = (chunk: Buffer): void => {
      if (rbuf !== undefined) {
        rbuf = Buffer.concat([rbuf, chunk]);
        const e = rbuf.indexOf(HEAD_END);
        if (e < 0) return;
        const n = contentLength(rbuf.toString('latin1', 0, e + 4), true);
        if (n < 0) {
          up.destroy();
          this.destroy();
          return;
        }
        remaining = e + 4 + n;
        chunk = rbuf;
        rbuf = undefined;
      }
      remaining -= chunk.length;
      this.push(chunk);
      if (remaining > 0) return;
      up.off('data', onData);
      up.off('close', onGone);
      idle.push(up);
      this.busy = false;
      this.next();
    };
    const onGone = (): void => {
      this.destroy();
    };
    up.on('data', onData);
    up.once('close', onGone);
    up.write(head);
  }
}

const server = new HboneServer({
  certificateFor: () => certs.fetch(own),
  onRequest: async () => new Relay(),
  metrics,
  logger,
});
await server.listen(15008, '0.0.0.0');
console.log(JSON.stringify({ listening: 15008 }));

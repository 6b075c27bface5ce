/**
 * The least a Node.js TLS tunnel can do: one side of a mutual-TLS pipe with Node's own streams,
 * no HTTP/2, run as its own process like hbone-pair.ts. With `frames`, the client writes every
 * chunk as HTTP/2-style DATA frames (a 9-byte header and up to 16,375 bytes of payload, corked
 * into one TLS write) and the server strips the headers, delivering payload slices as they arrive:
 * the copy and record pattern HBONE has, without its stream machinery.
 *   server <caDir> <port> <targetPort> [frames]   TLS in, plain TCP to 127.0.0.1:<targetPort>
 *   client <caDir> <port> <listenPort> [frames]   plain TCP in on <listenPort>, TLS to <port>
 * <port> may be <host>:<port>: the address the server listens on and the client connects to
 * (default 127.0.0.1), for a pair in two network namespaces.
 * Half-closes pass through (each end is half-open), so a client that ends its side still gets the
 * reply. Prints "ready" once listening.
 */
import net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import tls from 'node:tls';
import { CertManager, LocalCa, SpiffeId, secureContextOptions } from '@ambient/shared';

const [role, caDir, portText, otherText, pattern] = process.argv.slice(2);
const TD = 'cluster.local';
const FRAME_PAYLOAD = 16_384 - 9;
const ca = await LocalCa.loadOrCreate(caDir as string, { trustDomain: TD });
const certs = new CertManager({ ca });
const colon = (portText as string).lastIndexOf(':');
const host = colon < 0 ? '127.0.0.1' : (portText as string).slice(0, colon);
const port = Number((portText as string).slice(colon + 1));
const other = Number(otherText);
const framed = pattern === 'frames';

/** Copies `from` into `to` as frames: header and payload slices, one corked write per chunk. */
function pipeFramed(from: Readable, to: Writable): void {
  from.on('data', (chunk: Buffer) => {
    to.cork();
    let ok = true;
    for (let off = 0; off < chunk.length; off += FRAME_PAYLOAD) {
      const payload = chunk.subarray(off, off + FRAME_PAYLOAD);
      const header = Buffer.allocUnsafe(9);
      header.writeUIntBE(payload.length, 0, 3);
      header.writeUInt32BE(0, 3);
      header.writeUInt16BE(1, 7);
      to.write(header);
      ok = to.write(payload);
    }
    to.uncork();
    if (!ok) {
      from.pause();
      to.once('drain', () => from.resume());
    }
  });
  from.on('end', () => to.end());
}

/** Strips frame headers from `from` and writes the payload slices into `to`. */
function pipeUnframed(from: Readable, to: Writable): void {
  let header: Buffer | undefined;
  let left = 0;
  from.on('data', (chunk: Buffer) => {
    let off = 0;
    let ok = true;
    while (off < chunk.length) {
      if (left > 0) {
        const n = Math.min(left, chunk.length - off);
        ok = to.write(chunk.subarray(off, off + n));
        left -= n;
        off += n;
        continue;
      }
      const need = 9 - (header?.length ?? 0);
      const part = chunk.subarray(off, off + need);
      header = header ? Buffer.concat([header, part]) : part;
      off += part.length;
      if (header.length === 9) {
        left = header.readUIntBE(0, 3);
        header = undefined;
      }
    }
    if (!ok) {
      from.pause();
      to.once('drain', () => from.resume());
    }
  });
  from.on('end', () => to.end());
}

function join(plain: net.Socket, secure: tls.TLSSocket, side: 'client' | 'server'): void {
  plain.on('error', () => secure.destroy());
  secure.on('error', () => plain.destroy());
  if (!framed) {
    plain.pipe(secure);
    secure.pipe(plain);
  } else if (side === 'client') {
    pipeFramed(plain, secure);
    pipeUnframed(secure, plain);
  } else {
    pipeUnframed(secure, plain);
    pipeFramed(plain, secure);
  }
}

if (role === 'server') {
  const cert = await certs.fetch(SpiffeId.of(TD, 'bench', 'server'));
  const server = tls.createServer(
    { ...secureContextOptions(cert), requestCert: true, rejectUnauthorized: true, allowHalfOpen: true },
    (secure) => {
      secure.setNoDelay(true);
      const plain = net.connect({ port: other, host: '127.0.0.1', noDelay: true, allowHalfOpen: true });
      join(plain, secure, 'server');
    },
  );
  await new Promise<void>((r) => server.listen(port, host, r));
} else {
  const cert = await certs.fetch(SpiffeId.of(TD, 'bench', 'client'));
  const listener = net.createServer({ noDelay: true, allowHalfOpen: true }, (plain) => {
    const secure = tls.connect({
      port,
      host,
      ...secureContextOptions(cert),
      // Passed on to the TLSSocket (lib/_tls_wrap.js), though the types leave it out.
      ...({ allowHalfOpen: true } as tls.ConnectionOptions),
      // Identity checks are not what is measured here: the chain is still verified.
      checkServerIdentity: () => undefined,
    });
    secure.setNoDelay(true);
    join(plain, secure, 'client');
  });
  await new Promise<void>((r) => listener.listen(other, '127.0.0.1', r));
}
certs.close();
process.stdout.write('ready\n');
process.on('SIGTERM', () => process.exit(0));

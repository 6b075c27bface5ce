import net from 'node:net';
import { MeshError } from '../errors.js';
import type { HostPort } from '../hbone/hbone-headers.js';
import { FramedReads } from './framed-reads.js';

/** Bytes buffered for an upstream socket before its writer is paused. */
export const UPSTREAM_HIGH_WATER_MARK = 128 * 1024;

/** Opens a half-open-capable, no-delay TCP connection; failures become MESH_ERR_HBONE_UPSTREAM. */
export function dialTcp(
  target: HostPort,
  timeoutMs = 10_000,
  options: { framedReads?: boolean } = {},
): Promise<net.Socket> {
  const reads = options.framedReads ? new FramedReads() : undefined;
  return new Promise((resolve, reject) => {
    // net.Socket passes stream options on; its typings omit them.
    const connectOptions: net.NetConnectOpts & { writableHighWaterMark: number } = {
      host: target.host,
      port: target.port,
      allowHalfOpen: true,
      noDelay: true,
      // A turn's worth of tunnel reads (several 16 KiB TLS records) is written before it pushes back.
      writableHighWaterMark: UPSTREAM_HIGH_WATER_MARK,
      // Into an HBONE stream: reads keep headroom for the DATA frame header (see FramedReads).
      ...(reads && { onread: reads.onread }),
    };
    const socket = net.connect(connectOptions);
    reads?.register(socket);
    const fail = (err: Error) => {
      socket.destroy();
      reject(
        new MeshError('MESH_ERR_HBONE_UPSTREAM', `${target.host}:${target.port}: ${err.message}`, {
          cause: err,
        }),
      );
    };
    socket.setTimeout(timeoutMs, () => fail(new Error('connect timeout')));
    socket.once('error', fail);
    socket.once('connect', () => {
      socket.setTimeout(0);
      socket.off('error', fail);
      resolve(socket);
    });
  });
}

import net from 'node:net';
import { MeshError } from '../errors.js';
import type { HostPort } from '../hbone/hbone-headers.js';

/** Opens a half-open-capable, no-delay TCP connection; failures become MESH_ERR_HBONE_UPSTREAM. */
export function dialTcp(target: HostPort, timeoutMs = 10_000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true });
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

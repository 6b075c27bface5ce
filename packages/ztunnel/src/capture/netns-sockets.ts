/**
 * Sockets inside other network namespaces: the one module that touches the native addon.
 *
 * Node.js cannot create a socket in another namespace, read SO_ORIGINAL_DST, or bind a foreign
 * address (IP_TRANSPARENT). The addon (native/netns-sockets.c, built by scripts/setup.sh) does
 * exactly those three things; everything else here is ordinary `net` code on the returned fds.
 */
import { closeSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { FramedReads, type HostPort, MeshError } from '@ambient/shared';

interface Addon {
  socketInNetns(netnsFd: number, transparent: boolean, mark: number): number;
  bindSocket(fd: number, ip: string, port: number): void;
  originalDst(fd: number): string;
}

/** Marks ztunnel's own sockets so the capture rules let them through (Istio's 0x539). */
export const ZTUNNEL_MARK = 0x539;

export interface ListenOptions {
  readonly port: number;
  readonly host?: string;
  /** Accept connections for any address (needed where traffic is REDIRECTed to us). */
  readonly transparent?: boolean;
  /** Accepted sockets do not read until their handler asks (see HboneServer.accept). */
  readonly pauseOnConnect?: boolean;
}

export interface ConnectOptions {
  readonly target: HostPort;
  /** Source address to appear from (a foreign address: requires the in-pod rules' return route). */
  readonly source?: string;
  readonly mark?: number;
  readonly timeoutMs?: number;
  /** Read through `onread` into buffers with HTTP/2 frame-header headroom (see FramedReads). */
  readonly framedReads?: boolean;
}

function fdOf(socket: net.Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0)
    throw new MeshError('MESH_ERR_CLOSED', 'socket has no file descriptor');
  return fd;
}

/** The compiled addon; a clear error says how to build it when it is missing. */
export function loadAddon(): unknown {
  const require = createRequire(import.meta.url);
  try {
    return require('../../build/netns-sockets.node');
  } catch (err) {
    throw new Error(
      `netns-sockets addon not loadable (${(err as Error).message}); build it with: node packages/ztunnel/native/build.mjs`,
    );
  }
}

export class NetnsSockets {
  private constructor(private readonly addon: Addon) {}

  /** Loads the addon; a clear error says how to build it when it is missing. */
  static load(): NetnsSockets {
    return new NetnsSockets(loadAddon() as Addon);
  }

  /** A listening server whose socket lives in the namespace at `netnsPath` (e.g. /var/run/netns/pod). */
  async listen(
    netnsPath: string,
    options: ListenOptions,
    onConnection: (s: net.Socket) => void,
  ): Promise<net.Server> {
    const fd = this.socketIn(netnsPath, options.transparent ?? false, 0);
    try {
      this.addon.bindSocket(fd, options.host ?? '0.0.0.0', options.port);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    const server = net.createServer(
      { allowHalfOpen: true, noDelay: true, pauseOnConnect: options.pauseOnConnect ?? false },
      onConnection,
    );
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ fd, backlog: 511 }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server;
  }

  /** Connects from inside the namespace, optionally from a foreign source address and with a mark. */
  connect(netnsPath: string, options: ConnectOptions): Promise<net.Socket> {
    const fd = this.socketIn(netnsPath, options.source !== undefined, options.mark ?? ZTUNNEL_MARK);
    try {
      if (options.source !== undefined) this.addon.bindSocket(fd, options.source, 0);
    } catch (err) {
      closeSync(fd);
      return Promise.reject(err);
    }
    const reads = options.framedReads ? new FramedReads() : undefined;
    const socket = new net.Socket({
      fd,
      allowHalfOpen: true,
      readable: true,
      writable: true,
      ...(reads && { onread: reads.onread }),
    });
    reads?.register(socket);
    return new Promise((resolve, reject) => {
      const fail = (err: Error) => {
        socket.destroy();
        reject(
          new MeshError(
            'MESH_ERR_HBONE_UPSTREAM',
            `${options.target.host}:${options.target.port}: ${err.message}`,
            {
              cause: err,
            },
          ),
        );
      };
      socket.setTimeout(options.timeoutMs ?? 10_000, () => fail(new Error('connect timeout')));
      socket.once('error', fail);
      socket.connect(options.target.port, options.target.host, () => {
        socket.setTimeout(0);
        socket.off('error', fail);
        socket.setNoDelay(true);
        resolve(socket);
      });
    });
  }

  /** Where a REDIRECTed connection was originally going. */
  originalDst(socket: net.Socket): HostPort {
    const text = this.addon.originalDst(fdOf(socket));
    const colon = text.lastIndexOf(':');
    return { host: text.slice(0, colon), port: Number(text.slice(colon + 1)) };
  }

  private socketIn(netnsPath: string, transparent: boolean, mark: number): number {
    const nsFd = openSync(netnsPath, 'r');
    try {
      return this.addon.socketInNetns(nsFd, transparent, mark);
    } finally {
      closeSync(nsFd);
    }
  }
}

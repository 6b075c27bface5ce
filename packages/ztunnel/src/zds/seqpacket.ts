/**
 * Unix SOCK_SEQPACKET sockets with SCM_RIGHTS, which Node.js lacks: the one module over the
 * addon's seqpacket functions (native/netns-sockets.c). Readiness comes from a uv_poll on Node's
 * own event loop, so nothing blocks; each message arrives whole, with the fds sent beside it.
 *
 * Ownership: a received fd belongs to whoever the message is handed to, and is closed exactly
 * once by them; fds of messages that arrive after close() are closed here.
 */
import os from 'node:os';
import { loadAddon } from '../capture/netns-sockets.js';
import { ZdsError } from './zds-error.js';

interface SeqpacketAddon {
  seqpacketListen(path: string): number;
  seqpacketConnect(path: string): number;
  seqpacketAccept(fd: number): number;
  seqpacketSend(fd: number, data: Uint8Array, passFd: number): void;
  seqpacketRecv(fd: number): { data: Buffer | null; fds: number[]; truncated: boolean } | null;
  watchReadable(fd: number, cb: (status: number) => void): object;
  unwatch(handle: object): void;
  closeFd(fd: number): void;
  isNetns(fd: number): boolean;
}

let cached: SeqpacketAddon | undefined;
function addon(): SeqpacketAddon {
  cached ??= loadAddon() as SeqpacketAddon;
  return cached;
}

export interface SeqpacketMessage {
  readonly data: Buffer;
  /** Received descriptors: the handler's to close. */
  readonly fds: readonly number[];
  /** The message or its control data did not fit (MSG_TRUNC / MSG_CTRUNC). */
  readonly truncated: boolean;
}

export interface SeqpacketHandlers {
  onMessage(message: SeqpacketMessage): void;
  /** Once, when the peer closed, a read failed, or close() was called (`err` absent then). */
  onClose(err?: Error): void;
}

function socketError(op: string, err: unknown): ZdsError {
  const e = err as NodeJS.ErrnoException;
  const wrapped = new ZdsError('ZT_ERR_ZDS_SOCKET', `${op}: ${e.message}`, { cause: err });
  (wrapped as { errno?: string }).errno = e.code;
  return wrapped;
}

/** The errno name (`ENOENT`, `ECONNREFUSED`, ...) of a failed socket call (the addon throws `E<n>`). */
export function errnoOf(err: unknown): string | undefined {
  const code = (err as { errno?: string }).errno ?? (err as NodeJS.ErrnoException).code;
  const n = /^E(\d+)$/.exec(code ?? '')?.[1];
  if (n === undefined) return code;
  return Object.entries(os.constants.errno).find(([, v]) => v === Number(n))?.[0] ?? code;
}

export class SeqpacketSocket {
  private watch?: object;
  private handlers?: SeqpacketHandlers;
  private isClosed = false;

  private constructor(readonly fd: number) {}

  /** Connects to a listening socket; throws (errno in `errnoOf`) when there is none. */
  static connect(path: string): SeqpacketSocket {
    try {
      return new SeqpacketSocket(addon().seqpacketConnect(path));
    } catch (err) {
      throw socketError(`connect ${path}`, err);
    }
  }

  /** @internal an accepted connection. */
  static adopt(fd: number): SeqpacketSocket {
    return new SeqpacketSocket(fd);
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Starts delivering messages (none are read before). */
  start(handlers: SeqpacketHandlers): void {
    if (this.isClosed || this.watch) return;
    this.handlers = handlers;
    this.watch = addon().watchReadable(this.fd, () => this.drain());
  }

  /** One message, with `passFd` beside it (the caller keeps its own copy open). */
  send(data: Uint8Array, passFd?: number): void {
    if (this.isClosed) throw new ZdsError('ZT_ERR_ZDS_SOCKET', 'send on a closed socket');
    try {
      addon().seqpacketSend(this.fd, data, passFd ?? -1);
    } catch (err) {
      throw socketError('send', err);
    }
  }

  close(err?: Error): void {
    if (this.isClosed) return;
    this.isClosed = true;
    if (this.watch) addon().unwatch(this.watch);
    this.watch = undefined;
    addon().closeFd(this.fd);
    this.handlers?.onClose(err);
  }

  private drain(): void {
    while (!this.isClosed) {
      let m: ReturnType<SeqpacketAddon['seqpacketRecv']>;
      try {
        m = addon().seqpacketRecv(this.fd);
      } catch (err) {
        this.close(socketError('recv', err));
        return;
      }
      if (m === null) return;
      if (m.data === null) {
        this.close();
        return;
      }
      if (this.isClosed) {
        closeFds(m.fds);
        return;
      }
      this.handlers?.onMessage({ data: m.data, fds: m.fds, truncated: m.truncated });
    }
  }
}

export class SeqpacketServer {
  private watch?: object;
  private isClosed = false;

  private constructor(
    private readonly fd: number,
    readonly path: string,
  ) {}

  /** Listens at `path` (which must not exist: the caller removes a stale one). */
  static listen(path: string, onConnection: (socket: SeqpacketSocket) => void): SeqpacketServer {
    let fd: number;
    try {
      fd = addon().seqpacketListen(path);
    } catch (err) {
      throw socketError(`listen ${path}`, err);
    }
    const server = new SeqpacketServer(fd, path);
    server.watch = addon().watchReadable(fd, () => {
      while (!server.isClosed) {
        let conn: number;
        try {
          conn = addon().seqpacketAccept(fd);
        } catch {
          return;
        }
        if (conn < 0) return;
        onConnection(SeqpacketSocket.adopt(conn));
      }
    });
    return server;
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    if (this.watch) addon().unwatch(this.watch);
    addon().closeFd(this.fd);
  }
}

export function closeFds(fds: readonly number[]): void {
  for (const fd of fds) addon().closeFd(fd);
}

/** Whether `fd` is a network namespace (NS_GET_NSTYPE, or nsfs on older kernels). */
export function isNetnsFd(fd: number): boolean {
  return addon().isNetns(fd);
}

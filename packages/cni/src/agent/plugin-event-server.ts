/**
 * The plugin event server (upstream cni-watcher.go): HTTP on a unix socket, `POST /cmdadd` with a
 * pod's ADD event, answered only once the agent decided and (for an enrolled pod) the capture rules
 * are in place and ztunnel acknowledged, so no packet of the pod's app leaves uncaptured. Any failure
 * answers an error status, and the plugin then fails the pod's sandbox (the kubelet retries).
 */
import { chmod, mkdir, rm } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { formatProblems } from '@ambient/shared';
import type { Logger } from 'pino';
import { CniError, cniErrorStatus } from '../errors.js';
import {
  CMDADD_PATH,
  decodePluginAddEvent,
  type PluginAddEvent,
  type PluginAddReply,
} from './plugin-event.js';

/** An ADD event carries a few names and addresses; anything larger is refused unread. */
export const MAX_EVENT_BYTES = 64 * 1024;

export interface PluginEventServerInputs {
  readonly socketPath: string;
  readonly logger: Logger;
  readonly onAdd: (event: PluginAddEvent) => Promise<PluginAddReply>;
}

export class PluginEventServer {
  private readonly server: http.Server;
  /** Requests answered, by status. */
  readonly answered = new Map<number, number>();

  constructor(private readonly inputs: PluginEventServerInputs) {
    this.server = http.createServer((req, res) => void this.handle(req, res));
  }

  async start(): Promise<{ socketPath: string }> {
    await mkdir(path.dirname(this.inputs.socketPath), { recursive: true, mode: 0o700 });
    // A socket file left by an agent that did not stop cleanly would make listen fail.
    await rm(this.inputs.socketPath, { force: true });
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.inputs.socketPath, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    // Whoever can post here picks a netns and names a pod whose identity ztunnel then serves from
    // it: only root (the container runtime running the plugin) may connect.
    await chmod(this.inputs.socketPath, 0o600);
    return { socketPath: this.inputs.socketPath };
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private reply(res: http.ServerResponse, status: number, body: object): void {
    this.answered.set(status, (this.answered.get(status) ?? 0) + 1);
    res.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (req.url !== CMDADD_PATH) return this.reply(res, 404, { error: `no handler for ${req.url}` });
    if (req.method !== 'POST') return this.reply(res, 405, { error: 'POST only' });
    try {
      const body = await readBody(req);
      const decoded = decodePluginAddEvent(body);
      if (!decoded.ok) throw new CniError('CNI_ERR_BAD_EVENT', formatProblems(decoded.problems));
      const answer = await this.inputs.onAdd(decoded.value);
      this.reply(res, 200, answer);
    } catch (err) {
      const status = cniErrorStatus(err);
      this.inputs.logger.warn({ err, status }, 'plugin event refused');
      this.reply(res, status, { error: (err as Error).message, code: (err as CniError).code ?? 'internal' });
    }
  }
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_EVENT_BYTES) {
      reject(new CniError('CNI_ERR_EVENT_TOO_LARGE', `${declared} bytes > ${MAX_EVENT_BYTES}`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_EVENT_BYTES) {
        // Stop keeping the body but let it drain, so the refusal can still be answered.
        req.removeAllListeners('data');
        req.resume();
        reject(new CniError('CNI_ERR_EVENT_TOO_LARGE', `more than ${MAX_EVENT_BYTES} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

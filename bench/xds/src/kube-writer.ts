/**
 * Writes objects through a Kubernetes API server as its admin, over a few keep-alive connections
 * with a bounded number of requests in flight. A request has a deadline; one the server sheds
 * (429, 5xx) or a dropped connection is retried a bounded number of times, then fails the run.
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { sleep } from './measure.js';

export interface KubeWriterOptions {
  /** https://127.0.0.1:<port> */
  readonly url: string;
  readonly token: string;
  readonly caFile: string;
  readonly concurrency: number;
  readonly timeoutMs?: number;
  readonly attempts?: number;
}

export class KubeWriteError extends Error {
  readonly code = 'BENCH_ERR_KUBE_WRITE';
}

export class KubeWriter {
  private readonly agent: https.Agent;
  private readonly ca: Buffer;

  constructor(private readonly opts: KubeWriterOptions) {
    this.ca = readFileSync(opts.caFile);
    this.agent = new https.Agent({ keepAlive: true, maxSockets: opts.concurrency, ca: this.ca });
  }

  private once(method: string, path: string, body: unknown, contentType: string) {
    return new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = https.request(
        `${this.opts.url}${path}`,
        {
          method,
          agent: this.agent,
          headers: { authorization: `Bearer ${this.opts.token}`, 'content-type': contentType },
          timeout: this.opts.timeoutMs ?? 30_000,
        },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => {
            text += d.toString();
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in time`)));
      req.on('error', reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  }

  /** One request that must answer `want`; retried on 429, 5xx and connection errors. */
  async request(
    method: string,
    path: string,
    body: unknown,
    want: number,
    contentType = 'application/json',
  ): Promise<void> {
    const attempts = this.opts.attempts ?? 5;
    let last = '';
    for (let a = 1; a <= attempts; a++) {
      const res = await this.once(method, path, body, contentType).catch((err: Error) => err);
      if (!(res instanceof Error) && res.status === want) return;
      last = res instanceof Error ? res.message : `${res.status} ${res.body.slice(0, 300)}`;
      const retry = res instanceof Error || res.status === 429 || res.status >= 500;
      if (!retry) break;
      await sleep(100 * 2 ** a);
    }
    throw new KubeWriteError(`${method} ${path}: ${last}`);
  }

  create(collection: string, obj: unknown): Promise<void> {
    return this.request('POST', collection, obj, 201);
  }

  /** Runs fn for every item, at most `concurrency` at a time; the first failure ends the run. */
  async each<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
    let next = 0;
    let failed: unknown;
    const worker = async () => {
      while (failed === undefined && next < items.length) {
        const item = items[next++] as T;
        await fn(item).catch((err: unknown) => {
          failed ??= err;
        });
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.opts.concurrency, items.length) }, worker));
    if (failed !== undefined) throw failed;
  }

  close(): void {
    this.agent.destroy();
  }
}

/**
 * The small plain-HTTP endpoints each component serves (admin, metrics, readiness): a server
 * on host:port whose async handler errors become a 500, and text or JSON replies.
 */
import http from 'node:http';

export type HttpHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>;

/** Listens on host:port (0 picks a free port) and resolves once bound. */
export async function listenHttp(host: string, port: number, handler: HttpHandler): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    Promise.resolve(handler(req, res)).catch((err: unknown) =>
      sendText(res, 500, `${(err as Error).message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}

export function sendText(res: http.ServerResponse, status: number, body: string): void {
  res.statusCode = status;
  res.end(body);
}

/** 200 with the body as indented JSON; `replacer` as JSON.stringify's. */
export function sendJson(
  res: http.ServerResponse,
  body: unknown,
  replacer?: (key: string, value: unknown) => unknown,
): void {
  res.setHeader('content-type', 'application/json');
  sendText(res, 200, `${JSON.stringify(body, replacer, 2)}\n`);
}

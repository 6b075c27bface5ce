import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The benchmark's upstream: answers every request with 200 and a body of `bytes` bytes. Idle
 * keep-alive connections are kept for minutes, so that the proxies' pools are never closed under
 * them between runs (Node's default is 5 s).
 */
export async function startBodyServer(
  port: number,
  bytes: number,
  host = '0.0.0.0',
): Promise<{ port: number; close(): void }> {
  const body = Buffer.alloc(bytes, 0x78);
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
    res.end(body);
  });
  server.keepAliveTimeout = 300_000;
  server.headersTimeout = 310_000;
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  return { port: (server.address() as AddressInfo).port, close: () => server.close() };
}

/**
 * The cheapest Node.js HTTP/1.1 keep-alive proxies this benchmark can compare a waypoint with, in
 * plain TCP between the same pods as haproxy (no TLS, no HTTP/2, no policy, no telemetry): what
 * one Node.js process can do at best, as a ceiling for any waypoint design in Node.js.
 *   http  Node's http server, and http.request over a keep-alive Agent shared by every client
 *         connection: the machinery the waypoint uses today, with nothing else.
 *   raw   net sockets only: the request head found by its blank line and written unchanged to a
 *         pooled upstream socket, the response relayed by its Content-Length. Enough for the
 *         benchmark's bodiless GETs and Content-Length responses; anything else closes the
 *         connection. Not a proxy to deploy: a floor for parsing and relaying in JavaScript.
 *   node min-proxy.js <http|raw> <listenPort> <upstreamHost> <upstreamPort>
 * Prints {"listening":port} once bound.
 */
import http from 'node:http';
import net from 'node:net';
import { contentLength, HEAD_END, responseReader } from './http1-head.js';

const [kind, listenArg, upHost = '', upPortArg] = process.argv.slice(2);
const listenPort = Number(listenArg);
const upPort = Number(upPortArg);

function httpProxy(): net.Server {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256, scheduling: 'lifo' });
  const server = http.createServer((req, res) => {
    const up = http.request(
      { host: upHost, port: upPort, method: req.method, path: req.url, headers: req.headers, agent },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.keepAliveTimeout = 300_000;
  return server;
}

function rawProxy(): net.Server {
  const idle: net.Socket[] = [];
  const dial = (): net.Socket => {
    const s = net.connect({ host: upHost, port: upPort, noDelay: true });
    s.on('error', () => {});
    // An upstream that closes an idle connection leaves the pool.
    s.once('close', () => {
      const i = idle.indexOf(s);
      if (i >= 0) idle.splice(i, 1);
    });
    return s;
  };
  return net.createServer((client) => {
    client.setNoDelay(true);
    let buf: Buffer = Buffer.alloc(0);
    let busy = false;
    const next = (): void => {
      if (busy) return;
      const end = buf.indexOf(HEAD_END);
      if (end < 0) return;
      const headLen = end + 4;
      const reqBody = contentLength(buf.toString('latin1', 0, headLen), false);
      if (reqBody !== 0) return void client.destroy(); // bodies are beyond this program
      const head = buf.subarray(0, headLen);
      buf = buf.subarray(headLen);
      busy = true;
      const up = idle.pop() ?? dial();
      const onData = responseReader(
        (chunk) => client.write(chunk),
        () => {
          up.off('data', onData);
          up.off('close', onError);
          idle.push(up);
          busy = false;
          next();
        },
        () => client.destroy(),
      );
      const onError = (): void => {
        client.destroy();
      };
      up.on('data', onData);
      up.once('close', onError);
      up.write(head);
    };
    client.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      next();
    });
    client.on('error', () => {});
  });
}

if (
  (kind !== 'http' && kind !== 'raw') ||
  !Number.isInteger(listenPort) ||
  !upHost ||
  !Number.isInteger(upPort)
) {
  console.error('usage: min-proxy <http|raw> <listenPort> <upstreamHost> <upstreamPort>');
  process.exit(2);
}
const server = kind === 'http' ? httpProxy() : rawProxy();
server.listen(listenPort, '0.0.0.0', () => console.log(JSON.stringify({ listening: listenPort })));

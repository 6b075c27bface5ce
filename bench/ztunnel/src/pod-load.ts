/**
 * Runs inside a lab pod: `latency|rate|hold <host> <port> [n]`, printing one JSON line.
 * hold opens n connections, prints {"held":n} and keeps them until killed.
 */
import net from 'node:net';
import { measureConnectionRate, measureLatency, startEcho } from '@ambient/bench-hbone/load';

const [mode, host = '', portText = '0', nText = '0'] = process.argv.slice(2);
const port = Number(portText);
const n = Number(nText);

if (mode === 'echo') {
  const echo = await startEcho(port, '0.0.0.0');
  console.log(JSON.stringify({ listening: echo.port }));
} else if (mode === 'latency') {
  console.log(JSON.stringify(await measureLatency(port, n, 30_000, host)));
  process.exit(0);
} else if (mode === 'rate') {
  console.log(JSON.stringify(await measureConnectionRate(port, n, 10_000, 8, host)));
  process.exit(0);
} else if (mode === 'hold') {
  const sockets: net.Socket[] = [];
  for (let i = 0; i < n; i++) {
    sockets.push(
      await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect(port, host, () => resolve(s));
        s.once('error', reject);
      }),
    );
  }
  console.log(JSON.stringify({ held: sockets.length }));
}

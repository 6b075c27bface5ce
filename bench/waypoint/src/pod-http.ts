/**
 * Runs inside a lab pod, printing one JSON line:
 *   serve <port> <bytes>                                  the upstream; prints {"listening":port}
 *   load <url> <rate> <count> <warmup> <pool> <timeoutMs> <bytes>   the open-loop generator
 */
import { startBodyServer } from './body-server.js';
import { openLoop } from './open-loop.js';

const [mode, ...args] = process.argv.slice(2);
const int = (i: number): number => {
  const n = Number(args[i]);
  if (!Number.isInteger(n) || n < 0) throw new Error(`argument ${i + 2} must be a whole number: ${args[i]}`);
  return n;
};

if (mode === 'serve') {
  const server = await startBodyServer(int(0), int(1));
  console.log(JSON.stringify({ listening: server.port }));
} else if (mode === 'load') {
  const result = await openLoop({
    url: args[0] ?? '',
    rate: int(1),
    count: int(2),
    warmup: int(3),
    pool: int(4),
    requestTimeoutMs: int(5),
    expectBytes: int(6),
  });
  console.log(JSON.stringify(result));
  process.exit(0);
} else {
  console.error(
    'usage: pod-http serve <port> <bytes> | load <url> <rate> <count> <warmup> <pool> <timeoutMs> <bytes>',
  );
  process.exit(2);
}

#!/usr/bin/env node
/**
 * KubeCluster's Service watcher for cluster DNS:
 *   node cluster-dns-main.js <server-url> <token-file> <ca-file> <hosts-file>
 * Runs until SIGTERM; KubeCluster starts it inside the node's network namespace.
 */
import { readFileSync } from 'node:fs';
import { watchServicesToHosts } from './cluster-dns.js';

const [server, tokenFile, caFile, hostsPath] = process.argv.slice(2);
if (!server || !tokenFile || !caFile || !hostsPath) {
  console.error('usage: cluster-dns-main.js <server-url> <token-file> <ca-file> <hosts-file>');
  process.exit(2);
}
const controller = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => controller.abort());
await watchServicesToHosts({
  server,
  token: readFileSync(tokenFile, 'utf8').trim(),
  ca: readFileSync(caFile),
  hostsPath,
  signal: controller.signal,
  log: (line) => console.log(`${new Date().toISOString()} ${line}`),
});

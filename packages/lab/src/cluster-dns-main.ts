#!/usr/bin/env node
/**
 * KubeCluster's Service watcher for cluster DNS:
 *   node cluster-dns-main.js <kubeconfig> <hosts-file>
 * Takes the server, CA file and token from the kubeconfig (waiting for it to appear), and runs
 * until SIGTERM. KubeCluster starts it inside the node's network namespace.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { watchServicesToHosts } from './cluster-dns.js';

const [kubeconfigPath, hostsPath] = process.argv.slice(2);
if (!kubeconfigPath || !hostsPath) {
  console.error('usage: cluster-dns-main.js <kubeconfig> <hosts-file>');
  process.exit(2);
}
const controller = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => controller.abort());
let text: string | undefined;
while (text === undefined && !controller.signal.aborted) {
  text = await readFile(kubeconfigPath, 'utf8').catch(() => undefined);
  if (text === undefined) await new Promise((r) => setTimeout(r, 200));
}
const config = parse(text ?? '') as {
  clusters?: { cluster?: { server?: string; 'certificate-authority'?: string } }[];
  users?: { user?: { token?: string } }[];
};
const server = config.clusters?.[0]?.cluster?.server;
const caFile = config.clusters?.[0]?.cluster?.['certificate-authority'];
const token = config.users?.[0]?.user?.token;
if (!server || !caFile || !token) {
  console.error(`${kubeconfigPath}: needs a cluster server, certificate-authority and a user token`);
  process.exit(2);
}
await watchServicesToHosts({
  server,
  token,
  ca: readFileSync(caFile),
  hostsPath,
  signal: controller.signal,
  log: (line) => console.log(`${new Date().toISOString()} ${line}`),
});

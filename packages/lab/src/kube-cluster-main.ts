#!/usr/bin/env node
/**
 * A real one-node Kubernetes for users and scripts (needs root):
 *   node packages/lab/dist/kube-cluster-main.js up   [--prefix kc]   bring it up, print how to use it
 *   node packages/lab/dist/kube-cluster-main.js env  [--prefix kc]   print KUBECONFIG=… and the paths
 *   node packages/lab/dist/kube-cluster-main.js down [--prefix kc]   stop everything and remove it
 * The cluster keeps running after `up` returns; `down` (or the next `up`) removes it.
 */
import { KubeCluster } from './kube-cluster.js';

const [command, ...rest] = process.argv.slice(2);
let prefix = 'kc';
for (let i = 0; i < rest.length; i++) {
  if (rest[i] === '--prefix' && rest[i + 1]) prefix = rest[++i] as string;
  else if (rest[i]?.startsWith('--prefix=')) prefix = rest[i]?.slice('--prefix='.length) as string;
  else {
    console.error(`unknown argument ${rest[i]}`);
    process.exit(2);
  }
}

function printEnv(c: KubeCluster): void {
  console.log(`export KUBECONFIG=${c.kubeconfig}`);
  console.log(`# API server     ${c.url} (forwarded into netns ${c.netns})`);
  console.log(
    `# node           ${c.nodeName} ${c.nodeIp}; pods ${c.podRange}; services ${c.serviceRange}; DNS ${c.dnsIp}`,
  );
  console.log(`# containerd     ${c.containerdSocket} (ctr --address … -n k8s.io)`);
  console.log(`# CNI            bin ${c.cniBinDir}; conf ${c.cniConfFile}`);
  console.log(`# logs           ${c.dir}/logs`);
}

try {
  if (command === 'up') {
    const c = await KubeCluster.start({ prefix, log: (l) => console.error(l) });
    printEnv(c);
  } else if (command === 'env') {
    printEnv(await KubeCluster.attach(prefix));
  } else if (command === 'down') {
    const t0 = Date.now();
    const found = await KubeCluster.cleanup(prefix);
    console.log(
      found.length ? `removed ${found.join(', ')} in ${Date.now() - t0} ms` : `no cluster "${prefix}"`,
    );
  } else {
    console.error('usage: kube-cluster-main.js up|env|down [--prefix name]');
    process.exitCode = 2;
  }
} catch (err) {
  console.error((err as Error).message);
  process.exitCode = 1;
}

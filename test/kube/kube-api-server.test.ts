/**
 * The real Kubernetes API server the cluster suites run against: etcd and a kube-apiserver built
 * from Debian's kubernetes source package, on loopback. Checks what the suites rely on: the
 * admin kubeconfig works for kubectl, a watch sees changes, projected service-account tokens are
 * issued for the istio-ca audience and verified by TokenReview, and a restart keeps etcd's data.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { KubeApiServer, kubeBinaries } from '@ambient/lab';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');

let api: KubeApiServer;
const kubectl = async (...args: string[]) =>
  (await run('kubectl', ['--kubeconfig', api.kubeconfig, ...args], { encoding: 'utf8' })).stdout;

/** POSTs a JSON body with `kubectl create --raw` (kubectl 1.20 has no `create token`). */
async function rawPost(apiPath: string, body: object): Promise<Record<string, unknown>> {
  const p = execFile('kubectl', ['--kubeconfig', api.kubeconfig, 'create', '--raw', apiPath, '-f', '-']);
  let out = '';
  let err = '';
  p.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  p.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  p.stdin?.end(JSON.stringify(body));
  const code = await new Promise<number | null>((r) => p.once('exit', r));
  if (code !== 0) throw new Error(`kubectl create --raw ${apiPath}: ${err}`);
  return JSON.parse(out) as Record<string, unknown>;
}

describe('a real kube-apiserver on loopback', () => {
  beforeAll(async () => {
    const t0 = Date.now();
    api = await KubeApiServer.start({ binDir: await kubeBinaries(ROOT) });
    console.log(`kube-apiserver and etcd ready in ${Date.now() - t0} ms at ${api.url}`);
  }, 180_000);
  afterAll(async () => {
    await api?.stop();
  }, 60_000);

  it('serves kubectl with the admin kubeconfig, and a watch sees a namespace labelled', async () => {
    await kubectl('create', 'namespace', 'demo');
    const watch = execFile('kubectl', [
      '--kubeconfig',
      api.kubeconfig,
      'get',
      'namespace',
      'demo',
      '--watch',
      '--output-watch-events',
      '-o',
      'jsonpath={.type} {.object.metadata.labels}{"\\n"}',
    ]);
    let seen = '';
    watch.stdout?.on('data', (d: Buffer) => {
      seen += d.toString();
    });
    await new Promise((r) => setTimeout(r, 500));
    await kubectl('label', 'namespace', 'demo', 'istio.io/dataplane-mode=ambient');
    const deadline = Date.now() + 20_000;
    while (!seen.includes('istio.io/dataplane-mode') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    watch.kill();
    expect(seen).toContain('MODIFIED');
    expect(seen).toContain('"istio.io/dataplane-mode":"ambient"');
  }, 60_000);

  it('issues a token for the istio-ca audience that TokenReview accepts, and refuses it for another audience', async () => {
    await kubectl('create', 'serviceaccount', 'ztunnel', '-n', 'demo');
    const issued = await rawPost('/api/v1/namespaces/demo/serviceaccounts/ztunnel/token', {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { audiences: ['istio-ca'], expirationSeconds: 600 },
    });
    const token = (issued.status as { token: string }).token;
    expect(token.split('.')).toHaveLength(3);
    const review = async (audiences: string[]) =>
      (
        await rawPost('/apis/authentication.k8s.io/v1/tokenreviews', {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenReview',
          spec: { token, audiences },
        })
      ).status as { authenticated?: boolean; user?: { username: string } };
    const ok = await review(['istio-ca']);
    expect(ok.authenticated).toBe(true);
    expect(ok.user?.username).toBe('system:serviceaccount:demo:ztunnel');
    const other = await review(['some-other-audience']);
    expect(other.authenticated).not.toBe(true);
  }, 60_000);

  it('keeps its objects across an API server restart (etcd keeps the data)', async () => {
    const t0 = Date.now();
    await api.stopApiServer();
    await api.startApiServer();
    console.log(`kube-apiserver restarted in ${Date.now() - t0} ms`);
    expect(await kubectl('get', 'namespace', 'demo', '-o', 'jsonpath={.metadata.labels}')).toContain(
      'istio.io/dataplane-mode',
    );
  }, 120_000);
});

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliError } from '../cli-error.js';
import { KubeClient } from './kube-client.js';

let dir = '';
const kubeconfig = (server: string, namespace?: string) => `apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: "${server}", insecure-skip-tls-verify: true } }]
users: [{ name: u, user: { token: t0 } }]
contexts: [{ name: x, context: { cluster: c, user: u${namespace ? `, namespace: ${namespace}` : ''} } }]
current-context: x
`;

async function client(server: string, timeoutMs: number, namespace?: string): Promise<KubeClient> {
  const file = join(dir, `kc-${Math.random().toString(36).slice(2)}`);
  await writeFile(file, kubeconfig(server, namespace));
  return KubeClient.connect(
    { kind: 'kube', kubeconfig: file, from: '--kubeconfig', serviceHost: '', servicePort: '' },
    timeoutMs,
  );
}

async function failure(p: Promise<unknown>): Promise<CliError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(CliError);
    return err as CliError;
  }
  throw new Error('expected a failure');
}

describe('KubeClient: every way the API server fails is one line naming it', () => {
  const sockets = new Set<net.Socket>();
  let silent: net.Server;
  let silentPort = 0;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kube-client-'));
    // Accepts connections and never says a word (a hung API server, a black-holing proxy).
    silent = net.createServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    silentPort = (silent.address() as net.AddressInfo).port;
  });

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => silent.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  it('the context namespace is the default namespace, else default', async () => {
    expect((await client('https://127.0.0.1:1', 100, 'team-a')).defaultNamespace).toBe('team-a');
    expect((await client('https://127.0.0.1:1', 100)).defaultNamespace).toBe('default');
  });

  it('a server that accepts and never answers: CLI_ERR_API_UNREACHABLE once the request bound passes', async () => {
    const kube = await client(`https://127.0.0.1:${silentPort}`, 300);
    const t0 = Date.now();
    const err = await failure(kube.get('/api/v1/namespaces/demo'));
    console.log(`hung API server reported after ${Date.now() - t0} ms (bound 300 ms)`);
    expect(err.code).toBe('CLI_ERR_API_UNREACHABLE');
    expect(err.message).toBe(
      `cannot reach the Kubernetes API server at https://127.0.0.1:${silentPort}: GET /api/v1/namespaces/demo: timed out`,
    );
  });

  it('a refused connection: CLI_ERR_API_UNREACHABLE naming the server', async () => {
    // A port that was free a moment ago: nothing listens there.
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const kube = await client(`https://127.0.0.1:${port}`, 2000);
    const err = await failure(kube.get('/api'));
    expect(err.code).toBe('CLI_ERR_API_UNREACHABLE');
    expect(err.message).toMatch(
      new RegExp(
        `^cannot reach the Kubernetes API server at https://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`,
      ),
    );
  });

  it('a kubeconfig without a current cluster: CLI_ERR_KUBECONFIG', async () => {
    const file = join(dir, 'empty');
    await writeFile(file, 'apiVersion: v1\nkind: Config\n');
    const make = () =>
      KubeClient.connect({
        kind: 'kube',
        kubeconfig: file,
        from: 'KUBECONFIG',
        serviceHost: '',
        servicePort: '',
      });
    expect(make).toThrow(CliError);
    try {
      make();
    } catch (err) {
      expect((err as CliError).code).toBe('CLI_ERR_KUBECONFIG');
    }
  });

  it('in-cluster without the service account files: the request fails naming the file, one line', async () => {
    const kube = KubeClient.connect(
      { kind: 'kube', kubeconfig: '', from: 'in-cluster', serviceHost: '127.0.0.1', servicePort: '1' },
      500,
    );
    const err = await failure(kube.get('/api'));
    console.log(`in-cluster without service account files: ${err.code}: ${err.message}`);
    expect(err.message).not.toContain('\n');
    expect(err.message).toMatch(/ca\.crt|ECONNREFUSED|token/);
  });
});

/**
 * KubeApiSource against a small in-process API server that speaks the list and watch protocol
 * (JSON lists with resourceVersion, newline-delimited watch events, ERROR 410 for a version it no
 * longer holds). The real kube-apiserver suite is test/kube/kube-source.test.ts; custom resources
 * are covered here because the kube-apiserver 1.20 build used there exits when one is created.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { KUBE_SOURCE_KINDS, KubeApiSource } from './kube-api-source.js';

const AP_PATH = '/apis/security.istio.io/v1/authorizationpolicies';

function policy(name: string, action: string, rv: number) {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name, namespace: 'demo', resourceVersion: String(rv) },
    spec: { action, rules: [{ from: [{ source: { namespaces: ['demo'] } }] }] },
  };
}

/** Holds AuthorizationPolicies; Gateways are not served (their CRD "not installed"). */
class FakeApiServer {
  rv = 10;
  /** Watches from a version below this get ERROR 410, as a watch cache that moved on. */
  oldestRv = 0;
  readonly store = new Map<string, ReturnType<typeof policy>>();
  readonly watches = new Set<http.ServerResponse>();
  readonly lists: string[] = [];
  private server = http.createServer((req, res) => this.handle(req, res));

  async start(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    if (!this.server.listening) return;
    this.endWatches();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  put(name: string, action: string): void {
    const type = this.store.has(name) ? 'MODIFIED' : 'ADDED';
    const o = policy(name, action, ++this.rv);
    this.store.set(name, o);
    this.send({ type, object: o });
  }

  remove(name: string): void {
    const o = this.store.get(name);
    if (!o) return;
    this.store.delete(name);
    this.send({
      type: 'DELETED',
      object: { ...o, metadata: { ...o.metadata, resourceVersion: String(++this.rv) } },
    });
  }

  send(event: unknown): void {
    for (const w of this.watches) w.write(`${JSON.stringify(event)}\n`);
  }

  endWatches(): void {
    for (const w of this.watches) w.end();
    this.watches.clear();
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== AP_PATH) {
      res.statusCode = url.pathname.startsWith('/apis/') ? 404 : 200;
      res.end(
        res.statusCode === 404
          ? '404 page not found'
          : JSON.stringify({ metadata: { resourceVersion: '1' }, items: [] }),
      );
      return;
    }
    if (url.searchParams.get('watch') === '1') {
      res.writeHead(200, { 'content-type': 'application/json' });
      const from = Number(url.searchParams.get('resourceVersion'));
      if (from < this.oldestRv) {
        res.end(
          `${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, message: `too old resource version: ${from} (${this.oldestRv})` } })}\n`,
        );
        return;
      }
      this.watches.add(res);
      res.on('close', () => this.watches.delete(res));
      return;
    }
    this.lists.push(url.search);
    res.setHeader('content-type', 'application/json');
    res.end(
      JSON.stringify({
        metadata: { resourceVersion: String(this.rv) },
        // Items of a list carry no kind or apiVersion, as the API server sends them.
        items: [...this.store.values()].map(({ apiVersion: _a, kind: _k, ...rest }) => rest),
      }),
    );
  }
}

async function eventually<T>(what: string, fn: () => T | undefined | false): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

let api: FakeApiServer | undefined;
let source: KubeApiSource | undefined;

afterEach(async () => {
  source?.close();
  await api?.stop();
});

async function setup(): Promise<{ api: FakeApiServer; source: KubeApiSource; changes: string[][] }> {
  api = new FakeApiServer();
  const port = await api.start();
  const kc = new KubeConfig();
  kc.loadFromClusterAndUser(
    { name: 'fake', server: `http://127.0.0.1:${port}`, skipTLSVerify: true },
    { name: 'u', token: 't' },
  );
  const kinds = KUBE_SOURCE_KINDS.filter((k) => k.kind === 'AuthorizationPolicy' || k.kind === 'Gateway');
  source = new KubeApiSource({
    kubeConfig: kc,
    kinds,
    backoff: { initialMs: 10, maxMs: 50 },
    crdPollBackoff: { initialMs: 10, maxMs: 50 },
  });
  const changes: string[][] = [];
  source.onChange((keys) => changes.push([...keys]));
  return { api, source, changes };
}

describe('KubeApiSource (in-process API server: custom resources, refusals, 410)', () => {
  it('lists before start resolves; a refused object is reported with its field path; a missing CRD once', async () => {
    const { api, source } = await setup();
    api.put('good', 'ALLOW');
    api.put('bad', 'MAYBE');
    await source.start();
    expect([...source.objects().keys()]).toEqual(['AuthorizationPolicy/demo/good']);
    const bad = source.invalid().find((i) => i.ref === 'AuthorizationPolicy demo/bad');
    expect(bad?.problems.map((p) => p.path)).toEqual(['spec.action']);
    expect(bad?.kept).toBeUndefined();
    expect(bad?.file).toBe('/apis/security.istio.io/v1/namespaces/demo/authorizationpolicies/bad');
    expect(source.stats().missing).toEqual(['Gateway']);
    // Looked for again with backoff, but reported once.
    await new Promise((r) => setTimeout(r, 200));
    expect(source.invalid().filter((i) => i.ref.startsWith('CustomResourceDefinition'))).toHaveLength(1);
  });

  it('an invalid edit keeps the last good version; a valid one replaces it; deletes remove objects and refusals', async () => {
    const { api, source, changes } = await setup();
    api.put('p', 'DENY');
    await source.start();
    await eventually('watching', () => api.watches.size === 1);
    api.put('p', 'NOPE');
    const refused = await eventually('refusal', () =>
      source.invalid().find((i) => i.ref === 'AuthorizationPolicy demo/p'),
    );
    expect(refused.kept).toEqual(['AuthorizationPolicy/demo/p']);
    const kept = source.objects().get('AuthorizationPolicy/demo/p');
    expect(kept?.kind === 'AuthorizationPolicy' && kept.action).toBe('DENY');
    api.put('p', 'ALLOW');
    await eventually('valid again', () => {
      const o = source.objects().get('AuthorizationPolicy/demo/p');
      return o?.kind === 'AuthorizationPolicy' && o.action === 'ALLOW';
    });
    expect(source.invalid().some((i) => i.ref === 'AuthorizationPolicy demo/p')).toBe(false);
    api.put('q', 'BAD');
    await eventually('q refused', () => source.invalid().some((i) => i.ref === 'AuthorizationPolicy demo/q'));
    api.remove('q');
    api.remove('p');
    await eventually(
      'gone',
      () => source.objects().size === 0 && !source.invalid().some((i) => i.ref.startsWith('Auth')),
    );
    expect(changes.flat()).toContain('AuthorizationPolicy/demo/p');
  });

  it('a bookmark moves the resourceVersion; a watch resumed from a version no longer held (ERROR 410) relists: missed adds appear, missed deletes go', async () => {
    const { api, source } = await setup();
    api.put('stays', 'ALLOW');
    api.put('missed-delete', 'ALLOW');
    await source.start();
    await eventually('watching', () => api.watches.size === 1);
    api.send({
      type: 'BOOKMARK',
      object: { kind: 'AuthorizationPolicy', metadata: { resourceVersion: '50' } },
    });
    await eventually('bookmark', () => source.stats().resourceVersions.AuthorizationPolicy === '50');
    // Changes the source does not see, then the server ends the stream and has moved on.
    const watchersGone = api.watches.size;
    api.endWatches();
    api.store.delete('missed-delete');
    api.rv = 100;
    api.store.set('missed-add', policy('missed-add', 'DENY', 100));
    api.oldestRv = 90;
    const listsBefore = api.lists.length;
    await eventually('relisted', () => source.objects().has('AuthorizationPolicy/demo/missed-add'));
    expect(watchersGone).toBe(1);
    expect(source.stats().relists).toBe(1);
    expect(api.lists.length).toBe(listsBefore + 1);
    expect([...source.objects().keys()].sort()).toEqual([
      'AuthorizationPolicy/demo/missed-add',
      'AuthorizationPolicy/demo/stays',
    ]);
    expect(source.stats().resourceVersions.AuthorizationPolicy).toBe('100');
  });

  it('reports the key of every object a watch event or a relist changes, and snapshots stay as they were', async () => {
    const { api, source, changes } = await setup();
    api.put('a', 'ALLOW');
    api.put('b', 'DENY');
    await source.start();
    await eventually('watching', () => api.watches.size === 1);
    let before = source.objects();
    const first = before;
    const firstCopy = new Map(first);
    changes.length = 0;
    const step = async (what: string, act: () => void, done: () => boolean) => {
      act();
      await eventually(what, done);
      const after = source.objects();
      const keys = new Set([...before.keys(), ...after.keys()]);
      const differ = [...keys].filter((k) => before.get(k) !== after.get(k));
      const reported = new Set(changes.splice(0).flat());
      expect(
        differ.filter((k) => !reported.has(k)),
        what,
      ).toEqual([]);
      before = after;
    };
    const action = (name: string) => {
      const o = source.objects().get(`AuthorizationPolicy/demo/${name}`);
      return o?.kind === 'AuthorizationPolicy' ? o.action : undefined;
    };
    await step(
      'edit',
      () => api.put('a', 'DENY'),
      () => action('a') === 'DENY',
    );
    await step(
      'add',
      () => api.put('c', 'ALLOW'),
      () => action('c') === 'ALLOW',
    );
    await step(
      'invalid edit',
      () => api.put('c', 'NOPE'),
      () => source.invalid().some((i) => i.ref === 'AuthorizationPolicy demo/c'),
    );
    await step(
      'delete',
      () => api.remove('b'),
      () => action('b') === undefined,
    );
    await step(
      'relist',
      () => {
        api.endWatches();
        api.store.delete('a');
        api.rv = 200;
        api.store.set('d', policy('d', 'DENY', 200));
        api.oldestRv = 190;
      },
      () => action('d') === 'DENY' && action('a') === undefined,
    );
    // The first snapshot is unchanged by all of it.
    expect(new Map(first)).toEqual(firstCopy);
    expect([...first.keys()].sort()).toEqual(['AuthorizationPolicy/demo/a', 'AuthorizationPolicy/demo/b']);
  });

  it('start waits while the API server is unreachable (retrying with backoff), and close ends the wait', async () => {
    const { api, source } = await setup();
    await api.stop();
    let done = false;
    const started = source.start().then(() => {
      done = true;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(done).toBe(false);
    expect(source.stats().failures).toBeGreaterThan(0);
    source.close();
    await expect(started).rejects.toThrow(/closed before the initial sync/);
    expect(done).toBe(false);
  });
});

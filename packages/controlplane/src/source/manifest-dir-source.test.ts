import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TimeSlicer } from '../ambient/time-slicer.js';
import { ManifestDirFixture } from './manifest-dir-fixture.js';
import { ManifestDirSource } from './manifest-dir-source.js';

const fx = new ManifestDirFixture();
beforeEach(() => fx.setUp('manifest-dir-source-'));
afterEach(() => fx.tearDown());
const put = (name: string, text: string) => fx.put(name, text);
const open = () => fx.open();

const podYaml = (name: string, ip: string, extra = '') => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: demo${extra}
spec:
  nodeName: node-a
status:
  podIP: ${ip}
`;

const podJson = (name: string, ip: string) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'demo' },
  status: { podIP: ip },
});

describe('ManifestDirSource: loading', () => {
  it('loads every document of a multi-document YAML file, skipping empty ones', async () => {
    await put(
      'demo.yaml',
      [
        'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n  labels:\n    istio.io/dataplane-mode: ambient\n',
        podYaml('web', '10.0.0.5'),
        '# only a comment\n',
        '',
        'apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: demo}\nspec:\n  clusterIP: 10.96.0.10\n  ports: [{port: 80}]\n',
      ].join('---\n'),
    );
    const { source } = await open();
    const objects = source.objects();
    expect([...objects.keys()].sort()).toEqual(['Namespace//demo', 'Pod/demo/web', 'Service/demo/web']);
    expect(objects.get('Namespace//demo')?.metadata.labels).toEqual({ 'istio.io/dataplane-mode': 'ambient' });
    expect(objects.get('Pod/demo/web')).toMatchObject({
      kind: 'Pod',
      podIps: ['10.0.0.5'],
      nodeName: 'node-a',
    });
    expect(objects.get('Service/demo/web')).toMatchObject({ clusterIps: ['10.96.0.10'] });
    expect(source.invalid()).toEqual([]);
  });

  it('loads JSON arrays, single JSON objects, .yml files and kind: List in YAML and JSON', async () => {
    await put('array.json', JSON.stringify([podJson('a', '10.0.0.1'), podJson('b', '10.0.0.2')]));
    await put('single.json', JSON.stringify(podJson('c', '10.0.0.3')));
    await put(
      'list.json',
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [podJson('d', '10.0.0.4')] }),
    );
    await put(
      'list.yml',
      `apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: ServiceAccount
    metadata: {name: e, namespace: demo}
  - apiVersion: v1
    kind: Pod
    metadata: {name: f, namespace: demo}
`,
    );
    const { source } = await open();
    expect([...source.objects().keys()].sort()).toEqual([
      'Pod/demo/a',
      'Pod/demo/b',
      'Pod/demo/c',
      'Pod/demo/d',
      'Pod/demo/f',
      'ServiceAccount/demo/e',
    ]);
    expect(source.invalid()).toEqual([]);
  });

  it('reports invalid documents with file, ref and field paths while keeping the valid ones', async () => {
    await put(
      'pods.yaml',
      `${podYaml('web', '10.0.0.5')}---
apiVersion: v1
kind: Pod
metadata: {name: broken, namespace: demo}
spec:
  containers:
    - ports: [{containerPort: 0}]
status:
  podIP: nope
`,
    );
    const { source } = await open();
    expect([...source.objects().keys()]).toEqual(['Pod/demo/web']);
    expect(source.invalid()).toEqual([
      {
        file: 'pods.yaml',
        ref: 'Pod demo/broken',
        problems: [
          { path: 'status.podIP', message: '"nope" is not an IP address' },
          { path: 'spec.containers[0].ports[0].containerPort', message: '0 is not a port from 1 to 65535' },
        ],
      },
    ]);
  });

  it('reports a file that does not parse, keeping the objects of the other files', async () => {
    await put('good.yaml', podYaml('web', '10.0.0.5'));
    await put('bad.json', '[{"kind": "Pod",');
    await put('bad.yaml', 'apiVersion: v1\nkind: Pod\nmetadata: {name: x\n');
    const { source } = await open();
    expect([...source.objects().keys()]).toEqual(['Pod/demo/web']);
    const invalid = [...source.invalid()].sort((a, b) => a.file.localeCompare(b.file));
    expect(invalid).toHaveLength(2);
    expect(invalid[0]).toMatchObject({ file: 'bad.json', ref: 'bad.json', problems: [{ path: '' }] });
    expect(invalid[0]?.problems[0]?.message).toMatch(/^JSON: /);
    // The parser stopped inside `metadata`; the problem names the field it was reading.
    expect(invalid[1]).toMatchObject({
      file: 'bad.yaml',
      ref: 'bad.yaml',
      problems: [{ path: 'metadata.name' }],
    });
    expect(invalid[1]?.problems[0]?.message).toMatch(/^YAML: /);
  });

  it('ignores kinds the mesh does not use, without reporting them', async () => {
    await put(
      'mixed.yaml',
      `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo}
---
${podYaml('web', '10.0.0.5')}`,
    );
    const { source } = await open();
    expect([...source.objects().keys()]).toEqual(['Pod/demo/web']);
    expect(source.invalid()).toEqual([]);
  });

  it('ignores dot files, other extensions and directories', async () => {
    await put('pod.yaml', podYaml('web', '10.0.0.5'));
    await writeFile(join(fx.dir, '.staged.yaml'), podYaml('staged', '10.0.0.6'));
    await writeFile(join(fx.dir, 'notes.txt'), podYaml('notes', '10.0.0.7'));
    await writeFile(join(fx.dir, 'pod.yaml.bak'), podYaml('backup', '10.0.0.8'));
    await writeFile(join(fx.dir, 'broken.txt'), '{{{ not yaml');
    await mkdir(join(fx.dir, 'nested.yaml'));
    await writeFile(join(fx.dir, 'nested.yaml', 'inner.yaml'), podYaml('inner', '10.0.0.9'));
    const { source } = await open();
    expect([...source.objects().keys()]).toEqual(['Pod/demo/web']);
    expect(source.invalid()).toEqual([]);
  });
});

describe('ManifestDirSource: changes', () => {
  it('reports only the keys whose content changed, and unchanged objects keep their identity', async () => {
    await put('a.yaml', [podYaml('a1', '10.0.0.1'), podYaml('a2', '10.0.0.2')].join('---\n'));
    await put('b.yaml', podYaml('b1', '10.0.1.1'));
    const { source, changes } = await open();
    const before = source.objects();
    expect(changes()).toEqual([]);

    await put(
      'a.yaml',
      [
        podYaml('a1', '10.0.0.1', '\n  labels: {app: a1}'),
        podYaml('a2', '10.0.0.2'),
        podYaml('a3', '10.0.0.3'),
      ].join('---\n'),
    );
    await source.rescan();
    expect(changes()).toEqual(['Pod/demo/a1', 'Pod/demo/a3']);

    const after = source.objects();
    expect(after.get('Pod/demo/a2')).toBe(before.get('Pod/demo/a2'));
    expect(after.get('Pod/demo/b1')).toBe(before.get('Pod/demo/b1'));
    expect(after.get('Pod/demo/a1')).not.toBe(before.get('Pod/demo/a1'));
    expect(after.get('Pod/demo/a1')?.metadata.labels).toEqual({ app: 'a1' });
    expect(after.has('Pod/demo/a3')).toBe(true);
  });

  it('reports nothing when a rewrite changes only comments and layout', async () => {
    await put('a.yaml', podYaml('a1', '10.0.0.1'));
    const { source, changes } = await open();
    const before = source.objects().get('Pod/demo/a1');
    await put(
      'a.yaml',
      '# reformatted\napiVersion: v1\nkind: Pod\nmetadata: {name: a1, namespace: demo}\nspec: {nodeName: node-a}\nstatus: {podIP: 10.0.0.1}\n',
    );
    await source.rescan();
    expect(changes()).toEqual([]);
    expect(source.objects().get('Pod/demo/a1')).toBe(before);
  });

  it('reports nothing when no file changed', async () => {
    await put('a.yaml', podYaml('a1', '10.0.0.1'));
    const { source, changes } = await open();
    await source.rescan();
    await source.rescan();
    expect(changes()).toEqual([]);
  });

  it('keeps the last good version of an object whose document becomes invalid, and reports it', async () => {
    await put('a.yaml', [podYaml('a1', '10.0.0.1'), podYaml('a2', '10.0.0.2')].join('---\n'));
    const { source, changes } = await open();
    const a1 = source.objects().get('Pod/demo/a1');
    await put('a.yaml', [podYaml('a1', 'not-an-ip'), podYaml('a2', '10.0.0.2')].join('---\n'));
    await source.rescan();
    expect(changes()).toEqual([]);
    expect([...source.objects().keys()].sort()).toEqual(['Pod/demo/a1', 'Pod/demo/a2']);
    expect(source.objects().get('Pod/demo/a1')).toBe(a1);
    expect(source.invalid()).toEqual([
      {
        file: 'a.yaml',
        ref: 'Pod demo/a1',
        problems: [{ path: 'status.podIP', message: '"not-an-ip" is not an IP address' }],
        kept: ['Pod/demo/a1'],
      },
    ]);

    // Fixed: the new version replaces the last good one and the report goes.
    await put('a.yaml', [podYaml('a1', '10.0.0.9'), podYaml('a2', '10.0.0.2')].join('---\n'));
    await source.rescan();
    expect(changes()).toEqual(['Pod/demo/a1']);
    expect(source.objects().get('Pod/demo/a1')).toMatchObject({ podIps: ['10.0.0.9'] });
    expect(source.invalid()).toEqual([]);
  });

  it('reports an object defined in two files as invalid in the later file, and uses the first', async () => {
    await put('a.yaml', podYaml('web', '10.0.0.1'));
    await put('b.yaml', `${podYaml('web', '10.0.0.2')}---\n${podYaml('other', '10.0.0.3')}`);
    const { source, changes } = await open();
    expect([...source.objects().keys()].sort()).toEqual(['Pod/demo/other', 'Pod/demo/web']);
    expect(source.objects().get('Pod/demo/web')).toMatchObject({ podIps: ['10.0.0.1'] });
    expect(source.invalid()).toEqual([
      {
        file: 'b.yaml',
        ref: 'duplicate:Pod/demo/web',
        problems: [{ path: 'metadata.name', message: 'Pod/demo/web is already defined in a.yaml' }],
      },
    ]);

    // With the first definition gone, the other one takes over and is no longer a duplicate.
    await rm(join(fx.dir, 'a.yaml'));
    await source.rescan();
    expect(changes()).toEqual(['Pod/demo/web']);
    expect(source.objects().get('Pod/demo/web')).toMatchObject({ podIps: ['10.0.0.2'] });
    expect(source.invalid()).toEqual([]);
  });

  it('reports an object defined twice in one file, keeping the first definition', async () => {
    await put('a.yaml', `${podYaml('web', '10.0.0.1')}---\n${podYaml('web', '10.0.0.2')}`);
    const { source } = await open();
    expect(source.objects().get('Pod/demo/web')).toMatchObject({ podIps: ['10.0.0.1'] });
    expect(source.invalid()).toEqual([
      {
        file: 'a.yaml',
        ref: 'Pod demo/web',
        problems: [
          { path: 'metadata.name', message: 'Pod/demo/web is defined twice in this file; the first is kept' },
        ],
      },
    ]);
  });

  it('removes the objects of a deleted file and reports their keys', async () => {
    await put('a.yaml', [podYaml('a1', '10.0.0.1'), podYaml('a2', '10.0.0.2')].join('---\n'));
    await put('b.json', JSON.stringify(podJson('b1', '10.0.1.1')));
    const { source, changes } = await open();
    const b1 = source.objects().get('Pod/demo/b1');
    await rm(join(fx.dir, 'a.yaml'));
    await source.rescan();
    expect(changes()).toEqual(['Pod/demo/a1', 'Pod/demo/a2']);
    expect([...source.objects().keys()]).toEqual(['Pod/demo/b1']);
    expect(source.objects().get('Pod/demo/b1')).toBe(b1);
  });

  it('drops the problems of a deleted file', async () => {
    await put('bad.yaml', podYaml('broken', 'nope'));
    const { source } = await open();
    expect(source.invalid()).toHaveLength(1);
    await rm(join(fx.dir, 'bad.yaml'));
    await source.rescan();
    expect(source.invalid()).toEqual([]);
  });

  it('returns a snapshot from objects() that later scans do not change', async () => {
    await put('a.yaml', podYaml('a1', '10.0.0.1'));
    const { source } = await open();
    const snapshot = source.objects();
    await put('b.yaml', podYaml('b1', '10.0.0.2'));
    await source.rescan();
    expect([...snapshot.keys()]).toEqual(['Pod/demo/a1']);
    expect([...source.objects().keys()].sort()).toEqual(['Pod/demo/a1', 'Pod/demo/b1']);
  });

  it('picks up a file written after start without an explicit rescan', async () => {
    const source = new ManifestDirSource({ dir: fx.dir, rescanMs: 50 });
    fx.track(source);
    await source.start();
    const seen = new Promise<readonly string[]>((resolve) => source.onChange(resolve));
    await put('late.yaml', podYaml('late', '10.0.0.9'));
    expect(await seen).toEqual(['Pod/demo/late']);
    expect(source.objects().has('Pod/demo/late')).toBe(true);
  });
});

const denyYaml = (action: string) => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-sleep
  namespace: demo
spec:
  selector:
    matchLabels: {app: echo}
  action: ${action}
  rules:
    - from:
        - source:
            principals: [cluster.local/ns/demo/sa/sleep]
`;

describe('ManifestDirSource: an invalid edit keeps the last good config', () => {
  it('keeps an enforced DENY whose action is edited to an invalid value, reporting spec.action', async () => {
    await put('deny.yaml', denyYaml('DENY'));
    const { source, changes } = await open();
    const deny = source.objects().get('AuthorizationPolicy/demo/deny-sleep');
    expect(deny).toMatchObject({ action: 'DENY' });
    await put('deny.yaml', denyYaml('BOGUS'));
    await source.rescan();
    expect(changes()).toEqual([]);
    expect(source.objects().get('AuthorizationPolicy/demo/deny-sleep')).toBe(deny);
    expect(source.invalid()).toEqual([
      {
        file: 'deny.yaml',
        ref: 'AuthorizationPolicy demo/deny-sleep',
        problems: [{ path: 'spec.action', message: '"BOGUS" must be ALLOW, DENY, AUDIT or CUSTOM' }],
        kept: ['AuthorizationPolicy/demo/deny-sleep'],
      },
    ]);
  });

  it('keeps every object of a file overwritten with malformed YAML, reports where it broke, and a fix replaces them', async () => {
    await put('mixed.yaml', `${denyYaml('DENY')}---\n${podYaml('web', '10.0.0.5')}`);
    const { source, changes } = await open();
    const before = source.objects();
    await put(
      'mixed.yaml',
      denyYaml('DENY').replace(
        /rules:[\s\S]*$/,
        'rules: [{from: [{source: {principals: [cluster.local/ns/demo/sa/sleep]}}]\n',
      ),
    );
    await source.rescan();
    expect(changes()).toEqual([]);
    const after = source.objects();
    expect([...after.keys()].sort()).toEqual(['AuthorizationPolicy/demo/deny-sleep', 'Pod/demo/web']);
    expect(after.get('AuthorizationPolicy/demo/deny-sleep')).toBe(
      before.get('AuthorizationPolicy/demo/deny-sleep'),
    );
    expect(after.get('Pod/demo/web')).toBe(before.get('Pod/demo/web'));
    const [report, ...rest] = source.invalid();
    expect(rest).toEqual([]);
    expect(report).toMatchObject({
      file: 'mixed.yaml',
      ref: 'mixed.yaml',
      problems: [{ path: expect.stringMatching(/^spec\.rules/) }],
      kept: ['AuthorizationPolicy/demo/deny-sleep', 'Pod/demo/web'],
    });
    expect(report?.problems[0]?.message).toMatch(/^YAML: .*at line \d+, column \d+/);

    // The fixed file replaces what it held: the pod is gone, the policy is the new version.
    await put('mixed.yaml', denyYaml('ALLOW'));
    await source.rescan();
    expect(changes()).toEqual(['AuthorizationPolicy/demo/deny-sleep', 'Pod/demo/web']);
    expect([...source.objects().keys()]).toEqual(['AuthorizationPolicy/demo/deny-sleep']);
    expect(source.objects().get('AuthorizationPolicy/demo/deny-sleep')).toMatchObject({ action: 'ALLOW' });
    expect(source.invalid()).toEqual([]);
  });

  it('keeps the objects of a JSON file that no longer parses, and removes them with the file', async () => {
    await put('pods.json', JSON.stringify([podJson('a', '10.0.0.1'), podJson('b', '10.0.0.2')]));
    const { source, changes } = await open();
    await put('pods.json', '[{"kind": "Pod",');
    await source.rescan();
    expect(changes()).toEqual([]);
    expect([...source.objects().keys()].sort()).toEqual(['Pod/demo/a', 'Pod/demo/b']);
    expect(source.invalid()).toMatchObject([
      { file: 'pods.json', ref: 'pods.json', problems: [{ path: '' }], kept: ['Pod/demo/a', 'Pod/demo/b'] },
    ]);
    await rm(join(fx.dir, 'pods.json'));
    await source.rescan();
    expect(changes()).toEqual(['Pod/demo/a', 'Pod/demo/b']);
    expect([...source.objects().keys()]).toEqual([]);
    expect(source.invalid()).toEqual([]);
  });

  it('only reports a brand-new invalid object: there is no last good version to keep', async () => {
    const { source, changes } = await open();
    await put('deny.yaml', denyYaml('BOGUS'));
    await source.rescan();
    expect(changes()).toEqual([]);
    expect([...source.objects().keys()]).toEqual([]);
    expect(source.invalid()).toEqual([
      {
        file: 'deny.yaml',
        ref: 'AuthorizationPolicy demo/deny-sleep',
        problems: [{ path: 'spec.action', message: '"BOGUS" must be ALLOW, DENY, AUDIT or CUSTOM' }],
      },
    ]);
  });

  it('keeps the last good version only from the same identity: a renamed invalid object does not hold the old one', async () => {
    await put('deny.yaml', denyYaml('DENY'));
    const { source, changes } = await open();
    await put('deny.yaml', denyYaml('BOGUS').replace('name: deny-sleep', 'name: deny-other'));
    await source.rescan();
    expect(changes()).toEqual(['AuthorizationPolicy/demo/deny-sleep']);
    expect([...source.objects().keys()]).toEqual([]);
    expect(source.invalid()).toEqual([
      expect.objectContaining({ ref: 'AuthorizationPolicy demo/deny-other', problems: [expect.anything()] }),
    ]);
    expect(source.invalid()[0]?.kept).toBeUndefined();
  });

  it('keeps what a file held when one of its documents has no readable kind or name, applying the rest', async () => {
    await put('a.yaml', [podYaml('a1', '10.0.0.1'), podYaml('a2', '10.0.0.2')].join('---\n'));
    const { source, changes } = await open();
    const a2 = source.objects().get('Pod/demo/a2');
    await put(
      'a.yaml',
      [podYaml('a1', '10.0.0.7'), 'apiVersion: v1\nkind: Pod\nmetadata: {namespace: demo}\n'].join('---\n'),
    );
    await source.rescan();
    expect(changes()).toEqual(['Pod/demo/a1']);
    expect(source.objects().get('Pod/demo/a1')).toMatchObject({ podIps: ['10.0.0.7'] });
    expect(source.objects().get('Pod/demo/a2')).toBe(a2);
    expect(source.invalid()).toEqual([
      {
        file: 'a.yaml',
        ref: 'a.yaml',
        problems: [{ path: 'metadata.name', message: 'Pod demo/(no name): is required' }],
        kept: ['Pod/demo/a2'],
      },
    ]);
  });
});

describe('ManifestDirSource: size limits', () => {
  const limits = { maxFileBytes: 4096, maxObjectBytes: 1024, maxPolicyValues: 5 };
  const openLimited = async () => {
    const source = new ManifestDirSource({ dir: fx.dir, rescanMs: 600_000, limits });
    fx.track(source);
    await source.start();
    return source;
  };

  it('refuses a file over the file limit unread, keeping what it held', async () => {
    await put('pods.yaml', podYaml('a1', '10.0.0.1'));
    const source = await openLimited();
    const a1 = source.objects().get('Pod/demo/a1');
    const big = Array.from({ length: 40 }, (_, i) => podYaml(`p${i}`, `10.0.1.${i + 1}`)).join('---\n');
    expect(big.length).toBeGreaterThan(4096);
    await put('pods.yaml', big);
    await source.rescan();
    expect([...source.objects().keys()]).toEqual(['Pod/demo/a1']);
    expect(source.objects().get('Pod/demo/a1')).toBe(a1);
    expect(source.invalid()).toEqual([
      {
        file: 'pods.yaml',
        ref: 'pods.yaml',
        problems: [
          { path: '', message: expect.stringMatching(/^the file is 4\.\d KiB, over the limit of 4\.0 KiB/) },
        ],
        kept: ['Pod/demo/a1'],
      },
    ]);
  });

  it('refuses a YAML document over the object limit before parsing it', async () => {
    await put('pods.yaml', podYaml('a1', '10.0.0.1'));
    const source = await openLimited();
    await put(
      'pods.yaml',
      `${podYaml('a1', '10.0.0.1')}---\n${podYaml('a2', '10.0.0.2', `\n  annotations: {note: ${'x'.repeat(1200)}}`)}`,
    );
    await source.rescan();
    expect([...source.objects().keys()]).toEqual(['Pod/demo/a1']);
    expect(source.invalid()).toEqual([
      {
        file: 'pods.yaml',
        ref: 'pods.yaml',
        problems: [
          {
            path: '',
            message: expect.stringMatching(
              /^document 2 is 1\.\d KiB, over the limit of 1\.0 KiB for one object/,
            ),
          },
        ],
        kept: ['Pod/demo/a1'],
      },
    ]);
  });

  it('refuses a JSON object over the object limit, keeping its last good version', async () => {
    await put('pods.json', JSON.stringify([podJson('a', '10.0.0.1'), podJson('b', '10.0.0.2')]));
    const source = await openLimited();
    const a = source.objects().get('Pod/demo/a');
    const huge = {
      ...podJson('a', '10.0.0.1'),
      metadata: { name: 'a', namespace: 'demo', annotations: { note: 'x'.repeat(1100) } },
    };
    await put('pods.json', JSON.stringify([huge, podJson('b', '10.0.0.3')]));
    await source.rescan();
    expect(source.objects().get('Pod/demo/a')).toBe(a);
    expect(source.objects().get('Pod/demo/b')).toMatchObject({ podIps: ['10.0.0.3'] });
    expect(source.invalid()).toEqual([
      {
        file: 'pods.json',
        ref: 'Pod demo/a',
        problems: [
          {
            path: '',
            message: expect.stringMatching(/^the object is 1\.\d KiB, over the limit of 1\.0 KiB/),
          },
        ],
        kept: ['Pod/demo/a'],
      },
    ]);
  });

  it('refuses a policy with more values than the limit, naming the list that passes it', async () => {
    await put('deny.yaml', denyYaml('DENY'));
    const source = await openLimited();
    const deny = source.objects().get('AuthorizationPolicy/demo/deny-sleep');
    await put(
      'deny.yaml',
      denyYaml('DENY').replace(
        'principals: [cluster.local/ns/demo/sa/sleep]',
        'principals: [a, b, c]\n            namespaces: [d, e, f]',
      ),
    );
    await source.rescan();
    expect(source.objects().get('AuthorizationPolicy/demo/deny-sleep')).toBe(deny);
    expect(source.invalid()).toEqual([
      {
        file: 'deny.yaml',
        ref: 'AuthorizationPolicy demo/deny-sleep',
        problems: [
          {
            path: 'spec.rules[0].from[0].source.namespaces',
            message: expect.stringMatching(/^takes the policy over 5 values/),
          },
        ],
        kept: ['AuthorizationPolicy/demo/deny-sleep'],
      },
    ]);
  });
});

describe('ManifestDirSource: large writes', () => {
  it('hands the event loop back while it reads, parses and decodes a large file', async () => {
    // A budget of zero: the source must hand the event loop back at every other check.
    const slicer = new TimeSlicer(0);
    const source = new ManifestDirSource({ dir: fx.dir, rescanMs: 600_000, slicer });
    fx.track(source);
    const reported: string[] = [];
    source.onChange((keys) => reported.push(...keys));
    await source.start();
    const pods = Array.from({ length: 1000 }, (_, i) =>
      podYaml(`p${i}`, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, `\n  labels: {app: p${i}}`),
    );
    await put('many.yaml', pods.join('---\n'));
    // A timer due at once: it can only run if the scan yields before it ends.
    let ranDuringScan = false;
    let scanning = true;
    const timer = setInterval(() => {
      if (scanning) ranDuringScan = true;
    }, 1);
    const started = performance.now();
    await source.rescan();
    scanning = false;
    clearInterval(timer);
    console.log(
      `scanned 1000 documents in ${(performance.now() - started).toFixed(0)} ms, handing the event loop back ${slicer.pauses} times`,
    );
    expect(reported).toHaveLength(1000);
    expect(ranDuringScan).toBe(true);
    expect(slicer.pauses).toBeGreaterThanOrEqual(500);
  });
});

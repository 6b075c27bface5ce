import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from './lab.js';

const isRoot = process.getuid?.() === 0;
const prefix = `l${process.pid % 100_000}`;

const HTTP_ECHO = (name: string) =>
  `require('http').createServer((q,r)=>r.end('${name} saw '+q.socket.remoteAddress.replace('::ffff:',''))).listen(8080,'0.0.0.0',()=>console.log('ready'))`;

describe.skipIf(!isRoot)('lab of network namespaces (root)', () => {
  let lab: Lab;

  beforeAll(async () => {
    // What a crashed run would leave behind:
    execFileSync('ip', ['netns', 'add', `${prefix}-stray`]);
    lab = await Lab.create(prefix, {
      nodes: 2,
      pods: [
        { name: 'sleep', namespace: 'demo', node: 0, labels: { app: 'sleep' } },
        { name: 'echo-0', namespace: 'demo', node: 1, labels: { app: 'echo' } },
        { name: 'echo-1', namespace: 'demo', node: 0, labels: { app: 'echo' } },
        { name: 'client', namespace: 'other', node: 1, labels: { app: 'client' } },
      ],
      services: [
        {
          name: 'echo',
          namespace: 'demo',
          selector: { app: 'echo' },
          ports: [{ port: 80, targetPort: 8080 }],
        },
      ],
    });
    for (const name of ['echo-0', 'echo-1']) {
      const child = lab.start(lab.pod('demo', name).netns, [process.execPath, '-e', HTTP_ECHO(name)]);
      await new Promise((resolve) => child.stdout?.once('data', resolve));
    }
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  it('removed the leftovers of an earlier run with the same prefix', () => {
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(`${prefix}-stray`);
  });

  it('reaches a pod on another node by IP with curl, and the server sees the client pod IP', async () => {
    const sleep = lab.pod('demo', 'sleep');
    const r = await lab.exec(sleep, [
      'curl',
      '-s',
      '--max-time',
      '5',
      `http://${lab.pod('demo', 'echo-0').ip}:8080/`,
    ]);
    expect(r.stdout).toBe(`echo-0 saw ${sleep.ip}`);
  });

  it('resolves service names from /etc/hosts and balances the VIP over both endpoints, on and off the node', async () => {
    const sleep = lab.pod('demo', 'sleep');
    const seen = new Set<string>();
    for (let i = 0; i < 30 && seen.size < 2; i++) {
      const r = await lab.exec(sleep, [
        'curl',
        '-s',
        '--max-time',
        '5',
        'http://echo.demo.svc.cluster.local/',
      ]);
      expect(r.stdout).toMatch(new RegExp(`^echo-[01] saw ${sleep.ip.replaceAll('.', '\\.')}$`));
      seen.add(r.stdout.split(' ')[0] as string);
    }
    expect([...seen].sort()).toEqual(['echo-0', 'echo-1']);
    const short = await lab.exec(sleep, ['curl', '-s', '--max-time', '5', 'http://echo/']);
    expect(short.stdout).toMatch(/^echo-[01] saw /);
    const other = lab.pod('other', 'client');
    const cross = await lab.exec(other, ['curl', '-s', '--max-time', '5', 'http://echo.demo/']);
    expect(cross.stdout).toMatch(new RegExp(`^echo-[01] saw ${other.ip.replaceAll('.', '\\.')}$`));
  });

  it('has no link to the host: nothing in the root namespace, and no route out of any node', () => {
    expect(execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' })).not.toContain(prefix);
    for (const node of lab.nodes) {
      // A route lookup only; no packet is sent.
      const r = (() => {
        try {
          return execFileSync('ip', ['-n', node.netns, 'route', 'get', '192.0.2.1'], {
            encoding: 'utf8',
            stdio: 'pipe',
          });
        } catch (err) {
          return String((err as { stderr?: string }).stderr);
        }
      })();
      expect(r).toContain('unreachable');
    }
  });

  it('destroy() removes every namespace and hosts file of the lab', async () => {
    const probe = await Lab.create(`${prefix.slice(0, 5)}z`, {
      nodes: 1,
      pods: [{ name: 'p', namespace: 'n', node: 0 }],
      services: [],
    });
    const pod = probe.pod('n', 'p');
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).toContain(pod.netns);
    await probe.destroy();
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(
      `${prefix.slice(0, 5)}z-`,
    );
    expect(() => execFileSync('ls', [`/etc/netns/${pod.netns}`], { stdio: 'pipe' })).toThrow();
  });
});

/**
 * The container images, built by the offline builder (scripts/image/build-images.mjs) and run in
 * a containerd of the suite's own: each archive's config (name, entrypoint, user, workdir, env),
 * what the layers hold and that shared layers are shared, that a rebuild reproduces every digest,
 * and, inside each image, that Node, its libraries, the built code and the ztunnel's addon load,
 * under the user the image promises. The cni tools (iptables, ip, nsenter) are tried on the
 * in-pod rule set itself. Containers get ctr's default: their own, empty network namespace.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  countInpodRules,
  inpodIptables,
  inpodRoutes,
  parseSavedRules,
} from '../../packages/ztunnel/src/capture/inpod-rules.js';
import { PrivateContainerd } from './private-containerd.js';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const BUILDER = path.join(ROOT, 'scripts/image/build-images.mjs');
const VERSION = JSON.parse(readFileSync(path.join(ROOT, 'packages/controlplane/package.json'), 'utf8'))
  .version as string;
// One cache per checkout: worktrees building different code never share an archive.
const OUT = path.join(
  '/var/cache/ambient-mesh',
  `images-test-${createHash('sha256').update(ROOT).digest('hex').slice(0, 12)}`,
);
const HAS_CNI = existsSync(path.join(ROOT, 'packages/cni/package.json'));
const HAS_CNI_PLUGIN = existsSync(path.join(ROOT, 'packages/cni/plugin/bin/ambient-cni'));
// Without the cni agent, a check image of the runtime and tools layers stands in for its tools.
const TOOLS_IMAGE = HAS_CNI ? 'cni' : 'tools-probe';
const NAMES = ['controlplane', 'ztunnel', 'waypoint', TOOLS_IMAGE];

const onPath = (cmd: string) =>
  ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/bin'].some((d) => existsSync(path.join(d, cmd)));
const canRun = process.getuid?.() === 0 && ['containerd', 'ctr', 'runc', 'ldd'].every(onPath);

interface BuiltLayer {
  name: string;
  diffId: string;
  file: string;
  size: number;
  gzSize: number;
}
interface Built {
  name: string;
  ref: string;
  archive: string;
  configId: string;
  reused: boolean;
  layers: BuiltLayer[];
  size: number;
  gzSize: number;
}
interface ImageConfig {
  architecture: string;
  os: string;
  config: { User: string; Env: string[]; Entrypoint: string[]; WorkingDir: string };
  rootfs: { diff_ids: string[] };
}

async function build(names = NAMES, flags: string[] = []): Promise<Built[]> {
  const args = [BUILDER, 'build', '--out', OUT, '--images', names.join(','), '--json', ...flags];
  const { stdout } = await run('node', args, { encoding: 'utf8', maxBuffer: 16 << 20 });
  return JSON.parse(stdout) as Built[];
}

async function fromTar(archive: string, member: string, gzip = false): Promise<string> {
  const { stdout } = await run('tar', [gzip ? '-xzOf' : '-xOf', archive, member], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  return stdout;
}

const listings = new Map<string, Promise<string[]>>();
/** The paths of a gzipped layer (each layer read once: the images share most of theirs). */
function listTar(layer: string): Promise<string[]> {
  let listing = listings.get(layer);
  if (!listing) {
    listing = run('tar', ['-tzf', layer], { encoding: 'utf8', maxBuffer: 256 << 20 }).then((r) =>
      r.stdout.split('\n').filter(Boolean),
    );
    listings.set(layer, listing);
  }
  return listing;
}

/**
 * A preload that prints the process's uid and gid, and what writing to / gives (EROFS on a
 * read-only root), before the entrypoint runs. No spaces: NODE_OPTIONS splits on them.
 */
const PRINT_UID = `NODE_OPTIONS=--import=data:text/javascript,${[
  "import{writeFileSync}from'node:fs';",
  "try{writeFileSync('/.rootcheck','');process.stderr.write('root=rw\\n')}",
  "catch(e){process.stderr.write('root='+e.code+'\\n')}",
  "process.stderr.write('uid='+process.getuid()+':'+process.getgid()+'\\n')",
].join('')}`;

/**
 * Run inside the tools image with CAP_NET_ADMIN, in the container's own network namespace: the
 * in-pod rule set through iptables-restore (nft backend, with the mark, connmark, CONNMARK and
 * REDIRECT modules), a chain through ip6tables, the policy rule and local route through ip, and
 * nsenter's version.
 */
const TOOLS_PROBE = `
const { execFileSync: x } = require('node:child_process');
const out = (cmd, args, input) => x(cmd, args, { encoding: 'utf8', input });
out('ip', ['link', 'set', 'lo', 'up']);
out('iptables-restore', ['--noflush'], Buffer.from(process.env.RULES, 'base64').toString());
for (const line of JSON.parse(process.env.ROUTES)) out('ip', line.split(' '));
out('ip6tables', ['-t', 'nat', '-N', 'AMBIENT_PROBE']);
console.log(JSON.stringify({
  save: out('iptables-save', []),
  save6: out('ip6tables-save', []),
  rules: out('ip', ['rule', 'show']),
  routes: out('ip', ['route', 'show', 'table', '100']),
  links: out('ip', ['-o', 'link', 'show']),
  nsenter: out('nsenter', ['--version']),
  plugin: require('node:fs').existsSync('/opt/ambient-cni/bin/ambient-cni'),
}));
`;

/** A read-only root with a writable /tmp, as a chart's readOnlyRootFilesystem and an emptyDir give. */
const READ_ONLY_ROOT = [
  '--read-only',
  '--mount',
  'type=tmpfs,src=tmpfs,dst=/tmp,options=rw:nosuid:nodev:mode=1777',
];

/**
 * `ctr run` of an image's entrypoint (with the uid preload) on a read-only root until its output
 * shows `ready`, then SIGTERM through ctr; resolves with the output and ctr's exit code (the task's).
 */
async function runUntilReady(
  ctd: PrivateContainerd,
  runArgs: string[],
  ready: string,
): Promise<{ out: string; code: number | null }> {
  const id = runArgs.at(-1) as string;
  const child = spawn(
    'ctr',
    [
      '--address',
      ctd.address,
      '-n',
      'k8s.io',
      'run',
      '--rm',
      ...READ_ONLY_ROOT,
      '--env',
      PRINT_UID,
      ...runArgs,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  const t0 = Date.now();
  while (!out.includes(ready) && child.exitCode === null && Date.now() - t0 < 45_000)
    await new Promise((r) => setTimeout(r, 100));
  console.log(`${id}: ${out.includes(ready) ? 'ready' : 'not ready'} after ${Date.now() - t0} ms`);
  const t1 = Date.now();
  await ctd.ctr(['tasks', 'kill', '-s', 'SIGTERM', id]);
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const code = await exited;
  clearTimeout(timer);
  console.log(`${id}: stopped ${Date.now() - t1} ms after SIGTERM`);
  return { out, code };
}

/** Caches of other checkouts (fresh clones each get one) that no build used for two days. */
function dropStaleCaches(): void {
  const parent = path.dirname(OUT);
  if (!existsSync(parent)) return;
  for (const name of readdirSync(parent).filter((n) => n.startsWith('images-test-'))) {
    const dir = path.join(parent, name);
    if (dir === OUT) continue;
    const stamp = statSync(path.join(dir, 'last-build'), { throwIfNoEntry: false }) ?? statSync(dir);
    if (Date.now() - stamp.mtimeMs > 2 * 86_400_000) rmSync(dir, { recursive: true, force: true });
  }
}

describe.skipIf(!canRun)('container images: offline build, private containerd', () => {
  let built: Built[] = [];
  let ctd: PrivateContainerd | undefined;
  let scratch = '';
  const refs = new Map<string, string>();
  const byName = (name: string) => built.find((b) => b.name === name) as Built;
  const configs = new Map<string, ImageConfig>();

  beforeAll(async () => {
    dropStaleCaches();
    scratch = mkdtempSync(path.join(os.tmpdir(), 'ambient-img-'));
    const t0 = Date.now();
    built = await build();
    console.log(`built ${built.length} images in ${Date.now() - t0} ms (into ${OUT})`);
    for (const b of built) {
      const layers = b.layers.map(
        (l) => `${l.name} ${(l.size / 1e6).toFixed(1)}/${(l.gzSize / 1e6).toFixed(1)}`,
      );
      console.log(
        `image ${b.ref}: ${(b.size / 1e6).toFixed(1)} MB unpacked, ${(b.gzSize / 1e6).toFixed(1)} MB gzipped (${layers.join(', ')} MB)`,
      );
      const manifest = JSON.parse(await fromTar(b.archive, 'manifest.json')) as Array<{ Config: string }>;
      configs.set(b.name, JSON.parse(await fromTar(b.archive, manifest[0]?.Config as string)) as ImageConfig);
    }
    const t1 = Date.now();
    ctd = await PrivateContainerd.start();
    await run(
      'node',
      [BUILDER, 'import', '--address', ctd.address, '--out', OUT, '--images', NAMES.join(',')],
      {
        encoding: 'utf8',
        maxBuffer: 16 << 20,
      },
    );
    for (const full of await ctd.images()) {
      for (const b of built) if (full.endsWith(`/${b.ref}`) || full === b.ref) refs.set(b.name, full);
    }
    console.log(`containerd started and ${refs.size} images imported in ${Date.now() - t1} ms`);
  }, 240_000);

  afterAll(async () => {
    await ctd?.stop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }, 60_000);

  it('gives each image its fixed name, entrypoint, user, workdir and env', () => {
    for (const [name, uid] of [
      ['controlplane', 1337],
      ['ztunnel', 0],
      ['waypoint', 1337],
      ...(HAS_CNI ? [['cni', 0] as const] : []),
    ] as const) {
      const b = byName(name);
      expect(b.ref).toBe(`ambient-mesh/${name}:${VERSION}`);
      const c = configs.get(name) as ImageConfig;
      expect(c.os).toBe('linux');
      expect(c.config.Entrypoint).toEqual(['/usr/local/bin/node', `/app/packages/${name}/dist/main.js`]);
      expect(c.config.User).toBe(`${uid}:${uid}`);
      expect(c.config.WorkingDir).toBe('/app');
      expect(c.config.Env).toContain('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
      expect(c.config.Env).toContain('NODE_ENV=production');
      expect(c.rootfs.diff_ids).toEqual(b.layers.map((l) => `sha256:${l.diffId}`));
    }
  });

  it('shares the runtime and workspace layers across the images, and adds the tools only where asked', () => {
    const images = built.filter((b) => b.name !== 'tools-probe');
    const runtime = images.map((b) => b.layers[0]?.diffId);
    expect(new Set(runtime).size).toBe(1);
    const shared = images.map((b) => b.layers.find((l) => l.name === 'workspace-shared')?.diffId);
    expect(shared.every(Boolean)).toBe(true);
    expect(new Set(shared).size).toBe(1);
    for (const b of images) expect(b.layers.some((l) => l.name === 'tools')).toBe(b.name === 'cni');
    if (!HAS_CNI) expect(byName('tools-probe').layers.map((l) => l.name)).toEqual(['runtime', 'tools']);
    const own = new Set(images.map((b) => b.layers.at(-1)?.diffId));
    expect(own.size).toBe(images.length);
  });

  it('puts built code and production dependencies in the layers, no sources, tests or dev tools', async () => {
    const runtime = await listTar(byName('ztunnel').layers[0]?.file as string);
    expect(runtime).toContain('usr/local/bin/node');
    expect(runtime).toContain('etc/ssl/certs/ca-certificates.crt');
    expect(runtime.some((p) => /^usr\/lib\/.*\/libc\.so\.6$/.test(p))).toBe(true);
    expect(runtime.some((p) => p.startsWith('usr/sbin/xtables') || /^app\/./.test(p))).toBe(false);
    const passwd = await fromTar(byName('ztunnel').layers[0]?.file as string, 'etc/passwd', true);
    expect(passwd).toMatch(/^mesh:x:1337:1337:/m);
    for (const name of ['controlplane', 'ztunnel', 'waypoint', ...(HAS_CNI ? ['cni'] : [])]) {
      const b = byName(name);
      const paths = (await Promise.all(b.layers.slice(1).map((l) => listTar(l.file)))).flat();
      expect(paths).toContain(`app/packages/${name}/dist/main.js`);
      expect(paths).toContain('app/packages/shared/dist/index.js');
      const workspace = paths.filter((p) => p.startsWith('app/packages/') && !p.includes('/node_modules/'));
      expect(workspace.filter((p) => /\/src\/|\.test\.js$|\.ts$|\.map$|tsbuildinfo/.test(p))).toEqual([]);
      const dev = paths.filter((p) =>
        /node_modules\/\.pnpm\/(vitest|typescript|@biomejs|@types\+|vite)@/.test(p),
      );
      expect(dev).toEqual([]);
      console.log(`${name}: ${paths.length} paths in its workspace and own layers`);
    }
    const ztunnel = (await Promise.all(byName('ztunnel').layers.map((l) => listTar(l.file)))).flat();
    expect(ztunnel).toContain('app/packages/ztunnel/build/netns-sockets.node');
    expect(ztunnel.some((p) => /iptables|xtables|sbin\/ip$|nsenter/.test(p))).toBe(false);
    const tools = await listTar(byName(TOOLS_IMAGE).layers.find((l) => l.name === 'tools')?.file as string);
    for (const p of ['usr/sbin/iptables', 'usr/sbin/ip6tables-restore', 'usr/sbin/xtables-nft-multi'])
      expect(tools).toContain(p);
    expect(tools.some((p) => /xtables\/libxt_CONNMARK\.so$/.test(p))).toBe(true);
  });

  it('reproduces every layer and config digest when rebuilt from scratch with no change', async () => {
    // --no-cache: every input read, stripped, tarred and hashed again, no fingerprint trusted.
    const t0 = Date.now();
    const again = await build(['waypoint'], ['--no-cache']);
    console.log(`rebuilt the waypoint image with no cache in ${Date.now() - t0} ms`);
    const b = byName('waypoint');
    const a = again.find((x) => x.name === 'waypoint') as Built;
    expect(a.layers.map((l) => l.diffId)).toEqual(b.layers.map((l) => l.diffId));
    expect(a.configId).toBe(b.configId);
    expect(a.reused).toBe(true);
  }, 120_000);

  it('runs the waypoint as uid 1337 from its entrypoint, up to its settings error', async () => {
    const r = await ctd!.ctr([
      'run',
      '--rm',
      '--env',
      PRINT_UID,
      refs.get('waypoint')!,
      `img${process.pid}-wp`,
    ]);
    const out = r.stdout + r.stderr;
    expect(out).toContain('uid=1337:1337');
    expect(out).toMatch(/waypoint: invalid settings: .*WP_XDS_ADDRESS: is required/);
    expect(r.code).toBe(2);
  }, 60_000);

  it('starts the ztunnel as root on a read-only root with its addon loaded, and drains on SIGTERM', async () => {
    // A node with no workloads: the ztunnel starts, serves, and enrolls nothing.
    const config = path.join(scratch, 'ztunnel');
    mkdirSync(config, { recursive: true });
    writeFileSync(path.join(config, 'config.yaml'), 'workloads: []\npolicies: []\n');
    const r = await runUntilReady(
      ctd!,
      [
        '--mount',
        `type=bind,src=${config},dst=/etc/ztunnel,options=rbind:ro`,
        '--env',
        'ZT_NODE_NAME=node0',
        '--env',
        'ZT_CONFIG_FILE=/etc/ztunnel/config.yaml',
        '--env',
        'ZT_CA_DIR=/tmp/ca',
        // The container's loopback is down (its network namespace is new): listen on any address.
        '--env',
        'ZT_ADMIN_ADDRESS=0.0.0.0',
        '--env',
        'ZT_DRAIN_SECONDS=0',
        refs.get('ztunnel')!,
        `img${process.pid}-zt`,
      ],
      'ztunnel started',
    );
    expect(r.out).toContain('uid=0:0');
    expect(r.out).toContain('root=EROFS');
    expect(r.out).not.toContain('netns-sockets addon not loadable');
    expect(r.out).toContain('ztunnel started');
    expect(r.out).toContain('"msg":"draining"');
    expect(r.code).toBe(0);
  }, 90_000);

  it('starts the control plane as uid 1337 on a read-only root and a manifest directory, with its CA in /tmp, and drains on SIGTERM', async () => {
    const dir = path.join(scratch, 'controlplane');
    mkdirSync(path.join(dir, 'manifests'), { recursive: true });
    writeFileSync(path.join(dir, 'tokens.json'), '{}\n');
    const r = await runUntilReady(
      ctd!,
      [
        '--mount',
        `type=bind,src=${dir},dst=/etc/controlplane,options=rbind:ro`,
        '--env',
        'CP_MANIFEST_DIR=/etc/controlplane/manifests',
        '--env',
        'CP_TOKENS_FILE=/etc/controlplane/tokens.json',
        // Written by uid 1337 into the writable /tmp.
        '--env',
        'CP_CA_DIR=/tmp/ca',
        refs.get('controlplane')!,
        `img${process.pid}-cp-start`,
      ],
      'control plane ready',
    );
    expect(r.out).toContain('uid=1337:1337');
    expect(r.out).toContain('root=EROFS');
    expect(r.out).toContain('"msg":"control plane ready"');
    expect(r.out).toContain('"msg":"draining"');
    expect(r.code).toBe(0);
  }, 90_000);

  it('applies the in-pod rule set with the image tools in a container of its own network namespace', async () => {
    const r = await ctd!.ctr([
      'run',
      '--rm',
      '--cap-add',
      'CAP_NET_ADMIN',
      '--env',
      `RULES=${Buffer.from(inpodIptables()).toString('base64')}`,
      '--env',
      `ROUTES=${JSON.stringify(inpodRoutes())}`,
      refs.get(TOOLS_IMAGE)!,
      `img${process.pid}-tools`,
      '/usr/local/bin/node',
      '-e',
      TOOLS_PROBE,
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const probe = JSON.parse(r.stdout) as Record<string, string | boolean>;
    const saved = parseSavedRules(probe.save as string);
    expect(saved.nat.chains.has('ISTIO_OUTPUT')).toBe(true);
    expect(saved.mangle.chains.has('ISTIO_PRERT')).toBe(true);
    expect(probe.save).toContain('-j CONNMARK --set-xmark 0x111/0xfff');
    expect(probe.save).toContain('-j REDIRECT --to-ports 15001');
    expect(probe.save).toMatch(/iptables-save v[\d.]+ \(nf_tables\)/);
    expect(probe.save6).toMatch(/ip6tables-save v[\d.]+ \(nf_tables\)/);
    expect(probe.save6).toContain(':AMBIENT_PROBE - [0:0]');
    expect(countInpodRules(probe.rules as string)).toBe(1);
    expect(probe.routes).toMatch(/^local default dev lo/m);
    expect(probe.nsenter).toMatch(/^nsenter from util-linux/);
    // Its own network namespace: loopback only, none of the host's interfaces.
    expect(
      (probe.links as string)
        .trim()
        .split('\n')
        .map((l) => l.split(':')[1]?.trim()),
    ).toEqual(['lo']);
    if (HAS_CNI) expect(probe.plugin).toBe(HAS_CNI_PLUGIN);
  }, 60_000);

  it.skipIf(!HAS_CNI)(
    'runs the cni agent from its entrypoint as root, up to its settings error',
    async () => {
      const r = await ctd!.ctr(
        ['run', '--rm', '--env', PRINT_UID, refs.get('cni')!, `img${process.pid}-cni`],
        {
          timeoutMs: 30_000,
        },
      );
      const out = r.stdout + r.stderr;
      expect(out).toContain('uid=0:0');
      expect(out).toMatch(/invalid settings/);
      expect(r.code).toBe(2);
    },
    60_000,
  );
});

describe('the offline image builder', () => {
  it('refuses an image name it does not know, and a command it does not have, writing nothing', async () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'ambient-img-bad-'));
    try {
      const bad = await run('node', [
        BUILDER,
        'build',
        '--out',
        out,
        '--images',
        'controlplane,nosuch',
      ]).catch((err: { code: number; stderr: string }) => err);
      expect('code' in bad && bad.code).toBe(1);
      expect(bad.stderr).toContain('build-images: no image named nosuch in this checkout');
      const usage = await run('node', [BUILDER, 'push']).catch(
        (err: { code: number; stderr: string }) => err,
      );
      expect('code' in usage && usage.code).toBe(2);
      expect(usage.stderr).toContain('usage: build-images.mjs build|import|stage');
      expect(readdirSync(out)).toEqual([]);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

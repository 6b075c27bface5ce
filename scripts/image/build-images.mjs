#!/usr/bin/env node
// Builds the container images with no registry and no container engine: the layers are tar files
// made from this machine's Node binary (and the shared libraries it loads), CA certificates, a
// minimal passwd/group, and the built workspace (dist, the ztunnel's addon, production
// dependencies). Layers are content-addressed and written with fixed owners and mtimes, so a
// rebuild with no change reproduces the same digests and reuses the cached gzip.
//
//   node scripts/image/build-images.mjs build [--out DIR] [--images a,b] [--json] [--no-cache]
//       writes DIR/<image>.tar (docker-archive, what `ctr images import` reads) for each image;
//       --no-cache reads every input again instead of trusting the fingerprints of earlier builds
//   node scripts/image/build-images.mjs import --address SOCKET [--out DIR] [--images a,b]
//       ctr --address SOCKET -n k8s.io images import DIR/<image>.tar, for each built image
//   node scripts/image/build-images.mjs stage IMAGE DIR
//       writes the image's own files (/app, and the cni plugin) under DIR: the Dockerfile's build
//       stage uses it, so both builders lay out the same tree
//
// Needs `npx tsc -b` and the ztunnel's addon (scripts/setup.sh) first. The default DIR is
// /var/cache/ambient-mesh/images (AMBIENT_IMAGE_DIR overrides it).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const VERSION = JSON.parse(
  fs.readFileSync(path.join(REPO, 'packages/controlplane/package.json'), 'utf8'),
).version;
const DEFAULT_OUT = process.env.AMBIENT_IMAGE_DIR || '/var/cache/ambient-mesh/images';
/** Every entry's mtime: a fixed time makes the layers reproducible. */
const MTIME = 0;
const CREATED = new Date(MTIME * 1000).toISOString().replace('.000Z', 'Z');
const APP_UID = 1337;
const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** The Node binary's place in the image, as in the official Node images. */
const NODE = '/usr/local/bin/node';
const CNI_PLUGIN = 'packages/cni/plugin/bin/ambient-cni';

/**
 * The images. User 1337 for the control plane and waypoints (as Istio runs istiod and its
 * proxies); root for the node agents, which the charts narrow to the capabilities they need.
 * `tools` adds iptables, ip and nsenter (the cni agent writes in-pod rules); the ztunnel only
 * opens sockets in pod namespaces through its addon and gets none of them.
 */
export const IMAGES = [
  { name: 'controlplane', pkg: 'packages/controlplane', uid: APP_UID, tools: false },
  { name: 'ztunnel', pkg: 'packages/ztunnel', uid: 0, tools: false },
  { name: 'waypoint', pkg: 'packages/waypoint', uid: APP_UID, tools: false },
  { name: 'cni', pkg: 'packages/cni', uid: 0, tools: true },
];

/**
 * A check image: the runtime and the cni tools without any agent, so the tools can be tried in a
 * container where the cni package is not there.
 */
const TOOLS_PROBE = { name: 'tools-probe', pkg: undefined, uid: 0, tools: true, probe: true };

/** The images whose package exists in this checkout (the cni agent is optional). */
export function availableImages() {
  return IMAGES.filter((image) => fs.existsSync(path.join(REPO, image.pkg, 'package.json')));
}

function selectImages(names) {
  const all = [...availableImages(), TOOLS_PROBE];
  if (!names) return availableImages();
  for (const n of names) {
    if (!all.some((i) => i.name === n)) throw new Error(`no image named ${n} in this checkout`);
  }
  return all.filter((i) => names.includes(i.name));
}

export function imageRef(image) {
  return `ambient-mesh/${image.name}:${VERSION}`;
}

/** The container config every builder gives the image (the Dockerfile sets the same). */
export function imageConfig(image) {
  return {
    User: `${image.uid}:${image.uid}`,
    Env: [PATH_ENV, 'NODE_ENV=production'],
    Entrypoint: image.probe ? [NODE] : [NODE, `/app/${image.pkg}/dist/main.js`],
    WorkingDir: '/app',
    Labels: {
      'org.opencontainers.image.title': `ambient-mesh ${image.name}`,
      'org.opencontainers.image.version': VERSION,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// A layer: a map of image paths (no leading slash) to entries, written as a sorted tar.

class Layer {
  constructor(name) {
    this.name = name;
    /** @type {Map<string, {type: 'dir'|'file'|'symlink', mode: number, source?: string, data?: Buffer, link?: string}>} */
    this.entries = new Map();
  }

  put(p, entry) {
    const key = p.replace(/^\/+/, '').replace(/\/+$/, '');
    const old = this.entries.get(key);
    if (old) {
      if (old.type === 'dir' && entry.type === 'dir') {
        if (entry.mode !== 0o755) old.mode = entry.mode;
        return;
      }
      if (old.type === entry.type && old.link === entry.link && old.source === entry.source) return;
      throw new Error(`image path ${key} added twice with different content`);
    }
    this.entries.set(key, entry);
  }

  dir(p, mode = 0o755) {
    this.put(p, { type: 'dir', mode });
  }

  file(p, source, mode) {
    const m = mode ?? (fs.statSync(source).mode & 0o111 ? 0o755 : 0o644);
    this.put(p, { type: 'file', mode: m, source });
  }

  data(p, data, mode = 0o644) {
    this.put(p, { type: 'file', mode, data: Buffer.from(data) });
  }

  symlink(p, link) {
    this.put(p, { type: 'symlink', mode: 0o777, link });
  }

  /** The same host path in the image, with every symlink on the way kept as a symlink. */
  hostPath(p) {
    const parts = p.split('/').filter(Boolean);
    let cur = '';
    for (let i = 0; i < parts.length; i++) {
      const next = `${cur}/${parts[i]}`;
      const st = fs.lstatSync(next);
      if (st.isSymbolicLink()) {
        const link = fs.readlinkSync(next);
        this.symlink(next, link);
        const target = path.resolve(path.dirname(next), link);
        this.hostPath(path.join(target, ...parts.slice(i + 1)));
        return;
      }
      if (i < parts.length - 1) this.dir(next);
      else if (st.isDirectory()) this.dir(next);
      else this.file(next, next);
      cur = next;
    }
  }

  /** Every path of the layer, parents first, each parent directory present. */
  sorted() {
    for (const key of [...this.entries.keys()]) {
      let parent = path.posix.dirname(key);
      while (parent !== '.' && !this.entries.has(parent)) {
        this.entries.set(parent, { type: 'dir', mode: 0o755 });
        parent = path.posix.dirname(parent);
      }
    }
    return [...this.entries.keys()].sort((a, b) =>
      Buffer.compare(Buffer.from(a), Buffer.from(b)) < 0 ? -1 : 1,
    );
  }

  /** The uncompressed tar: fixed owner (root), mtime and order. */
  tar() {
    const chunks = [];
    for (const key of this.sorted()) {
      const e = this.entries.get(key);
      const name = e.type === 'dir' ? `${key}/` : key;
      const body = e.type === 'file' ? (e.data ?? fs.readFileSync(e.source)) : Buffer.alloc(0);
      chunks.push(...tarEntry(name, e, body));
    }
    chunks.push(Buffer.alloc(1024));
    return Buffer.concat(chunks);
  }
}

function octal(n, width) {
  return `${n.toString(8).padStart(width - 1, '0')}\0`;
}

function tarHeader(name, { type, mode, size, link = '' }) {
  const h = Buffer.alloc(512);
  h.write(name.slice(0, 100), 0, 'utf8');
  h.write(octal(mode, 8), 100);
  h.write(octal(0, 8), 108);
  h.write(octal(0, 8), 116);
  h.write(octal(size, 12), 124);
  h.write(octal(MTIME, 12), 136);
  h.write(type, 156);
  h.write(link.slice(0, 100), 157, 'utf8');
  h.write('ustar\0', 257);
  h.write('00', 263);
  h.write(octal(0, 8), 329);
  h.write(octal(0, 8), 337);
  h.fill(' ', 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}

function pad(body) {
  const rest = body.length % 512;
  return rest ? [body, Buffer.alloc(512 - rest)] : [body];
}

/** One entry, preceded by a PAX header when its name or link does not fit ustar's 100 bytes. */
function tarEntry(name, e, body) {
  const out = [];
  const link = e.link ?? '';
  const records = [];
  if (Buffer.byteLength(name) > 100) records.push(paxRecord('path', name));
  if (Buffer.byteLength(link) > 100) records.push(paxRecord('linkpath', link));
  if (records.length) {
    const pax = Buffer.from(records.join(''));
    out.push(
      tarHeader(`PaxHeader/${path.posix.basename(name).slice(0, 80)}`, {
        type: 'x',
        mode: 0o644,
        size: pax.length,
      }),
    );
    out.push(...pad(pax));
  }
  const typeFlag = { file: '0', dir: '5', symlink: '2' }[e.type];
  out.push(tarHeader(name, { type: typeFlag, mode: e.mode, size: body.length, link }));
  if (body.length) out.push(...pad(body));
  return out;
}

function paxRecord(key, value) {
  const text = ` ${key}=${value}\n`;
  const base = Buffer.byteLength(text);
  let len = base + String(base).length;
  if (String(len).length !== String(base).length) len = base + String(len).length;
  return `${len}${text}`;
}

// ---------------------------------------------------------------------------------------------
// What goes into the layers.

/** Shared libraries a binary or module loads (ldd), each at its host path. */
function sharedLibraries(files) {
  const out = execFileSync('ldd', files, { encoding: 'utf8' });
  const libs = new Set();
  for (const line of out.split('\n')) {
    if (/not found/.test(line))
      throw new Error(`a shared library is missing on this machine: ${line.trim()}`);
    const m = line.match(/(?:=>\s*)?(\/[^\s]+)\s+\(0x/);
    if (m) libs.add(m[1]);
  }
  return [...libs].sort();
}

/** Node itself, stripped of symbols (about 12 MB less), at the official images' path. */
function strippedNode(work) {
  const out = path.join(work, 'node');
  fs.copyFileSync(process.execPath, out);
  try {
    execFileSync('strip', [out], { stdio: 'ignore' });
  } catch {
    // No binutils: the unstripped binary works the same.
  }
  return out;
}

/** The runtime every image shares: node, its libraries, CA certificates, users, base folders. */
function runtimeLayer(work) {
  const layer = new Layer('runtime');
  for (const [link, target] of [
    ['bin', 'usr/bin'],
    ['sbin', 'usr/sbin'],
    ['lib', 'usr/lib'],
    ['lib64', 'usr/lib64'],
  ]) {
    if (fs.lstatSync(`/${link}`, { throwIfNoEntry: false })?.isSymbolicLink()) layer.symlink(link, target);
  }
  for (const d of ['usr/bin', 'usr/sbin', 'usr/lib', 'usr/local/bin', 'etc/ssl/certs', 'run', 'app'])
    layer.dir(d);
  layer.dir('tmp', 0o1777);
  layer.file(NODE, strippedNode(work), 0o755);
  for (const lib of sharedLibraries([process.execPath])) layer.hostPath(lib);
  layer.file('etc/ssl/certs/ca-certificates.crt', '/etc/ssl/certs/ca-certificates.crt', 0o644);
  layer.data(
    'etc/passwd',
    'root:x:0:0:root:/root:/usr/sbin/nologin\n' +
      `mesh:x:${APP_UID}:${APP_UID}:mesh:/app:/usr/sbin/nologin\n` +
      'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n',
  );
  layer.data('etc/group', `root:x:0:\nmesh:x:${APP_UID}:\nnogroup:x:65534:\n`);
  layer.data('etc/nsswitch.conf', 'passwd: files\ngroup: files\nhosts: files dns\n');
  return layer;
}

/** What the tools layer is made of, for its fingerprint. */
const TOOL_INPUTS = [
  '/usr/sbin/xtables-nft-multi',
  '/usr/sbin/ip',
  '/usr/bin/nsenter',
  '/usr/lib/x86_64-linux-gnu/xtables',
  '/usr/lib/aarch64-linux-gnu/xtables',
  '/etc/protocols',
  '/etc/ethertypes',
  '/etc/iproute2',
];

const XTABLES_NAMES = [
  'iptables',
  'iptables-save',
  'iptables-restore',
  'ip6tables',
  'ip6tables-save',
  'ip6tables-restore',
];

/** iptables and ip6tables (nft backend), ip, nsenter: what the cni agent runs in pod namespaces. */
function toolsLayer() {
  const layer = new Layer('tools');
  const multi = '/usr/sbin/xtables-nft-multi';
  const ip = fs.realpathSync(which('ip'));
  const nsenter = fs.realpathSync(which('nsenter'));
  for (const p of [multi, ip, nsenter]) layer.hostPath(p);
  // Straight to the nft binary, not through the alternatives system the host may point elsewhere.
  for (const name of XTABLES_NAMES) {
    layer.symlink(`usr/sbin/${name}`, 'xtables-nft-multi');
    layer.symlink(`usr/sbin/${name.replace('tables', 'tables-nft')}`, 'xtables-nft-multi');
  }
  const xtDir = path.join(
    path.dirname(sharedLibraries([multi]).find((l) => /libxtables/.test(l))),
    'xtables',
  );
  const modules = fs
    .readdirSync(xtDir)
    .filter((f) => f.endsWith('.so'))
    .map((f) => path.join(xtDir, f));
  for (const m of modules) layer.hostPath(m);
  for (const lib of sharedLibraries([multi, ip, nsenter, ...modules])) layer.hostPath(lib);
  for (const etc of ['/etc/protocols', '/etc/ethertypes', '/etc/iproute2']) {
    if (fs.existsSync(etc)) addTree(layer, etc, etc);
  }
  return layer;
}

function which(cmd) {
  for (const dir of ['/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    const p = path.join(dir, cmd);
    if (fs.existsSync(p)) return p;
  }
  throw new Error(`${cmd} is not installed (Debian packages iproute2, util-linux, iptables)`);
}

function addTree(layer, hostDir, imageDir, keep = () => true) {
  const st = fs.lstatSync(hostDir);
  if (st.isFile()) {
    layer.file(imageDir, hostDir);
    return;
  }
  layer.dir(imageDir);
  for (const name of fs.readdirSync(hostDir)) {
    const h = path.join(hostDir, name);
    const i = path.posix.join(imageDir, name);
    const s = fs.lstatSync(h);
    if (!keep(h, s)) continue;
    if (s.isSymbolicLink()) layer.symlink(i, fs.readlinkSync(h));
    else if (s.isDirectory()) addTree(layer, h, i, keep);
    else if (s.isFile()) layer.file(i, h);
  }
}

/** Files a dependency's package needs at run time: not its types, maps, docs or TypeScript. */
function keepDependencyFile(p, st) {
  if (st.isDirectory()) return path.basename(p) !== '.github';
  const base = path.basename(p);
  if (/^(license|licence|copying|notice)/i.test(base)) return true;
  return !/\.(d\.[cm]?ts|[cm]?ts|map|md|markdown|tsbuildinfo)$/i.test(base);
}

/** What a workspace package ships: its built code, its addon, its protos. */
function keepWorkspaceFile(p, st) {
  if (st.isDirectory()) return true;
  return /\.(js|mjs|cjs|json|node|proto)$/.test(p) && !/\.tsbuildinfo$/.test(p);
}

/**
 * The production closure of a workspace package, in the workspace's own (pnpm) layout under /app:
 * each workspace package's package.json, dist, build and proto folders, and every dependency it
 * reaches through node_modules links (no devDependencies, no .bin).
 */
function appEntries(pkg) {
  const layer = new Layer(pkg);
  const seen = new Set();
  const inRepo = (real) => {
    const rel = path.relative(REPO, real);
    if (rel.startsWith('..')) throw new Error(`dependency outside the workspace: ${real}`);
    return rel;
  };
  const link = (linkPath) => {
    const st = fs.lstatSync(linkPath, { throwIfNoEntry: false });
    if (!st) return false;
    const real = fs.realpathSync(linkPath);
    if (st.isSymbolicLink()) layer.symlink(`app/${inRepo(linkPath)}`, fs.readlinkSync(linkPath));
    visit(real);
    return true;
  };
  const visit = (real) => {
    if (seen.has(real)) return;
    seen.add(real);
    const rel = inRepo(real);
    if (!rel.split(path.sep).includes('node_modules')) {
      // A workspace package.
      const manifest = JSON.parse(fs.readFileSync(path.join(real, 'package.json'), 'utf8'));
      layer.file(`app/${rel}/package.json`, path.join(real, 'package.json'));
      for (const dir of ['dist', 'build', 'proto']) {
        if (fs.existsSync(path.join(real, dir)))
          addTree(layer, path.join(real, dir), `app/${rel}/${dir}`, keepWorkspaceFile);
      }
      for (const [name, optional] of [
        ...Object.keys(manifest.dependencies ?? {}).map((n) => [n, false]),
        ...Object.keys(manifest.optionalDependencies ?? {}).map((n) => [n, true]),
      ]) {
        if (!link(path.join(real, 'node_modules', name)) && !optional)
          throw new Error(`${rel}: dependency ${name} is not installed (run pnpm install)`);
      }
      return;
    }
    // A dependency in node_modules/.pnpm/<key>/node_modules/<name>: its files, then the links next
    // to it, which are exactly its own dependencies.
    addTree(layer, real, `app/${rel}`, keepDependencyFile);
    const name = JSON.parse(fs.readFileSync(path.join(real, 'package.json'), 'utf8')).name;
    const siblings = real.slice(0, real.length - name.length - 1);
    for (const entry of fs.readdirSync(siblings)) {
      const names = entry.startsWith('@')
        ? fs.readdirSync(path.join(siblings, entry)).map((n) => `${entry}/${n}`)
        : [entry];
      for (const n of names) {
        if (n === name || n === '.bin') continue;
        const p = path.join(siblings, n);
        if (fs.lstatSync(p).isSymbolicLink() && fs.existsSync(p)) link(p);
      }
    }
  };
  visit(path.join(REPO, pkg));
  return layer;
}

/** The image's own layer: its closure, less what the shared workspace layer already holds. */
function appLayer(image, all, shared) {
  const own = new Layer(image.name);
  for (const [key, e] of all.entries) {
    const s = shared.entries.get(key);
    if (shared && s && s.type === e.type && s.source === e.source && s.link === e.link) continue;
    own.put(key, e);
  }
  if (image.name === 'cni' && fs.existsSync(path.join(REPO, CNI_PLUGIN)))
    own.file('opt/ambient-cni/bin/ambient-cni', path.join(REPO, CNI_PLUGIN), 0o755);
  return own;
}

function checkBuilt(image) {
  if (image.probe) return;
  const main = path.join(REPO, image.pkg, 'dist/main.js');
  if (!fs.existsSync(main)) throw new Error(`${main} is missing: run npx tsc -b first`);
  if (
    image.name === 'ztunnel' &&
    !fs.existsSync(path.join(REPO, 'packages/ztunnel/build/netns-sockets.node'))
  )
    throw new Error('packages/ztunnel/build/netns-sockets.node is missing: run bash scripts/setup.sh first');
}

// ---------------------------------------------------------------------------------------------
// Archives.

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

/** The builder's own text: a changed builder changes every fingerprint. */
const BUILDER_HASH = sha256(fs.readFileSync(fileURLToPath(import.meta.url)));

function statKey(p) {
  const st = fs.statSync(p, { throwIfNoEntry: false });
  return st ? `${p}:${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}` : `${p}:absent`;
}

/**
 * What a layer is made of, cheaply: paths, modes, links, inline data, and the identity (inode,
 * size, mtime) of each file it copies. Equal fingerprints mean the layer need not be read again.
 */
function fingerprint(layer) {
  const h = createHash('sha256').update(BUILDER_HASH).update(layer.name);
  for (const key of layer.sorted()) {
    const e = layer.entries.get(key);
    h.update(`\0${key}\0${e.type}\0${e.mode}\0${e.link ?? ''}\0`);
    if (e.data) h.update(e.data);
    else if (e.source) h.update(statKey(e.source));
  }
  return h.digest('hex');
}

/** A layer whose fingerprint was recorded by an earlier build, if its gzip is still there. */
function recorded(out, fp) {
  const rec = path.join(out, 'fingerprints', `${fp}.json`);
  if (!fs.existsSync(rec)) return undefined;
  const layer = JSON.parse(fs.readFileSync(rec, 'utf8'));
  const file = path.join(out, 'layers', `${layer.diffId}.tar.gz`);
  if (!fs.existsSync(file)) return undefined;
  return { ...layer, file, gzSize: fs.statSync(file).size };
}

function record(out, fp, layer) {
  const dir = path.join(out, 'fingerprints');
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `${fp}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, JSON.stringify({ name: layer.name, diffId: layer.diffId, size: layer.size }));
  fs.renameSync(tmp, path.join(dir, `${fp}.json`));
}

/**
 * The layer's diff ID (sha256 of the uncompressed tar), and its gzip in the cache, made once per
 * content. With `cache`, a layer whose fingerprint an earlier build recorded is not read again.
 */
function materialize(layer, out, cache) {
  const fp = fingerprint(layer);
  const known = cache ? recorded(out, fp) : undefined;
  if (known) return known;
  const tar = layer.tar();
  const diffId = sha256(tar);
  const file = path.join(out, 'layers', `${diffId}.tar.gz`);
  if (!fs.existsSync(file)) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, zlib.gzipSync(tar, { level: 6 }));
    fs.renameSync(tmp, file);
  }
  const made = { name: layer.name, diffId, file, size: tar.length, gzSize: fs.statSync(file).size };
  record(out, fp, made);
  return made;
}

/**
 * A layer of this machine's files (node, libraries, tools): finding them (ldd, strip) is the
 * slow part, so with `cache` the layer is reused while the named inputs and the library cache
 * (/etc/ld.so.cache, rewritten whenever a library is installed) are unchanged.
 */
function hostLayer(out, cache, name, inputs, make) {
  const keys = [name, BUILDER_HASH, '/etc/ld.so.cache', ...inputs].map((p) =>
    p.startsWith('/') ? statKey(p) : p,
  );
  const fp = `host-${sha256(keys.join('\n'))}`;
  const known = cache ? recorded(out, fp) : undefined;
  if (known) return known;
  const made = materialize(make(), out, false);
  record(out, fp, made);
  return made;
}

function goArch() {
  return { x64: 'amd64', arm64: 'arm64' }[process.arch] ?? process.arch;
}

/** docker-archive: manifest.json, the config, the gzipped layers; itself a reproducible tar. */
function writeArchive(image, layers, out) {
  const config = Buffer.from(
    `${JSON.stringify(
      {
        architecture: goArch(),
        os: 'linux',
        created: CREATED,
        config: imageConfig(image),
        rootfs: { type: 'layers', diff_ids: layers.map((l) => `sha256:${l.diffId}`) },
        history: layers.map((l) => ({
          created: CREATED,
          created_by: `ambient-mesh image builder: ${l.name}`,
        })),
      },
      null,
      2,
    )}\n`,
  );
  const configId = sha256(config);
  const target = path.join(out, `${image.name}.tar`);
  const idFile = path.join(out, `${image.name}.id`);
  if (fs.existsSync(target) && fs.existsSync(idFile) && fs.readFileSync(idFile, 'utf8').trim() === configId)
    return { configId, file: target, reused: true };
  const archive = new Layer(`${image.name}-archive`);
  const manifest = [
    {
      Config: `${configId}.json`,
      RepoTags: [imageRef(image)],
      Layers: layers.map((l) => `${l.diffId}.tar.gz`),
    },
  ];
  archive.data('manifest.json', `${JSON.stringify(manifest)}\n`);
  archive.data(`${configId}.json`, config);
  for (const l of layers) archive.file(`${l.diffId}.tar.gz`, l.file, 0o644);
  const tmp = `${target}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, archive.tar());
  fs.renameSync(tmp, target);
  fs.writeFileSync(idFile, `${configId}\n`);
  return { configId, file: target, reused: false };
}

/** Builds every available image (or those named) into `out`; returns what it wrote. */
export function buildImages({ out = DEFAULT_OUT, names, cache = true } = {}) {
  const images = selectImages(names);
  for (const image of images) checkBuilt(image);
  fs.mkdirSync(out, { recursive: true });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ambient-image-'));
  try {
    const runtime = hostLayer(
      out,
      cache,
      'runtime',
      [process.execPath, '/etc/ssl/certs/ca-certificates.crt'],
      () => runtimeLayer(work),
    );
    const sharedEntries = appEntries('packages/shared');
    sharedEntries.name = 'workspace-shared';
    const shared = materialize(sharedEntries, out, cache);
    const tools = images.some((i) => i.tools)
      ? hostLayer(out, cache, 'tools', TOOL_INPUTS, () => toolsLayer())
      : undefined;
    const built = [];
    for (const image of images) {
      if (image.probe) {
        const layers = [runtime, tools];
        built.push(summary(image, writeArchive(image, layers, out), layers));
        continue;
      }
      const closure = appEntries(image.pkg);
      const usesShared = closure.entries.has('app/packages/shared/package.json');
      const own = materialize(appLayer(image, closure, usesShared ? sharedEntries : undefined), out, cache);
      const layers = [runtime, ...(image.tools ? [tools] : []), ...(usesShared ? [shared] : []), own];
      built.push(summary(image, writeArchive(image, layers, out), layers));
    }
    pruneLayers(out, built);
    return built;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function summary(image, archive, layers) {
  return {
    name: image.name,
    ref: imageRef(image),
    archive: archive.file,
    configId: archive.configId,
    reused: archive.reused,
    layers: layers.map(({ name, diffId, file, size, gzSize }) => ({ name, diffId, file, size, gzSize })),
    size: layers.reduce((n, l) => n + l.size, 0),
    gzSize: layers.reduce((n, l) => n + l.gzSize, 0),
  };
}

/**
 * Marks the layers this build used and drops those no build used for a day, so the cache does not
 * grow with every change, and a build running at the same time keeps the layers it just wrote.
 */
function pruneLayers(out, built) {
  const now = new Date();
  // When this cache was last used, for whoever cleans up caches of checkouts long gone.
  fs.writeFileSync(path.join(out, 'last-build'), `${now.toISOString()}\n`);
  for (const l of built.flatMap((b) => b.layers)) fs.utimesSync(l.file, now, now);
  for (const dir of ['layers', 'fingerprints'].map((d) => path.join(out, d))) {
    for (const f of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
      const st = fs.statSync(path.join(dir, f), { throwIfNoEntry: false });
      if (st && now.getTime() - st.mtimeMs > 86_400_000) fs.rmSync(path.join(dir, f), { force: true });
    }
  }
}

/** Writes the image's own files (not the runtime: the Dockerfile's base image has Node) under dir. */
export function stageImage(name, dir) {
  const image = IMAGES.find((i) => i.name === name);
  if (!image) throw new Error(`no image named ${name}`);
  checkBuilt(image);
  const layer = appEntries(image.pkg);
  if (image.name === 'cni' && fs.existsSync(path.join(REPO, CNI_PLUGIN)))
    layer.file('opt/ambient-cni/bin/ambient-cni', path.join(REPO, CNI_PLUGIN), 0o755);
  for (const key of layer.sorted()) {
    const e = layer.entries.get(key);
    const dest = path.join(dir, key);
    if (e.type === 'dir') fs.mkdirSync(dest, { recursive: true, mode: e.mode });
    else if (e.type === 'symlink') fs.symlinkSync(e.link, dest);
    else {
      fs.copyFileSync(e.source, dest);
      fs.chmodSync(dest, e.mode);
    }
  }
}

export function importImages({ address, out = DEFAULT_OUT, names, ctr = 'ctr' }) {
  const images = selectImages(names);
  for (const image of images) {
    const file = path.join(out, `${image.name}.tar`);
    execFileSync(ctr, ['--address', address, '-n', 'k8s.io', 'images', 'import', file], { stdio: 'inherit' });
  }
}

const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;

function main(argv) {
  const [cmd, ...rest] = argv;
  const opt = (name) => {
    const i = rest.indexOf(name);
    return i >= 0 ? rest[i + 1] : undefined;
  };
  const names = opt('--images')?.split(',');
  const out = opt('--out') ?? DEFAULT_OUT;
  if (cmd === 'build') {
    const built = buildImages({ out, names, cache: !rest.includes('--no-cache') });
    if (rest.includes('--json')) {
      console.log(JSON.stringify(built));
      return;
    }
    for (const b of built) {
      console.log(
        `${b.ref.padEnd(34)} ${mb(b.size).padStart(9)} unpacked ${mb(b.gzSize).padStart(9)} gzipped  ${b.archive}${b.reused ? ' (unchanged)' : ''}`,
      );
      for (const l of b.layers)
        console.log(
          `    ${l.name.padEnd(18)} ${mb(l.size).padStart(9)} ${mb(l.gzSize).padStart(9)}  sha256:${l.diffId.slice(0, 16)}`,
        );
    }
  } else if (cmd === 'import') {
    const address = opt('--address');
    if (!address) throw new Error('import needs --address <containerd socket>');
    importImages({ address, out, names });
  } else if (cmd === 'stage') {
    const [name, dir] = rest;
    if (!name || !dir) throw new Error('stage needs IMAGE DIR');
    stageImage(name, dir);
  } else {
    console.error('usage: build-images.mjs build|import|stage (see the comment at the top of this file)');
    process.exit(2);
  }
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main(process.argv.slice(2));
  } catch (err) {
    console.error(`build-images: ${err.message}`);
    process.exit(1);
  }
}

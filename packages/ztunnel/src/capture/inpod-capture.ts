import { execFile } from 'node:child_process';
import { inpodIptables, inpodIptablesRemoval, inpodRoutes, inpodRoutesRemoval } from './inpod-rules.js';

function nsenter(netnsPath: string, cmd: string, args: string[], input?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile('nsenter', [`--net=${netnsPath}`, cmd, ...args], (err, _stdout, stderr) => {
      if (err)
        reject(new Error(`${cmd} ${args.join(' ')} in ${netnsPath}: ${(stderr || err.message).trim()}`));
      else resolve();
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Installs Istio's in-pod capture rules in the pod's namespace. */
export async function installCapture(netnsPath: string): Promise<void> {
  await nsenter(netnsPath, 'iptables-restore', ['--noflush'], inpodIptables());
  for (const line of inpodRoutes()) await nsenter(netnsPath, 'ip', line.split(' '));
}

/** Removes them again: the pod's networking is as it was before enrollment. */
export async function removeCapture(netnsPath: string): Promise<void> {
  await nsenter(netnsPath, 'iptables-restore', ['--noflush'], inpodIptablesRemoval()).catch(() => {});
  for (const line of inpodRoutesRemoval()) await nsenter(netnsPath, 'ip', line.split(' ')).catch(() => {});
}
